"""The config in force as one immutable snapshot: the config file, the secrets file, and what the web side serves.

    snapshot = load_snapshot("conf/prepaid.toml", now_ms=...)   # raises ConfigInvalid (file:key: reason)
    snapshot.config, snapshot.secrets, snapshot.web, snapshot.loaded_ms

Every part of a running node reads the snapshot its :class:`~b2bua.node.reload.ConfigHolder` has in force (SIP
and call control, billing profiles, media prompts, the top-up pages with their CSP, payment methods and
their credentials, the portal); a reload builds a new snapshot, re-reading both files, and swaps it whole.
What a running node cannot change is :data:`b2bua.node.config.RESTART_ONLY`, the one list of it: a reload
that changes one of these keys logs it by name and leaves it as it was until the next start.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from webhook.secrets import Secrets, SecretsInvalid, read_secrets
from webhook.settings import WebSettings

from .config import RESTART_ONLY, Config, load_config
from .paysecrets import check_payment_secrets
from .schema import ConfigInvalid, ConfigProblem
from .webapp import served_web_settings

#: keys of ``[node]`` whose field in :class:`Config` has another name
_NODE_FIELDS = {"node.id": "node_id"}


def setting(config: Config, key: str):
    """The value of the dotted ``key`` (one of :data:`RESTART_ONLY`) in ``config``."""
    if key in _NODE_FIELDS:
        return getattr(config, _NODE_FIELDS[key])
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The restart-only keys whose value differs between ``old`` and ``new``, in :data:`RESTART_ONLY` order."""
    return [key for key in RESTART_ONLY if setting(old, key) != setting(new, key)]


def keep_restart_only(running: Config, new: Config) -> Config:
    """``new`` with every restart-only setting as ``running`` has it: what a reload puts in force."""
    sections = {}
    for key in restart_only_changes(running, new):
        if key in _NODE_FIELDS:
            sections[_NODE_FIELDS[key]] = setting(running, key)
            continue
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = setting(running, key)
    replaced = {name: (dataclasses.replace(getattr(new, name), **value) if isinstance(value, dict) else value)
                for name, value in sections.items()}
    return dataclasses.replace(new, **replaced)


@dataclass(frozen=True)
class ConfigSnapshot:
    """One consistent view of the node's settings, never changed once made."""

    config: Config
    secrets: Secrets
    #: what the public web side serves: the profiles, with payment methods whose account has credentials
    web: WebSettings
    #: payment methods left off for want of credentials, a line each: ``payment method M of profile P is off
    #: (not on its top-up page): file:key: reason``
    unpaid: tuple[str, ...]
    #: when this snapshot was read (ms since the epoch)
    loaded_ms: int


def take_snapshot(config: Config, *, now_ms: int, environ=os.environ) -> ConfigSnapshot:
    """``config`` with the secrets file it names read now; raises ConfigInvalid (file:key: reason) when that
    file cannot be read or parsed."""
    try:
        secrets = read_secrets(config.payments.secrets_file, environ)
    except SecretsInvalid as exc:
        raise ConfigInvalid([ConfigProblem(exc.file, exc.key, exc.reason)]) from None
    web, unpaid = served_web_settings(config, secrets, check_payment_secrets(config, environ))
    return ConfigSnapshot(config=config, secrets=secrets, web=web, unpaid=unpaid, loaded_ms=now_ms)


def load_snapshot(path: str, *, now_ms: int, environ=os.environ) -> ConfigSnapshot:
    """Read and validate the config file at ``path`` and its secrets file; raises ConfigInvalid with every
    problem of the config file, or the secrets file's."""
    return take_snapshot(load_config(path), now_ms=now_ms, environ=environ)
