"""Where SIP bytes come from and go to: the seam between the sans-I/O core and the transports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote SIP address as a transport sees it.

    ``transport`` is ``"udp"``, ``"tcp"`` or ``"tls"`` (lower case); ``host`` an
    IP address literal (IPv6 without brackets); ``port`` an int.
    """

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        """Stream transports deliver or fail; no retransmissions (RFC 3261 §17.1.1.2)."""
        return self.transport != "udp"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Bytes the core wants sent to ``peer``; the transport opens or reuses a connection for streams."""

    data: bytes
    peer: Peer
