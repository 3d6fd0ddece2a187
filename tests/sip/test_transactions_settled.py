"""A transaction that has its final answer keeps only what absorbing retransmissions needs.

After the final answer a UDP transaction lives on (timers D, J, K, L, M: up to 32 s) only to
answer or absorb retransmissions.  From the next input on, its request and last response are
copies without the header views parsed from them, the request with only the lines still read
(the last response is dropped when the transaction is matched by branch, as nothing reads it then);
the retransmission handling works from the bytes it keeps, byte for byte as before.
"""

from __future__ import annotations

import dataclasses
import gc

from b2bua.sip.codec import make_response, parse_message
from b2bua.sip.peer import Outgoing, Peer
from b2bua.sip.transaction import State
from b2bua.sip.transactions import TransactionLayer, Up, settled_request
from tests.support.sip_endpoint import CARRIER, request, response_to

AGENT = Peer("udp", "127.0.0.1", 5070)


def _views(message) -> set[str]:
    """The parsed header views a message holds (the cached properties stored on it)."""
    return set(vars(message)) - {f.name for f in dataclasses.fields(message)}


def test_server_transaction_settles_after_its_final_answer_and_still_answers_retransmissions():
    """A BYE answered 200 (Completed, timer J): at the next input its request and response are equal
    copies with no parsed views; a retransmitted BYE gets the same 200 bytes, to the same peer."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    bye = parse_message(request("BYE", to_tag="tt1", branch="z9hG4bKbye1"))
    [up] = layer.receive_request(bye, CARRIER, 0.0)
    tx = up.transaction
    ok = make_response(tx.request, 200, to_tag=tx.to_tag)
    layer.respond(tx, ok, 0.1)
    assert tx.state is State.COMPLETED
    [answer] = outbox
    assert _views(tx.request)  # the endpoint may still read them while it handles this input
    outbox.clear()
    layer.receive_request(parse_message(request("BYE", to_tag="tt1", branch="z9hG4bKbye1")), CARRIER, 0.5)
    assert outbox == [answer]
    assert tx.settled and tx.request == settled_request(bye)
    assert tx.last_response is None  # branch-matched: not read again
    assert _views(tx.request) == set()
    assert tx.method == "BYE" and tx.request.cseq.seq == 1  # read again, parsed again
    assert layer.handle_timer(0.1 + 32.0) == [] and len(layer) == 0


def test_client_invite_settled_in_completed_still_acks_a_retransmitted_non_2xx():
    """§17.1.1.3: a 486 is ACKed; after the transaction settled, the 486 again gets the same ACK bytes."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox)
    invite = parse_message(request("INVITE", branch="z9hG4bKours", via_host="127.0.0.1", via_port=5060))
    tx = layer.send_request(invite, AGENT, 0.0)
    sent = outbox.pop().data
    busy = response_to(sent, 486, "Busy Here", to_tag="agent1")
    [up] = layer.receive_response(parse_message(busy), 0.1)
    assert up.kind is Up.RESPONSE and tx.state is State.COMPLETED
    [ack] = outbox
    outbox.clear()
    assert layer.receive_response(parse_message(busy), 0.2) == []
    assert outbox == [ack] and tx.settled
    assert tx.request == settled_request(invite) and _views(tx.request) == set()
    assert tx.request.top_via.branch == "z9hG4bKours"


def test_a_transaction_settles_once_and_only_after_its_final_answer():
    """A provisional leaves the server INVITE unsettled; the 200 (Accepted) settles it at the next input,
    and the merge entry of a request without To tag is still removed when it ends (timer L)."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    invite = parse_message(request("INVITE"))
    [up] = layer.receive_request(invite, CARRIER, 0.0)
    tx = up.transaction
    layer.respond(tx, make_response(invite, 180, to_tag="tag1"), 0.1)
    layer.receive_request(parse_message(request("INVITE")), CARRIER, 0.2)  # a retransmission
    assert not tx.settled and _views(tx.request)
    layer.respond(tx, make_response(invite, 200, to_tag="tag1"), 0.3)
    ack = parse_message(request("ACK", to_tag="tag1"))
    [up] = layer.receive_request(ack, CARRIER, 0.4)
    assert up.kind is Up.ACK and tx.state is State.ACCEPTED and tx.settled
    assert _views(tx.request) == set() and layer.merged_with(invite) is tx
    layer.handle_timer(0.3 + 32.0)
    assert len(layer) == 0 and layer.merged_with(invite) is None



def test_rfc2543_server_transaction_keeps_its_response_to_match_the_ack_after_settling():
    """Without the branch cookie an ACK matches by the To tag of the response we sent: a settled
    INVITE answered 486 keeps an equal copy of it, so the ACK still confirms it and one with another
    To tag does not (it goes up as an ACK without transaction)."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    invite = parse_message(request("INVITE", branch=None))
    [up] = layer.receive_request(invite, CARRIER, 0.0)
    tx = up.transaction
    busy = make_response(invite, 486, to_tag="tag1")
    layer.respond(tx, busy, 0.1)
    outbox.clear()
    layer.receive_request(parse_message(request("INVITE", branch=None)), CARRIER, 0.2)
    assert outbox and outbox[-1].data == tx.response_bytes and tx.settled
    assert tx.last_response == busy and _views(tx.last_response) == set()
    [stray] = layer.receive_request(parse_message(request("ACK", branch=None, to_tag="other")), CARRIER, 0.3)
    assert stray.kind is Up.ACK and stray.transaction is None and tx.state is State.COMPLETED
    assert layer.receive_request(parse_message(request("ACK", branch=None, to_tag="tag1")), CARRIER, 0.4) == []
    assert tx.state is State.CONFIRMED


def test_a_settled_request_keeps_only_the_lines_still_read_and_answers_the_same():
    """Settling drops the lines nothing reads after the final answer (Max-Forwards, User-Agent, Allow...) and
    keeps Via, From, To, Call-ID, CSeq, Contact, Record-Route as received, with the Request-URI and the body:
    a 2xx the TU sends again in Accepted is byte for byte the first one."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    extra = ("Record-Route: <sip:proxy.example;lr>", "User-Agent: carrier/1.0", "Allow: INVITE, ACK, BYE",
             "P-Asserted-Identity: <sip:+4930123@carrier.example>")
    invite = parse_message(request("INVITE", extra=extra, body=b"v=0\r\n"))
    [up] = layer.receive_request(invite, CARRIER, 0.0)
    tx = up.transaction
    layer.respond(tx, make_response(invite, 200, to_tag="tag1"), 0.1)
    first = tx.response_bytes
    layer.receive_request(parse_message(request("ACK", to_tag="tag1")), CARRIER, 0.2)
    assert tx.settled and tx.state is State.ACCEPTED
    kept = [name.lower() for name, _ in tx.request.headers.items()]
    assert kept == [name.lower() for name, _ in invite.headers.items()
                    if name.lower() in ("via", "from", "to", "call-id", "cseq", "contact", "record-route")]
    assert "user-agent" not in tx.request.headers and "max-forwards" not in tx.request.headers
    assert tx.request.uri == invite.uri and tx.request.body is invite.body
    assert tx.request.headers.get("record-route") == "<sip:proxy.example;lr>"
    layer.respond(tx, make_response(tx.request, 200, to_tag="tag1"), 0.5)
    assert tx.response_bytes == first


def test_settled_transactions_drop_the_bytes_they_can_no_longer_send():
    """Our INVITE answered 2xx (Accepted) never sends its request again: settled, it keeps no request bytes and
    a retransmitted 2xx still reaches the TU; a server INVITE answered 2xx (Accepted) answers a retransmitted
    INVITE with nothing (the core resends the 2xx), so it keeps no response bytes either."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    invite = parse_message(request("INVITE", branch="z9hG4bKours", via_host="127.0.0.1", via_port=5060))
    ours = layer.send_request(invite, AGENT, 0.0)
    ok = parse_message(response_to(outbox.pop().data, 200, "OK", to_tag="agent1"))
    [up] = layer.receive_response(ok, 0.1)
    assert ours.state is State.ACCEPTED and ours.request_bytes
    [again] = layer.receive_response(ok, 0.6)
    assert again.kind is Up.RESPONSE and ours.settled and ours.request_bytes == b"" and outbox == []
    theirs_invite = parse_message(request("INVITE"))
    [up] = layer.receive_request(theirs_invite, CARRIER, 1.0)
    theirs = up.transaction
    layer.respond(theirs, make_response(theirs_invite, 200, to_tag="tag1"), 1.1)
    outbox.clear()
    assert layer.receive_request(parse_message(request("INVITE")), CARRIER, 1.5) == []
    assert theirs.settled and theirs.response_bytes == b"" and outbox == []
    assert layer.handle_timer(1.1 + 32.0) == [] and len(layer) == 0


def test_a_settled_transaction_shares_the_received_lines_and_holds_no_dict_of_its_own():
    """A burst of set-ups holds every call's INVITE transactions for 32 s (their high-water mark is RSS a cold node
    keeps): the settled request keeps the very (name, value) lines of the received one, not copies, and the
    transaction itself holds no dict (its timer bookkeeping and a pending CANCEL's headers are fields; at 600
    calls the copies and the dict were ~1 KB a call, ``bench/memory.py --by-site --steady-s 3``)."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    invite = parse_message(request("INVITE", extra=("User-Agent: carrier/1.0",), body=b"v=0\r\n"))
    [up] = layer.receive_request(invite, CARRIER, 0.0)
    tx = up.transaction
    layer.respond(tx, make_response(invite, 200, to_tag="tag1"), 0.1)
    layer.receive_request(parse_message(request("ACK", to_tag="tag1")), CARRIER, 0.2)
    assert tx.settled
    received = {id(line) for line in invite.headers.items()}
    assert tx.request.headers.items() and all(id(line) in received for line in tx.request.headers.items())
    assert [type(o).__name__ for o in gc.get_referents(tx) if isinstance(o, dict)] == []


def test_a_transaction_machine_keeps_one_retransmission_interval_and_no_dict_for_it():
    """Each machine retransmits with one timer at most (A, E or G): its interval is a float, and the only dict a
    machine holds is its deadlines (a dict of intervals was ~220 B of each INVITE we sent, for 32 s after its
    2xx); the intervals still double as RFC 3261 says (0.5, 1, 2 s for Timer A)."""
    outbox: list[Outgoing] = []
    layer = TransactionLayer(outbox, new_tag=lambda: "tag1")
    invite = parse_message(request("INVITE", branch="z9hG4bKours", via_host="127.0.0.1", via_port=5060))
    ours = layer.send_request(invite, AGENT, 0.0)
    for now in (0.5, 1.5, 3.5):
        layer.handle_timer(now)
    assert len(outbox) == 4
    assert [o for o in gc.get_referents(ours.machine) if isinstance(o, dict)] == [ours.machine.deadlines]
