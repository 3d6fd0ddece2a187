"""What this B2BUA speaks, in one place: the methods it handles (``Allow``) and the extensions it supports.

``Allow`` (RFC 3261 §20.5) lists the methods we answer as their RFC says:
INVITE (and re-INVITE), ACK, BYE, CANCEL, OPTIONS (200, a carrier's keepalive),
UPDATE (RFC 3311: offers relayed or answered, session refresh), PRACK (RFC
3262, on the carrier's leg) and INFO (RFC 6086, in a dialog: a DTMF key is
taken as an RFC 4733 one is, other bodies are refused, :mod:`b2bua.info`).
Every other method (REFER, MESSAGE, SUBSCRIBE...) gets 405 with this Allow.

``Supported`` (RFC 3261 §20.37) depends on our role: as UAS (the carrier's leg,
and every request we receive) ``100rel`` (reliable provisionals, PRACK:
:mod:`b2bua.prack`) and ``timer`` (RFC 4028: :mod:`b2bua.session_timer`); as UAC
(our INVITE and re-INVITEs) only ``timer``, since we do not PRACK an agent's
provisionals, and an agent must not send them reliably (RFC 3262 §3).

The node's endpoint answers from these (405 with :data:`ALLOW`, 420 for a
``Require`` outside :data:`SUPPORTED_AS_UAS`); our 2xx to an INVITE, our INVITE
to an agent and our 200 to OPTIONS carry them.  Pinned by
``tests/b2bua/test_capabilities.py``.
"""

from __future__ import annotations

from .sip.checks import allow_value

__all__ = ["ALLOWED_METHODS", "ALLOW", "SUPPORTED_AS_UAS", "SUPPORTED_AS_UAC", "uas_headers", "uac_headers"]

ALLOWED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO"})
#: the Allow header's value, written as the endpoint's 405 writes it
ALLOW = allow_value(ALLOWED_METHODS)
SUPPORTED_AS_UAS = ("100rel", "timer")
SUPPORTED_AS_UAC = ("timer",)


def uas_headers() -> list[tuple[str, str]]:
    """Allow and Supported for what we answer (a 2xx to INVITE, the 200 to OPTIONS)."""
    return [("Allow", ALLOW), ("Supported", ", ".join(SUPPORTED_AS_UAS))]


def uac_headers() -> list[tuple[str, str]]:
    """Allow and Supported for an INVITE we send."""
    return [("Allow", ALLOW), ("Supported", ", ".join(SUPPORTED_AS_UAC))]
