"""The RTP side of ``bench/capacity.py``: the load generator and receiver, and the plain relay (the ceiling).

``python bench/rtpload.py generator``: one process, non-blocking sockets in an epoll set, and a timer
wheel of 20 slots per 20 ms period; every stream sends 50 packets a second of 172 bytes (G.711 A-law,
20 ms) from one of two sockets, side A (the carrier's) and side B (the agent's).  Each payload starts with
a marker, the stream's number, its own sequence number and the time it was sent (``time.time()``); the
receiver takes each datagram's arrival from the kernel (``SO_TIMESTAMPNS``), so that neither the
generator's sending nor its reading late counts as the relay's jitter.  Streams come two ways:

* learned (a node): a datagram from a new address on a side's socket is a new call leg of the node (it
  sends silence or the announcement from its leg's port as soon as the leg is set up); a stream is
  started back to that address at once;
* given (``targets``: rtpengine, the plain relay): ``[[port A sends to, port B sends to], ...]``.

At the receivers: loss by the streams' sequence numbers in a window (:func:`rtpstats.window_loss`), p99 of
the RFC 3550 jitter of every packet (:func:`rtpstats.jitter_step`), and on side A, for each leg of the
node, when its first datagram and its first audible one (the announcement) arrived.

Control: a JSON line per command on stdin, a JSON line per answer on stdout. The first line out is
``{"a": port, "b": port}`` (the sockets' RTP ports; each has its RTCP port + 1 bound too, read and
dropped).  Commands: ``{"cmd": "targets", "pairs": [...]}``, ``{"cmd": "status"}``, ``{"cmd": "start"}``
(opens the window), ``{"cmd": "stop"}`` (closes it; the answer, after a 300 ms drain, has the window's
figures), ``{"cmd": "prompts"}``, ``{"cmd": "quit"}``.

``python bench/rtpload.py plain HOST:PORT HOST:PORT`` (sides A and B): the plain relay, the least a Python
process can do per packet: per call two blocking sockets, one ``epoll.poll()`` wait, and for each
ready socket one ``recv`` and one ``sendto`` towards the other side's fixed address; no latching, no
RTP parsing.  Commands: ``{"cmd": "add", "calls": N}`` (answers the new calls' port pairs), ``quit``.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rtpstats import Histogram, audible, jitter_step, window_loss  # noqa: E402

PACKET_BYTES = 172             # 12 of RTP header, 160 of G.711 (20 ms at 8 kHz)
FRAME_S = 0.02
SLOTS = 20                     # timer wheel: send slots per 20 ms period
MAGIC = 0x43415031             # "CAP1": a payload of ours, relayed
PAYLOAD = struct.Struct("!IIId")   # magic, stream, sequence, send time (time.time())
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
TIMESPEC = struct.Struct("@qq")
RCVBUF_BYTES = 64 << 20        # a receiver that falls behind a moment must not drop: it would read as loss
LATE_S = 0.010                 # a send slot fired this late counts as the generator falling behind
SEND_BURST = 4                 # send slots fired at most between two reads of the sockets
CATCH_UP_S = 0.040             # further behind than this, the slots missed are skipped (and counted)
DRAIN_S = 0.3                  # after the window: packets still in flight are counted this long
READ_BURST = 256               # datagrams read off one socket before the send wheel gets a look
NOT_YET = 1 << 62              # a window bound not set yet


def _bound_pair(rcvbuf: int) -> tuple[socket.socket, socket.socket]:
    """An RTP socket on an even port of 127.0.0.1 and its RTCP socket on the next (SDP says port + 1)."""
    for _ in range(200):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind(("127.0.0.1", port + 1))
            except OSError:
                rtcp.close()
                rtp.close()
                continue
            for s in (rtp, rtcp):
                s.setblocking(False)
            try:
                rtp.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            return rtp, rtcp
        rtp.close()
    raise RuntimeError("no free even/odd port pair on 127.0.0.1")


def socket_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped at these local UDP ports of 127.0.0.1 (their receive buffers were full)."""
    drops = 0
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) in ports:
                    drops += int(fields[-1])
    except OSError:
        pass
    return drops


def run_delay_s() -> float:
    """Seconds this process has been runnable but waiting for a CPU (/proc/self/schedstat), 0 without it."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Commands:
    """The JSON lines on stdin (fd 0, which the caller's epoll set watches), read without blocking on a line."""

    def __init__(self) -> None:
        self.pending = b""

    def read(self) -> list[dict] | None:
        """The commands complete so far; None at the end of the input."""
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


class Generator:
    """The streams, the timer wheel that sends them, and the receivers' counts."""

    def __init__(self) -> None:
        from media.g711 import ALAW_DECODE
        self.decode = ALAW_DECODE
        self.sock = {}
        self.rtcp = {}
        for side in "ab":
            self.sock[side], self.rtcp[side] = _bound_pair(RCVBUF_BYTES)
        self.learn = True
        # per stream, by number: the socket's sendto, its destination, its packet, and the counts
        self.wheel: list[list[tuple]] = [[] for _ in range(SLOTS)]
        self.dest_of: dict[tuple[str, tuple], int] = {}      # (side, address) -> stream
        self.known: dict[str, set] = {"a": set(), "b": set()}  # learned legs of the node, per side
        self.tx_seq: list[int] = []
        self.lo: list[int] = []
        self.hi: list[int] = []
        self.rx_window: list[int] = []
        self.rx_total: list[int] = []
        self.transit: list[float] = []
        self.jitter: list[float] = []
        self.hist = Histogram()
        self.measuring = False
        # side A's legs of the node: (host, port) -> [first datagram at, first audible at]
        self.legs_a: dict[tuple, list] = {}
        self.slots_fired = self.slots_late = self.slots_skipped = 0
        self.window: dict = {}

    def add_stream(self, side: str, dest: tuple) -> int:
        sid = len(self.tx_seq)
        pkt = bytearray(PACKET_BYTES)
        struct.pack_into("!BBHII", pkt, 0, 0x80, 8, 0, 0, 0x10000 + sid)
        self.wheel[sid % SLOTS].append((self.sock[side].sendto, dest, pkt, sid))
        self.dest_of[(side, dest)] = sid
        for column, value in ((self.tx_seq, 0), (self.lo, NOT_YET), (self.hi, NOT_YET), (self.rx_window, 0),
                              (self.rx_total, 0), (self.transit, 0.0), (self.jitter, 0.0)):
            column.append(value)
        return sid

    def send_slot(self, slot: int, tick: int) -> None:
        pack_hdr = struct.pack_into
        pack = PAYLOAD.pack_into
        tx_seq = self.tx_seq
        wall = time.time
        for sendto, dest, pkt, sid in self.wheel[slot]:
            seq = tx_seq[sid]
            pack_hdr("!HI", pkt, 2, seq & 0xFFFF, (tick * 160) & 0xFFFFFFFF)
            pack(pkt, 12, MAGIC, sid, seq, wall())
            try:
                sendto(pkt, dest)
            except (BlockingIOError, ConnectionRefusedError):
                pass                   # counted by the receiver as lost, as the relay's own drops are
            tx_seq[sid] = seq + 1

    def read(self, side: str) -> None:
        sock = self.sock[side]
        recvmsg_into = sock.recvmsg_into
        buf = bytearray(2048)
        bufs = [buf]
        view = memoryview(buf)
        unpack = PAYLOAD.unpack_from
        unpack_ts = TIMESPEC.unpack
        lo, hi, rx_window, rx_total = self.lo, self.hi, self.rx_window, self.rx_total
        transit, jitter, hist = self.transit, self.jitter, self.hist
        learn, known = self.learn, self.known[side]
        for _ in range(READ_BURST):
            try:
                n, anc, _, addr = recvmsg_into(bufs, 64)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if n < 12 + PAYLOAD.size:
                continue
            arrived = None
            if anc:
                sec, nsec = unpack_ts(anc[0][2])
                arrived = sec + nsec * 1e-9
            if learn and addr not in known:
                self.learn_leg(side, addr, arrived or time.time())
            magic, sid, seq, sent = unpack(buf, 12)
            if magic == MAGIC and sid < len(rx_total):
                rx_total[sid] += 1
                if arrived is None:
                    arrived = time.time()
                t = arrived - sent
                if rx_total[sid] > 1:
                    jitter[sid] = jitter_step(jitter[sid], transit[sid], t)
                transit[sid] = t
                if lo[sid] <= seq < hi[sid]:
                    rx_window[sid] += 1
                    hist.add(jitter[sid] * 1000.0)
            else:
                self.node_datagram(side, addr, view[12:n], arrived or time.time())

    def learn_leg(self, side: str, addr: tuple, arrived: float) -> None:
        """The first datagram from a leg of the node (silence, the announcement, or relayed audio): a stream
        back to it starts at once."""
        self.known[side].add(addr)
        self.add_stream(side, addr)
        if side == "a":
            self.legs_a[addr] = [arrived, None]

    def node_datagram(self, side: str, addr: tuple, payload, arrived: float) -> None:
        """Silence or the announcement from a leg of the node: on side A, note when the leg's first
        audible datagram arrived."""
        if side == "a":
            leg = self.legs_a.get(addr)
            if leg is not None and leg[1] is None and audible(payload, self.decode):
                leg[1] = arrived

    def start_window(self) -> None:
        self.hist = Histogram()
        for sid in range(len(self.tx_seq)):
            self.lo[sid], self.hi[sid], self.rx_window[sid] = self.tx_seq[sid], NOT_YET, 0
        self.slots_fired = self.slots_late = self.slots_skipped = 0
        self.window = {"started": time.monotonic(), "cpu": time.process_time(), "run_delay": run_delay_s(),
                       "drops": socket_drops(self.ports())}
        self.measuring = True

    def stop_window(self) -> None:
        counted = [sid for sid in range(len(self.tx_seq)) if self.lo[sid] != NOT_YET]
        for sid in counted:
            self.hi[sid] = self.tx_seq[sid]
        self.window.update(stopped=time.monotonic(), cpu_stopped=time.process_time(), run_delay_stopped=run_delay_s(),
                           counted=counted,
                           slots_fired=self.slots_fired, slots_late=self.slots_late,
                           slots_skipped=self.slots_skipped)
        self.measuring = False

    def window_figures(self) -> dict:
        w = self.window
        counted = w["counted"]
        expected, received, loss = window_loss([(self.lo[s], self.hi[s]) for s in counted],
                                               [self.rx_window[s] for s in counted])
        wall = w["stopped"] - w["started"]
        silent = sum(1 for s in counted if self.hi[s] > self.lo[s] and not self.rx_window[s])
        figures = {"streams": len(counted), "streams_silent": silent, "expected": expected,
                   "received": received, "loss": loss,
                   "jitter_p99_ms": self.hist.quantile(0.99), "jitter_p50_ms": self.hist.quantile(0.5),
                   "jitter_max_ms": self.hist.max_ms, "wall_s": wall,
                   "generator_cpu_share": (w["cpu_stopped"] - w["cpu"]) / wall if wall else None,
                   # runnable but waiting for a CPU: the machine's other work, not the generator's own cost
                   "generator_waiting_share": (w["run_delay_stopped"] - w["run_delay"]) / wall if wall else None,
                   "generator_late_share": w["slots_late"] / w["slots_fired"] if w["slots_fired"] else 0.0,
                   # sends it could not make at all (more than CATCH_UP_S behind): the load it was asked for
                   # is not what it offered
                   "generator_skipped_share": (w["slots_skipped"] / (w["slots_fired"] + w["slots_skipped"])
                                               if w["slots_fired"] else 1.0),
                   "generator_socket_drops": socket_drops(self.ports()) - w["drops"]}
        for sid in counted:                      # the next window counts afresh
            self.lo[sid] = self.hi[sid] = NOT_YET
        return figures

    def ports(self) -> set[int]:
        return {s.getsockname()[1] for s in list(self.sock.values()) + list(self.rtcp.values())}

    def status(self) -> dict:
        sides = {"a": 0, "b": 0}
        for side, _ in self.dest_of:
            sides[side] += 1
        return {"streams": len(self.tx_seq), "streams_a": sides["a"], "streams_b": sides["b"],
                "delivering": sum(1 for n in self.rx_total if n)}

    def prompts(self) -> list:
        return [[addr[1], first, heard] for addr, (first, heard) in self.legs_a.items()]


def run_generator() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gen = Generator()
    out = sys.stdout
    out.write(json.dumps({"a": gen.sock["a"].getsockname()[1], "b": gen.sock["b"].getsockname()[1]}) + "\n")
    out.flush()
    ep = select.epoll()
    by_fd = {gen.sock[side].fileno(): side for side in "ab"}
    rtcp_fds = {s.fileno(): s for s in gen.rtcp.values()}
    for fd in list(by_fd) + list(rtcp_fds) + [0]:
        ep.register(fd, select.EPOLLIN)
    commands = Commands()
    drain_until = None
    perf = time.perf_counter
    t0 = perf()
    next_slot, slot, tick = t0, 0, 0
    while True:
        now = perf()
        if now - next_slot > CATCH_UP_S:            # too far behind: skip ahead rather than starve the readers
            gen.slots_skipped += int((now - next_slot) / (FRAME_S / SLOTS))
            next_slot = now
        for _ in range(SEND_BURST):                 # the wheel: the due slots, a few a turn, so that the
            # receivers are read between them (a generator behind must not let its receive queues grow)
            if now < next_slot:
                break
            if slot == 0:
                tick += 1
            gen.send_slot(slot, tick)
            gen.slots_fired += 1
            if now - next_slot > LATE_S:
                gen.slots_late += 1
            slot = (slot + 1) % SLOTS
            next_slot += FRAME_S / SLOTS
            now = perf()
        if drain_until is not None and now >= drain_until:
            drain_until = None
            out.write(json.dumps(gen.window_figures()) + "\n")
            out.flush()
        for fd, _ in ep.poll(max(0.0, next_slot - perf())):
            side = by_fd.get(fd)
            if side is not None:
                gen.read(side)
            elif fd in rtcp_fds:
                try:
                    while True:
                        rtcp_fds[fd].recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    pass
            else:
                messages = commands.read()
                if messages is None:
                    return
                for msg in messages:
                    cmd = msg["cmd"]
                    if cmd == "quit":
                        return
                    if cmd == "targets":
                        gen.learn = False
                        for pa, pb in msg["pairs"]:
                            gen.add_stream("a", ("127.0.0.1", pa))
                            gen.add_stream("b", ("127.0.0.1", pb))
                        answer = gen.status()
                    elif cmd == "status":
                        answer = gen.status()
                    elif cmd == "start":
                        gen.start_window()
                        answer = {"ok": True}
                    elif cmd == "stop":
                        gen.stop_window()
                        drain_until = perf() + DRAIN_S
                        continue                    # answered after the drain
                    elif cmd == "prompts":
                        answer = {"legs": gen.prompts()}
                    else:
                        answer = {"error": f"unknown command {cmd}"}
                    out.write(json.dumps(answer) + "\n")
                    out.flush()


def run_plain(a: tuple[str, int], b: tuple[str, int]) -> None:
    """The plain relay: see the module's docstring."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ep = select.epoll()
    ep.register(0, select.EPOLLIN)
    route: dict[int, tuple] = {}           # fd -> (its recv, the other socket's sendto, where it sends)
    keep = []
    commands = Commands()
    while True:
        for fd, _ in ep.poll():
            r = route.get(fd)
            if r is not None:
                r[1](r[0](2048), r[2])
                continue
            messages = commands.read()
            if messages is None:
                return
            for msg in messages:
                if msg["cmd"] == "quit":
                    return
                ports = []
                for _ in range(msg["calls"]):
                    sa, sb = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
                    for s in (sa, sb):
                        s.bind(("127.0.0.1", 0))
                        ep.register(s.fileno(), select.EPOLLIN)
                        keep.append(s)
                    route[sa.fileno()] = (sa.recv, sb.sendto, b)     # from side A: out to side B
                    route[sb.fileno()] = (sb.recv, sa.sendto, a)
                    ports.append([sa.getsockname()[1], sb.getsockname()[1]])
                sys.stdout.write(json.dumps({"pairs": ports}) + "\n")
                sys.stdout.flush()


def main() -> None:
    role = sys.argv[1]
    if role == "generator":
        run_generator()
    elif role == "plain":
        host_a, port_a = sys.argv[2].rsplit(":", 1)
        host_b, port_b = sys.argv[3].rsplit(":", 1)
        run_plain((host_a, int(port_a)), (host_b, int(port_b)))
    else:
        raise SystemExit(f"usage: rtpload.py generator | plain HOST:PORT HOST:PORT (not {role!r})")


if __name__ == "__main__":
    main()
