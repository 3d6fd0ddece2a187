"""The balance API under ``/api/v1/`` for the provider's other systems (described by :mod:`webhook.openapi`).

Bearer API keys (see :mod:`webhook.apikeys`), each limited to its profiles.
Every credit and debit carries the caller's ``reference``, booked once per
key (ledger source ``api``); an ``Idempotency-Key`` header replays a retried
POST's first answer (see :mod:`webhook.idempotency`).
"""

from __future__ import annotations

import re

from billing.db.rows import NoAccount, NumberTaken, StoreError
from billing.numbers import NumberRefused, entered, normalise

from . import apikeys, idempotency
from .httpkit import Answer, Ctx, error, json_answer
from .jsonbody import BadJson, parse_json
from .settings import ReadsSettings, SettingsSource, WebSettings, settings_source

MAX_AMOUNT_CENTS = 10_000_000
#: what the API takes as a number (the path, ``new_number``): digits, E.164 with "+" or national
NUMBER_PATTERN = re.compile(r"^\+?[0-9]{6,15}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
_IDEM_KEY = re.compile(r"^[ -~]{1,200}$")


class BadRequest(Exception):
    def __init__(self, status: int, text: str, **extra) -> None:
        super().__init__(text)
        self.answer = error(status, text, **extra)


def account_doc(account, currency: str) -> dict:
    return {"profile": account.profile, "number": account.number, "balance_cents": account.balance_cents,
            "currency": currency}


def entry_doc(e) -> dict:
    return {"id": e.id, "kind": e.kind, "amount_cents": e.amount_cents, "balance_after_cents": e.balance_after_cents,
            "source": e.source, "reference": e.external_ref, "note": e.note, "at_ms": e.at_ms}


class BalanceApi(ReadsSettings):
    def __init__(self, settings: WebSettings | SettingsSource, store, metrics) -> None:
        self._settings = settings_source(settings)
        self.store = store
        self.metrics = metrics

    # -- entry ------------------------------------------------------------------

    async def handle(self, ctx: Ctx, operation: str) -> Answer:
        try:
            answer = await self._handle(ctx, operation)
        except BadRequest as exc:
            answer = exc.answer
        except StoreError as exc:
            answer = error(400, str(exc))
        self.metrics.inc("prepaid_api_requests_total", operation=operation, status=str(answer.status))
        return answer

    async def _handle(self, ctx: Ctx, operation: str) -> Answer:
        auth = ctx.header("authorization")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise BadRequest(401, "an API key is needed: Authorization: Bearer <key>")
        key = await self.store.run(apikeys.authenticate, token.strip(), self.store.now_ms())
        if key is None:
            raise BadRequest(401, "unknown or revoked API key")
        profile_name = ctx.params["profile"]
        if not key.may(profile_name):
            raise BadRequest(403, "this API key is not for this profile")
        profile = self.settings.profile(profile_name)
        if profile is None:
            raise BadRequest(404, "no such profile")
        if not NUMBER_PATTERN.match(ctx.params["number"]):
            raise BadRequest(400, "the number must be 6-15 digits, with a leading + for E.164")
        number = normalise(ctx.params["number"], self.settings.default_region)
        if number is None:  # digits, but no number anyone can call from: there is no such account
            raise BadRequest(404, "no such phone number")
        if ctx.method == "GET":
            return await getattr(self, operation)(ctx, key, profile, number)
        idem = ctx.header("idempotency-key")
        if not idem:
            return await self._post(ctx, key, profile, number, operation)
        if not _IDEM_KEY.match(idem):
            raise BadRequest(400, "Idempotency-Key must be 1-200 printable characters")
        req_hash = idempotency.request_hash(ctx.method, "/".join(ctx.path), ctx.body)
        seen = await self.store.run_engine(idempotency.claim, key.id, idem, req_hash, self.store.now_ms())
        if seen is not None:
            old_hash, status, body = seen
            if old_hash and old_hash != req_hash:
                raise BadRequest(422, "this Idempotency-Key was used with another request")
            if status == 0:
                raise BadRequest(409, "a request with this Idempotency-Key is still running; retry later")
            return Answer(status, body.encode(), "application/json", (("Idempotent-Replayed", "true"),))
        try:
            answer = await self._post(ctx, key, profile, number, operation)
        except BaseException:
            await self.store.run(idempotency.release, key.id, idem)
            raise
        if answer.status >= 500:
            await self.store.run(idempotency.release, key.id, idem)
        else:
            await self.store.run(idempotency.finish, key.id, idem, answer.status, answer.body.decode())
        return answer

    async def _post(self, ctx, key, profile, number, operation) -> Answer:
        try:
            doc = parse_json(ctx.body or b"null", max_bytes=self.settings.max_body_bytes)
        except BadJson as exc:
            raise BadRequest(400, str(exc)) from None
        if not isinstance(doc, dict):
            raise BadRequest(400, "the body must be a JSON object")
        return await getattr(self, operation)(ctx, key, profile, number, doc)

    # -- fields -------------------------------------------------------------------

    @staticmethod
    def _amount(doc) -> int:
        amount = doc.get("amount_cents")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= MAX_AMOUNT_CENTS:
            raise BadRequest(400, f"amount_cents must be a whole number of cents, 1 to {MAX_AMOUNT_CENTS}")
        return amount

    @staticmethod
    def _reference(doc) -> str:
        ref = doc.get("reference")
        if not isinstance(ref, str) or not _REFERENCE.match(ref):
            raise BadRequest(400, "reference must be 1-100 characters of A-Z a-z 0-9 . _ : -")
        return ref

    @staticmethod
    def _note(doc) -> str:
        note = doc.get("note", "")
        if not isinstance(note, str) or len(note) > 500:
            raise BadRequest(400, "note must be text of at most 500 characters")
        return note

    # -- operations ---------------------------------------------------------------

    async def account(self, ctx, key, profile, number) -> Answer:
        account = await self.store.account(profile.name, number)
        if account is None:
            raise BadRequest(404, "no account for this number")
        return json_answer(200, account_doc(account, profile.billing.currency))

    async def transactions(self, ctx, key, profile, number) -> Answer:
        raw = ctx.query.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            raise BadRequest(400, "limit must be 1 to 500")
        account = await self.store.account(profile.name, number)
        if account is None:
            raise BadRequest(404, "no account for this number")
        entries = await self.store.transactions(profile=profile.name, number=number, limit=int(raw))
        return json_answer(200, {"number": number, "transactions": [entry_doc(e) for e in entries]})

    async def credit(self, ctx, key, profile, number, doc) -> Answer:
        self._valid(number, "the number")
        result = await self._manual(ctx, key, profile, number, doc, "api_credit", 1)
        return json_answer(200, {"applied": result.applied, "account": account_doc(result.account,
                                                                                    profile.billing.currency)})

    async def debit(self, ctx, key, profile, number, doc) -> Answer:
        result = await self._manual(ctx, key, profile, number, doc, "api_debit", -1)
        # no account: also when the reference was booked before for another number (found by schemathesis)
        if result.reason == "no_account" or result.account is None:
            raise BadRequest(404, "no account for this number")
        account = account_doc(result.account, profile.billing.currency)
        if not result.applied:
            reason = "insufficient" if result.reason == "insufficient" else "duplicate"
            text = ("the balance does not cover the amount; nothing was taken" if reason == "insufficient"
                    else "this reference was booked before; nothing was taken")
            return json_answer(409, {"error": text, "reason": reason, "account": account})
        return json_answer(200, {"applied": True, "account": account})

    def _valid(self, text: str, what: str) -> str:
        """``text`` as E.164 when it is a valid number of its region (money goes only to numbers someone can
        call from); else 409 ``bad_number`` with the reason."""
        try:
            return entered(text, self.settings.default_region)
        except NumberRefused as exc:
            raise BadRequest(409, f"{what} is no valid phone number: {exc}", reason="bad_number") from None

    async def _manual(self, ctx, key, profile, number, doc, kind: str, sign: int):
        """Book a credit (sign 1) or debit (-1) with its audit row (actor ``api:<key id>``); over the
        profile's ``max_manual_cents``: 409 ``over_limit``, nothing booked."""
        amount, ref, note = self._amount(doc), self._reference(doc), self._note(doc)
        result = await self.store.manual(profile.billing, number, sign * amount, kind=kind, source="api",
                                         external_ref=f"{key.id}:{ref}", actor=f"api:{key.provider}",
                                         audit_actor=f"api:{key.id}", address=ctx.client, note=note)
        if result.reason == "over_limit":
            raise BadRequest(409, f"amount_cents is more than this profile allows for one manual transaction "
                                  f"({profile.billing.max_manual_cents})", reason="over_limit",
                             limit_cents=profile.billing.max_manual_cents)
        return result

    async def renumber(self, ctx, key, profile, number, doc) -> Answer:
        new = doc.get("new_number")
        merge = doc.get("merge", False)
        if not isinstance(new, str) or not NUMBER_PATTERN.match(new):
            raise BadRequest(400, "new_number must be 6-15 digits, with a leading + for E.164")
        new = self._valid(new, "new_number")
        if not isinstance(merge, bool):
            raise BadRequest(400, "merge must be true or false")
        try:
            result = await self.store.renumber(profile.name, number, new, merge=merge, actor=f"api:{key.id}",
                                               source=ctx.client)
        except NoAccount:
            raise BadRequest(404, "no account for this number") from None
        except NumberTaken:
            raise BadRequest(409, "the new number has an account; set merge to join them", reason="number_taken") from None
        except StoreError as exc:
            raise BadRequest(409, str(exc), reason="refused") from None
        return json_answer(200, {"merged": result.merged, "account": account_doc(result.account,
                                                                                  profile.billing.currency)})
