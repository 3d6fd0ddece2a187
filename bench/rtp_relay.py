"""How many concurrent G.711 calls one core relays: media.relay against a bare Twisted UDP relay and rtpengine.

Two processes.  The relay runs alone in a child process (single-threaded, so
it uses at most one core; not pinned, so that on a shared machine the
scheduler can give it the less busy core); the generator and receiver is a
small C program compiled at run time with gcc (a Python generator cannot send
and receive 90k packets a second; without gcc this process generates, and the
steps are limited by it).  Each call sends 50 packets a second in each direction
(172-byte RTP, 20 ms), spread evenly over the 20 ms period; every payload
carries its send time (wall clock), and the receiver takes each datagram's
arrival time from the kernel (``SO_TIMESTAMPNS``), so the generator's own
scheduling delays do not count as the relay's jitter.  For a number of calls, after a warm-up, it measures for
``--seconds``: loss (packets not received), added jitter (p99 of transit
minus the smallest transit), the relay process's CPU time (which divided by
the packets relayed gives the CPU time per relayed packet), and the share of
the window it spent runnable but waiting for a CPU (``/proc/PID/schedstat``:
other work on the machine, not the relay's limit).

The relays, the same steps, step by step each relay in turn (so that other
work on the machine falls on all of them alike), ``--rounds`` times:

- ``bare``: the reference, a Twisted UDP relay that does no RTP work at all
  (each leg a ``DatagramProtocol`` that latches the source and writes every
  datagram out of the other leg's port);
- ``prepaid``: :class:`media.relay.Relay`, both legs PCMA;
- ``prepaid+announce``: the same, with an announcement mixed into the caller's
  stream of 10 % of the calls (the player's work through
  ``OutgoingStream.set_audio_filter``: decode, add with clipping, encode);
- ``rtpengine``: Debian's ``rtpengine`` (package ``rtpengine-daemon``, the
  media proxy of Kamailio deployments; installed with apt-get where it is
  missing) in userspace forwarding, started by the
  bench on loopback for each step with one worker thread
  (``--rtpengine-threads``), each call set up through its ng control protocol
  (offer and answer, :mod:`rtpengine`, :mod:`bencode`); its CPU is the whole
  process's, every thread summed, read from ``/proc`` as the others' are;
- ``prepaid@base`` (with ``--base-root DIR``): ``prepaid`` with the
  ``media`` package of another checkout (``git worktree add DIR COMMIT``), for
  a before/after comparison in one run.

A step passes with under 0.1 % loss and under 5 ms added jitter at p99 (all
steps run, unless ``--stop-at-failure``).  The capacity of one core is the largest
passing step, and (less sensitive to other load on the machine) the estimate
1 core / (CPU per packet x 100 packets a second per call), CPU per packet
being the median over the steps.

    .venv/bin/python bench/rtp_relay.py [--steps 300,600,900,1200] [--seconds 3] [--relays bare,prepaid]
        [--rounds 3] [--base-root /tmp/rtp-base] [--rtpengine-threads 1]

The relay's user and system CPU time are reported apart (most of the cost is
the kernel's sendto/recvfrom on loopback); ``RTP_RELAY_PROFILE=/tmp/prof``
cProfiles the relay process into ``/tmp/prof.<relay>``.  On a machine shared
with other work the relay may not get a whole core: then loss rises while its
CPU share stays below 100 %, and the CPU time per packet (and the estimate
from it) is the figure to trust.

Prints a table, each relay's CPU per packet (median, min and max over the
steps and rounds) and its ratios to the bare relay and to rtpengine (also step
by step, for their spread); writes ``bench/results/rtp_relay.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FRAME_S = 0.02
SLOTS = 20                     # send slots per 20 ms period
GEN_SOCKETS = 8                # generator sockets per side (legs share them: latching is per leg)
MAGIC = 0x52544231             # "RTB1": marks a payload that carries its send time
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux: the kernel's arrival time per datagram
TIMESPEC = struct.Struct("@qq")
LOSS_LIMIT = 0.001
JITTER_LIMIT_MS = 5.0
WARMUP_S = 1.0
DISCARD_PORT = 9               # our RTCP reports go to the discard port, not into the counts


C_GENERATOR = r"""/* RTP load generator and receiver for bench/rtp_relay.py (compiled at run time with gcc).
 * stdout: line 1 "A p1 p2 ... B q1 q2 ..." (its sockets' ports); stdin: "N" then N lines "porta portb";
 * then it sends, prints "MEASURE" when the window opens and "STOP" when it closes, and a JSON line. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define K 8
#define SLOTS 20
#define MAGIC 0x52544231u

static double now_real(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double now_mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

struct stream { int fd; struct sockaddr_in dest; uint32_t ssrc; uint16_t seq; uint8_t pkt[172]; };

static int fds[2 * K];
static double *transit; static long ntransit, cap;
static long received, received_total;

static void drain(int counting, double win_start, double win_end) {
    uint8_t buf[2048]; char ctrl[256];
    for (int i = 0; i < 2 * K; i++) {
        for (;;) {
            struct iovec iov = { buf, sizeof buf };
            struct msghdr m = { 0 }; m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = ctrl; m.msg_controllen = sizeof ctrl;
            ssize_t n = recvmsg(fds[i], &m, MSG_DONTWAIT);
            if (n < 0) break;
            if (n < 24) continue;
            if (buf[12] == 0xD5 && buf[13] == 0xD5 && buf[14] == 0xD5 && buf[15] == 0xD5) continue;  /* relay's silence fill */
            received_total++;
            if (!counting) continue;
            received++;
            uint32_t magic; memcpy(&magic, buf + 12, 4);
            if (ntohl(magic) != MAGIC) continue;          /* mixed with an announcement: counted, not timed */
            double sent; memcpy(&sent, buf + 16, 8);
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                    struct timespec ts; memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    if (sent >= win_start && sent <= win_end && ntransit < cap)
                        transit[ntransit++] = ts.tv_sec + ts.tv_nsec * 1e-9 - sent;
                }
            }
        }
    }
}

int main(int argc, char **argv) {
    double warmup = atof(argv[1]), seconds = atof(argv[2]);
    int one = 1, rcv = 4 << 20;
    for (int i = 0; i < 2 * K; i++) {
        struct sockaddr_in a = { 0 }; a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        if (bind(fds[i], (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    }
    printf("A");
    for (int i = 0; i < 2 * K; i++) {
        struct sockaddr_in a; socklen_t l = sizeof a; getsockname(fds[i], (struct sockaddr *)&a, &l);
        if (i == K) printf(" B");
        printf(" %d", ntohs(a.sin_port));
    }
    printf("\n"); fflush(stdout);
    int n; if (scanf("%d", &n) != 1) return 1;
    struct stream *st = calloc(2 * n, sizeof *st);
    for (int i = 0; i < n; i++) {
        int pa, pb; if (scanf("%d %d", &pa, &pb) != 2) return 1;
        for (int d = 0; d < 2; d++) {
            struct stream *s = &st[2 * i + d];
            s->fd = fds[d * K + i % K];
            s->dest.sin_family = AF_INET; s->dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            s->dest.sin_port = htons(d ? pb : pa);
            s->ssrc = htonl(2 * i + d); s->seq = rand();
            s->pkt[0] = 0x80; s->pkt[1] = 8; memcpy(s->pkt + 8, &s->ssrc, 4);
            uint32_t m = htonl(MAGIC); memcpy(s->pkt + 12, &m, 4);
        }
    }
    /* shuffle so that each slot mixes calls and directions */
    for (int i = 2 * n - 1; i > 0; i--) { int j = rand() % (i + 1); struct stream t = st[i]; st[i] = st[j]; st[j] = t; }
    cap = (long)(2 * n * 50 * (seconds + 1)) + 1000; transit = malloc(cap * sizeof *transit);
    struct pollfd pfd[2 * K]; for (int i = 0; i < 2 * K; i++) { pfd[i].fd = fds[i]; pfd[i].events = POLLIN; }
    double t0 = now_mono(), next = t0, measure_at = t0 + warmup, end = measure_at + seconds;
    double win_start = 0, win_end = 0;
    long sent = 0, late = 0; int slot = 0, measuring = 0; uint32_t tick = 0;
    for (;;) {
        double now = now_mono();
        if (now >= next) {
            if (now >= end) break;
            if (!measuring && now >= measure_at) {
                drain(0, 0, 0);
                measuring = 1; sent = 0; received = 0; ntransit = 0; win_start = now_real(); win_end = win_start + seconds;
                printf("MEASURE\n"); fflush(stdout);
            }
            if (slot == 0) tick++;
            for (int i = slot; i < 2 * n; i += SLOTS) {
                struct stream *s = &st[i];
                uint16_t seq = htons(s->seq + tick); uint32_t ts = htonl((uint32_t)(tick * 160u));
                memcpy(s->pkt + 2, &seq, 2); memcpy(s->pkt + 4, &ts, 4);
                double t = now_real(); memcpy(s->pkt + 16, &t, 8);
                if (sendto(s->fd, s->pkt, sizeof s->pkt, MSG_DONTWAIT, (struct sockaddr *)&s->dest, sizeof s->dest) == sizeof s->pkt)
                    sent++;
            }
            slot = (slot + 1) % SLOTS;
            next += 0.020 / SLOTS;
            if (now_mono() - next > 0.020) late++;
        }
        double wait = next - now_mono();
        struct timespec to = { 0, wait > 0 ? (long)(wait * 1e9) : 0 };
        if (ppoll(pfd, 2 * K, &to, NULL) > 0) drain(measuring, win_start, win_end);
    }
    printf("STOP\n"); fflush(stdout);
    double drain_end = now_mono() + 0.2;
    while (now_mono() < drain_end) {
        struct timespec to = { 0, 10000000 };
        if (ppoll(pfd, 2 * K, &to, NULL) > 0) drain(1, win_start, win_end);
    }
    qsort(transit, ntransit, sizeof *transit, cmp);
    double base = ntransit ? transit[0] : 0;
    double p99 = ntransit ? transit[(long)(ntransit * 0.99)] - base : 1e9;
    double p50 = ntransit ? transit[ntransit / 2] - base : 1e9;
    printf("{\"sent\": %ld, \"received\": %ld, \"received_total\": %ld, \"timed\": %ld, \"jitter_p99_ms\": %.3f, \"jitter_p50_ms\": %.3f, \"generator_late\": %ld}\n",
           sent, received, received_total, ntransit, p99 * 1000, p50 * 1000, late);
    return 0;
}
"""


# -- the relay process ---------------------------------------------------------

def serve(kind: str, calls: int, announce: float, port_base: int, a_addrs: list, b_addrs: list) -> None:
    """Run one relay with ``calls`` sessions; print the A/B ports; answer 'start'/'stop' on stdin with CPU times."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from twisted.internet import reactor, stdio
    from twisted.internet.protocol import DatagramProtocol
    from twisted.protocols.basic import LineReceiver

    ports: list[tuple[int, int]] = []
    keep: list = []
    if kind == "bare":
        class BareLeg(DatagramProtocol):
            dest = None
            other = None

            def datagramReceived(self, data, addr):
                if self.dest is None:
                    self.dest = addr
                o = self.other
                if o.dest is not None:
                    o.transport.write(data, o.dest)

        for i in range(calls):
            a, b = BareLeg(), BareLeg()
            a.other, b.other = b, a
            pa = reactor.listenUDP(0, a, interface="127.0.0.1")
            pb = reactor.listenUDP(0, b, interface="127.0.0.1")
            a.dest, b.dest = tuple(a_addrs[i % len(a_addrs)]), tuple(b_addrs[i % len(b_addrs)])
            keep += [pa, pb]
            ports.append((pa.getHost().port, pb.getHost().port))
        counter = None
        media_from = "twisted"
    else:
        import media
        from media.relay import Relay
        from media.sdp import Negotiated
        relay = Relay(reactor, "127.0.0.1", port_base, port_base + 4 * calls + 40, silence_timeout_s=60)
        mixer = make_mixer() if announce else None
        for i in range(calls):
            s = relay.open_session()
            ha, pa_ = a_addrs[i % len(a_addrs)]
            hb, pb_ = b_addrs[i % len(b_addrs)]
            s.configure_leg("a", Negotiated("PCMA", 8, 101, ha, pa_, DISCARD_PORT, "sendrecv"))
            s.configure_leg("b", Negotiated("PCMA", 8, 101, hb, pb_, DISCARD_PORT, "sendrecv"))
            if mixer is not None and i % round(1 / announce) == 0:
                s.a_out.set_audio_filter(mixer)
            ports.append((s.leg_a.local_port, s.leg_b.local_port))
        keep.append(relay)
        counter = relay
        media_from = os.path.dirname(media.__file__)

    state: dict = {}

    class Control(LineReceiver):
        delimiter = b"\n"

        def connectionMade(self):
            self.sendLine(json.dumps({"ports": ports, "media_from": media_from}).encode())

        def lineReceived(self, line):
            cmd = line.decode().strip()
            if cmd == "start":
                ru = resource.getrusage(resource.RUSAGE_SELF)
                state["user"], state["sys"] = ru.ru_utime, ru.ru_stime
                state["cpu"] = time.process_time()
                state["relayed"] = counter.counters().packets_relayed if counter else 0
                self.sendLine(b'{"ok": true}')
            elif cmd == "stop":
                cpu = time.process_time() - state["cpu"]
                ru = resource.getrusage(resource.RUSAGE_SELF)
                user, system = ru.ru_utime - state["user"], ru.ru_stime - state["sys"]
                relayed = (counter.counters().packets_relayed - state["relayed"]) if counter else None
                extra = counter.counters().__dict__ if counter else {}
                self.sendLine(json.dumps({"cpu_s": cpu, "user_s": user, "sys_s": system, "relayed": relayed,
                                          "counters": extra}).encode())
            elif cmd == "quit":
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(os.environ["RTP_RELAY_PROFILE"] + f".{kind}")
                reactor.stop()

    profiler = None
    if os.environ.get("RTP_RELAY_PROFILE"):      # a path prefix: cProfile the relay process into it
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    stdio.StandardIO(Control())
    reactor.run()


def make_mixer():
    """The player's mixing work per frame: decode A-law, add a prompt frame with clipping, encode.

    With numpy (as a well-made player would do it: table lookups on arrays), else per sample.
    """
    import math
    from media import g711
    tone = [[int(6000 * math.sin(2 * math.pi * 440 * (f * 160 + n) / 8000)) for n in range(160)]
            for f in range(50)]
    pos = [0]
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is not None:
        decode = np.array(g711.ALAW_DECODE, dtype=np.int32)
        every = np.arange(-32768, 32768, dtype="<i2")
        encode = np.frombuffer(g711.encode(every.tobytes(), "PCMA"), dtype=np.uint8)
        frames = [np.array(f, dtype=np.int32) for f in tone]

        def mix(payload: bytes) -> bytes:
            prompt = frames[pos[0] % 50]
            pos[0] += 1
            voice = decode[np.frombuffer(payload, dtype=np.uint8)]
            mixed = np.clip(voice[:160] + prompt[:len(voice)], -32768, 32767)
            return encode[mixed + 32768].tobytes()
        return mix

    from array import array

    def mix_python(payload: bytes) -> bytes:
        prompt = tone[pos[0] % 50]
        pos[0] += 1
        voice = array("h")
        voice.frombytes(g711.decode(payload, "PCMA"))
        out = array("h", (max(-32768, min(32767, a + b)) for a, b in zip(voice, prompt)))
        return g711.encode(out.tobytes(), "PCMA")
    return mix_python


# -- the generator and receiver ---------------------------------------------------

class Generator:
    def __init__(self) -> None:
        self.a = [self._sock() for _ in range(GEN_SOCKETS)]
        self.b = [self._sock() for _ in range(GEN_SOCKETS)]
        self.sel = selectors.DefaultSelector()
        for s in self.a + self.b:
            self.sel.register(s, selectors.EVENT_READ)

    @staticmethod
    def _sock() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return s

    def addrs(self, side: list) -> list:
        return [s.getsockname() for s in side]

    def close(self) -> None:
        self.sel.close()
        for s in self.a + self.b:
            s.close()

    def run(self, ports: list, seconds: float, on_start=None) -> dict:
        """Send both directions of every call for WARMUP_S + ``seconds``; measure the last ``seconds``."""
        calls = len(ports)
        streams = []      # (socket, dest, bytearray packet)
        for i, (pa, pb) in enumerate(ports):
            for direction, (sock, port) in enumerate(((self.a[i % GEN_SOCKETS], pa), (self.b[i % GEN_SOCKETS], pb))):
                pkt = bytearray(172)
                struct.pack_into("!BBHII", pkt, 0, 0x80, 8, random.randrange(65536), 0, i * 2 + direction)
                streams.append((sock.sendto, ("127.0.0.1", port), pkt))
        random.shuffle(streams)
        per_slot = [streams[k::SLOTS] for k in range(SLOTS)]
        pack_hdr = struct.Struct("!HI").pack_into
        pack_t = struct.Struct("!Id").pack_into
        unpack_t = struct.Struct("!Id").unpack_from
        perf = time.perf_counter
        t0 = perf()
        measure_at = t0 + WARMUP_S
        end = measure_at + seconds
        measuring = False
        sent = received = late_sends = 0
        transits: list[float] = []
        seq = 0
        slot = 0
        next_slot = t0
        buf = bytearray(2048)
        bufs = [buf]
        unpack_ts = TIMESPEC.unpack
        wall = time.time
        socks = [k.fileobj for k in self.sel.get_map().values()]
        while True:
            now = perf()
            if now >= next_slot:
                if now >= end:
                    break
                if not measuring and now >= measure_at:
                    measuring = True
                    if on_start:
                        on_start()
                    sent = received = 0
                    transits.clear()
                    now = perf()
                if slot == 0:
                    seq += 1
                for sendto, dest, pkt in per_slot[slot]:
                    pack_hdr(pkt, 2, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF)
                    pack_t(pkt, 12, MAGIC, wall())
                    try:
                        sendto(pkt, dest)
                    except BlockingIOError:
                        pass
                sent += len(per_slot[slot])
                slot = (slot + 1) % SLOTS
                next_slot += FRAME_S / SLOTS
                if perf() - next_slot > FRAME_S:
                    late_sends += 1
            timeout = max(0.0, next_slot - perf())
            for key, _ in self.sel.select(timeout):
                recvmsg_into = key.fileobj.recvmsg_into
                while True:
                    try:
                        n, anc, _, _ = recvmsg_into(bufs, 64)
                    except BlockingIOError:
                        break
                    received += 1
                    if n >= 24 and anc:
                        magic, t_sent = unpack_t(buf, 12)
                        if magic == MAGIC:
                            sec, nsec = unpack_ts(anc[0][2])
                            transits.append(sec + nsec * 1e-9 - t_sent)
        # drain what is still in flight (sent inside the window)
        drain_end = perf() + 0.2
        while perf() < drain_end:
            for key, _ in self.sel.select(0.01):
                while True:
                    try:
                        key.fileobj.recv_into(buf)
                    except BlockingIOError:
                        break
                    received += 1
        del socks
        transits.sort()
        base = transits[0] if transits else 0.0
        p99 = transits[int(len(transits) * 0.99)] - base if transits else float("inf")
        p50 = transits[len(transits) // 2] - base if transits else float("inf")
        return {"calls": calls, "sent": sent, "received": received,
                "loss": max(0.0, 1 - received / sent) if sent else 1.0,
                "jitter_p99_ms": p99 * 1000, "jitter_p50_ms": p50 * 1000, "generator_late": late_sends}


def build_c_generator(workdir: str) -> str | None:
    """Compile the C generator (a Python one cannot send and receive 90k packets a second); None without gcc."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    src = os.path.join(workdir, "rtpgen.c")
    exe = os.path.join(workdir, "rtpgen")
    with open(src, "w") as f:
        f.write(C_GENERATOR)
    done = subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"could not compile the C generator, using the Python one: {done.stderr[:300]}", file=sys.stderr)
        return None
    return exe


class ChildRelay:
    """One of our relays (``bare``, ``prepaid``) in a child process: its ports, and its CPU on request.

    ``root``: the checkout whose ``media`` package the child imports (another commit's, for a before/after
    comparison in one run); None for this one."""

    def __init__(self, kind: str, calls: int, announce: float, a_addrs: list, b_addrs: list,
                 root: str | None = None) -> None:
        base = random.randrange(20000, 60000 - 4 * calls - 100, 2)
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", kind, "--calls", str(calls),
               "--announce", str(announce), "--port-base", str(base),
               "--a", json.dumps(a_addrs), "--b", json.dumps(b_addrs)] + (["--root", root] if root else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        self.pid = self.proc.pid
        try:
            hello = json.loads(self.proc.stdout.readline())
        except ValueError:
            self.close()
            raise RuntimeError(f"the {kind} relay did not start (exit status {self.proc.returncode})") from None
        self.ports = [tuple(p) for p in hello["ports"]]
        self.media_from = hello.get("media_from")

    def start(self) -> None:
        self._tell("start")

    def stop(self) -> dict:
        return self._tell("stop")

    def _tell(self, line: str) -> dict:
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


class RtpEngineRelay:
    """Debian's rtpengine in userspace forwarding (:mod:`rtpengine`), its calls set up through ng."""

    def __init__(self, calls: int, a_addrs: list, b_addrs: list, workdir: str, threads: int) -> None:
        import rtpengine
        base = random.randrange(20000, 60000 - 4 * calls - 200, 2)
        self.engine = rtpengine.RtpEngine(workdir, base, base + 4 * calls + 100, threads=threads)
        self.engine.start()
        try:
            self.pid = self.engine.pid
            self.ports = [self.engine.call(f"bench-{i}", tuple(a_addrs[i % len(a_addrs)]),
                                           tuple(b_addrs[i % len(b_addrs)]))
                          for i in range(calls)]
        except BaseException:
            self.engine.stop()
            raise
        self.media_from = rtpengine.RTPENGINE
        self._cpu = (0.0, 0.0)

    def start(self) -> None:
        self._cpu = proc_cpu(self.pid) or (0.0, 0.0)

    def stop(self) -> dict:
        now = proc_cpu(self.pid) or self._cpu
        return {"cpu_s": sum(now) - sum(self._cpu), "user_s": now[0] - self._cpu[0], "sys_s": now[1] - self._cpu[1],
                "relayed": None, "counters": {}}

    def close(self) -> None:
        self.engine.stop()


#: name -> (kind, share of calls with an announcement mixed in)
RELAYS = {"bare": ("bare", 0.0), "prepaid": ("prepaid", 0.0), "prepaid+announce": ("prepaid", 0.1),
          "rtpengine": ("rtpengine", 0.0)}


def open_relay(name: str, calls: int, a_addrs: list, b_addrs: list, opts) -> ChildRelay | RtpEngineRelay:
    """Start relay ``name`` (one of RELAYS, or ``prepaid@base``: prepaid from ``--base-root``) for ``calls``."""
    if name == "rtpengine":
        return RtpEngineRelay(calls, a_addrs, b_addrs, opts.workdir, opts.rtpengine_threads)
    if name == "prepaid@base":
        return ChildRelay("prepaid", calls, 0.0, a_addrs, b_addrs, root=opts.base_root)
    kind, announce = RELAYS[name]
    return ChildRelay(kind, calls, announce, a_addrs, b_addrs)


def proc_cpu(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a process (all its threads), read from outside (/proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_delay_s(pid: int) -> float | None:
    """Seconds the process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat), or None."""
    total = None
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total = (total or 0.0) + int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue                  # a thread that ended meanwhile
    return total


def run_step_c(exe: str, name: str, calls: int, seconds: float, opts) -> dict:
    """One step with the C generator in its own process (on the other core)."""
    gen = subprocess.Popen([exe, str(WARMUP_S), str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    relay = None
    result: dict = {}
    try:
        words = gen.stdout.readline().decode().split()
        b_at = words.index("B")
        a_addrs = [["127.0.0.1", int(p)] for p in words[1:b_at]]
        b_addrs = [["127.0.0.1", int(p)] for p in words[b_at + 1:]]
        relay = open_relay(name, calls, a_addrs, b_addrs, opts)
        ports = relay.ports
        gen.stdin.write((f"{len(ports)}\n" + "".join(f"{a} {b}\n" for a, b in ports)).encode())
        gen.stdin.flush()
        cpu_begin = proc_cpu(relay.pid)          # the relay is idle: the generator starts now
        relay_cpu = None
        for raw in gen.stdout:
            line = raw.decode().strip()
            if line == "MEASURE":
                outside = proc_cpu(relay.pid)
                delay_start = run_delay_s(relay.pid)
                wall_start = time.monotonic()
                relay.start()
            elif line == "STOP":
                stop_outside = proc_cpu(relay.pid)
                wall = time.monotonic() - wall_start
                delay_end = run_delay_s(relay.pid)
                relay_cpu = relay.stop()
                if outside and stop_outside:
                    # measured from outside at the generator's window: an overloaded relay answers
                    # its control lines late, so its own start/stop window would shrink
                    relay_cpu.update(user_s=stop_outside[0] - outside[0], sys_s=stop_outside[1] - outside[1],
                                     cpu_s=stop_outside[0] + stop_outside[1] - outside[0] - outside[1],
                                     wall_s=wall, relayed=None,
                                     waiting_for_cpu_share=(delay_end - delay_start) / wall
                                     if delay_start is not None and delay_end is not None else None)
            elif line.startswith("{"):
                result = json.loads(line)
                cpu_end = proc_cpu(relay.pid)
                if cpu_begin and cpu_end:
                    # CPU per packet over the whole run (warm-up included) against every packet the
                    # generator got back: no window to misalign
                    result["cpu_us_per_packet_run"] = (sum(cpu_end) - sum(cpu_begin)) / max(1, result["received_total"]) * 1e6
                break
        gen.wait(timeout=10)
    finally:
        if relay is not None:
            relay.close()
        if gen.poll() is None:
            gen.kill()
            gen.wait()
    if relay_cpu is None:
        raise RuntimeError(f"{name}, {calls} calls: the generator ended without a measurement window")
    result["calls"] = calls
    result["media_from"] = relay.media_from
    result["loss"] = max(0.0, 1 - result["received"] / result["sent"]) if result["sent"] else 1.0
    return finish(result, name, relay_cpu, seconds)


def finish(result: dict, name: str, relay: dict, seconds: float) -> dict:
    relayed = relay["relayed"] or result["received"]
    per_packet = result.get("cpu_us_per_packet_run") or (relay["cpu_s"] / relayed * 1e6 if relayed else None)
    result.update(kind=name, announce_share=RELAYS.get(name, ("", 0.0))[1], relay_cpu_s=relay["cpu_s"],
                  relayed=relayed, relay_counters=relay.get("counters"), relay_user_s=relay.get("user_s"),
                  relay_sys_s=relay.get("sys_s"),
                  cpu_us_per_packet=per_packet,
                  relay_core_share=relay["cpu_s"] / (relay.get("wall_s") or seconds),
                  relay_waiting_for_cpu_share=relay.get("waiting_for_cpu_share"))
    result["passed"] = result["loss"] < LOSS_LIMIT and result["jitter_p99_ms"] < JITTER_LIMIT_MS
    return result


def run_step(name: str, calls: int, seconds: float, gen: Generator, opts) -> dict:
    """One step with the Python generator in this process (when there is no C compiler)."""
    relay = open_relay(name, calls, gen.addrs(gen.a), gen.addrs(gen.b), opts)
    try:
        result = gen.run(relay.ports, seconds, on_start=relay.start)
        relay_cpu = relay.stop()
    finally:
        relay.close()
    result["media_from"] = relay.media_from
    return finish(result, name, relay_cpu, seconds)


def spread(values: list[float]) -> dict:
    """Median, min and max of a list of figures (None when empty)."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", default="300,600,900,1200")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every step of every relay this many times (the spread is reported)")
    ap.add_argument("--stop-at-failure", action="store_true",
                    help="stop a relay's steps at the first that fails (default: run all, for CPU/packet at each load)")
    ap.add_argument("--relays", default="bare,prepaid,prepaid+announce,rtpengine",
                    help="which of bare, prepaid, prepaid+announce, rtpengine (and prepaid@base with --base-root) "
                         "to run (bare is the reference; rtpengine is skipped where it is not installed)")
    ap.add_argument("--base-root", help="a checkout of another commit: adds the relay prepaid@base, its media.relay")
    ap.add_argument("--rtpengine-threads", type=int, default=1,
                    help="rtpengine's --num-threads (1: one core, as our relay; CPU is summed over its threads)")
    ap.add_argument("--serve")
    ap.add_argument("--root")
    ap.add_argument("--calls", type=int)
    ap.add_argument("--announce", type=float, default=0.0)
    ap.add_argument("--port-base", type=int)
    ap.add_argument("--a")
    ap.add_argument("--b")
    args = ap.parse_args()
    if args.serve:
        if args.root:
            sys.path.insert(0, os.path.abspath(args.root))
        serve(args.serve, args.calls, args.announce, args.port_base, json.loads(args.a), json.loads(args.b))
        return
    import rtpengine
    steps = [int(x) for x in args.steps.split(",")]
    names = [n for n in args.relays.split(",") if n]
    if args.base_root and "prepaid@base" not in names:
        names.insert(names.index("prepaid") if "prepaid" in names else len(names), "prepaid@base")
    unknown = [n for n in names if n not in RELAYS and n != "prepaid@base"]
    if unknown or ("prepaid@base" in names and not args.base_root):
        ap.error(f"unknown relays {unknown} (or prepaid@base without --base-root)")
    if "rtpengine" in names:
        why = rtpengine.ensure_installed()          # apt-get install rtpengine-daemon where it is missing
        if why:
            print(f"rtpengine's reference is skipped: {why}", file=sys.stderr)
            names.remove("rtpengine")
    cores = sorted(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp(prefix="rtp_relay_bench_")
    args.workdir = workdir
    exe = build_c_generator(workdir)
    gen = None if exe else Generator()
    step = ((lambda name, calls: run_step_c(exe, name, calls, args.seconds, args)) if exe
            else (lambda name, calls: run_step(name, calls, args.seconds, gen, args)))
    report: dict = {"steps": steps, "seconds": args.seconds, "rounds": args.rounds, "loss_limit": LOSS_LIMIT,
                    "jitter_limit_ms": JITTER_LIMIT_MS, "cores": len(cores), "base_root": args.base_root,
                    "rtpengine_threads": args.rtpengine_threads if "rtpengine" in names else None,
                    "load_before": os.getloadavg(), "generator": "C" if exe else "Python", "runs": {}}
    runs: dict[str, list[dict]] = {n: [] for n in names}
    failed: set[str] = set()
    print(f"{'relay':<18}{'calls':>6}{'loss %':>9}{'p99 ms':>9}{'relay CPU':>10}{'CPU wait':>9}{'us/pkt':>8}  pass")
    try:
        # step by step, every relay in turn: load from other work on the machine falls on all of them alike
        for _ in range(args.rounds):
            for calls in steps:
                for name in names:
                    if name in failed:
                        continue
                    r = step(name, calls)
                    runs[name].append(r)
                    wait = r.get("relay_waiting_for_cpu_share")
                    print(f"{name:<18}{calls:>6}{r['loss'] * 100:>9.3f}{min(r['jitter_p99_ms'], 99999):>9.2f}"
                          f"{r['relay_core_share'] * 100:>9.0f}%"
                          f"{(f'{wait * 100:.0f}%' if wait is not None else '-'):>9}{r['cpu_us_per_packet'] or 0:>8.2f}  "
                          f"{'yes' if r['passed'] else 'NO'}", flush=True)
                    if not r["passed"] and args.stop_at_failure:
                        failed.add(name)
    finally:
        if gen is not None:
            gen.close()
        shutil.rmtree(workdir, ignore_errors=True)
    for name, rs in runs.items():
        passing = [r["calls"] for r in rs if r["passed"]]
        # the median over the steps; a step in which the relay got almost no CPU (a machine busy
        # with other work) says nothing about the relay
        per_pkt = spread([r["cpu_us_per_packet"] for r in rs
                          if r["cpu_us_per_packet"] and r["relay_core_share"] > 0.05])
        best = per_pkt["median"]
        report["runs"][name] = {
            "steps": rs,
            "max_calls_passed": max(passing) if passing else 0,
            "cpu_us_per_packet": best,
            "cpu_us_per_packet_spread": per_pkt,
            "calls_per_core_estimate": int(1e6 / (best * 100)) if best else None,
        }
    print()
    bare = report["runs"].get("bare", {}).get("cpu_us_per_packet")
    engine = report["runs"].get("rtpengine", {}).get("cpu_us_per_packet")
    for name, r in report["runs"].items():
        mine = r["cpu_us_per_packet"]
        r["cpu_ratio_to_bare"] = mine / bare if mine and bare else None
        r["cpu_ratio_to_rtpengine"] = mine / engine if mine and engine else None
        # the ratio step by step (the same load, minutes apart at most): its spread
        pairs = [(m["cpu_us_per_packet"], e["cpu_us_per_packet"])
                 for m, e in zip(r["steps"], report["runs"].get("rtpengine", {}).get("steps", []))
                 if m["cpu_us_per_packet"] and e["cpu_us_per_packet"]]
        r["cpu_ratio_to_rtpengine_per_step"] = spread([m / e for m, e in pairs]) if engine else None
        if mine is None:
            print(f"{name:<18} max calls passed {r['max_calls_passed']:>5}   no usable CPU figure")
            continue
        s = r["cpu_us_per_packet_spread"]
        print(f"{name:<18} max calls passed {r['max_calls_passed']:>5}   CPU/packet {mine:.2f} us"
              f" (median of {s['n']} steps, {s['min']:.2f}..{s['max']:.2f})"
              f"   estimate {r['calls_per_core_estimate']} calls/core"
              + (f"   x{r['cpu_ratio_to_bare']:.2f} of bare" if r["cpu_ratio_to_bare"] else "")
              + (f"   x{r['cpu_ratio_to_rtpengine']:.2f} of rtpengine" if r["cpu_ratio_to_rtpengine"] else ""))
    for name in ("prepaid", "prepaid@base"):
        r = report["runs"].get(name)
        if r and r["cpu_ratio_to_rtpengine"]:
            per = r["cpu_ratio_to_rtpengine_per_step"]
            print(f"{name} / rtpengine (userspace, {args.rtpengine_threads} thread(s)) CPU per packet: "
                  f"x{r['cpu_ratio_to_rtpengine']:.2f} (per step {per['min']:.2f}..{per['max']:.2f})")
            report[f"{name}_over_rtpengine"] = r["cpu_ratio_to_rtpengine"]
    print(f"load average before/after: {report['load_before'][0]:.2f} / {os.getloadavg()[0]:.2f}"
          f" on {report['cores']} cores")
    report["load_after"] = os.getloadavg()
    out = os.path.join(ROOT, "bench", "results", "rtp_relay.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
