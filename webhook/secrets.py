"""The secrets file: merchant credentials and the web side's form keys, kept out of ``conf/``.

    [accounts.demo-paypal]
    client_id = "..."
    secret = "..."
    webhook_id = "..."

    [web]
    form_key = "..."             # signs the top-up form's token: the same on every node
    form_key_previous = "..."    # still accepted while forms signed with it may be open (rotation)

``$PREPAID_SECRETS`` names the file, else ``[payments] secrets_file``.
:func:`read_secrets` is the one function that reads it; the running node calls it
at start and at every reload, so that new credentials and keys apply without a
restart. Errors name the file and the key, never a value.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

from .settings import MerchantAccount

SECRETS_ENV = "PREPAID_SECRETS"

#: the shortest form key taken: an HMAC-SHA256 key should hold about 256 bits (``openssl rand -base64 32``)
FORM_KEY_MIN_CHARS = 32


class SecretsInvalid(Exception):
    """The secrets file is missing or malformed: ``file:key: reason`` (never a value)."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}:{key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


@dataclass(frozen=True)
class Secrets:
    """What the secrets file holds (nothing when no file is configured)."""

    #: the file read ("" when none is configured)
    path: str = ""
    accounts: tuple[MerchantAccount, ...] = ()
    #: signs the page's form tokens; empty: a random key per process (forms die with it)
    form_key: bytes = field(repr=False, default=b"")
    #: the key before the last rotation: tokens it signed are still accepted
    form_key_previous: bytes = field(repr=False, default=b"")


def secrets_path(configured: str, environ=os.environ) -> str:
    """The secrets file to read: ``$PREPAID_SECRETS``, else the configured one ('' for none)."""
    return environ.get(SECRETS_ENV) or configured


def _accounts(doc: dict, file: str) -> tuple[MerchantAccount, ...]:
    accounts = doc.get("accounts", {})
    if not isinstance(accounts, dict):
        raise SecretsInvalid(file, "accounts", "must be a table of [accounts.NAME] tables")
    out = []
    for name, values in accounts.items():
        if not isinstance(values, dict):
            raise SecretsInvalid(file, f"accounts.{name}", "must be a table")
        for key in ("client_id", "secret", "webhook_id"):
            if not isinstance(values.get(key, ""), str):
                raise SecretsInvalid(file, f"accounts.{name}.{key}", "must be a string")
        out.append(MerchantAccount(name=name, client_id=values.get("client_id", ""),
                                   secret=values.get("secret", ""), webhook_id=values.get("webhook_id", "")))
    return tuple(out)


def _form_key(web: dict, key: str, file: str) -> bytes:
    value = web.get(key, "")
    if not isinstance(value, str):
        raise SecretsInvalid(file, f"web.{key}", "must be a string")
    if value and len(value) < FORM_KEY_MIN_CHARS:
        raise SecretsInvalid(file, f"web.{key}", f"must be at least {FORM_KEY_MIN_CHARS} characters "
                             "(for example the output of `openssl rand -base64 32`)")
    return value.encode()


def _load(text: str, file: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SecretsInvalid(file, "(syntax)", f"not valid TOML: {exc}") from None


def parse_secrets_file(text: str, file: str) -> Secrets:
    """Every secret of the TOML ``text`` (named ``file`` in errors)."""
    doc = _load(text, file)
    web = doc.get("web", {})
    if not isinstance(web, dict):
        raise SecretsInvalid(file, "web", "must be a table")
    current, previous = _form_key(web, "form_key", file), _form_key(web, "form_key_previous", file)
    if previous and not current:
        raise SecretsInvalid(file, "web.form_key_previous", "needs web.form_key (the key that replaced it)")
    return Secrets(path=file, accounts=_accounts(doc, file), form_key=current, form_key_previous=previous)


def parse_secrets(text: str, file: str) -> tuple[MerchantAccount, ...]:
    """The merchant accounts of the TOML ``text``."""
    return _accounts(_load(text, file), file)


def read_secrets(configured: str, environ=os.environ) -> Secrets:
    """The secrets file in force: read afresh at each call (start and every reload).

    ``configured`` is ``[payments] secrets_file``; ``$PREPAID_SECRETS`` in ``environ`` wins. No file
    configured: no secrets. Raises :class:`SecretsInvalid` when the file cannot be read or parsed.
    """
    path = secrets_path(configured, environ)
    if not path:
        return Secrets()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SecretsInvalid(path, "(file)", f"cannot read: {exc.strerror}") from None
    return parse_secrets_file(text, path)


def load_secrets(configured: str, environ=os.environ) -> tuple[MerchantAccount, ...]:
    """The merchant accounts of the secrets file (none when no file is configured)."""
    return read_secrets(configured, environ).accounts
