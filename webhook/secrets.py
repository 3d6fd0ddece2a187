"""Merchant credentials from a TOML file kept out of ``conf/`` (``$PREPAID_SECRETS`` wins).

    [accounts.demo-paypal]
    client_id = "..."
    secret = "..."
    webhook_id = "..."

Errors name the file and the key, never a value.
"""

from __future__ import annotations

import os
import tomllib

from .settings import MerchantAccount

SECRETS_ENV = "PREPAID_SECRETS"


class SecretsInvalid(Exception):
    """The secrets file is missing or malformed (the message names file and key, no values)."""


def secrets_path(configured: str, environ=os.environ) -> str:
    """The secrets file to read: ``$PREPAID_SECRETS``, else the configured one ('' for none)."""
    return environ.get(SECRETS_ENV) or configured


def parse_secrets(text: str, file: str) -> tuple[MerchantAccount, ...]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SecretsInvalid(f"{file}: not valid TOML: {exc}") from None
    accounts = doc.get("accounts", {})
    if not isinstance(accounts, dict):
        raise SecretsInvalid(f"{file}:accounts: must be a table of [accounts.NAME] tables")
    out = []
    for name, values in accounts.items():
        if not isinstance(values, dict):
            raise SecretsInvalid(f"{file}:accounts.{name}: must be a table")
        for key in ("client_id", "secret", "webhook_id"):
            if not isinstance(values.get(key, ""), str):
                raise SecretsInvalid(f"{file}:accounts.{name}.{key}: must be a string")
        out.append(MerchantAccount(name=name, client_id=values.get("client_id", ""),
                                   secret=values.get("secret", ""), webhook_id=values.get("webhook_id", "")))
    return tuple(out)


def load_secrets(configured: str, environ=os.environ) -> tuple[MerchantAccount, ...]:
    """The merchant accounts of the secrets file (none when no file is configured)."""
    path = secrets_path(configured, environ)
    if not path:
        return ()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SecretsInvalid(f"{path}: cannot read: {exc.strerror}") from None
    return parse_secrets(text, path)
