"""/healthz asks the node's readiness input: 503 with the reasons when it runs short."""

from __future__ import annotations

import json

from twisted.internet.task import Clock

from webhook.server import build_site

from .test_connections import connect, settings


def health(**readiness) -> tuple[bytes, bytes]:
    """The status line and body of GET /healthz on a Site (with ``readiness=`` when given)."""
    site = build_site(settings(), None, Clock(), providers={}, **readiness)
    channel, transport = connect(site)
    channel.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = transport.value().partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


def test_health_is_503_with_the_readiness_problems():
    """A readiness input naming problems (RTP ports, descriptors) makes /healthz 503 with them in its JSON."""
    problems = ["RTP ports: 3 of 5000 free", "descriptors: 1000 of 1024 open"]
    status, body = health(readiness=lambda: problems)
    assert status == b"HTTP/1.1 503 Service Unavailable"
    assert json.loads(body) == {"ready": False, "problems": problems}


def test_health_is_200_ok_without_problems():
    """No problems (the default input too): 200 "ok"."""
    assert health(readiness=lambda: []) == health() == (b"HTTP/1.1 200 OK", b"ok\n")


def test_a_failing_readiness_check_is_logged_once_and_not_ready(logged):
    """A readiness input that raises: 503 "the readiness check failed", and the failure logged with its traceback."""
    def broken():
        raise OSError("no /proc")
    status, body = health(readiness=broken)
    assert status.startswith(b"HTTP/1.1 503 ")
    assert json.loads(body)["problems"] == ["the readiness check failed"]
    assert sum("the readiness check failed" in line for line in logged) == 1
