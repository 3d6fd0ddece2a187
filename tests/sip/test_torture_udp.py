"""Every RFC 4475 / RFC 5118 torture message over a live UDP socket on 127.0.0.1, one test case each.

The listener is the real stack (``SipTransports`` + ``SipEndpoint`` + ``EchoUas``)
on a real reactor, port 0.  A test sends the message from a plain UDP socket,
then an OPTIONS of its own, and spins the reactor (bounded) until that
OPTIONS' 200 comes back: UDP on loopback keeps order and the stack answers
each datagram before reading the next, so every answer to the torture message
has arrived by then, and "no answer" needs no waiting.

The answers are those of ``tests/data/sip-torture/README.md``: a valid request
gets what its method gets here (INVITE and OPTIONS 200, REGISTER/MESSAGE and
unknown methods 405, an unknown dialog 481), a response is matched or dropped,
invalid messages 400 or nothing.

Answers to the torture messages are addressed per their Via (``received=127.0.0.1``
with the Via's port, or a name or documentation address for a stateless 400):
the reactor given to the transports writes every datagram to the test's
socket instead, and records where the stack meant it to go, so nothing leaves
loopback and nothing lands on a fixed port such as 5060.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from twisted.internet import reactor as global_reactor

from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import SipEndpoint
from b2bua.sip.errors import SipParseError
from b2bua.sip.message import SipResponse
from tests.support.sip_apps import EchoUas
from b2bua.transport import SipTransports

DATA = Path(__file__).parent.parent / "data" / "sip-torture"
NO_ANSWER = None

#: name -> the status codes allowed as the final answer (None: no answer at all)
EXPECTED: dict[str, set] = {
    # valid, odd but legal: handled as the request it is
    "wsinv": {481}, "intmeth": {405}, "esc01": {200}, "escnull": {405}, "esc02": {405}, "lwsdisp": {200},
    "longreq": {200}, "semiuri": {200}, "transports": {200}, "mpart01": {405}, "unreason": {NO_ANSWER},
    "noreason": {NO_ANSWER}, "inv2543": {200}, "badbranch": {200}, "cparam01": {405}, "cparam02": {405},
    "regescrt": {405}, "unksm2": {405}, "bcast": {NO_ANSWER}, "zeromf": {200}, "dblreq": {405},
    "escruri": {200, 400},
    # invalid: 400, or nothing where no answer can be addressed
    **{name: {400, NO_ANSWER} for name in (
        "badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri", "lwsstart",
        "baddate", "regbadct", "badaspec", "baddn", "mismatch01", "mismatch02", "bigcode")},
    "trws": {400, 200},
    # application errors
    "insuf": {400}, "multi01": {400}, "mcl01": {400}, "badvers": {505}, "unkscm": {416}, "novelsc": {416},
    "bext01": {420}, "invut": {415}, "sdp01": {406, 400}, "regaut01": {405, 403},
    # RFC 5118
    "ipv6-good": {405}, "ipv6-correct-abnf-2-colons": {200}, "port-unambiguous": {405}, "port-ambiguous": {405},
    "via-received-param-with-delim": {481}, "via-received-param-no-delim": {200}, "mult-ip-in-header": {481},
    "mult-ip-in-sdp": {200}, "ipv6-in-sdp": {200}, "ipv4-mapped-ipv6": {200},
    "ipv6-bad": {400, NO_ANSWER}, "ipv6-bug-abnf-3-colons": {400, NO_ANSWER},
}


def load(name: str) -> bytes:
    path = DATA / "rfc4475" / f"{name}.dat"
    return (path if path.exists() else DATA / "rfc5118" / name).read_bytes()


class _RedirectedPort:
    """A listening UDP port whose writes all go to one loopback address; the intended ones are recorded."""

    def __init__(self, port, to) -> None:
        self._port, self._to, self.intended = port, to, []

    def write(self, data, addr):
        self.intended.append(addr)
        self._port.write(data, self._to)

    def __getattr__(self, name):
        return getattr(self._port, name)


class _LoopbackReactor:
    """The real reactor, but ``listenUDP`` returns a port that writes only to the test's socket."""

    def __init__(self, real, to) -> None:
        self._real, self._to, self.ports = real, to, []

    def listenUDP(self, *args, **kwargs):
        port = _RedirectedPort(self._real.listenUDP(*args, **kwargs), self._to)
        self.ports.append(port)
        return port

    def __getattr__(self, name):
        return getattr(self._real, name)


def _options(call_id: str, port: int, target_port: int) -> bytes:
    return (f"OPTIONS sip:service@127.0.0.1:{target_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:service@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def _parse(data: bytes):
    try:
        return parse_message(data)
    except SipParseError:
        return None


@pytest.fixture
def live():
    """A listening stack on 127.0.0.1:0 and a test socket; stopped and closed after."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.setblocking(False)
    wrapped = _LoopbackReactor(global_reactor, probe.getsockname())
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={})
    uas = EchoUas(endpoint, global_reactor.seconds)
    transports = SipTransports(wrapped, endpoint, uas.on_event)
    endpoint.local_ports["udp"] = transports.listen_udp(0, "127.0.0.1")
    yield probe, endpoint, transports, wrapped
    transports.stop()
    for _ in range(5):
        global_reactor.iterate(0)
    probe.close()


def exchange(probe: socket.socket, port: int, data: bytes, call_id: str) -> list:
    """Send ``data`` then an OPTIONS; spin until its 200 is back.  Returns the messages before that 200."""
    probe.sendto(data, ("127.0.0.1", port))
    probe.sendto(_options(call_id, probe.getsockname()[1], port), ("127.0.0.1", port))
    got: list = []
    deadline = time.monotonic() + 5.0
    for _ in range(2000):
        global_reactor.iterate(0.005)
        while True:
            try:
                raw = probe.recv(65535)
            except BlockingIOError:
                break
            msg = _parse(raw)
            if isinstance(msg, SipResponse) and msg.call_id == call_id:
                assert msg.status == 200, raw
                return got
            got.append(msg)
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no 200 to the OPTIONS that followed: the stack stopped answering (got {got})")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message_over_udp(live, name):
    """The torture message gets the answer its RFC section expects (or none), and the stack still answers OPTIONS."""
    probe, endpoint, transports, wrapped = live
    port = endpoint.local_ports["udp"]
    answers = exchange(probe, port, load(name), f"after-{name}")
    assert all(isinstance(a, SipResponse) for a in answers), answers
    finals = [a for a in answers if a.status >= 200]
    status = finals[0].status if finals else NO_ANSWER
    assert status in EXPECTED[name], (name, [a.status for a in answers])
    if status == 420:
        assert finals[0].headers.get("unsupported")
    if status == 415:
        assert finals[0].headers.get("accept")
    if status == 505:
        assert finals[0].status == 505
    exchange(probe, port, _options(f"again-{name}", probe.getsockname()[1], port), f"third-{name}")


def test_every_torture_file_has_an_expectation():
    """No copied RFC message escapes the table."""
    names = {p.stem for p in (DATA / "rfc4475").glob("*.dat")} | {p.name for p in (DATA / "rfc5118").iterdir()}
    assert names == set(EXPECTED)


def test_stateful_answers_go_to_the_source_address(live):
    """An INVITE's 100 and 200 are addressed to received=127.0.0.1 at the Via's port (§18.2.2), not to its host name."""
    probe, endpoint, transports, wrapped = live
    exchange(probe, endpoint.local_ports["udp"], load("esc01"), "after-esc01-dest")
    intended = wrapped.ports[0].intended
    assert intended[:2] == [("127.0.0.1", 5060), ("127.0.0.1", 5060)]
