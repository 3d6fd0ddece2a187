"""The portal's pages, one module each; the server (``webhook.portal.server``) serves :data:`ROUTES`.

Each module under this package defines ``ROUTES`` (a list of :class:`webhook.portal.view.Route`) and
``STRINGS`` (language -> key -> text, German and English); it is listed in :data:`MODULES` below, in the
order of the menu.  :data:`STRINGS` merges every module's texts (a key is one module's: they prefix
theirs with the page's name).
"""

from __future__ import annotations

from types import ModuleType

from ..view import Route
from . import (apikeys, audit, button, calls, customers, first_callers, lockouts, new_transaction, overview, reload,
               statements, tariffs, transactions)

#: the page modules, in menu order (each adds itself here); the audit log stays last
MODULES: list[ModuleType] = [overview, customers, new_transaction, transactions, calls, statements, tariffs,
                             first_callers, button, apikeys, lockouts, reload, audit]


def routes() -> list[Route]:
    """Every page's routes, in menu order."""
    return [route for module in MODULES for route in module.ROUTES]


def strings() -> dict[str, dict[str, str]]:
    """Every page's texts, merged per language."""
    merged: dict[str, dict[str, str]] = {}
    for module in MODULES:
        for lang, texts in module.STRINGS.items():
            merged.setdefault(lang, {}).update(texts)
    return merged
