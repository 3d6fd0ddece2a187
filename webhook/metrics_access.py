"""Who may read ``/metrics`` on the public listener: only a bearer of ``[metrics] token`` from the secrets file.

    [metrics]
    token = "..."        # e.g. `openssl rand -hex 32`; the scraper sends "Authorization: Bearer <token>"

The portal's listener serves ``/metrics`` without a login (operators firewall that port); the public
one also serves the top-up page to everybody, so there: no token configured, 404 (the path does not
exist); a missing or wrong bearer, 401 with ``WWW-Authenticate: Bearer``. The token is compared in
constant time.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from typing import Callable

from .secrets import secrets_path

#: the token in force ("" when none): read at each request, so that a reload can change it
TokenSource = Callable[[], str]

#: the shortest token taken: a scraper's credential on a port open to everybody
TOKEN_MIN_CHARS = 24


class MetricsTokenInvalid(Exception):
    """The secrets file cannot be read, or its ``[metrics] token`` is unfit: ``file:key: reason``, never the value."""


def no_token() -> str:
    return ""


def read_metrics_token(configured: str, environ=os.environ) -> str:
    """``[metrics] token`` of the secrets file (``$PREPAID_SECRETS``, else ``configured``); "" when there is no
    file or no such key. Raises :class:`MetricsTokenInvalid` (file and key, never the value) for an unreadable
    file or a token that is not a string of at least :data:`TOKEN_MIN_CHARS` characters."""
    path = secrets_path(configured, environ)
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise MetricsTokenInvalid(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MetricsTokenInvalid(f"{path}: not valid TOML: {exc}") from None
    section = doc.get("metrics", {})
    token = section.get("token", "") if isinstance(section, dict) else None
    if not isinstance(token, str) or (token and len(token) < TOKEN_MIN_CHARS):
        raise MetricsTokenInvalid(f"{path}:metrics.token: must be a string of at least {TOKEN_MIN_CHARS} characters "
                             "(for example the output of `openssl rand -hex 32`)")
    return token


def public_metrics_status(authorization: str, token: str) -> int:
    """200 when ``authorization`` (the request's header) bears ``token``; 404 when no token is configured;
    else 401."""
    if not token:
        return 404
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return 401
    return 200 if hmac.compare_digest(given.strip().encode(), token.encode()) else 401
