"""The embeddable top-up page: number, amount, method -> the provider -> back, credited.

Plain HTML forms that work without JavaScript, in German and English. Steps:

1. ``GET /topup/<button>``: the form (number, amount with its bonus, method).
2. ``POST /topup/<button>``: the number checked and shown back in national
   form with the amount and method, to catch typos; "pay" or "change".
3. ``POST /topup/<button>`` with ``confirm``: a ``payments`` row, the provider's
   payment, and a 303 to the provider (the pay button targets the top window:
   providers refuse to be framed).
4. ``GET /topup/<button>/return/<reference>``: finish at the provider, book,
   and say whether the credit arrived (with the new balance and, for profiles
   whose callers may withhold their number, the customer PIN: only the payer
   holds the unguessable reference, and only after a completed payment).

POSTs are CSRF-safe: the ``Origin`` (else ``Referer``) must be our own origin,
and the form carries a signed, expiring token. The page sends
``Content-Security-Policy: frame-ancestors`` from the profile's list.

Every request reads the settings in force (profiles, bonuses, payment methods,
credentials, frame ancestors, form keys), so that a reload applies to the next
one. Tokens are signed with ``form_key`` and taken when signed with it or with
``form_key_previous`` (rotation); with both keys the same on every node, a form
served by one node is accepted by another, and after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import string
from dataclasses import replace
from urllib.parse import urlencode, urlsplit

from twisted.internet.defer import DeferredLock
from twisted.logger import Logger

from billing.money import format_cents
from billing.numbers import NumberRefused, entered, national

from .httpkit import Answer, Ctx
from .payments import Payments, State
from .providers.base import PaymentRequest, Rejected
from .settings import PageProfile, ReadsSettings, SettingsSource, WebSettings, settings_source
from .urls import cancel_url, notify_url, return_url

TOKEN_TTL_S = 2 * 3600

log = Logger(namespace="webhook.page")

_TEMPLATE = string.Template(open(os.path.join(os.path.dirname(__file__), "templates", "page.html"),
                                 encoding="utf-8").read())

TEXTS = {
    "de": {
        "title": "Guthaben aufladen", "number": "Ihre Telefonnummer (von der Sie anrufen)",
        "amount": "Betrag", "bonus": "Bonus", "method": "Zahlungsart", "next": "Weiter",
        "check": "Bitte prüfen Sie Ihre Angaben", "your_number": "Rufnummer", "pay": "Jetzt bezahlen",
        "change": "Ändern", "bad_number": "Das ist keine gültige Telefonnummer.",
        "bad_amount": "Bitte wählen Sie einen Betrag.", "bad_method": "Bitte wählen Sie eine Zahlungsart.",
        "expired": "Das Formular ist abgelaufen. Bitte erneut versuchen.",
        "credited": "Ihr Guthaben ist angekommen.", "credited_amount": "Gutgeschrieben",
        "balance": "Neues Guthaben", "pin": "Ihre Kunden-PIN (für Anrufe mit unterdrückter Nummer)",
        "pending": "Ihre Zahlung ist noch nicht abgeschlossen. Das Guthaben wird gutgeschrieben, sobald sie bestätigt ist.",
        "failed": "Die Zahlung wurde nicht abgeschlossen. Es wurde nichts abgebucht.",
        "cancelled": "Sie haben die Zahlung abgebrochen.", "again": "Erneut aufladen",
        "unavailable": "Der Zahlungsanbieter antwortet gerade nicht. Bitte versuchen Sie es gleich noch einmal.",
        "unknown": "Diese Zahlung kennen wir nicht.",
        "closed": "Aufladen ist gerade nicht möglich. Bitte versuchen Sie es später noch einmal.",
    },
    "en": {
        "title": "Top up your credit", "number": "Your phone number (the one you will call from)",
        "amount": "Amount", "bonus": "bonus", "method": "Payment method", "next": "Continue",
        "check": "Please check your details", "your_number": "Phone number", "pay": "Pay now",
        "change": "Change", "bad_number": "That is not a valid phone number.",
        "bad_amount": "Please choose an amount.", "bad_method": "Please choose a payment method.",
        "expired": "The form has expired. Please try again.",
        "credited": "Your credit has arrived.", "credited_amount": "Credited",
        "balance": "New balance", "pin": "Your customer PIN (for calls with a withheld number)",
        "pending": "Your payment is not complete yet. The credit arrives as soon as it is confirmed.",
        "failed": "The payment was not completed. Nothing was charged.",
        "cancelled": "You cancelled the payment.", "again": "Top up again",
        "unavailable": "The payment provider is not answering right now. Please try again in a moment.",
        "unknown": "We do not know this payment.",
        "closed": "Top-ups are not available right now. Please try again later.",
    },
}

METHOD_NAMES = {"paypal": "PayPal", "klarna": "Klarna", "paysafecard": "paysafecard"}
LOCALES = {"de": "de-DE", "en": "en-DE"}


def e(text) -> str:
    return html.escape(str(text), quote=True)


def money(cents: int, currency: str, lang: str) -> str:
    text = format_cents(cents)
    return f"{text.replace('.', ',')} {currency}" if lang == "de" else f"{currency} {text}"


def csp(profile: PageProfile) -> str:
    ancestors = " ".join(profile.frame_ancestors) or "'none'"
    return (f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; "
            f"base-uri 'none'; frame-ancestors {ancestors}")


def sign(key: bytes, button: str, issued_s: int) -> str:
    """The token of a form for ``button`` issued at ``issued_s``, signed with ``key``."""
    mac = hmac.new(key, f"{button}|{issued_s}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"{issued_s}.{mac}"


class TopupPage(ReadsSettings):
    """``providers`` maps a method to its adapter (looked up at each payment: a reload may rebuild them)."""

    def __init__(self, settings: WebSettings | SettingsSource, payments: Payments, providers, metrics,
                 clock) -> None:
        self.clock = clock
        self._locks: dict[str, DeferredLock] = {}
        self._settings = settings_source(settings)
        self.payments = payments
        self.providers = providers
        self.metrics = metrics
        #: signs forms while the secrets file gives no ``[web] form_key``
        self._process_key = os.urandom(32)
        self._said_process_key = False

    # -- plumbing ---------------------------------------------------------------

    def base_url(self) -> str:
        """Where browsers reach us: ``public_url``, never the request's Host header (the client's to choose)."""
        return self.settings.public_url.rstrip("/")

    def keys(self) -> tuple[bytes, ...]:
        """The key that signs new forms first, then the others still accepted."""
        settings = self.settings
        if settings.form_key:
            return tuple(k for k in (settings.form_key, settings.form_key_previous) if k)
        if not self._said_process_key:
            self._said_process_key = True
            log.warn("the secrets file has no [web] form_key: top-up forms are signed with a key of this process "
                     "alone, so a form opened before a restart, or served by another node, is refused as expired")
        return (self._process_key,)

    def token(self, button: str, now_s: int) -> str:
        return sign(self.keys()[0], button, now_s)

    def token_ok(self, button: str, token: str, now_s: int) -> bool:
        stamp, _, _mac = token.partition(".")
        if not stamp.isdigit() or len(stamp) > 12:
            return False
        issued = int(stamp)
        if not (0 <= now_s - issued <= TOKEN_TTL_S):
            return False
        return any(hmac.compare_digest(sign(key, button, issued), token) for key in self.keys())

    def same_origin(self, ctx: Ctx) -> bool:
        """The form was posted from our own page: its Origin (else Referer) is ``public_url``'s origin; without
        one (a profile that takes no payments), the scheme and Host this request came on."""
        claimed = ctx.header("origin") or ctx.header("referer")
        if not claimed:
            return False
        theirs = urlsplit(claimed)
        if self.settings.public_url:
            ours = urlsplit(self.base_url())
            ours_origin = (ours.scheme, ours.netloc.lower())
        else:
            ours_origin = ("https" if ctx.request.isSecure() else "http", ctx.header("host").lower())
        return (theirs.scheme, theirs.netloc.lower()) == ours_origin

    def lang(self, ctx: Ctx, profile: PageProfile) -> str:
        asked = ctx.query.get("lang", "")
        return asked if asked in TEXTS else profile.language if profile.language in TEXTS else "de"

    def render(self, profile: PageProfile, lang: str, content: str, status: int = 200, ctx: Ctx | None = None,
               path: str = "") -> Answer:
        t = TEXTS[lang]
        langs = " | ".join(f'<a href="/topup/{e(profile.button)}{e(path)}?lang={code}">{name}</a>'
                           for code, name in (("de", "Deutsch"), ("en", "English")))
        body = _TEMPLATE.substitute(lang=lang, title=e(t["title"]), langs=langs, content=content)
        return Answer(status, body.encode(), "text/html; charset=utf-8",
                      (("Content-Security-Policy", csp(profile)),
                       # "no-referrer" would make browsers send "Origin: null" on our own form posts
                       ("Referrer-Policy", "same-origin")))

    def profile(self, button: str) -> PageProfile:
        profile = self.settings.profile_by_button(button)
        if profile is None:
            raise Rejected("no such top-up button", 404)
        return profile

    # -- the form ---------------------------------------------------------------

    def form(self, profile: PageProfile, lang: str, now_s: int, *, number: str = "", amount: str = "",
             method: str = "", problem: str = "") -> str:
        t = TEXTS[lang]
        if not profile.methods:  # no method has credentials: no form with an empty payment box
            return f'<p class="err" id="closed">{e(t["closed"])}</p>'
        cur = profile.billing.currency
        amounts = []
        for option in profile.billing.topups:
            checked = " checked" if str(option.amount_cents) == amount else ""
            bonus = f" + {money(option.bonus_cents, cur, lang)} {t['bonus']}" if option.bonus_cents else ""
            amounts.append(f'<label><input type="radio" name="amount" value="{option.amount_cents}"{checked} '
                           f'required> {money(option.amount_cents, cur, lang)}{bonus}</label>')
        methods = []
        for m in profile.methods:
            checked = " checked" if m == method else ""
            methods.append(f'<label><input type="radio" name="method" value="{m}"{checked} required> '
                           f'{METHOD_NAMES[m]}</label>')
        err = f'<p class="err" id="problem">{e(problem)}</p>' if problem else ""
        return (f'{err}<form method="post" action="/topup/{e(profile.button)}">'
                f'<input type="hidden" name="token" value="{self.token(profile.button, now_s)}">'
                f'<input type="hidden" name="lang" value="{lang}">'
                f'<fieldset><label for="number">{e(t["number"])}</label>'
                f'<input id="number" name="number" type="tel" autocomplete="tel" required maxlength="40" '
                f'value="{e(number)}"></fieldset>'
                f'<fieldset><legend>{e(t["amount"])}</legend>{"".join(amounts)}</fieldset>'
                f'<fieldset><legend>{e(t["method"])}</legend>{"".join(methods)}</fieldset>'
                f'<button type="submit" id="next">{e(t["next"])}</button></form>')

    async def show(self, ctx: Ctx) -> Answer:
        profile = self.profile(ctx.params["button"])
        lang = self.lang(ctx, profile)
        now_s = int(self.clock.seconds())
        return self.render(profile, lang, self.form(profile, lang, now_s))

    async def submit(self, ctx: Ctx) -> Answer:
        profile = self.profile(ctx.params["button"])
        form = ctx.form()
        lang = form.get("lang") if form.get("lang") in TEXTS else profile.language
        t = TEXTS[lang]
        now_s = int(self.clock.seconds())
        if not self.same_origin(ctx):
            raise Rejected("cross-site form post refused", 403)
        if not self.token_ok(profile.button, form.get("token", ""), now_s):
            return self.render(profile, lang, self.form(profile, lang, now_s, problem=t["expired"]), 400)
        raw_number, amount, method = form.get("number", ""), form.get("amount", ""), form.get("method", "")
        try:
            number = entered(raw_number, self.settings.default_region)
        except NumberRefused:
            number = None
        problem = ""
        option = next((o for o in profile.billing.topups if str(o.amount_cents) == amount), None)
        if number is None:
            problem = t["bad_number"]
        elif option is None:
            problem = t["bad_amount"]
        elif method not in profile.methods:
            problem = t["bad_method"]
        if problem:
            return self.render(profile, lang, self.form(profile, lang, now_s, number=raw_number[:40], amount=amount,
                                                        method=method, problem=problem), 400)
        if form.get("change"):
            return self.render(profile, lang, self.form(profile, lang, now_s, number=national(number), amount=amount,
                                                        method=method))
        if form.get("confirm") != "1":
            return self.render(profile, lang, self.confirm(profile, lang, now_s, number, option, method))
        return await self.pay(ctx, profile, lang, number, option.amount_cents, method)

    def confirm(self, profile: PageProfile, lang: str, now_s: int, number: str, option, method: str) -> str:
        t = TEXTS[lang]
        cur = profile.billing.currency
        bonus = f" + {money(option.bonus_cents, cur, lang)} {t['bonus']}" if option.bonus_cents else ""
        hidden = "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in (
            ("token", self.token(profile.button, now_s)), ("lang", lang), ("number", number),
            ("amount", option.amount_cents), ("method", method)))
        return (f'<h2>{e(t["check"])}</h2><dl>'
                f'<dt>{e(t["your_number"])}</dt><dd id="national">{e(national(number))}</dd>'
                f'<dt>{e(t["amount"])}</dt><dd id="amount">{money(option.amount_cents, cur, lang)}{bonus}</dd>'
                f'<dt>{e(t["method"])}</dt><dd id="method">{METHOD_NAMES[method]}</dd></dl>'
                f'<form method="post" action="/topup/{e(profile.button)}" target="_top">{hidden}'
                f'<input type="hidden" name="confirm" value="1">'
                f'<button type="submit" id="pay">{e(t["pay"])}</button></form>'
                f'<form method="post" action="/topup/{e(profile.button)}">{hidden}'
                f'<button type="submit" id="change" name="change" value="1">'
                f'{e(t["change"])}</button></form>')

    async def pay(self, ctx: Ctx, profile: PageProfile, lang: str, number: str, amount_cents: int,
                  method: str) -> Answer:
        account = self.settings.account(profile.account_for(method) or "")
        if account is None:
            raise Rejected(f"{method} is not set up for this profile", 409)
        base = self.base_url()
        if not base:
            raise Rejected("payments are not set up: the public URL is not configured", 503)
        payment = await self.payments.start(profile.name, number, amount_cents, method)
        q = urlencode({"lang": lang})
        req = PaymentRequest(
            reference=payment.reference, amount_cents=amount_cents, currency=payment.currency,
            description=f"{TEXTS[lang]['title']}: {profile.billing.provider or profile.name}", account=account,
            return_url=return_url(base, profile.button, payment.reference, q),
            cancel_url=cancel_url(base, profile.button, payment.reference, q),
            notify_url=notify_url(base, method),
            locale=LOCALES[lang], customer_id=hashlib.sha256(f"{profile.name}|{number}".encode()).hexdigest()[:32])
        try:
            redirect = await self.providers[method].create(req)
        except Exception:
            await self.payments.failed(payment.reference)
            self.metrics.inc("prepaid_provider_errors_total", method=method)
            raise
        await self.payments.redirected(payment.reference, redirect.provider_ref)
        self.metrics.inc("prepaid_payments_started_total", method=method)
        return Answer(303, b"", "text/plain", (("Location", redirect.url),))

    # -- back from the provider --------------------------------------------------

    async def returned(self, ctx: Ctx) -> Answer:
        """One return per payment at a time on this node (a reload or double click waits for the first)."""
        reference = ctx.params["reference"]
        lock = self._locks.setdefault(reference, DeferredLock())
        await lock.acquire()
        try:
            return await self._returned(ctx)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(reference, None)

    async def _returned(self, ctx: Ctx) -> Answer:
        profile = self.profile(ctx.params["button"])
        lang = self.lang(ctx, profile)
        t = TEXTS[lang]
        payment = await self.payments.find(ctx.params["reference"])
        if payment is None or payment.profile != profile.name:
            return self.render(profile, lang, f'<p class="err">{e(t["unknown"])}</p>', 404)
        booked_balance = pin = None
        state = payment.state
        if state not in (State.COMPLETED, State.REVERSED):
            account = self.settings.account(profile.account_for(payment.method) or "")
            if account is None or payment.provider_ref is None:
                raise Rejected("the payment cannot be finished here", 409)
            req = PaymentRequest(reference=payment.reference, amount_cents=payment.amount_cents,
                                 currency=payment.currency, description=f"{t['title']}: {profile.name}",
                                 account=account, return_url="", cancel_url="", notify_url="",
                                 locale=LOCALES[lang])
            try:
                event = await self.providers[payment.method].on_return(req, payment.provider_ref, ctx.query)
            except Rejected:
                # a second return racing the first (a reload, a double click) finds the token used up
                again = await self.payments.find(payment.reference)
                if again is None or again.state is not State.COMPLETED:
                    return self.render(profile, lang, f'<p class="err" id="status">{e(t["failed"])}</p>', 400)
                state = again.state
                event = None
            except Exception:
                self.metrics.inc("prepaid_provider_errors_total", method=payment.method)
                log.failure("payment {reference}: the {method} return could not be checked with the provider",
                            reference=payment.reference, method=payment.method)
                return self.render(profile, lang, f'<p class="err" id="status">{e(t["unavailable"])}</p>'
                                   f'<p><a href="">{e(t["again"])}</a></p>', 502)
            if event is not None:
                if event.reference is not None and event.reference != payment.reference:
                    raise Rejected("the provider's answer belongs to another payment", 409)
                if event.reference is None:
                    event = replace(event, reference=payment.reference)
                booked = await self.payments.book(event)
                if booked.credited:
                    self.metrics.inc("prepaid_payment_credits_total", method=payment.method)
                state = booked.payment.state if booked.payment else state
                booked_balance, pin = booked.balance_cents, booked.pin
        if state is State.COMPLETED:
            if booked_balance is None:
                acct = await self.payments.store.account(payment.profile, payment.number)
                booked_balance, pin = (acct.balance_cents, acct.pin) if acct else (None, None)
            cur = payment.currency
            parts = [f'<p class="ok" id="status">{e(t["credited"])}</p><dl>',
                     f'<dt>{e(t["your_number"])}</dt><dd>{e(national(payment.number))}</dd>',
                     f'<dt>{e(t["credited_amount"])}</dt><dd id="credited">'
                     f'{money(payment.amount_cents + payment.bonus_cents, cur, lang)}</dd>']
            if booked_balance is not None:
                parts.append(f'<dt>{e(t["balance"])}</dt><dd id="balance">{money(booked_balance, cur, lang)}</dd>')
            if profile.show_pin and pin:
                parts.append(f'<dt>{e(t["pin"])}</dt><dd id="pin">{e(pin)}</dd>')
            parts.append("</dl>")
            return self.render(profile, lang, "".join(parts))
        if state is State.FAILED:
            return self.render(profile, lang, f'<p class="err" id="status">{e(t["failed"])}</p>'
                               f'<p><a href="/topup/{e(profile.button)}?lang={lang}">{e(t["again"])}</a></p>')
        return self.render(profile, lang, f'<p id="status">{e(t["pending"])}</p>')

    async def cancelled(self, ctx: Ctx) -> Answer:
        profile = self.profile(ctx.params["button"])
        lang = self.lang(ctx, profile)
        t = TEXTS[lang]
        payment = await self.payments.find(ctx.params["reference"])
        if payment is not None and payment.profile == profile.name and payment.state is not State.COMPLETED:
            await self.payments.failed(payment.reference)
        return self.render(profile, lang, f'<p class="err" id="status">{e(t["cancelled"])}</p>'
                           f'<p><a href="/topup/{e(profile.button)}?lang={lang}">{e(t["again"])}</a></p>')
