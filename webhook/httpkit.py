"""The small HTTP toolkit under the server: answers, a size-limited request, async handlers.

A handler is ``async def handler(ctx) -> Answer``; :func:`serve` runs it and
writes the answer, turning :class:`~webhook.providers.base.Rejected` into its
4xx, an unavailable provider into 502, and anything unexpected into a logged 500.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, unquote

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request

log = Logger(namespace="webhook.http")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, doc, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), "application/json", headers)


def error(status: int, text: str, **extra) -> Answer:
    return json_answer(status, {"error": text, **extra})


class LimitedRequest(Request):
    """A request that keeps at most ``max_body_bytes`` of its body and remembers that it got more."""

    max_body_bytes = 64 * 1024
    too_large = False
    #: the client went away before the answer was written (nothing is written then)
    gone = False
    _received = 0

    def connectionLost(self, reason) -> None:
        self.gone = True
        super().connectionLost(reason)

    @property
    def answerable(self) -> bool:
        """Whether an answer can still be written: not finished, and the client still there."""
        return not (self.finished or self.gone)

    def gotLength(self, length):
        if length is not None and length > self.max_body_bytes:
            self.too_large = True
        super().gotLength(None if self.too_large else length)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.max_body_bytes:
            self.too_large = True
            return
        super().handleContentChunk(data)


    def write(self, data: bytes) -> None:
        if not self.startedWriting:     # Request.process set "Server: TwistedWeb/<version>": name no version
            self.responseHeaders.removeHeader(b"server")
        super().write(data)


def limited_request_class(max_body_bytes: int) -> type:
    return type("LimitedRequest", (LimitedRequest,), {"max_body_bytes": max_body_bytes})


#: path segments that hold a secret: the payment reference (the return page shows the balance and
#: the PIN) and the API's phone number; logs show "-" instead
_SECRET_SEGMENTS = (re.compile(r"^(/?topup/[^/]*/(?:return|cancel)/)[^/]+"),
                    re.compile(r"^(/?api/v1/accounts/[^/]*/)[^/]+"))
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


def loggable_path(path: str) -> str:
    """``path`` (without its query) fit for a log line: decoded, references and numbers replaced by
    "-", anything but printable ASCII escaped, at most 200 characters."""
    path = unquote(path)
    for pattern in _SECRET_SEGMENTS:
        path = pattern.sub(r"\1-", path)
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                            else f"\\u{ord(m.group()):04x}", path[:200])


@dataclass
class Ctx:
    """One request as handlers see it (str everywhere, body as bytes)."""

    request: Request
    method: str
    path: tuple[str, ...]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str
    params: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def log_path(self) -> str:
        """The path for log lines: no references, no numbers (see :func:`loggable_path`)."""
        return loggable_path("/".join(self.path))


def make_ctx(request: Request) -> Ctx:
    def s(b: bytes) -> str:
        return b.decode("utf-8", "replace")
    path = tuple(s(p) for p in request.postpath)
    query = {}
    for k, v in (request.args or {}).items():
        if v:
            query[s(k)] = s(v[0])
    headers = {s(k).lower(): s(v) for k, v in request.requestHeaders.getAllRawHeaders() for v in v[:1]}
    request.content.seek(0)
    body = request.content.read()
    return Ctx(request, s(request.method), path, query, headers, body, client_host(request))


def client_host(request: Request) -> str:
    """The client's IP address as text; "" for a client that has none (a UNIX socket, a test's fake)."""
    address = request.getClientAddress()
    return address.host if isinstance(address, (IPv4Address, IPv6Address)) else ""


def write_answer(request: LimitedRequest, answer: Answer) -> None:
    if not request.answerable:
        return
    request.setResponseCode(answer.status)
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)
    request.setHeader("Content-Type", answer.content_type)
    for name, value in answer.headers:
        request.setHeader(name, value)
    request.setHeader("Content-Length", str(len(answer.body)))
    if request.method != b"HEAD":
        request.write(answer.body)
    request.finish()


def serve(request: Request, handler: Callable[[Ctx], Awaitable[Answer]], ctx: Ctx,
          on_done: Callable[[Ctx, Answer], None] | None = None):
    from .outgoing import ProviderUnavailable
    from .providers.base import Rejected

    async def run() -> Answer:
        try:
            return await handler(ctx)
        except Rejected as exc:
            log.warn("{method} /{path}: refused {status}: {reason}", method=ctx.method, path=ctx.log_path,
                     status=exc.status, reason=exc.reason)
            return error(exc.status, exc.reason)
        except ProviderUnavailable as exc:
            log.error("{method} /{path}: provider unavailable: {reason}", method=ctx.method,
                      path=ctx.log_path, reason=str(exc))
            return error(502, "the payment provider did not answer; try again")
        except Exception:
            log.failure("{method} /{path}: unexpected error", method=ctx.method, path=ctx.log_path)
            return error(500, "internal error")

    def done(answer: Answer) -> None:
        if on_done is not None:
            on_done(ctx, answer)
        write_answer(request, answer)

    ensureDeferred(run()).addCallback(done).addErrback(lambda f: log.failure("writing an answer", f))
    return NOT_DONE_YET
