"""Who is calling: the caller's E.164 number from From, or from P-Asserted-Identity, of a trusted carrier only.

RFC 3325 and RFC 3323: the caller is the From user, unless the From is
anonymous or ``Privacy: id`` is set; then the network-asserted identity
(``P-Asserted-Identity``, ``sip:+49...;user=phone`` or ``tel:+49...``, with
``phone-context`` honoured).  Both are believed only when the INVITE came from
an address of the trust domain (the trusted carriers of the config): anyone can
write a victim's number into a From, so from any other address no header
identifies anybody (``untrusted_source``), and the call manager refuses the
call or, where the operator allows it (``[carriers] untrusted = "pin"``), lets
the caller name their account by its PIN.

Tests pin: each source, the tel: and sip: forms, phone-context, a From or PAI
from an untrusted address identifying nobody, and that a withheld number is
flagged so the agent never sees it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from billing.numbers import Caller, caller
from billing.profile import CallerClass

from .sip.errors import SipParseError
from .sip.headers import NameAddr
from .sip.uri import SipUri, TelUri

_PRIVACY_HIDING = frozenset({"id", "user", "header"})


@dataclass(frozen=True)
class CallerIdentity:
    """The outcome: ``number`` (E.164) or None; ``source`` is ``from``, ``pai`` or ``none``."""

    number: str | None
    source: str
    privacy: bool
    caller_class: CallerClass | None
    #: a PAI was present but came from an untrusted address
    untrusted_pai: bool = False
    #: the INVITE came from outside the trust domain: no header of it was believed
    untrusted_source: bool = False
    #: from outside the trust domain, the number its From names (a claim: only that account's PIN opens it)
    claimed: str | None = None
    #: the number as the INVITE gave it (From, else PAI): E.164 where it could be read, else the user part as
    #: received, cut to 32 characters; None when it named none (for the call record, not for billing)
    received: str | None = None


def _number_of_uri(uri: object, default_region: str) -> Caller | None:
    """The E.164 number a sip:/sips:/tel: URI names, honouring phone-context, and its class."""
    if isinstance(uri, TelUri):
        digits = uri.number
        context = dict(uri.params).get("phone-context")
    elif isinstance(uri, SipUri):
        if not uri.user:
            return None
        user, _, rest = uri.user.partition(";")
        digits = user
        context = None
        for param in rest.split(";") if rest else ():
            name, _, value = param.partition("=")
            if name.lower() == "phone-context":
                context = value
    else:
        return None
    digits = "".join(ch for ch in digits if ch not in "-.() ")
    if context and not digits.startswith("+"):
        if context.startswith("+"):
            # a local number in the context of a country/area prefix (RFC 3966 §5.1.5)
            prefix = "".join(ch for ch in context if ch.isdigit())
            national = digits.lstrip("0") if len(prefix) <= 3 else digits
            return caller(f"+{prefix}{national}", default_region)
        # a domain-name context tells us no country; read the number in our region
    return caller(digits, default_region)


def _received(uri: object, default_region: str) -> str | None:
    """What a URI names as the caller, for the record: its E.164 number, else its user part as it came."""
    number = _number_of_uri(uri, default_region)
    if number is not None:
        return number.e164
    if isinstance(uri, TelUri):
        raw = uri.number
    elif isinstance(uri, SipUri):
        raw = (uri.user or "").partition(";")[0]
    else:
        raw = ""
    return raw[:32] or None


def _is_anonymous(name_addr: NameAddr) -> bool:
    uri = name_addr.uri
    if isinstance(uri, SipUri):
        user = (uri.user or "").lower()
        if user in ("anonymous", "") or uri.host.lower() == "anonymous.invalid":
            return True
    display = (name_addr.display_name or "").strip().strip('"').lower()
    return display == "anonymous"


def is_trusted(host: str, trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether ``host`` (an IP literal) lies in one of the trusted networks."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def identify(*, from_value: str | None, privacy_values: list[str], pai_values: list[str],
             source_host: str, trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
             default_region: str) -> CallerIdentity:
    """Identify the caller of an INVITE from its header values and the address it came from."""
    tokens = {t.strip().lower() for v in privacy_values for t in v.split(";") if t.strip()}
    privacy = bool(tokens & _PRIVACY_HIDING) and "none" not in tokens
    from_addr = None
    if from_value:
        try:
            from_addr = NameAddr.parse(from_value)
        except SipParseError:
            from_addr = None
    anonymous = from_addr is None or _is_anonymous(from_addr)
    withheld = privacy or anonymous
    received = None if anonymous else _received(from_addr.uri, default_region)
    if not is_trusted(source_host, trusted):
        # not logged here: a flood of forged INVITEs would write a line each (the call manager counts them)
        claimed = None if withheld else _number_of_uri(from_addr.uri, default_region)
        return CallerIdentity(None, "none", withheld, None, untrusted_pai=bool(pai_values), untrusted_source=True,
                              claimed=claimed.e164 if claimed else None, received=received)

    if not withheld:
        number = _number_of_uri(from_addr.uri, default_region)
        if number is not None:
            return CallerIdentity(number.e164, "from", False, number.caller_class, received=number.e164)

    numbers = []
    for value in pai_values:
        try:
            uri = NameAddr.parse(value).uri
        except SipParseError:
            continue
        numbers.append(_number_of_uri(uri, default_region))
        received = received or _received(uri, default_region)
    # prefer the tel: / user=phone identity that gave a number; the first that did
    number = next((n for n in numbers if n), None)
    if number is not None:
        return CallerIdentity(number.e164, "pai", withheld, number.caller_class, received=number.e164)
    return CallerIdentity(None, "none", withheld, None, received=received)


ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'
