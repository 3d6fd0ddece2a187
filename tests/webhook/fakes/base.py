"""What the fake providers share: routing, Basic auth, and the "down" / "slow" switches."""

from __future__ import annotations

import base64
import json
import re

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET


class FakeProvider(Resource):
    """A leaf resource; subclasses list ``routes`` as (method, regex, handler(request, match, body)).

    ``mode``: "ok"; "down" answers 503 to everything; "slow" answers after ``slow_s`` seconds.
    ``failures``: answer the next N requests 503 and then work again.
    """

    isLeaf = True

    def __init__(self, reactor) -> None:
        super().__init__()
        self.reactor = reactor
        self.mode = "ok"
        self.slow_s = 5.0
        self.failures = 0
        self.requests: list[tuple[str, str]] = []
        self.base_url = ""
        self._delayed = []

    routes: tuple = ()

    def render(self, request):
        method = request.method.decode()
        path = request.path.decode()
        self.requests.append((method, path))
        request.content.seek(0)
        body = request.content.read()
        if self.failures > 0:
            self.failures -= 1
            return self._reply(request, 503, {"name": "SERVICE_UNAVAILABLE"})
        if self.mode == "down":
            return self._reply(request, 503, {"name": "SERVICE_UNAVAILABLE"})
        if self.mode == "slow":
            call = self.reactor.callLater(self.slow_s, self._dispatch_later, request, method, path, body)
            self._delayed.append(call)
            request.notifyFinish().addErrback(lambda _f: call.active() and call.cancel())
            return NOT_DONE_YET
        return self._dispatch(request, method, path, body)

    def _dispatch_later(self, request, method, path, body):
        if request.finished:        # (a client that went away cancelled this call: see render)
            return
        result = self._dispatch(request, method, path, body)
        if result is not NOT_DONE_YET:
            request.write(result)
            request.finish()

    def _dispatch(self, request, method, path, body):
        for m, pattern, handler in self.routes:
            match = re.fullmatch(pattern, path)
            if match and m == method:
                return handler(self, request, match, body)
        return self._reply(request, 404, {"name": "RESOURCE_NOT_FOUND"})

    def stop(self) -> None:
        for call in self._delayed:
            if call.active():
                call.cancel()

    @staticmethod
    def _reply(request, status: int, doc) -> bytes:
        request.setResponseCode(status)
        request.setHeader("Content-Type", "application/json")
        return json.dumps(doc).encode()

    @staticmethod
    def _redirect(request, url: str) -> bytes:
        request.setResponseCode(302)
        request.setHeader("Location", url)
        return b""

    @staticmethod
    def basic_auth(request) -> tuple[str, str] | None:
        header = (request.getHeader("authorization") or "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            return None
        return user, password
