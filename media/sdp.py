"""SDP (RFC 4566) and offer/answer (RFC 3264) for an anchoring B2BUA.  Pure.

The B2BUA never passes one side's SDP to the other: each leg gets SDP that we
write from scratch, with our own ``o=`` line (:class:`LocalSdp`, whose version
rises on each change and only then), our own ``c=`` address and ``m=`` port, the
codecs we relay (PCMA, PCMU, ``telephone-event``; A-law first), ``a=ptime:20``
and a direction attribute.  What we do not write cannot leak: ICE candidates
and credentials, crypto keys, ``a=rtcp``, ``a=rtcp-mux`` of the other side.

Codecs and payload types (RFC 3264 §5.1, §6.1): an answer takes one G.711 law
the offer lists (A-law when offered, unless told to prefer the other) under the
*offer's* payload type numbers, and the offer's telephone-event number; an offer
of ours lists both laws under their static numbers (PCMA 8, PCMU 0) and
telephone-event under 101, whatever the other leg uses: the relay transcodes
between the laws (:mod:`media.stream`) and renumbers events.  When a peer's
answer names a codec under another number than our offer, it receives with its
own number and sends with ours (:attr:`Negotiated.rx_payload_type`).

Errors: :class:`SdpError` for SDP we cannot parse (the B2BUA answers 400), and
:class:`NotAcceptable` when no audio stream can be accepted (488), with the
warn-code of RFC 3261 §20.43 that says why (``warn_code``: 304 no audio stream
at all, 302 audio only over a profile we do not relay such as RTP/SAVP, 305
audio without PCMA or PCMU); the B2BUA puts it in a ``Warning`` header.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import random
from dataclasses import dataclass, field

# Codecs we relay, by name, with their static payload types (RFC 3551).
AUDIO_CODECS = ("PCMA", "PCMU")
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
CODEC_STATIC_PT = {"PCMU": 0, "PCMA": 8}
# Names of other static audio types (RFC 3551 table 4), only to say what an offer we refuse listed.
STATIC_AUDIO_NAMES = {3: "GSM", 4: "G723", 5: "DVI4", 6: "DVI4", 7: "LPC", 9: "G722", 10: "L16", 11: "L16",
                      12: "QCELP", 13: "CN", 14: "MPA", 15: "G728", 16: "DVI4", 17: "DVI4", 18: "G729"}
TELEPHONE_EVENT = "telephone-event"
DEFAULT_EVENT_PT = 101
PTIME_MS = 20
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# The direction an answer takes for each offered direction (RFC 3264 section 6.1).
ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
RTP_PROFILES = ("RTP/AVP", "RTP/AVPF")
NO_AUDIO = "no audio stream with PCMA or PCMU over RTP/AVP in the offer"
# The warn-codes of RFC 3261 §20.43 that say why an offer or answer is not acceptable.
WARN_TRANSPORT = 302        # "Incompatible transport protocol": audio only over SRTP or another profile
WARN_MEDIA_TYPE = 304       # "Media type not available": no audio stream at all (video only, all ports 0)
WARN_MEDIA_FORMAT = 305     # "Incompatible media format": audio, but neither PCMA nor PCMU


class SdpError(ValueError):
    """SDP that does not parse (RFC 4566); ``status`` is the SIP answer the B2BUA gives."""

    status = 400


    #: the warn-code of RFC 3261 §20.43 for a Warning header with the answer (None: none)
    warn_code: int | None = None


class NotAcceptable(SdpError):
    """An offer or answer with no audio stream we can relay (no shared codec, SRTP only...).

    ``warn_code`` says why (:data:`WARN_MEDIA_FORMAT` unless told otherwise)."""

    status = 488

    def __init__(self, reason: str, warn_code: int = WARN_MEDIA_FORMAT) -> None:
        super().__init__(reason)
        self.warn_code = warn_code


# -- the parsed form -------------------------------------------------------------
#
# Slots, not an instance ``__dict__`` each: a held call keeps its legs' last descriptions, their lines and what
# each leg agreed, ~50 B a dict (bench/memory.py --by-site: media/sdp.py).

@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line."""

    username: str
    session_id: str
    version: int
    nettype: str
    addrtype: str
    address: str

    def line(self) -> str:
        return f"o={self.username} {self.session_id} {self.version} {self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line: address type ("IP4"/"IP6") and address (TTL/count suffixes dropped)."""

    addrtype: str
    address: str

    @property
    def is_hold(self) -> bool:
        """The old hold of RFC 2543: ``c=IN IP4 0.0.0.0`` (RFC 3264 section 8.4)."""
        return self.address in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Media:
    """One ``m=`` section, with its ``c=`` and ``a=`` lines (``attributes`` in order, value None for flags)."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    port_count: int | None = None
    other_lines: tuple[str, ...] = ()   # i=, b=, k= lines, kept verbatim
    #: what :func:`_codecs_of` and :func:`_event_fmtp` read from the lines, kept (None until asked; our own
    #: sections are made with it): fields outside equality, hash and repr, not entries of an instance
    #: ``__dict__``, which a held call's two sections each grew for them (228 B a call, bench/memory.py --by-site)
    _relay_codecs: tuple | None = field(default=None, compare=False, repr=False)
    _event_fmtps: dict | None = field(default=None, compare=False, repr=False)

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    @property
    def direction(self) -> str | None:
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate), static types included unless remapped."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in STATIC_PAYLOAD_TYPES:
                out[int(fmt)] = STATIC_PAYLOAD_TYPES[int(fmt)]
        for value in self.attribute_values("rtpmap"):
            pt_text, _, enc = value.partition(" ")
            name, _, rest = enc.strip().partition("/")
            rate_text = rest.partition("/")[0]
            if not pt_text.isdigit() or not rate_text.isdigit():
                raise SdpError(f"a=rtpmap:{value} is not \"PT NAME/RATE\"")
            out[int(pt_text)] = (name, int(rate_text))
        return out


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    media: tuple[Media, ...] = ()
    attributes: tuple[tuple[str, str | None], ...] = ()
    times: tuple[str, ...] = ("0 0",)
    other_lines: tuple[str, ...] = ()

    def connection_for(self, m: Media) -> Connection | None:
        return m.connection or self.connection

    def direction_for(self, m: Media) -> str:
        if m.direction:
            return m.direction
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"


# -- parse and write -------------------------------------------------------------

#: ``ipaddress.ip_address`` for the few addresses a node sees over and over (its own, the carriers',
#: the agents'): the objects are immutable, so they are remembered
ip_of = functools.lru_cache(maxsize=4096)(ipaddress.ip_address)


def _connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c={value} is not \"IN IP4|IP6 ADDRESS\"")
    address = parts[2].split("/")[0]
    try:
        ip = ip_of(address)
    except ValueError:
        raise SdpError(f"c={value}: {address!r} is not an IP address") from None
    if (ip.version == 4) != (parts[1] == "IP4"):
        raise SdpError(f"c={value}: address does not match {parts[1]}")
    return Connection(parts[1], address)


def _attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    if not name or " " in name:
        raise SdpError(f"a={value} has no attribute name")
    return (name, rest if sep else None)


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Parse an SDP body (CRLF or LF line ends); raises :class:`SdpError` with the reason.

    A call parses the same body several times (checked, answered, compared with the last one) and
    the result is immutable, so the last bodies parsed are remembered (a bad body is parsed anew)."""
    return _parse_sdp_cached(body)


@functools.lru_cache(maxsize=1024)
def _parse_sdp_cached(body: bytes | str) -> SessionDescription:
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("SDP is not UTF-8 text") from None
    lines = [line for line in body.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    origin = None
    name = "-"
    conn = None
    times: list[str] = []
    sess_attrs: list[tuple[str, str | None]] = []
    sess_other: list[str] = []
    media: list[dict] = []
    for line in lines[1:]:
        line = line.rstrip()
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"SDP line {line[:40]!r} is not \"x=value\"")
        key, value = line[0], line[2:]
        cur = media[-1] if media else None
        if key == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpError(f"m={value} needs media, port, proto and formats")
            port_text, _, count_text = parts[1].partition("/")
            if not port_text.isdigit() or int(port_text) > 65535 or (count_text and not count_text.isdigit()):
                raise SdpError(f"m={value}: bad port {parts[1]!r}")
            media.append(dict(media=parts[0], port=int(port_text), proto=parts[2], formats=tuple(parts[3:]),
                              port_count=int(count_text) if count_text else None, connection=None,
                              attributes=[], other_lines=[]))
        elif key == "o":
            parts = value.split()
            if len(parts) != 6 or not parts[2].isdigit():
                raise SdpError(f"o={value} needs 6 fields with a numeric version")
            origin = Origin(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])
        elif key == "c":
            if cur is not None:
                cur["connection"] = _connection(value)
            else:
                conn = _connection(value)
        elif key == "a":
            (cur["attributes"] if cur is not None else sess_attrs).append(_attribute(value))
        elif key == "s" and cur is None:
            name = value or "-"
        elif key == "t" and cur is None:
            times.append(value)
        else:
            (cur["other_lines"] if cur is not None else sess_other).append(line)
    if origin is None:
        raise SdpError("SDP has no o= line")
    parsed = tuple(Media(m["media"], m["port"], m["proto"], m["formats"], m["connection"],
                         tuple(m["attributes"]), m["port_count"], tuple(m["other_lines"])) for m in media)
    for m in parsed:
        if m.port and m.connection is None and conn is None:
            raise SdpError(f"m={m.media} {m.port} has no c= line, neither its own nor the session's")
    return SessionDescription(origin, name, conn, parsed, tuple(sess_attrs), tuple(times) or ("0 0",),
                              tuple(sess_other))


def _attr_line(key: str, value: str | None) -> str:
    return f"a={key}" if value is None else f"a={key}:{value}"


def write_sdp(sd: SessionDescription) -> bytes:
    """The SDP body, CRLF line ends, fields in RFC 4566 order."""
    out = ["v=0", sd.origin.line(), f"s={sd.session_name or '-'}"]
    if sd.connection:
        out.append(f"c=IN {sd.connection.addrtype} {sd.connection.address}")
    out += [f"t={t}" for t in sd.times]
    out += [_attr_line(k, v) for k, v in sd.attributes]
    for m in sd.media:
        port = f"{m.port}/{m.port_count}" if m.port_count else str(m.port)
        out.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
        out += list(m.other_lines)
        if m.connection:
            out.append(f"c=IN {m.connection.addrtype} {m.connection.address}")
        out += [_attr_line(k, v) for k, v in m.attributes]
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


# -- our side of each leg -------------------------------------------------------------

def _addrtype(address: str) -> str:
    return "IP6" if ip_of(address).version == 6 else "IP4"


#: o= session ids and first versions only need to differ between sessions (RFC 4566 §5.2), not to be
#: secret: a PRNG seeded once from the OS costs no system call per call
_rng = random.Random(os.urandom(16))


class LocalSdp:
    """Our SDP towards one leg: the address and port we receive on, our ``o=`` line and its version.

    ``render`` raises the version only when what we say changed since the last
    body (RFC 3264 section 8: a repeated offer or answer keeps its version).
    """

    def __init__(self, address: str, port: int, *, session_id: str | None = None,
                 username: str = "prepaid") -> None:
        self.address = address
        self.port = port
        self.username = username
        self.session_id = session_id or str(_rng.getrandbits(48))
        self.version = _rng.getrandbits(16)
        self._last: SessionDescription | None = None
        self._origin: Origin | None = None
        self._connection: Connection | None = None

    def render(self, media: tuple[Media, ...]) -> SessionDescription:
        """The SDP with ``media`` under our o= line; the version rises when anything changed.

        Unchanged (the same connection and media as the last body, the version as it was), the last
        body itself is the answer."""
        conn = self._connection
        if conn is None or conn.address != self.address:
            conn = self._connection = Connection(_addrtype(self.address), self.address)
        last = self._last
        origin = self.origin()
        if last is not None:
            if last.connection == conn and last.media == media:
                if last.origin == origin:
                    return last
            else:
                self.version += 1
                origin = self.origin()
        self._last = draft = SessionDescription(origin, "prepaid", conn, media)
        return draft

    def origin(self) -> Origin:
        o = self._origin
        if (o is None or o.version != self.version or o.address != self.address
                or o.session_id != self.session_id or o.username != self.username):
            o = self._origin = Origin(self.username, self.session_id, self.version, "IN",
                                      _addrtype(self.address), self.address)
        return o


# -- negotiation --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Negotiated:
    """What one leg agreed: the codec and payload types both directions use, and where the peer receives.

    ``remote_address`` is None when the peer does not want media (port 0 or the
    old ``c=0.0.0.0`` hold); ``direction`` is the peer's own attribute (its view),
    ``we_may_send`` whether we may send media to it.
    """

    codec: str
    payload_type: int
    event_payload_type: int | None
    remote_address: str | None
    remote_port: int
    remote_rtcp_port: int
    direction: str
    ptime_ms: int = PTIME_MS
    media_index: int = 0
    #: the numbers the peer sends with when they differ from those it receives with (None: the same): a
    #: peer answering our offer under other numbers sends with our offer's (RFC 3264 §5.1, §6.1)
    rx_payload_type: int | None = None
    rx_event_payload_type: int | None = None

    @property
    def receive_payload_type(self) -> int:
        """The audio payload type of the packets the peer sends us."""
        return self.payload_type if self.rx_payload_type is None else self.rx_payload_type

    @property
    def receive_event_payload_type(self) -> int | None:
        """The telephone-event payload type of the packets the peer sends us (None: no events)."""
        if self.event_payload_type is None:
            return None
        return self.event_payload_type if self.rx_event_payload_type is None else self.rx_event_payload_type

    @property
    def we_may_send(self) -> bool:
        return self.remote_address is not None and self.direction in ("sendrecv", "recvonly")

    @property
    def peer_sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")


def _rtcp_port(m: Media) -> int:
    value = m.attribute("rtcp")
    if value:
        first = value.split()[0]
        if first.isdigit() and 0 < int(first) <= 65535:
            return int(first)
    return m.port + 1


def peer_direction(sd: SessionDescription, m: Media) -> str:
    """The peer's direction for ``m``, with the old c=0.0.0.0 hold read as "it will not receive"."""
    direction = sd.direction_for(m)
    conn = sd.connection_for(m)
    if conn is not None and conn.is_hold:
        return {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
    return direction


def _codecs_of(m: Media) -> tuple[tuple[tuple[str, int], ...], int | None]:
    """The audio codecs we relay that ``m`` lists, in its order, and its telephone-event type.

    Asked several times per offer/answer of the same (immutable) section, and a peer's SDP is the
    same parsed object call after call (:func:`parse_sdp` keeps it): the answer is kept on the
    section itself (``Media._relay_codecs``, outside equality, hash and repr).  A section whose rtpmap
    does not parse raises each time."""
    found = m._relay_codecs
    if found is None:
        found = _read_codecs(m)
        object.__setattr__(m, "_relay_codecs", found)       # frozen: the memo is set as __init__ sets fields
    return found


def _read_codecs(m: Media) -> tuple[tuple[tuple[str, int], ...], int | None]:
    audio: list[tuple[str, int]] = []
    event = None
    rtpmap = m.rtpmap()
    for fmt in m.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        name, rate = rtpmap.get(pt, ("", 0))
        if name.upper() in AUDIO_CODECS and rate == 8000:
            audio.append((name.upper(), pt))
        elif name.lower() == TELEPHONE_EVENT and rate == 8000 and event is None:
            event = pt
    return tuple(audio), event


def offered_codecs(m: Media) -> tuple[tuple[str, ...], bool]:
    """The codec names we relay that ``m`` lists (its order, each once), and whether it has telephone-event."""
    audio, event = _codecs_of(m)
    return tuple(dict.fromkeys(name for name, _ in audio)), event is not None


def _event_fmtp(m: Media, event_pt: int | None) -> str:
    """The offer's event list for its telephone-event type (echoed in the answer), else 0-16.

    Kept on the section per event type, as :func:`_codecs_of` keeps its codecs."""
    kept = m._event_fmtps
    if kept is None:
        kept = {}
        object.__setattr__(m, "_event_fmtps", kept)
    try:
        return kept[event_pt]
    except KeyError:
        pass
    kept[event_pt] = found = _read_event_fmtp(m, event_pt)
    return found


def _read_event_fmtp(m: Media, event_pt: int | None) -> str:
    for value in m.attribute_values("fmtp"):
        pt_text, _, params = value.partition(" ")
        if event_pt is not None and pt_text == str(event_pt) and params.strip():
            ranges = params.strip()
            if all(part.replace("-", "").isdigit() for part in ranges.split(",")):
                return ranges
    return "0-16"


def _relayable(m: Media) -> bool:
    return m.media == "audio" and m.port != 0 and m.proto in RTP_PROFILES


def _refusal(sd: SessionDescription, what: str = "the offer") -> NotAcceptable:
    """Why no stream of ``sd`` can be relayed, with its warn-code (RFC 3261 §20.43)."""
    audio = [m for m in sd.media if m.media == "audio" and m.port != 0]
    if not audio:
        return NotAcceptable(f"no audio stream in {what}", WARN_MEDIA_TYPE)
    if not any(m.proto in RTP_PROFILES for m in audio):
        protos = ", ".join(sorted({m.proto for m in audio}))
        return NotAcceptable(f"audio only over {protos} in {what}, we relay RTP/AVP", WARN_TRANSPORT)
    names: list[str] = []
    for m in audio:
        if m.proto in RTP_PROFILES:
            rtpmap = m.rtpmap()
            for f in m.formats:
                pt = int(f) if f.isdigit() else -1
                names.append(rtpmap[pt][0] if pt in rtpmap else STATIC_AUDIO_NAMES.get(pt, f))
    listed = ", ".join(dict.fromkeys(n for n in names if n.lower() != TELEPHONE_EVENT))
    return NotAcceptable(f"neither PCMA nor PCMU in {what} ({listed or 'no audio format'})", WARN_MEDIA_FORMAT)


def _rejected(m: Media) -> Media:
    """A stream kept in its place with port 0 (RFC 3264 section 6)."""
    return Media(m.media, 0, m.proto, m.formats)


def _audio(port: int, proto: str, codecs: tuple[tuple[str, int], ...], event_pt: int | None,
           direction: str, event_fmtp: str = "0-16") -> Media:
    formats, attrs = _audio_lines(codecs, event_pt, direction, event_fmtp)
    return Media("audio", port, proto, formats, attributes=attrs,
                 _relay_codecs=(codecs, event_pt))     # what _codecs_of reads back from these lines


@functools.lru_cache(maxsize=256)
def _audio_lines(codecs: tuple[tuple[str, int], ...], event_pt: int | None, direction: str,
                 event_fmtp: str) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]:
    """Formats and attributes of our audio section (the same few combinations every call)."""
    formats = [str(pt) for _, pt in codecs]
    attrs: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {name}/8000") for name, pt in codecs]
    if event_pt is not None:
        formats.append(str(event_pt))
        attrs += [("rtpmap", f"{event_pt} telephone-event/8000"), ("fmtp", f"{event_pt} {event_fmtp}")]
    attrs += [("ptime", str(PTIME_MS)), (direction, None)]
    return tuple(formats), tuple(attrs)


@functools.lru_cache(maxsize=256)
def _order(codecs: tuple[tuple[str, int], ...], prefer: str | None) -> tuple[tuple[str, int], ...]:
    ranking = ([prefer] if prefer in AUDIO_CODECS else []) + list(AUDIO_CODECS)
    return tuple(sorted(codecs, key=lambda c: ranking.index(c[0])))


def chosen_codec(codecs: tuple[str, ...], prefer: str | None = None) -> str | None:
    """The law :func:`answer_offer` takes from an offer listing ``codecs`` (``prefer``, else A-law, else
    mu-law); None when it lists neither."""
    listed = _order(tuple((c, CODEC_STATIC_PT[c]) for c in codecs if c in CODEC_STATIC_PT), prefer)
    return listed[0][0] if listed else None


def answer_offer(offer: SessionDescription, local: LocalSdp, *, prefer: str | None = None,
                 direction: str | None = None) -> tuple[SessionDescription, Negotiated]:
    """Answer a peer's offer on the leg ``local`` describes.

    The first audio stream we can relay is accepted with one codec (``prefer``
    when offered, else A-law, else mu-law) and the offer's telephone-event type;
    every other stream is rejected in place with port 0.  ``direction`` is ours
    (default: the RFC 3264 answer to the offered one).  Raises
    :class:`NotAcceptable` when no audio stream can be accepted.
    """
    chosen: Negotiated | None = None
    media: list[Media] = []
    for index, m in enumerate(offer.media):
        codecs, event_pt = _codecs_of(m) if _relayable(m) else ((), None)
        if chosen is not None or not codecs:
            media.append(_rejected(m))
            continue
        name, pt = _order(codecs, prefer)[0]
        theirs = peer_direction(offer, m)
        ours = direction or ANSWER_DIRECTION[theirs]
        conn = offer.connection_for(m)
        hold = conn is None or conn.is_hold
        chosen = Negotiated(name, pt, event_pt, None if hold else conn.address, m.port, _rtcp_port(m),
                            theirs, media_index=index)
        media.append(_audio(local.port, m.proto, ((name, pt),), event_pt, ours, _event_fmtp(m, event_pt)))
    if chosen is None:
        raise _refusal(offer)
    return local.render(tuple(media)), chosen


def check_offer(offer: SessionDescription) -> None:
    """Raise what :func:`answer_offer` raises for ``offer`` (:class:`SdpError`, :class:`NotAcceptable`),
    without building an answer (a B2BUA checks the carrier's offer before it answers it)."""
    acceptable = False
    for m in offer.media:
        if _relayable(m) and _codecs_of(m)[0]:       # every relayable section read, as answer_offer does
            acceptable = True
    if not acceptable:
        raise _refusal(offer)


def make_offer(local: LocalSdp, *, prefer: str | None = None, direction: str = "sendrecv",
               codecs: tuple[str, ...] = AUDIO_CODECS, events: bool = True) -> SessionDescription:
    """Our offer on a leg: one audio stream with ``codecs`` (``prefer`` first, then A-law), telephone-event."""
    listed = _order(tuple((c, CODEC_STATIC_PT[c]) for c in codecs if c in CODEC_STATIC_PT), prefer)
    if not listed:
        raise ValueError(f"no codec we relay among {codecs}")
    return local.render((_audio(local.port, "RTP/AVP", listed, DEFAULT_EVENT_PT if events else None, direction),))


def offer_from(peer_offer: SessionDescription, local: LocalSdp, *, prefer: str | None = None) -> SessionDescription:
    """The offer for the other leg, mirroring a peer's offer (a re-INVITE passed across, e.g. hold).

    The m= lines keep their places (rejected and unrelayable ones with port 0),
    the relayable audio stream carries our codecs and the peer's direction
    (c=0.0.0.0 read as sendonly/inactive).  Raises :class:`NotAcceptable` when
    nothing can be relayed.
    """
    media: list[Media] = []
    done = False
    for m in peer_offer.media:
        codecs, _ = _codecs_of(m) if _relayable(m) else ((), None)
        if done or not codecs:
            media.append(_rejected(m))
            continue
        done = True
        listed = _order(tuple((c, CODEC_STATIC_PT[c]) for c in AUDIO_CODECS), prefer)
        media.append(_audio(local.port, "RTP/AVP", listed, DEFAULT_EVENT_PT, peer_direction(peer_offer, m)))
    if not done:
        raise _refusal(peer_offer)
    return local.render(tuple(media))


@dataclass(frozen=True, slots=True)
class AudioOffer:
    """What a peer's offer asks of the audio stream we would relay: its place, codecs, events, direction.

    ``codecs`` are the codecs we relay, in the offer's order (its preference first); ``direction``
    is the peer's own (c=0.0.0.0 read as not receiving).  A B2BUA compares it with what the leg has
    now to tell a session refresh or an address change (answered on that leg) from a hold, a resume
    or a codec change (which the other leg must agree to).
    """

    index: int
    codecs: tuple[str, ...]
    events: bool
    direction: str


def audio_offer(offer: SessionDescription) -> AudioOffer | None:
    """The first audio stream of ``offer`` we can relay (the one :func:`answer_offer` accepts), or None."""
    for index, m in enumerate(offer.media):
        codecs, event_pt = _codecs_of(m) if _relayable(m) else ((), None)
        if codecs:
            names = tuple(dict.fromkeys(name for name, _ in codecs))
            return AudioOffer(index, names, event_pt is not None, peer_direction(offer, m))
    return None


_CAN = {"sendrecv": (True, True), "sendonly": (True, False), "recvonly": (False, True), "inactive": (False, False)}
_DIRECTION_OF = {caps: name for name, caps in _CAN.items()}


def answer_direction(offered: str, wanted: str) -> str:
    """Our answer's direction to an offer of ``offered`` when we would like ``wanted`` (RFC 3264 §6.1).

    We may send only where the offerer receives, and receive only where it sends: a B2BUA that
    mirrors the other leg's answer (``recvonly`` to a hold) gets a direction the offer allows.
    """
    their_send, their_recv = _CAN.get(offered, (True, True))
    our_send, our_recv = _CAN.get(wanted, (True, True))
    return _DIRECTION_OF[(our_send and their_recv, our_recv and their_send)]


def accept_answer(our_offer: SessionDescription, answer: SessionDescription) -> Negotiated:
    """Read the peer's answer to our offer: the first codec it took from those we offered.

    Codecs are matched by name: a peer that answers PCMU or telephone-event under another number than
    our offer's receives with its number and sends to us with ours (``rx_payload_type``)."""
    if len(answer.media) != len(our_offer.media):
        raise SdpError(f"answer has {len(answer.media)} m= lines, the offer had {len(our_offer.media)}")
    for index, (ours, m) in enumerate(zip(our_offer.media, answer.media)):
        if ours.port == 0 or not _relayable(m):
            continue
        our_codecs, our_event = _codecs_of(ours)
        offered = dict(our_codecs)          # name -> our payload type
        codecs, event_pt = _codecs_of(m)
        codecs = [c for c in codecs if c[0] in offered]
        if not codecs:
            continue
        name, pt = codecs[0]
        event = event_pt if our_event is not None else None
        conn = answer.connection_for(m)
        hold = conn is None or conn.is_hold
        return Negotiated(name, pt, event, None if hold else conn.address, m.port, _rtcp_port(m),
                          peer_direction(answer, m), media_index=index,
                          rx_payload_type=offered[name] if offered[name] != pt else None,
                          rx_event_payload_type=our_event if event is not None and our_event != event else None)
    raise NotAcceptable("the answer accepted no audio stream with a codec we offered")


__all__ = ["SdpError", "NotAcceptable", "Origin", "Connection", "Media", "SessionDescription",
           "parse_sdp", "write_sdp", "LocalSdp", "Negotiated", "answer_offer", "make_offer",
           "offer_from", "accept_answer", "peer_direction", "AudioOffer", "audio_offer", "answer_direction",
           "check_offer", "offered_codecs", "chosen_codec", "WARN_TRANSPORT", "WARN_MEDIA_TYPE", "WARN_MEDIA_FORMAT"]
