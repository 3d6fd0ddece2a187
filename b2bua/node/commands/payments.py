"""``prepaid payments check [--profile P] [--json]`` and ``prepaid payments urls --profile P [--json]``.

``check`` tries each merchant account a profile names on its provider's authentication endpoint
with the credentials of the secrets file, changing nothing there (PayPal: an OAuth2 token; Klarna:
a read of a payment session that does not exist; paysafecard: a read of a payment that does not
exist), and says per account ``OK``, ``bad credentials`` (the provider's 401/403), ``unreachable``
(refused, timed out, or an answer that tells nothing) or ``no credentials`` (the secrets file
lacks them; not tried). Exit 0 when every account is OK, else 1.

``urls`` prints the webhook, return and cancel URLs of a profile at each of its providers, built
from ``[http] public_url``, and where to register those that must be registered.
"""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import asdict, dataclass
from typing import Awaitable, Callable

from twisted.internet.defer import ensureDeferred, gatherResults
from twisted.web.client import Agent, HTTPConnectionPool

from webhook.outgoing import Outgoing, ProviderUnavailable
from webhook.providers import Klarna, PayPal, Paysafecard
from webhook.urls import page_url, provider_urls

from ..paysecrets import SecretsReport, check_payment_secrets
from .db import CommandError, add_config_argument, command, profile_of

OK = "OK"
BAD_CREDENTIALS = "bad credentials"
UNREACHABLE = "unreachable"
NO_CREDENTIALS = "no credentials"

#: seconds one provider has to answer ``check`` (tried once)
DEFAULT_TIMEOUT_S = 5.0


def register(sub) -> None:
    p = sub.add_parser("payments", help="merchant accounts: try their credentials, or print the URLs to register")
    psub = p.add_subparsers(dest="payments_command", metavar="ACTION")
    psub.required = True
    check = psub.add_parser("check", help="try each merchant account's credentials at its provider")
    add_config_argument(check)
    check.add_argument("--profile", default=None, help="only this profile's accounts")
    check.add_argument("--json", action="store_true", help="a list of objects instead of lines")
    check.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S,
                       help=f"seconds each provider has to answer (default {DEFAULT_TIMEOUT_S:g})")
    check.set_defaults(func=command(payments_check))
    urls = psub.add_parser("urls", help="the webhook and return URLs of a profile to register at its providers")
    add_config_argument(urls)
    urls.add_argument("--profile", required=True)
    urls.add_argument("--json", action="store_true", help="a list of objects instead of lines")
    urls.set_defaults(func=command(payments_urls))


@dataclass(frozen=True)
class AccountCheck:
    """What trying one merchant account said; ``profiles``: those that name it for ``method``."""

    method: str
    account: str
    profiles: tuple[str, ...]
    result: str
    detail: str = ""

    def line(self) -> str:
        text = f"{self.method} {self.account} ({', '.join(self.profiles)}): {self.result}"
        return f"{text}: {self.detail}" if self.detail else text


async def check_accounts(config, secrets: SecretsReport, providers: dict, profile: str | None = None,
                         ) -> list[AccountCheck]:
    """Try every (method, account) the profiles (or ``profile``) name, all at once; in config order."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for p in config.profiles.values():
        if profile is None or p.name == profile:
            for method, account in p.payments.items():
                wanted.setdefault((method, account), []).append(p.name)
    problems = {(o.method, o.account): o.problem for o in secrets.off}
    accounts = {a.name: a for a in secrets.accounts}

    async def one(method: str, name: str, profiles: tuple[str, ...]) -> AccountCheck:
        problem = problems.get((method, name))
        if problem is not None:
            return AccountCheck(method, name, profiles, NO_CREDENTIALS, str(problem))
        try:
            accepted = await providers[method].check_credentials(accounts[name])
        except ProviderUnavailable as exc:
            return AccountCheck(method, name, profiles, UNREACHABLE, str(exc))
        return AccountCheck(method, name, profiles, OK if accepted else BAD_CREDENTIALS,
                            "" if accepted else f"{method} refused the credentials of accounts.{name} in {secrets.file}")
    return await gatherResults([ensureDeferred(one(m, a, tuple(ps))) for (m, a), ps in wanted.items()],
                               consumeErrors=True)


def providers_for_check(config, reactor, timeout_s: float) -> dict:
    """The real adapters on the config's provider URLs, each request tried once within ``timeout_s``, on
    connections that are closed after each answer."""
    out = Outgoing(reactor, timeout_s=timeout_s, attempts=1,
                   agent=Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    pay = config.payments
    return {"paypal": PayPal(out, pay.paypal_api_url, cert_origins=()), "klarna": Klarna(out, pay.klarna_api_url),
            "paysafecard": Paysafecard(out, pay.paysafecard_api_url)}


def drive(make: Callable[[object], Awaitable]):
    """Run ``make(reactor)`` on the global reactor until it is done; its result (or its exception)."""
    from twisted.internet import reactor
    from twisted.python.failure import Failure
    box: list = []

    def go() -> None:
        d = ensureDeferred(make(reactor))
        d.addBoth(box.append)
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run()
    if not box:  # stopped by a signal
        raise KeyboardInterrupt
    if isinstance(box[0], Failure):
        box[0].raiseException()
    return box[0]


def payments_check(args, config, run=drive) -> int:
    """``prepaid payments check``; ``run`` drives the checks on a reactor (tests pass their own)."""
    profile_of(config, args.profile)
    secrets = check_payment_secrets(config)

    async def checks(reactor) -> list[AccountCheck]:
        providers = providers_for_check(config, reactor, args.timeout_s)
        return await check_accounts(config, secrets, providers, args.profile)
    results = run(checks)
    if not results:
        raise CommandError(f"no profile names a merchant account{'' if args.profile is None else ' in ' + args.profile}")
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    else:
        for r in results:
            print(r.line())
    return 0 if all(r.result == OK for r in results) else 1


def payments_urls(args, config) -> int:
    """``prepaid payments urls --profile P``."""
    profile = profile_of(config, args.profile)
    base = config.http.public_url
    if not base:
        raise CommandError("[http] public_url is not set: the URLs are built from the address browsers reach us at")
    if not profile.payments:
        raise CommandError(f"profile {profile.name} names no payment method ([profiles.{profile.name}.payments])")
    urls = provider_urls(base, profile.button, tuple(profile.payments))
    if args.json:
        print(json.dumps([asdict(u) for u in urls], indent=1))
        return 0
    print(f"top-up page of profile {profile.name}: {page_url(base, profile.button)}")
    for method in dict.fromkeys(u.method for u in urls):
        print(method)
        for u in (u for u in urls if u.method == method):
            print(f"  {u.role:<13} {u.url}" + ("" if u.register else "  (sent with each payment)"))
            if u.register:
                print(textwrap.fill(f"register it: {u.register}", 100, initial_indent=" " * 16,
                                    subsequent_indent=" " * 16))
    print("{reference} is each payment's own; paysafecard fills in {payment_id} itself.", file=sys.stderr)
    return 0
