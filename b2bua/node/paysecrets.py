"""The payment accounts the profiles name, checked against the secrets file: for check-config, run and the web side.

    report = check_payment_secrets(config)          # a SecretsReport
    refusal(config, report)                         # the lines `run` stops with under [payments] require_all

The secrets file is ``$PREPAID_SECRETS``, else ``[payments] secrets_file``. Its core,
:func:`check_secrets`, is sans-I/O: the file's text (or why there is none) and the accounts the
profiles name (:class:`Need`) in, a :class:`SecretsReport` out: the accounts, every problem as
``file:key: reason`` (never a value), and each (profile, method) that is off for want of credentials.

    [accounts.demo-paypal]      # PayPal: the REST app's client ID and secret, the webhook's ID
    client_id = "..."
    secret = "..."
    webhook_id = "..."
    [accounts.demo-klarna]      # Klarna: the API username and password
    client_id = "..."
    secret = "..."
    [accounts.demo-paysafecard] # paysafecard: the API key
    secret = "..."
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Iterable


from webhook.secrets import SECRETS_ENV, secrets_path
from webhook.settings import MerchantAccount

from .config import Config
from .schema import ConfigProblem


#: the keys each method needs in its ``[accounts.NAME]``, with what each is called at the provider
NEEDED: dict[str, tuple[tuple[str, str], ...]] = {
    "paypal": (("client_id", "the Client ID of the PayPal REST app"),
               ("secret", "the Secret of the PayPal REST app"),
               ("webhook_id", "the Webhook ID PayPal shows for the webhook registered at /hooks/paypal")),
    "klarna": (("client_id", "the Klarna API username (UID)"),
               ("secret", "the Klarna API password")),
    "paysafecard": (("secret", "the paysafecard API key"),),
}

#: every key an account may have
KEYS = ("client_id", "secret", "webhook_id")


@dataclass(frozen=True)
class Need:
    """A profile names ``account`` for ``method``; ``config_key`` says where (``profiles.demo.payments.paypal``)."""

    profile: str
    method: str
    account: str

    @property
    def config_key(self) -> str:
        return f"profiles.{self.profile}.payments.{self.method}"


@dataclass(frozen=True)
class MethodOff:
    """A payment method a profile names that cannot be offered: ``problem`` says why."""

    profile: str
    method: str
    account: str
    problem: ConfigProblem


@dataclass(frozen=True)
class SecretsReport:
    file: str
    accounts: tuple[MerchantAccount, ...]
    problems: tuple[ConfigProblem, ...]
    off: tuple[MethodOff, ...]

    def usable(self, profile: str, payments: dict[str, str]) -> dict[str, str]:
        """``payments`` (method -> account) of ``profile`` without the methods that are off."""
        off = {o.method for o in self.off if o.profile == profile}
        return {m: a for m, a in payments.items() if m not in off}


def _string_values(values: dict) -> dict[str, str]:
    return {k: v for k, v in values.items() if k in KEYS and isinstance(v, str)}


def check_secrets(text: str | None, file: str, needs: Iterable[Need], *, unread: ConfigProblem | None = None,
                  ) -> SecretsReport:
    """The report for the secrets file ``file`` holding ``text``.

    ``text`` None: there is no file to read; ``unread`` says why (no file configured, cannot read it),
    and every need is off for that reason.
    """
    needs = tuple(needs)
    if text is None:
        problem = unread or ConfigProblem(file, "(file)", "no secrets file")
        return SecretsReport(file, (), (problem,) if needs else (),
                             tuple(MethodOff(n.profile, n.method, n.account, problem) for n in needs))
    problems: list[ConfigProblem] = []
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        doc = None
        problems.append(ConfigProblem(file, "(syntax)", f"not valid TOML: {exc}"))
    tables = doc.get("accounts", {}) if doc is not None else {}
    if not isinstance(tables, dict):
        problems.append(ConfigProblem(file, "accounts", "must be a table of [accounts.NAME] tables"))
        tables = {}
    accounts: list[MerchantAccount] = []
    for name, values in tables.items():
        if not isinstance(values, dict):
            problems.append(ConfigProblem(file, f"accounts.{name}", "must be a table"))
            continue
        for key, value in values.items():
            if key not in KEYS:
                problems.append(ConfigProblem(file, f"accounts.{name}.{key}",
                                               f"unknown key (an account has {', '.join(KEYS)})"))
            elif not isinstance(value, str):
                problems.append(ConfigProblem(file, f"accounts.{name}.{key}", "must be a string"))
        accounts.append(MerchantAccount(name=name, **_string_values(values)))
    off: list[MethodOff] = []
    whole_file = problems[0] if doc is None else None
    for need in needs:
        problem = whole_file or _need_problem(file, need, tables.get(need.account))
        if problem is not None:
            off.append(MethodOff(need.profile, need.method, need.account, problem))
            if problem not in problems:
                problems.append(problem)
    return SecretsReport(file, tuple(accounts), tuple(problems), tuple(off))


def _need_problem(file: str, need: Need, values) -> ConfigProblem | None:
    """Why the account ``values`` (its table, or None) cannot serve ``need``; None when it can."""
    if values is None:
        return ConfigProblem(file, f"accounts.{need.account}", f"missing (named by {need.config_key})")
    if not isinstance(values, dict):
        return ConfigProblem(file, f"accounts.{need.account}", "must be a table")
    for key, what in NEEDED[need.method]:
        value = values.get(key)
        if value is None or value == "":
            return ConfigProblem(file, f"accounts.{need.account}.{key}", f"missing: {what} ({need.config_key})")
        if not isinstance(value, str):
            return ConfigProblem(file, f"accounts.{need.account}.{key}", "must be a string")
    return None


def read_secrets(path: str, needs: Iterable[Need], *, unset: ConfigProblem) -> SecretsReport:
    """:func:`check_secrets` on the file at ``path``; ``unset`` is the problem when ``path`` is empty."""
    if not path:
        return check_secrets(None, "", needs, unread=unset)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        return check_secrets(None, path, needs, unread=ConfigProblem(path, "(file)", f"cannot read: {exc.strerror}"))
    return check_secrets(text, path, needs)


def payment_needs(config: Config) -> tuple[Need, ...]:
    """Every (profile, method, account) the config's profiles name, in config order."""
    return tuple(Need(p.name, method, account) for p in config.profiles.values()
                 for method, account in p.payments.items())


def check_payment_secrets(config: Config, environ=os.environ) -> SecretsReport:
    """Read the secrets file and check it against what the profiles name."""
    needs = payment_needs(config)
    named = ", ".join(sorted({n.account for n in needs}))
    unset = ConfigProblem(config.path, "payments.secrets_file",
                           f"not set, nor ${SECRETS_ENV}: no credentials for the merchant accounts the profiles "
                           f"name ({named})")
    return read_secrets(secrets_path(config.payments.secrets_file, environ), needs, unset=unset)


def refusal(config: Config, report: SecretsReport) -> list[str]:
    """What ``prepaid run`` says when it refuses to start: nothing unless ``[payments] require_all`` and a problem."""
    if not config.payments.require_all or not report.problems:
        return []
    return [str(p) for p in report.problems] + [
        f"{config.path}:payments.require_all: true, and {len(report.off)} payment method(s) lack credentials "
        "(above): not starting; complete the secrets file, or set require_all = false to serve without them"]
