"""``python -m tests.support.faulty_node run --config PATH``: ``prepaid run`` with bugs planted, for the test that a
node logs each internal error once, with its time and its call id (tests/node/test_node_faults.py).

Each bug fires only on a marked input, so the node otherwise serves as usual:

- the SIP core fails on a request carrying ``X-Plant: core``;
- the RTP relay fails on a datagram containing :data:`RTP_MARK`;
- call control fails as a call from :data:`CALL_CALLER` starts.
"""

from __future__ import annotations

import sys

RTP_MARK = b"PLANTED-RTP-FAULT"
CALL_CALLER = "+4930555666777"


def plant() -> None:
    from b2bua.call import Call
    from b2bua.sip.endpoint import SipEndpoint
    from media.stream import OutgoingStream

    receive_request = SipEndpoint._receive_request

    def failing_receive_request(self, request, peer, now):
        if request.headers.get("X-Plant") == "core":
            raise RuntimeError("planted in the SIP core")
        return receive_request(self, request, peer, now)
    SipEndpoint._receive_request = failing_receive_request

    relay_unpacked = OutgoingStream.relay_unpacked     # where every relayed audio datagram goes, from either socket

    def failing_relay_unpacked(self, data, *args):
        if RTP_MARK in bytes(data):
            raise RuntimeError("planted in the RTP relay")
        return relay_unpacked(self, data, *args)
    OutgoingStream.relay_unpacked = failing_relay_unpacked

    start = Call.start

    def failing_start(self):
        if self.identity.number == CALL_CALLER:
            raise RuntimeError("planted in call control")
        return start(self)
    Call.start = failing_start


if __name__ == "__main__":
    plant()
    from b2bua.node.cli import main
    sys.exit(main(sys.argv[1:]))
