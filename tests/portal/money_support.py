"""Helpers of the portal's money pages' tests: the example config (with two more profiles), contexts, and
pages run to their result on the inline store."""

from __future__ import annotations

import os

from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.template import flattenString, tags

from b2bua.node.config import parse_config
from webhook.portal import pages
from webhook.portal.view import Html, PortalUser, context_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM = "+4915112345678"

#: two more profiles: ``demo2`` of the same provider as ``demo``, ``other`` of the same provider too (to
#: prove that a user's pages leave out the profiles the user may not see)
EXTRA = """
[profiles.demo2]
service_numbers = ["+493012345679"]
agents = ["sip:agent@127.0.0.1:5070"]
landline_per_minute = "1.99"
mobile_per_minute = "2.49"
button = "demo2"
provider = "Demo Beratung GmbH"

[profiles.other]
service_numbers = ["+493012345670"]
agents = ["sip:agent@127.0.0.1:5070"]
landline_per_minute = "1.99"
mobile_per_minute = "2.49"
button = "other"
provider = "Demo Beratung GmbH"
"""


def example_config():
    """conf/prepaid.toml as ``parse_config`` reads it, plus :data:`EXTRA`."""
    with open(os.path.join(ROOT, "conf", "prepaid.toml"), encoding="utf-8") as f:
        return parse_config(f.read() + EXTRA, "prepaid.toml")


def user(lang="de", profiles=("demo", "demo2"), name="anna"):
    return PortalUser(name, "provider", profiles, lang)


def ctx(store, config, *, lang="de", profile="demo", who=None, **kw):
    """A context as the server makes it, with every page's texts."""
    return context_for(who or user(lang), profile, store, config, strings=pages.strings(), now_ms=store.now_ms(),
                       csrf_token="csrf-123", client_address="192.0.2.7", **kw)


def result(page, c):
    """The page's result (the inline store makes it fire at once)."""
    out: list = []
    defer.ensureDeferred(page(c)).addBoth(out.append)
    assert out, "the page did not finish on the inline store"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def html(answer) -> str:
    """An Html result flattened to its text (the title as an h1, then the body)."""
    assert isinstance(answer, Html), answer
    out: list = []
    flattenString(None, tags.div(tags.h1(answer.title), answer.body)).addBoth(out.append)
    return out[0].decode()
