"""What a UAS answers to a request it cannot accept (RFC 3261 §8.2, §16.3 step 3, RFC 3261 §20).

``check_request`` looks at a parsed request in the RFC's order and returns the
response to send, or None when the core may go on with it:

1. 505 for a SIP version other than 2.0;
2. 400 when a header the core relies on is missing, duplicated or unreadable
   (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length, Contact, Route,
   Record-Route, Content-Type, Date), when the CSeq method is not the request's
   method, or Content-Length does not match the body; the reason phrase says why;
3. 405 with Allow for a method outside ``allowed_methods``;
4. 416 for a Request-URI scheme other than sip, sips and tel. ``tel:`` is
   accepted for every method: the B2BUA is the endpoint of the request, routes
   by number, and never needs a host from the Request-URI;
5. 483 when Max-Forwards is 0 on a method that makes us place a call onward
   (``forwarding_methods``, INVITE by default). Other requests (OPTIONS,
   in-dialog BYE...) are answered by us and never relayed, so RFC 4475 zeromf
   is handled as the request it is;
6. 420 with Unsupported listing the Require options not in
   ``supported_extensions`` (never for ACK and CANCEL, §8.2.2.3);
7. 415 with Accept (and Accept-Encoding) for a body of a session method
   (INVITE, UPDATE, ACK, PRACK) that is not of ``accepted_content_types``, or
   multipart/mixed without such a part, or with a Content-Encoding other than
   identity;
8. 406 for an INVITE or UPDATE whose Accept excludes every accepted content type
   (we would answer with SDP, RFC 4475 sdp01).

With ``our_hosts`` given, a sip/sips Request-URI naming another host is answered
404: we are no proxy. A missing Max-Forwards is accepted (RFC 2543 peers, RFC 4475
inv2543). The To tag of every answer is ``codec.stable_tag``, the same for each
retransmission of the request, unless ``to_tag`` is given.
"""

from __future__ import annotations

import re
from typing import Collection, Iterable

import hashlib

from b2bua.sip.codec import make_response, reason_phrase, stable_tag
from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import Headers, NameAddr, ascii_int, header_key, is_token
from b2bua.sip.message import SIP_VERSION, SipRequest, SipResponse
from b2bua.sip.uri import SipUri, TelUri

__all__ = ["check_request", "check_response", "answer_parse_error", "allow_value", "DEFAULT_ALLOWED_METHODS",
           "SESSION_METHODS"]

DEFAULT_ALLOWED_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "PRACK", "INFO"})
#: Methods whose body is a session description.
SESSION_METHODS = frozenset({"INVITE", "UPDATE", "ACK", "PRACK"})

_SINGLE_HEADERS = ("from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type")
_MANDATORY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))
_LABELS = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq",
           "max-forwards": "Max-Forwards", "content-length": "Content-Length", "content-type": "Content-Type"}
_CALL_ID_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?")
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+/[A-Za-z0-9\-.!%*_+`'~]+")
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT")
_BOUNDARY_RE = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


def _answer(request: SipRequest, status: int, reason: str | None, to_tag: str | None,
            headers: Iterable[tuple[str, str]] = ()) -> SipResponse:
    return make_response(request, status, reason, to_tag=to_tag or stable_tag(request), headers=headers)


def _syntax_problem(request: SipRequest) -> str | None:
    """Why the request's headers cannot be used, or None."""
    h = request.headers
    for key, label in _MANDATORY:
        if key not in h:
            return f"Missing {label} header"
    for key in _SINGLE_HEADERS:
        if h.count(key) > 1:
            values = set(h.get_lines(key))
            if len(values) > 1 or key in ("from", "to", "call-id", "cseq"):
                return f"Duplicate {_LABELS[key]} header"
    try:
        # The message's own views: parsed once here, kept for the core that reads them next.
        request.vias, request.from_, request.to  # noqa: B018
        cseq = request.cseq
        if not _CALL_ID_RE.fullmatch(h.get("call-id")):
            return "Bad Call-ID header"
        request.max_forwards  # noqa: B018 - parses and range-checks
        for label, addrs in (("Contact", request.contacts), ("Route", request.route),
                             ("Record-Route", request.record_route)):
            for addr in addrs:
                if addr.uri is None and (label != "Contact" or request.method != "REGISTER"):
                    return f"Bad {label} header"
    except SipParseError as exc:
        return exc.reason
    if cseq.method != request.method:
        return "CSeq method does not match the request method"
    length = h.get("content-length")
    if length is not None and ascii_int(length) != len(request.body):
        return "Content-Length does not match the body"
    content_type = h.get("content-type")
    if content_type is not None and not _MEDIA_TYPE_RE.fullmatch(content_type.split(";", 1)[0].strip()):
        return "Bad Content-Type header"
    date = h.get("date")
    if date is not None and not _DATE_RE.fullmatch(date):
        return "Bad Date header"
    return None


def _media_types_in_multipart(request: SipRequest) -> list[str]:
    m = _BOUNDARY_RE.search(request.headers.get("content-type") or "")
    if m is None:
        return []
    boundary = (m.group(1) or m.group(2)).encode("utf-8", "surrogateescape")
    types = []
    for part in request.body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, _ = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() in (b"content-type", b"c"):
                types.append(value.split(b";", 1)[0].strip().lower().decode("ascii", "replace"))
    return types


def _body_unsupported(request: SipRequest, accepted: Collection[str]) -> bool:
    if not request.body or request.method not in SESSION_METHODS:
        return False
    encoding = request.headers.get_all("content-encoding")
    if any(e.lower() != "identity" for e in encoding):
        return True
    content_type = request.content_type
    if content_type in accepted:
        return False
    if content_type == "multipart/mixed":
        return not any(t in accepted for t in _media_types_in_multipart(request))
    return True


def _accept_excludes(request: SipRequest, accepted: Collection[str]) -> bool:
    if request.method not in ("INVITE", "UPDATE") or "accept" not in request.headers:
        return False
    ranges = [v.split(";", 1)[0].strip().lower() for v in request.headers.get_all("accept")]
    if not ranges:
        return False  # an empty Accept: RFC 3261 §20.1 reads it as the default
    for offered in accepted:
        major = offered.split("/", 1)[0]
        if offered in ranges or "*/*" in ranges or f"{major}/*" in ranges:
            return False
    return True


def allow_value(methods: Collection[str]) -> str:
    """The Allow header's value for ``methods`` (sorted: the same set is always written the same)."""
    return ", ".join(sorted(methods))


def check_request(request: SipRequest, *,
                  allowed_methods: Collection[str] = DEFAULT_ALLOWED_METHODS,
                  supported_extensions: Collection[str] = (),
                  accepted_content_types: Collection[str] = ("application/sdp",),
                  our_hosts: Collection[str] | None = None,
                  forwarding_methods: Collection[str] = ("INVITE",),
                  to_tag: str | None = None) -> SipResponse | None:
    """The response for a request the core cannot accept, or None to go on.

    See the module docstring for the order of checks. ``allowed_methods``,
    ``supported_extensions`` (option tags) and ``accepted_content_types`` feed
    Allow, Unsupported and Accept in the answers. An ACK is never answered
    (RFC 3261 §17.2.1): a caller drops an ACK that gets a response here.
    """
    if request.version.upper() != SIP_VERSION:
        return _answer(request, 505, None, to_tag)
    problem = _syntax_problem(request)
    if problem is not None:
        return _answer(request, 400, problem, to_tag)
    if request.method not in allowed_methods:
        return _answer(request, 405, None, to_tag, [("Allow", allow_value(allowed_methods))])
    uri = request.uri
    if not isinstance(uri, (SipUri, TelUri)):
        return _answer(request, 416, None, to_tag)
    if our_hosts is not None and isinstance(uri, SipUri) and uri.host not in our_hosts:
        return _answer(request, 404, "Not Here", to_tag)
    if request.max_forwards == 0 and request.method in forwarding_methods:
        return _answer(request, 483, None, to_tag)
    if request.method not in ("ACK", "CANCEL"):
        supported = {ext.lower() for ext in supported_extensions}
        unknown = [opt for opt in request.headers.get_all("require") if opt.lower() not in supported]
        if unknown:
            return _answer(request, 420, None, to_tag, [("Unsupported", ", ".join(unknown))])
    if _body_unsupported(request, accepted_content_types):
        return _answer(request, 415, None, to_tag, [("Accept", ", ".join(accepted_content_types)),
                                                    ("Accept-Encoding", "identity")])
    if _accept_excludes(request, accepted_content_types):
        return _answer(request, 406, None, to_tag, [("Accept", ", ".join(accepted_content_types))])
    return None


def check_response(response: SipResponse) -> str | None:
    """Why a received response must be dropped (unreadable Via, From, To, Call-ID, CSeq), or None."""
    h = response.headers
    for key, label in _MANDATORY:
        if key not in h:
            return f"Missing {label} header"
    try:
        response.vias  # noqa: B018 - parses every Via
        response.from_  # noqa: B018
        response.to  # noqa: B018
        response.cseq  # noqa: B018
    except SipParseError as exc:
        return exc.reason
    if not is_token(response.cseq.method):
        return "Bad CSeq header"
    if not _CALL_ID_RE.fullmatch(h.get("call-id") or ""):
        return "Bad Call-ID header"
    return None


_ADDRESSING = ("via", "from", "to", "call-id", "cseq")


def answer_parse_error(data: bytes, error: SipParseError) -> SipResponse | None:
    """The stateless answer to bytes that did not parse, or None when none may be sent.

    Built from ``error.partial``: the Via lines (all, in order), From, To (with a
    To tag derived from the bytes, so a retransmission gets the same tag),
    Call-ID and CSeq that could be read; the status is ``error.status`` (400,
    505...) and a 400's reason phrase says what was wrong. None for a response
    (never answered), an ACK (RFC 3261 §17), or when no Via was read (no address).
    """
    start = data.lstrip(b"\r\n")
    if start[:4].upper() == b"SIP/" or start.startswith(b"ACK ") or error.partial is None:
        return None
    items = [(n, v) for n, v in error.partial.items() if header_key(n) in _ADDRESSING]
    if not any(header_key(n) == "via" for n, _ in items):
        return None
    tag = hashlib.blake2s(start[:2048], digest_size=6).hexdigest()
    for i, (name, value) in enumerate(items):
        if header_key(name) == "to":
            try:
                if NameAddr.parse(value, "To").tag is None:
                    items[i] = (name, f"{value};tag={tag}")
            except SipParseError:
                pass  # echoed as it came
    reason = error.reason if error.status == 400 else reason_phrase(error.status)
    return SipResponse(error.status, reason, Headers(items), b"", SIP_VERSION)
