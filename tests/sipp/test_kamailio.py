"""Kamailio in front of two prepaid nodes (issue 17): the shipped conf/kamailio/kamailio.cfg, run as it is.

The test starts Debian's ``kamailio`` on the operators' file itself, its defines
overridden on the command line (``-A LISTEN_IP=127.0.0.1``, a free SIP port, a
dispatcher list naming the two nodes, 127.0.0.1/32 as the carriers' network),
in front of two real ``prepaid run`` nodes on one PostgreSQL schema (the
cluster of tests/node/test_two_nodes.py). SIPp plays the carrier, through Kamailio,
and one agent that both nodes ring. Everything is on loopback, on free ports.

A stranger (127.0.0.2) gets 403 from Kamailio. Then node a gets SIGKILL with
calls up on it. New calls hashed to it time out at Kamailio's FR_TIMER_MS and
go to node b: each is answered within 5 s, and the test prints the failover
time it measured; node b's reconciler settles node a's calls; the ledger sums
to the balance. Another test has Kamailio probe a node with OPTIONS every second: a node that stops is
marked inactive with no call sent to it, and once restarted on its port it is back in service. The last
test starts the config's TLS example (-A WITH_TLS,
conf/kamailio/tls.cfg) and speaks SIP over TLS to it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.node.test_two_nodes import (CALLER, FROM_CALLER, SERVICE, agent_uri, balance_cents,  # noqa: F401
                                       check_books, cluster, rows, wait_for)
from tests.sipp.harness import ROOT, SCENARIOS, SIPP, free_port, start_sipp
from tests.sipp.node import start_node

KAMAILIO = shutil.which("kamailio", path="/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin")
CONFIG = ROOT / "conf" / "kamailio" / "kamailio.cfg"
KAMCMD = shutil.which("kamcmd", path="/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin")
TLS_MODULE = next(iter(sorted(Path("/usr/lib").glob("*/kamailio/modules/tls.so"))), None)

pytestmark = [pytest.mark.sipp, pytest.mark.kamailio,
              pytest.mark.skipif(KAMAILIO is None, reason="kamailio is not installed (Debian package kamailio)")]

#: the carriers' network; the stranger (127.0.0.2) is outside it
CARRIERS = "127.0.0.1/32"
STRANGER = "127.0.0.2"
#: a short lease, renewed every 2 s, looked for every second: a dead node's calls are settled within ~6 s
SECTIONS = {"store": {"lease_s": "5", "renew_interval_s": "2", "reconcile_interval_s": "1"}}
#: calls up when node a is killed, calls made right after, and calls made once node a is marked inactive; their
#: Call-IDs are fixed, so Kamailio's Call-ID hash puts the same ones on node a in every run (each set has some)
CALLS_BEFORE, CALLS_AFTER, CALLS_LATER = 4, 6, 4
FAILOVER_BOUND_S = 5.0
#: the nodes' RTP ports: a window of the example's range for each, away from other tests' nodes on this host
RTP_WINDOW = 1000
RTP_BASE = 20000 + 2 * random.randrange(0, (10000 - 2 * RTP_WINDOW) // 2)


def node_sections(index: int) -> dict:
    low = RTP_BASE + index * RTP_WINDOW
    return {**SECTIONS, "media": {"rtp_port_min": str(low), "rtp_port_max": str(low + RTP_WINDOW - 1)}}


@dataclass
class Proxy:
    """A running Kamailio: its SIP port, its log lines as (time.monotonic(), line), and its kamcmd socket."""
    port: int
    lines: list
    ctl: str

    def log(self) -> str:
        return "".join(line for _, line in self.lines)

    def rpc(self, *args: str) -> str:
        done = subprocess.run([KAMCMD, "-s", self.ctl, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def nodes(self) -> list[tuple[str, str]]:
        """(URI, state flags) of each node, in the order of the dispatcher's slots (`kamcmd dispatcher.list`)."""
        return re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", self.rpc("dispatcher.list"))

    def hashed_to(self, call_id: str) -> str:
        """The URI of the node Kamailio's Call-ID hash picks for ``call_id`` (`kamcmd dispatcher.hash`)."""
        nodes = self.nodes()
        slot = int(re.search(r"slot: (\d+)", self.rpc("dispatcher.hash", str(len(nodes)), call_id)).group(1))
        return nodes[slot][0]


@contextlib.contextmanager
def kamailio(workdir: Path, *, nodes: list[int], defines: tuple[str, ...] = (), ping_interval_s: int = 600):
    """conf/kamailio/kamailio.cfg on 127.0.0.1 and a free port, dispatching to ``nodes`` (their UDP ports on
    127.0.0.1), with more ``defines`` (``-A`` values) and the nodes probed with OPTIONS every ``ping_interval_s``
    (600: no probe during a test, a node's death is found by the calls sent to it); yields a :class:`Proxy`;
    stopped with SIGTERM after."""
    run = workdir / "kamailio"
    run.mkdir()
    dispatcher = run / "dispatcher.list"
    dispatcher.write_text("".join(f"1 sip:127.0.0.1:{port} 0 0\n" for port in nodes))
    port = free_port()
    argv = [KAMAILIO, "-f", str(CONFIG), "-DD", "-E", "-a", "no", "-S", "-n", "2", "-N", "1", "-m", "32", "-M", "4",
            "-w", str(run), "-Y", str(run), "-P", str(run / "kamailio.pid"),
            "-A", "LISTEN_IP=127.0.0.1", "-A", f"SIP_PORT={port}", "-A", f'CARRIERS="{CARRIERS}"',
            "-A", f'DISPATCHER_LIST="{dispatcher}"',
            "-A", f"DS_PING_INTERVAL_S={ping_interval_s}", *(arg for define in defines for arg in ("-A", define))]
    proc = subprocess.Popen(argv, cwd=run, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)     # its processes: one group
    proxy = Proxy(port, [], f"unix:{run}/kamailio_ctl")      # -Y puts kamcmd's socket in the runtime directory

    def read() -> None:
        for raw in iter(proc.stdout.readline, b""):
            proxy.lines.append((time.monotonic(), raw.decode(errors="replace")))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready = wait_for(lambda: proc.poll() is not None or options_answered(port), 10)
        assert ready and proc.poll() is None, "kamailio did not start:\n" + proxy.log()[-4000:]
        yield proxy
    finally:
        proc.terminate()                  # SIGTERM; nothing when it has already ended
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            # one still starting up (loading TLS certificates) ignores SIGTERM until its 60 s shutdown timeout
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
        (run / "kamailio.log").write_text(proxy.log())


def sip_request(port: int, method: str, *, source: str = "127.0.0.1", extra: str = "",
                timeout_s: float = 0.5) -> str | None:
    """Sends one ``method`` over UDP from ``source`` to 127.0.0.1:``port``; the status line of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout_s)
        local = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex
        sock.sendto((f"{method} sip:127.0.0.1:{port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {source}:{local};branch={branch}\r\n"
                     f"From: <sip:probe@{source}>;tag={uuid.uuid4().hex[:8]}\r\n"
                     f"To: <sip:127.0.0.1:{port}>{extra}\r\n"
                     f"Call-ID: {uuid.uuid4().hex}@{source}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
        try:
            return sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
        except OSError:
            return None


def options_answered(port: int) -> bool:
    return sip_request(port, "OPTIONS") == "SIP/2.0 200 OK"


def message_times(path: Path) -> dict[str, dict[str, float]]:
    """From a SIPp ``-trace_msg`` file: per Call-ID, the wall time of the first INVITE sent and of the first
    200 to it received (seconds since the epoch)."""
    calls: dict[str, dict[str, float]] = {}
    text = path.read_text(errors="replace")
    for stamp, body in re.findall(r"^-{10,} (\S+\s+\S+)\n(.*?)(?=^-{10,} |\Z)", text, flags=re.M | re.S):
        at = datetime.strptime(" ".join(stamp.split()), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        message = body.split("\n\n", 1)[-1].lstrip()
        call_id = re.search(r"^Call-ID:\s*(\S+)", message, flags=re.M | re.I)
        if call_id is None:
            continue
        seen = calls.setdefault(call_id.group(1), {})
        cseq = re.search(r"^CSeq:\s*\d+\s+(\S+)", message, flags=re.M | re.I)
        if "message sent" in body and message.startswith("INVITE "):
            seen.setdefault("invite", at)
        elif "message received" in body and message.startswith("SIP/2.0 200") and cseq and cseq[1] == "INVITE":
            seen.setdefault("answer", at)
    return calls


def carrier(proxy_port: int, workdir: Path, name: str, *, scenario: str, calls: int, timeout_s: float,
            source: str = "127.0.0.1", extra: tuple[str, ...] = ()):
    """A SIPp carrier calling the service through Kamailio, each call with a Call-ID of its own fixed text."""
    return start_sipp(str(SCENARIOS / scenario), workdir, remote=f"127.0.0.1:{proxy_port}", calls=calls,
                      rate=20, timeout_s=timeout_s, name=name,
                      extra=("-i", source, "-mp", str(free_port()), "-s", SERVICE, "-key", "from_header", FROM_CALLER,
                             "-key", "extra", "X-Test: 17", "-cid_str", f"{name}-%u@127.0.0.1",
                             "-trace_msg", "-message_file", str(workdir / f"{name}.msg"), *extra))


@pytest.mark.postgres
@pytest.mark.skipif(SIPP is None, reason="sipp is not installed")
def test_kamailio_fails_over_from_a_killed_node_and_the_other_settles_its_calls(tmp_path, cluster):
    """Kamailio (the shipped config) in front of nodes a and b on PostgreSQL. A stranger's INVITE gets 403
    from Kamailio and reaches no node. Calls go to both nodes by Call-ID hash; node a gets SIGKILL with
    calls charging. Then every new call succeeds: those hashed to node a are answered by node b within 5 s
    (after Kamailio's transaction timeout), node a is marked inactive and later calls go straight to node
    b; node b's reconciler settles node a's calls, and ledger == balance for the account."""
    started = time.monotonic()
    agent_port = free_port()
    a = cluster("a", agents=[agent_uri(agent_port)], sections=node_sections(0))
    b = cluster("b", agents=[agent_uri(agent_port)], sections=node_sections(1))
    a.topup(CALLER, "50")
    engine = cluster.engine
    start_cents = balance_cents(engine)
    sipps = []
    with kamailio(tmp_path, nodes=[a.sip_port, b.sip_port]) as proxy:
        node_a = f"sip:127.0.0.1:{a.sip_port}"
        try:
            # a stranger: 403 from Kamailio, for an INVITE and for an in-dialog request alike
            stranger = carrier(proxy.port, tmp_path, "stranger", scenario="carrier_refused.xml", calls=1,
                               timeout_s=10, source=STRANGER).wait()
            assert (stranger.successful, stranger.failed) == (1, 0), stranger.summary()
            assert "SIP/2.0 403 Forbidden" in (tmp_path / "stranger.msg").read_text()
            assert sip_request(proxy.port, "BYE", source=STRANGER, extra=";tag=1") == "SIP/2.0 403 Forbidden"

            agent = start_sipp(str(SCENARIOS / "agent_answer.xml"), tmp_path, local_port=agent_port,
                               calls=CALLS_BEFORE + CALLS_AFTER + CALLS_LATER, timeout_s=60, name="agent",
                               extra=("-mp", str(free_port())))
            sipps.append(agent)
            before = carrier(proxy.port, tmp_path, "before", scenario="carrier_wait_bye.xml", calls=CALLS_BEFORE,
                             timeout_s=60)
            sipps.append(before)
            charging = wait_for(lambda: len(rows(engine, "select id from call_sessions "
                                                         "where charging_started_ms is not null")) >= CALLS_BEFORE,
                                20)
            assert charging, rows(engine, "select call_id, node_id, state from call_sessions")
            up = rows(engine, "select call_id, node_id from call_sessions")
            assert not [r for r in up if "stranger" in r["call_id"]]
            # each call is on the node the Call-ID hash picked, and both nodes have calls
            on_a = {r["call_id"] for r in up if r["node_id"] == "a"}
            assert on_a == {r["call_id"] for r in up if proxy.hashed_to(r["call_id"]) == node_a}, up
            assert on_a and len(on_a) < CALLS_BEFORE, up

            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            a.proc.wait(timeout=5)
            after = carrier(proxy.port, tmp_path, "after", scenario="carrier_call.xml", calls=CALLS_AFTER,
                            timeout_s=30, extra=("-d", "1000"))
            sipps.append(after)
            result = after.wait()
            assert (result.successful, result.failed) == (CALLS_AFTER, 0), result.summary()
            # the new calls hashed to node a waited for Kamailio's timeout, then node b answered them
            hashed_to_a = {f"after-{n}@127.0.0.1" for n in range(1, CALLS_AFTER + 1)
                           if proxy.hashed_to(f"after-{n}@127.0.0.1") == node_a}
            failed_over = set(re.findall(r"call (after-\d+@127\.0\.0\.1) fails over", proxy.log()))
            assert failed_over == hashed_to_a and failed_over, proxy.log()[-4000:]
            assert f"{node_a} did not answer" in proxy.log()
            answer_s = {cid: t["answer"] - t["invite"] for cid, t in message_times(tmp_path / "after.msg").items()}
            assert len(answer_s) == CALLS_AFTER, answer_s
            failover_s = max(answer_s[cid] for cid in failed_over)
            assert failover_s <= FAILOVER_BOUND_S, answer_s
            direct_s = max(s for cid, s in answer_s.items() if cid not in failed_over)
            # node a is now inactive (and probing): later calls hashed to it go to node b at once
            assert (node_a, "IP") in proxy.nodes(), proxy.nodes()
            later = carrier(proxy.port, tmp_path, "later", scenario="carrier_call.xml", calls=CALLS_LATER,
                            timeout_s=30, extra=("-d", "1000"))
            sipps.append(later)
            result = later.wait()
            assert (result.successful, result.failed) == (CALLS_LATER, 0), result.summary()
            later_to_a = sum(proxy.hashed_to(f"later-{n}@127.0.0.1") == node_a for n in range(1, CALLS_LATER + 1))
            assert later_to_a
            assert "call later-" not in proxy.log()
            later_s = max(t["answer"] - t["invite"] for t in message_times(tmp_path / "later.msg").values())
            assert later_s < FAILOVER_BOUND_S / 2
            new_sessions = rows(engine, "select call_id, node_id from call_sessions "
                                        "where call_id like 'after-%' or call_id like 'later-%'")
            assert len(new_sessions) == CALLS_AFTER + CALLS_LATER
            assert {r["node_id"] for r in new_sessions} == {"b"}, new_sessions

            # node a's calls: settled by node b's reconciler, once their lease ran out
            settled = wait_for(lambda: all(r["state"] == "settled" for r in rows(
                engine, "select state from call_sessions where node_id = 'a'")), 15)
            settled_after_s = time.monotonic() - killed
            assert settled, rows(engine, "select call_id, state, lease_until_ms from call_sessions")
            reconciled = rows(engine, "select call_id, end_reason from call_sessions where node_id = 'a'")
            assert {r["end_reason"] for r in reconciled} == {"lease expired"}, reconciled
            refunds = rows(engine, "select distinct actor from ledger where kind = 'call_refund' "
                                   "and actor like 'reconcile:%'")
            assert [r["actor"] for r in refunds] == ["reconcile:b"], refunds
        finally:
            for sipp in sipps:
                sipp.kill()
        # node b's own calls (still up on the carrier "before") end with its graceful stop, then the books add up
        b.proc.send_signal(signal.SIGTERM)
        b.proc.wait(timeout=20)
    books = check_books(engine, start_cents)
    assert books["balance_cents"] + books["charges_cents"] == start_cents
    wall_s = time.monotonic() - started
    print(f"\nkamailio failover: {len(failed_over)} of {CALLS_AFTER} new calls were hashed to the killed node a "
          f"and answered by node b {failover_s:.2f} s after their INVITE (slowest; the others in "
          f"{direct_s:.2f} s or less); {CALLS_LATER} later calls ({later_to_a} hashed to "
          f"node a, now inactive) answered in {later_s:.2f} s or less; node a's {len(on_a)} calls settled by node b "
          f"{settled_after_s:.1f} s after the kill; {books['charges_cents']} cents charged + balance "
          f"{books['balance_cents']} == {start_cents}; test {wall_s:.1f} s")


@pytest.mark.skipif(SIPP is None, reason="sipp is not installed")
def test_kamailio_probes_a_stopped_node_out_and_a_restarted_one_back_in(tmp_path):
    """Kamailio probing its node with OPTIONS every second (``DS_PING_INTERVAL_S``): a node that stops is
    marked inactive by the probe alone, with no call sent to it; started again on its port, it is marked
    active by the next probes, and a call through Kamailio is answered by it, its caller identified."""
    agent_port = free_port()
    sections = {"media": node_sections(0)["media"]}
    for name in ("first", "again"):
        (tmp_path / name).mkdir()
    node = start_node(tmp_path / "first", agents=[agent_uri(agent_port)], sections=sections).follow()
    port = node.sip_port
    uri = f"sip:127.0.0.1:{port}"
    sipps = []
    restarted = None
    try:
        with kamailio(tmp_path, nodes=[port], ping_interval_s=1) as proxy:
            assert wait_for(lambda: proxy.nodes() == [(uri, "AP")], 5), proxy.nodes()
            node.stop()
            stopped = time.monotonic()
            assert wait_for(lambda: proxy.nodes() == [(uri, "IP")], 10), proxy.nodes()
            out_s = time.monotonic() - stopped
            restarted = start_node(tmp_path / "again", sip_port=port, agents=[agent_uri(agent_port)],
                                   sections=sections).follow()
            started = time.monotonic()
            assert wait_for(lambda: proxy.nodes() == [(uri, "AP")], 10), proxy.nodes()
            in_s = time.monotonic() - started
            restarted.topup(CALLER, "10")
            call = carrier(proxy.port, tmp_path, "back", scenario="carrier_call.xml", calls=1, timeout_s=30,
                           extra=("-d", "1000"))
            sipps.append(call)
            result = call.wait()
            assert (result.successful, result.failed) == (1, 0), result.summary()
            [record] = restarted.records()
            assert (record["caller"], record["a_status"], record["end_reason"]) == (CALLER, 200, "caller_hangup"), \
                dict(record)
    finally:
        for sipp in sipps:
            sipp.kill()
        if restarted is not None:
            restarted.stop()
    print(f"\nkamailio probing: a stopped node marked inactive {out_s:.1f} s after it stopped, "
          f"active again {in_s:.1f} s after its restart; a call through Kamailio answered by it")


@pytest.mark.skipif(TLS_MODULE is None, reason="kamailio's tls module is not installed (kamailio-tls-modules)")
def test_kamailio_tls_listener_example_serves_sip_over_tls(tmp_path):
    """The config's TLS example (-A WITH_TLS, conf/kamailio/tls.cfg with a test certificate in place of the
    operator's files): Kamailio listens for TLS on TLS_PORT, presents the certificate, and answers a carrier's
    OPTIONS over TLS with 200."""
    crt, key = tmp_path / "sip.crt", tmp_path / "sip.key"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(crt)], capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    tls_cfg = tmp_path / "tls.cfg"
    tls_cfg.write_text((CONFIG.parent / "tls.cfg").read_text().replace("/etc/kamailio/tls/sip.crt", str(crt))
                       .replace("/etc/kamailio/tls/sip.key", str(key))
                       .replace("/etc/kamailio/tls/carrier-ca.pem", str(crt)))
    tls_port = free_port()
    with kamailio(tmp_path, nodes=[free_port()],
                  defines=("WITH_TLS", f"TLS_PORT={tls_port}", f'TLS_CONFIG="{tls_cfg}"')) as proxy:
        context = ssl.create_default_context(cafile=str(crt))
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            local = tls.getsockname()[1]
            tls.sendall((f"OPTIONS sip:127.0.0.1:{tls_port};transport=tls SIP/2.0\r\n"
                         f"Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                         "From: <sip:carrier@127.0.0.1>;tag=1\r\n"
                         f"To: <sip:127.0.0.1:{tls_port}>\r\nCall-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
                         "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode())
            answer = b""
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
                answer += tls.recv(65535)
            version = tls.version()
    assert answer.startswith(b"SIP/2.0 200 OK"), (answer, proxy.log()[-3000:])
    assert version in ("TLSv1.2", "TLSv1.3")
