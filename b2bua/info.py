"""What an INFO in a call's dialog gets from us (RFC 6086), and the key a DTMF one carries.

Many carriers send the caller's key presses as SIP INFO instead of RFC 4733
events, in one of two bodies of RFC 6086's "legacy INFO usage" (§2: no Info
Package, no negotiation):

==========================  ==================================  =================================
``Content-Type``            body                                key
==========================  ==================================  =================================
``application/dtmf-relay``  ``Signal=5\\r\\nDuration=160``       the ``Signal`` (``Duration`` ms,
                                                                optional, is read but not used)
``application/dtmf``        ``5``                               the body
==========================  ==================================  =================================

A key is one of ``0-9 * # A-D``, or its RFC 4733 event code 0-15 (``Signal=11``
is ``#``), the way RFC 4733 events reach us (:data:`media.rtp.DTMF_DIGITS`).
:func:`answer_info` decides the answer, whichever leg the INFO came on:

======================================================  ===============================================
the INFO                                                 our answer
======================================================  ===============================================
a DTMF body we can read                                  200; the key goes to the call as a
                                                         :class:`~b2bua.callevents.Dtmf`, the event an
                                                         RFC 4733 key becomes (the caller's PIN,
                                                         :mod:`b2bua.pinentry`)
a DTMF body we cannot read                               400, the reason phrase says what was wrong
                                                         (``Bad DTMF: no Signal``); no key
no body (some peers probe a dialog with it)              200; nothing to read
an ``Info-Package`` header (RFC 6086 §7.2)               469 Bad Info Package with an empty
                                                         ``Recv-Info``: we take no package
any other body                                           415 with ``Accept: application/dtmf-relay,
                                                         application/dtmf`` (RFC 3261 §21.4.13)
======================================================  ===============================================

Why an INFO we cannot read is answered here and not relayed to the other leg:
RFC 6086 ties an Info Package to the invite dialog usage that negotiated it
(``Recv-Info`` in the INVITE and its answers, §5), and our two legs are two
dialogs on which we send no ``Recv-Info``: neither peer agreed to receive any
package from us, and §4.2.2 has a UA answer an INFO of a package it did not
indicate with 469 - relaying would only move that 469 one hop further, while
the asker's transaction waited on the other leg.  A legacy body has no agreed
meaning at all, and handing the bytes of the carrier's signalling to an agent's
phone (or back) would cross the line this B2BUA keeps between them (a withheld
caller's number never reaches the agent).  So the sender hears at once what we
take.  An INFO outside a dialog gets 481 (RFC 6086 §4.2.1: INFO belongs to an
invite dialog usage; :mod:`b2bua.calls`).

A 400's reason phrase never echoes the body: it is the peer's text.

Pure; pinned by ``tests/b2bua/test_info.py`` and on the wire by ``tests/b2bua/test_info_wire.py`` and
``tests/sipp/test_info.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from media.rtp import DTMF_DIGITS

from .sip.headers import ascii_int
from .sip.message import SipRequest

__all__ = ["DTMF_RELAY", "DTMF", "ACCEPT", "InfoAnswer", "BadDtmf", "answer_info", "dtmf_key"]

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
#: the Accept of our 415: the INFO bodies we read
ACCEPT = f"{DTMF_RELAY}, {DTMF}"


@dataclass(frozen=True)
class InfoAnswer:
    """Our final answer to an INFO: ``status``, its reason phrase (None: the standard one), extra headers,
    and the key it carried (None: none)."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    key: str | None = None


class BadDtmf(ValueError):
    """A DTMF body we cannot read; ``str()`` is the 400's reason phrase."""


def answer_info(request: SipRequest) -> InfoAnswer:
    """The answer to an INFO in a dialog of ours (see the module's table)."""
    if request.headers.get("info-package") is not None:
        return InfoAnswer(469, headers=(("Recv-Info", ""),))
    if not request.body:
        return InfoAnswer(200)
    content_type = request.content_type
    if content_type not in (DTMF_RELAY, DTMF):
        return InfoAnswer(415, headers=(("Accept", ACCEPT),))
    try:
        return InfoAnswer(200, key=dtmf_key(content_type, request.body))
    except BadDtmf as exc:
        return InfoAnswer(400, reason=str(exc))


def dtmf_key(content_type: str, body: bytes) -> str:
    """The key of an ``application/dtmf-relay`` or ``application/dtmf`` body; raises :class:`BadDtmf`."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise BadDtmf("Bad DTMF: body is not ASCII") from None
    if content_type == DTMF:
        return _key(text.strip(), "Bad DTMF: body is not one key")
    signal = duration = None
    for line in text.splitlines():
        if not line.strip():
            continue
        name, eq, value = line.partition("=")
        if not eq:
            raise BadDtmf("Bad DTMF: a line is not name=value")
        name = name.strip().lower()
        if name == "signal":
            if signal is not None:
                raise BadDtmf("Bad DTMF: two Signal lines")
            signal = value.strip()
        elif name == "duration":
            duration = value.strip()
    if signal is None:
        raise BadDtmf("Bad DTMF: no Signal")
    if duration is not None and ascii_int(duration, 6) is None:
        raise BadDtmf("Bad DTMF: Duration is not a number")
    return _key(signal, "Bad DTMF: Signal is not a key")


def _key(text: str, problem: str) -> str:
    """``text`` as a key: one of DTMF_DIGITS (A-D in either case), or an RFC 4733 event code 0-15."""
    if len(text) == 1 and text.upper() in DTMF_DIGITS:
        return text.upper()
    code = ascii_int(text, 2)
    if code is not None and code < len(DTMF_DIGITS):
        return DTMF_DIGITS[code]
    raise BadDtmf(problem)
