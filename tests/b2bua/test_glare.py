"""Glare (RFC 3261 §14): 491 to a re-INVITE that crosses ours, and our retry after a 491, on a Clock."""

from __future__ import annotations

import random
from types import SimpleNamespace

from twisted.internet.task import Clock

from b2bua.callevents import ModifyOffer
from b2bua.calls import CallManager
from b2bua.legs import _Leg, glare_wait_s
from b2bua.session_timer import Terms
from b2bua.sip.dialog import DialogId
from b2bua.sip.endpoint import RequestReceived, ResponseReceived
from b2bua.sip.peer import Peer

DIALOG = DialogId("call-1", "ours", "theirs")


class FakeEndpoint:
    """Records what the manager and the legs ask of the SIP endpoint."""

    def __init__(self):
        self.dialogs = {DIALOG: object()}
        self.sent: list[tuple] = []
        self.responses: list[tuple[str, int]] = []
        self._n = 0

    def request_in_dialog(self, dialog_id, method, now, **kwargs):
        self._n += 1
        self.sent.append((now, method, kwargs.get("headers")))
        return f"tx{self._n}"

    def send_request(self, request, now):
        return "invite-tx"

    def respond(self, transaction_id, status, now, **kwargs):
        self.responses.append((transaction_id, status))


class Told(list):
    """The call events of a leg whose call is not bridged: a re-INVITE is answered on its own leg (200 with
    our SDP), as the call does before the bridge; everything else is kept."""

    def __call__(self, event) -> None:
        if isinstance(event, ModifyOffer):
            event.leg.answer_modify(event.request.method, 200, event.leg.local_sdp or b"")
        else:
            self.append(event)


def refreshing_leg(clock, endpoint):
    """A manager and a leg in its index with a confirmed dialog; we refresh its session every 45 s."""
    m = CallManager(endpoint=endpoint, reactor=clock, router=None, settings=None, billing=None,
                    record=lambda r: None)
    told = Told()
    leg = _Leg(endpoint, m.driver.inputs("call-1"), emit=told, own=m.own_key)
    leg.dialog_id = DIALOG
    m.own_key(leg, DIALOG)            # the peer's requests in the dialog find the leg by it
    leg.timer.start(Terms(interval_s=90, we_refresh=True))
    return m, leg, told


def reinvite(tx_id="in-1"):
    request = SimpleNamespace(method="INVITE", headers={}, body=b"", content_type=None)
    return RequestReceived(tx_id, request, Peer("udp", "127.0.0.1", 5080), DIALOG, 0.0)


def response(status, tx_id="tx1"):
    return ResponseReceived(tx_id, SimpleNamespace(status=status, headers={}), DIALOG, 0.0)


def test_wait_ranges_of_section_14_1():
    """Call-ID owner waits 2.1-4 s, the other side 0-2 s (so the two retries do not collide again)."""
    rng = random.Random(7)
    owner = [glare_wait_s(True, rng) for _ in range(500)]
    other = [glare_wait_s(False, rng) for _ in range(500)]
    assert 2.1 <= min(owner) and max(owner) <= 4.0 and max(owner) - min(owner) > 1.5
    assert 0.0 <= min(other) and max(other) <= 2.0 and max(other) - min(other) > 1.5


def test_reinvite_received_while_ours_is_pending_gets_491():
    """Our refresh is out (no final yet): the peer's re-INVITE is answered 491, not relayed or answered 200."""
    clock, ep = Clock(), FakeEndpoint()
    m, leg, told = refreshing_leg(clock, ep)
    leg._send_refresh()
    assert leg.reinvite_pending and ep.sent[-1][1] == "INVITE"
    m.on_event(reinvite())
    assert ep.responses == [("in-1", 491)]
    leg.timer.cancel()


def test_our_refresh_retried_after_491_in_the_owner_window():
    """A 491 to our refresh on the agent's leg (we own its Call-ID): the re-INVITE goes again 2.1-4 s later, once."""
    clock, ep = Clock(), FakeEndpoint()
    m, leg, told = refreshing_leg(clock, ep)
    leg.owns_call_id = True
    leg._send_refresh()
    m.on_event(response(491))
    assert not leg.reinvite_pending and told == []        # the call goes on
    count = len(ep.sent)
    clock.advance(2.09)
    assert len(ep.sent) == count          # not before 2.1 s
    clock.advance(1.92)
    assert len(ep.sent) == count + 1 and ep.sent[-1][1] == "INVITE" and leg.reinvite_pending
    m.on_event(response(200, tx_id=leg.refresh_tx))
    assert not leg.reinvite_pending
    leg.timer.cancel()
    assert not leg.timer.pending


def test_non_owner_retries_within_two_seconds_and_a_later_reinvite_is_answered():
    """On the carrier's leg the retry comes within 2 s; after our 200 a peer re-INVITE is no glare any more."""
    clock, ep = Clock(), FakeEndpoint()
    m, leg, told = refreshing_leg(clock, ep)
    leg._send_refresh()
    m.on_event(response(491))
    count = len(ep.sent)
    clock.advance(2.0)
    assert len(ep.sent) == count + 1
    m.on_event(response(200, tx_id=leg.refresh_tx))
    m.on_event(reinvite("in-2"))
    assert ("in-2", 491) not in ep.responses and ("in-2", 200) in ep.responses
    leg.timer.cancel()


def test_pending_retry_is_cancelled_with_the_leg():
    """A call that ends while a glare retry waits leaves no timer (the open-counts invariant)."""
    clock, ep = Clock(), FakeEndpoint()
    m, leg, told = refreshing_leg(clock, ep)
    leg._send_refresh()
    m.on_event(response(491))
    assert leg.timer.pending
    leg.bye()
    assert clock.getDelayedCalls() == [] and not leg.timer.pending
