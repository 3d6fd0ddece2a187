"""The portal's "Login lockouts" (``/lockouts``, operators only): who may not log in now, and a way to let
them in again.

Each user name and each client address that too many wrong passwords have locked (``[portal]
login_max_failures`` within ``login_window_s``, for ``login_lockout_s``) is a row: what it is, until when,
after how many wrong passwords, and a button that clears it. Clearing is an audit row
(``portal_login_unlock``, actor ``portal:<login>``, from the operator's address) written with it
(:func:`billing.db.portal.clear_lockout`); it ends that lock only (a user's, not the address's it came
from). Providers get the portal's 404 for the page and for its form.
"""

from __future__ import annotations

from twisted.web.template import tags

from billing.db import portal as db

from ..view import Html, PortalContext, Redirect, Route

STRINGS = {
    "de": {
        "lockouts.nav": "Login-Sperren",
        "lockouts.title": "Gesperrte Logins",
        "lockouts.intro": "Nach {max} falschen Passwörtern innerhalb von {window} s ist das Einloggen für den "
                          "Benutzernamen bzw. die Adresse {lockout} s lang gesperrt.",
        "lockouts.kind": "Gesperrt",
        "lockouts.kind.user": "Benutzer",
        "lockouts.kind.address": "Adresse",
        "lockouts.who": "Name / Adresse",
        "lockouts.until": "Gesperrt bis",
        "lockouts.failures": "Falsche Passwörter",
        "lockouts.clear": "Sperre aufheben",
        "lockouts.none": "Zurzeit ist kein Login gesperrt.",
        "lockouts.cleared": "Die Sperre von {who} ist aufgehoben.",
        "lockouts.not_locked": "{who} war nicht (mehr) gesperrt; nichts geändert.",
    },
    "en": {
        "lockouts.nav": "Login lockouts",
        "lockouts.title": "Locked logins",
        "lockouts.intro": "After {max} wrong passwords within {window} s, logging in is locked for {lockout} s "
                          "for that user name or address.",
        "lockouts.kind": "Locked",
        "lockouts.kind.user": "User",
        "lockouts.kind.address": "Address",
        "lockouts.who": "Name / address",
        "lockouts.until": "Locked until",
        "lockouts.failures": "Wrong passwords",
        "lockouts.clear": "Clear lock",
        "lockouts.none": "No login is locked now.",
        "lockouts.cleared": "The lock of {who} is cleared.",
        "lockouts.not_locked": "{who} was not locked (any more); nothing changed.",
    },
}


def _row(ctx: PortalContext, lock: db.Lockout):
    clear = tags.form(class_="form", method="post", action=ctx.url("lockouts"))(
        tags.input(type="hidden", name="csrf", value=ctx.csrf_token),
        tags.input(type="hidden", name="kind", value=lock.kind),
        tags.input(type="hidden", name="value", value=lock.value),
        tags.button(ctx.t("lockouts.clear"), type="submit"))
    return tags.tr(tags.td(ctx.t(f"lockouts.kind.{lock.kind}")), tags.td(lock.value), tags.td(ctx.when(lock.until_ms)),
                   tags.td(str(lock.failures), class_="num"), tags.td(clear))


async def lockouts_page(ctx: PortalContext):
    """GET: the lockouts in force; POST ``kind``, ``value``: clear that one, then back to the list."""
    rule = ctx.config.portal.login_rule()
    if ctx.method == "POST":
        kind, value = ctx.form.get("kind", ""), ctx.form.get("value", "")[:64]
        if kind not in db.LOCK_KINDS:
            return Html(ctx.t("lockouts.title"), tags.p(ctx.t("lockouts.not_locked", who=value)), status=400)
        cleared = await ctx.store.run(db.clear_lockout, rule, kind, value, now_ms=ctx.now_ms,
                                      actor=f"portal:{ctx.user.name}", source=ctx.client_address)
        who = f"{ctx.t(f'lockouts.kind.{kind}')} {value}"
        return Redirect(ctx.url("lockouts"), ctx.t("lockouts.cleared" if cleared else "lockouts.not_locked", who=who))
    found = await ctx.store.run(db.lockouts, rule, now_ms=ctx.now_ms)
    intro = tags.p(ctx.t("lockouts.intro", max=rule.max_failures, window=rule.window_s, lockout=rule.lockout_s))
    if not found:
        return Html(ctx.t("lockouts.title"), [intro, tags.p(ctx.t("lockouts.none"))])
    head = tags.tr(*[tags.th(ctx.t(key), scope="col") for key in ("lockouts.kind", "lockouts.who", "lockouts.until",
                                                                  "lockouts.failures")], tags.th(""))
    return Html(ctx.t("lockouts.title"), [intro, tags.table(class_="data")(
        tags.thead(head), tags.tbody(*[_row(ctx, lock) for lock in found]))])


ROUTES = [Route("lockouts", lockouts_page, methods=("GET", "POST"), nav="lockouts.nav", operator_only=True,
                profile_scoped=False)]
