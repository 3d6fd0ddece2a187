"""The portal's "API keys": the profile's keys of the balance API; make one (its token shown once), revoke one.

A key made here is for this profile alone, under the name its maker gives it; the token is shown on the
page that answers the POST and never again (the store keeps its hash: :mod:`webhook.apikeys`). Making
and revoking write an audit row (actor ``portal:<user>``, from the client's address). The list shows
every key that may use this profile, with when it was made and last used.
"""

from __future__ import annotations

from twisted.web.template import tags

from webhook import apikeys

from ..view import Html, PortalContext, Redirect, Route

#: the longest name a key may have (the column's width)
NAME_MAX = 100

STRINGS = {
    "de": {
        "apikeys.nav": "API-Schlüssel", "apikeys.title": "API-Schlüssel",
        "apikeys.name": "Name", "apikeys.created": "Erstellt", "apikeys.last_used": "Zuletzt benutzt",
        "apikeys.never": "nie", "apikeys.revoked": "Widerrufen", "apikeys.revoke": "Widerrufen",
        "apikeys.create": "Neuen Schlüssel erstellen", "apikeys.none": "Noch keine Schlüssel.",
        "apikeys.name_needed": "Bitte einen Namen (bis 100 Zeichen) angeben.",
        "apikeys.token": "Der Schlüssel „{name}“ — er wird nur dieses eine Mal angezeigt; jetzt kopieren:",
        "apikeys.back": "Zurück zu den API-Schlüsseln", "apikeys.done_revoke": "Der Schlüssel wurde widerrufen.",
        "apikeys.not_found": "Diesen Schlüssel gibt es hier nicht (mehr).",
    },
    "en": {
        "apikeys.nav": "API keys", "apikeys.title": "API keys",
        "apikeys.name": "Name", "apikeys.created": "Created", "apikeys.last_used": "Last used",
        "apikeys.never": "never", "apikeys.revoked": "Revoked", "apikeys.revoke": "Revoke",
        "apikeys.create": "Create a new key", "apikeys.none": "No keys yet.",
        "apikeys.name_needed": "Please give a name (up to 100 characters).",
        "apikeys.token": "The key “{name}” — shown this once only; copy it now:",
        "apikeys.back": "Back to the API keys", "apikeys.done_revoke": "The key was revoked.",
        "apikeys.not_found": "There is no such key here (any more).",
    },
}


def _actor(ctx: PortalContext) -> str:
    return f"portal:{ctx.user.name}"


def _csrf(ctx: PortalContext):
    return tags.input(type="hidden", name="csrf", value=ctx.csrf_token)


def _create_form(ctx: PortalContext):
    return tags.form(_csrf(ctx),
                     tags.label(ctx.t("apikeys.name"), " ",
                                tags.input(type="text", name="name", maxlength=str(NAME_MAX), required="required")),
                     " ", tags.button(ctx.t("apikeys.create"), type="submit"),
                     method="post", action=ctx.url("apikeys/create"), **{"class": "form"})


def _row(ctx: PortalContext, key: apikeys.ApiKey):
    if key.revoked_ms is not None:
        state = f"{ctx.t('apikeys.revoked')} {ctx.when(key.revoked_ms)}"
    else:
        state = tags.form(_csrf(ctx), tags.input(type="hidden", name="key", value=key.id),
                          tags.button(ctx.t("apikeys.revoke"), type="submit"),
                          method="post", action=ctx.url("apikeys/revoke"), **{"class": "form"})
    return tags.tr(tags.td(key.name or key.provider), tags.td(key.id), tags.td(ctx.when(key.created_ms)),
                   tags.td(ctx.when(key.last_used_ms) if key.last_used_ms is not None else ctx.t("apikeys.never")),
                   tags.td(state))


async def keys_page(ctx: PortalContext, *, error: str = "") -> Html:
    """GET: the profile's keys and the form that makes one."""
    keys = await ctx.store.run(apikeys.list_keys, ctx.profile.name)
    head = tags.tr(tags.th(ctx.t("apikeys.name")), tags.th("ID"), tags.th(ctx.t("apikeys.created")),
                   tags.th(ctx.t("apikeys.last_used")), tags.th(""))
    table = (tags.table(tags.thead(head), tags.tbody(*[_row(ctx, k) for k in reversed(keys)]), **{"class": "data"})
             if keys else tags.p(ctx.t("apikeys.none")))
    body = [tags.p(ctx.t(error), **{"class": "error"})] if error else []
    return Html(ctx.t("apikeys.title"), body + [_create_form(ctx), table], status=400 if error else 200)


async def create_key(ctx: PortalContext) -> Html:
    """POST: a new key for this profile; the answer shows its token, this once."""
    name = ctx.form.get("name", "").strip()
    if not name or len(name) > NAME_MAX:
        return await keys_page(ctx, error="apikeys.name_needed")
    provider = ctx.profile.billing.provider or ctx.profile.name
    key, token = await ctx.store.run(apikeys.create, provider, (ctx.profile.name,), ctx.now_ms, name=name,
                                     actor=_actor(ctx), source=ctx.client_address)
    return Html(ctx.t("apikeys.title"), [
        tags.p(ctx.t("apikeys.token", name=key.name)),
        tags.p(tags.input(type="text", value=token, readonly="readonly", size="80", id="apikey-token"), " ",
               tags.button("⧉", type="button", **{"data-copy": "apikey-token"})),
        tags.p(tags.a(ctx.t("apikeys.back"), href=ctx.url("apikeys"))),
    ])


async def revoke_key(ctx: PortalContext):
    """POST: revoke a key of this profile; a key of another profile (or none, or one revoked before) is the
    portal's 404 and nothing is changed."""
    done = await ctx.store.run(apikeys.revoke, ctx.form.get("key", "")[:64], ctx.now_ms, actor=_actor(ctx),
                               source=ctx.client_address, profile=ctx.profile.name)
    if not done:
        return Html(ctx.t("apikeys.title"), [tags.p(ctx.t("apikeys.not_found"), **{"class": "error"}),
                                             tags.p(tags.a(ctx.t("apikeys.back"), href=ctx.url("apikeys")))],
                    status=404)
    return Redirect(ctx.url("apikeys"), notice=ctx.t("apikeys.done_revoke"))


ROUTES = [
    Route("apikeys", keys_page, nav="apikeys.nav"),
    Route("apikeys/create", create_key, methods=("POST",)),
    Route("apikeys/revoke", revoke_key, methods=("POST",)),
]
