"""Misbehaving SIP peers written by hand for the attack suite: a carrier and an agent that do what SIPp won't.

:class:`RawCarrier` calls the node over UDP or TCP and can close its TCP connection
right after the ACK, or never answer the node's BYE; :class:`RawAgent` answers the
node's INVITE and can hang up itself, or never answer the node's BYE.  Both send
no RTP.  They speak just enough SIP for one call (one dialog, our own tags and
branches), read with blocking sockets under a deadline, and log what they
received in ``seen`` (start lines).
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid

SDP = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\n")


def _headers(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        out.setdefault(name.strip().lower(), value.strip())
    return out


def _contact_uri(value: str) -> str:
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";")[0]


class _Reader:
    """Whole SIP messages from a UDP socket or a TCP stream (framed by Content-Length)."""

    def __init__(self, sock: socket.socket, stream: bool) -> None:
        self.sock = sock
        self.stream = stream
        self.buffer = b""

    def next(self, deadline: float) -> str | None:
        while True:
            if self.stream:
                head, sep, rest = self.buffer.partition(b"\r\n\r\n")
                if sep:
                    length = int(_headers(head.decode() + "\r\n").get("content-length", "0") or 0)
                    if len(rest) >= length:
                        self.buffer = rest[length:]
                        return (head + sep + rest[:length]).decode(errors="replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65535)
            except (socket.timeout, ConnectionError, OSError):
                return None
            if not data:
                return None
            if not self.stream:
                return data.decode(errors="replace")
            self.buffer += data


class RawCarrier:
    """One call from ``caller`` to ``service`` at the node, over ``transport`` ("udp" or "tcp")."""

    def __init__(self, node_port: int, service: str, caller: str, *, transport: str = "udp",
                 source_host: str = "127.0.0.1") -> None:
        self.node = ("127.0.0.1", node_port)
        self.transport = transport
        self.host = source_host
        stream = transport == "tcp"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)
        self.sock.bind((source_host, 0))
        if stream:
            self.sock.connect(self.node)
        self.port = self.sock.getsockname()[1]
        self.reader = _Reader(self.sock, stream)
        self.service, self.caller = service, caller
        self.call_id = f"raw-{uuid.uuid4().hex}"
        self.tag = uuid.uuid4().hex[:8]
        self.to = f"<sip:{service}@127.0.0.1>"
        self.remote_uri = f"sip:{service}@127.0.0.1:{node_port}"
        self.seen: list[str] = []
        self.ignore_bye = False
        self.got_bye = False
        self.answer = ""                 # the 200 to the INVITE, whole (its SDP names the node's RTP port)

    def _send(self, text: str) -> None:
        data = text.encode()
        if self.transport == "tcp":
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, self.node)

    def _request(self, method: str, uri: str, cseq: int, body: str = "") -> None:
        via = f"SIP/2.0/{self.transport.upper()} {self.host}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:12]}"
        extra = "Content-Type: application/sdp\r\n" if body else ""
        self._send(f"{method} {uri} SIP/2.0\r\nVia: {via}\r\nFrom: {self.from_header()};tag={self.tag}\r\n"
                   f"To: {self.to}\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                   f"Contact: <sip:carrier@{self.host}:{self.port};transport={self.transport}>\r\nMax-Forwards: 70\r\n"
                   f"{extra}Content-Length: {len(body)}\r\n\r\n{body}")

    def from_header(self) -> str:
        """The caller's number as a sip: URI, or as given when it is a whole URI (``tel:+49...``)."""
        return f"<{self.caller}>" if ":" in self.caller else f"<sip:{self.caller}@{self.host}>"

    def call(self, timeout_s: float = 15.0) -> bool:
        """INVITE, then the ACK to its 200; True when the call was answered."""
        self._request("INVITE", self.remote_uri, 1, SDP.format(port=9))
        deadline = time.monotonic() + timeout_s
        while (message := self.reader.next(deadline)) is not None:
            self.seen.append(message.split("\r\n", 1)[0])
            if message.startswith("SIP/2.0 200") and " INVITE" in _headers(message).get("cseq", ""):
                headers = _headers(message)
                self.answer = message
                self.to = headers["to"]
                self.remote_uri = _contact_uri(headers.get("contact", self.remote_uri))
                self._request("ACK", self.remote_uri, 1)
                return True
            if re.match(r"SIP/2.0 [3-6]", message):
                return False
        return False

    def hang_up(self) -> None:
        self._request("BYE", self.remote_uri, 2)

    def serve(self, seconds: float) -> None:
        """Answer what the node sends for ``seconds`` (its BYE with 200, unless ``ignore_bye``)."""
        deadline = time.monotonic() + seconds
        while (message := self.reader.next(deadline)) is not None:
            self.seen.append(message.split("\r\n", 1)[0])
            if message.startswith("BYE "):
                self.got_bye = True
                if not self.ignore_bye:
                    self._respond_200(message)

    def _respond_200(self, request: str) -> None:
        headers = _headers(request)
        self._send(f"SIP/2.0 200 OK\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\nTo: {headers['to']}\r\n"
                   f"Call-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


class RawAgent:
    """An agent on a UDP port: answers the node's INVITE 200 (no RTP); may hang up, may ignore the node's BYE."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reader = _Reader(self.sock, False)
        self.ignore_bye = False
        self.got_bye = False
        self.invite: dict[str, str] | None = None
        self.node: tuple[str, int] | None = None
        self.tag = uuid.uuid4().hex[:8]
        self.seen: list[str] = []
        self.stopped = False

    @property
    def uri(self) -> str:
        return f"sip:agent@127.0.0.1:{self.port}"

    def serve_in_background(self, seconds: float) -> threading.Thread:
        """:meth:`serve` on a thread, so that the test can play the carrier meanwhile."""
        thread = threading.Thread(target=self.serve, args=(seconds,), daemon=True)
        thread.start()
        return thread

    def serve(self, seconds: float, *, until_answered: bool = False) -> None:
        """Answer the node for ``seconds`` (or until the INVITE is answered)."""
        deadline = time.monotonic() + seconds
        while not self.stopped:
            self.sock.settimeout(min(0.2, max(0.01, deadline - time.monotonic())))
            try:
                data, source = self.sock.recvfrom(65535)
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return
                continue
            except OSError:
                return
            message = data.decode(errors="replace")
            self.seen.append(message.split("\r\n", 1)[0])
            headers = _headers(message)
            if message.startswith("INVITE "):
                self.invite, self.node = headers, source
                self._respond(message, 200, SDP.format(port=9))
                if until_answered:
                    return
            elif message.startswith("BYE "):
                self.got_bye = True
                if not self.ignore_bye:
                    self._respond(message, 200)
            elif not message.startswith(("ACK ", "SIP/2.0")):
                self._respond(message, 200)
            if time.monotonic() >= deadline:
                return

    def _respond(self, request: str, status: int, body: str = "") -> None:
        headers = _headers(request)
        to = headers["to"] if ";tag=" in headers["to"] else f"{headers['to']};tag={self.tag}"
        extra = f"Contact: <{self.uri}>\r\nContent-Type: application/sdp\r\n" if body else ""
        text = (f"SIP/2.0 {status} OK\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\nTo: {to}\r\n"
                f"Call-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                f"{body}")
        self.sock.sendto(text.encode(), self.node)

    def hang_up(self) -> None:
        """BYE in the dialog the node's INVITE made (our tag as From, the node's Contact as target)."""
        h = self.invite
        target = _contact_uri(h["contact"])
        text = (f"BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:12]}"
                f"\r\nFrom: {h['to']};tag={self.tag}\r\nTo: {h['from']}\r\nCall-ID: {h['call-id']}\r\nCSeq: 1 BYE\r\n"
                f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(text.encode(), self.node)

    def close(self) -> None:
        """Stop serving (a background :meth:`serve` ends within 0.2 s) and close the socket."""
        self.stopped = True
        time.sleep(0.25)
        self.sock.close()
