"""Full prepaid calls under SIPp load: identification, announcement, billing, relayed G.711 both ways.

SIPp as the carrier (INVITE from a topped-up caller, answered at once by the node, which announces the
minutes, rings the agent and bridges; the carrier plays ``g711a.pcap`` with ``play_pcap_audio`` all along,
then BYE after ``--hold-ms``) -> a real ``prepaid run`` (tests/sipp/node.py: example config on free ports,
SQLite store, no tariff announcement, OPTIONS probes off) -> SIPp as the agent (180, 200 with SDP, plays
``g711a.pcap`` back, takes the BYE).  All on 127.0.0.1, every SIPp run bounded (``-m``, ``-timeout``).

Figures:

* the highest clean call rate: a probe of N calls is clean when the carrier has 0 failed calls and every
  call successful, and the agent completed every call too; the rate doubles from ``--start`` until a probe
  is not clean (or ``--limit``), then is bisected ``--steps`` times;
* the most concurrent media calls held: ``--concurrent`` levels, each all calls started within 1 s and
  held ``--hold-ms``; clean as above;
* CPU per call: utime+stime of the ``prepaid run`` process from /proc/<pid>/stat over a probe, / calls.

Packet loss is NOT measured: SIPp 3.6 counts no received RTP (and does not even read its RTP socket while
it plays a pcap, so the machine's UDP receive drops, recorded per probe as ``udp_drops`` from
/proc/net/snmp, are dominated by SIPp's own unread sockets), and the node exposes no relay counters over
HTTP.  A clean probe means no call failed, which includes the node's dead-media timeout not firing.

``bench/cps.py`` (signalling only) is run as a subprocess with ``--quick --only prepaid`` when it exists
and ``--with-cps`` is given, and its figures are printed beside ours.  JSON to ``bench/results/e2e.json``.

    .venv/bin/python bench/e2e.py [--quick] [--with-cps]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sipp.harness import free_port, start_sipp  # noqa: E402
from tests.sipp.node import start_node  # noqa: E402

import loadkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)
from loadkit import cpu_s, udp_drops  # noqa: E402

CALLER = "+49301234567"
SERVICE = "+493012345678"
PCAP = "/usr/share/sip-tester/g711a.pcap"

CARRIER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="e2e carrier: prepaid call with G.711 audio">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:CALLER@[local_ip];user=phone>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=carrier 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
      a=ptime:20
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:CALLER@[local_ip];user=phone>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:CALLER@[local_ip];user=phone>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
""".replace("CALLER", CALLER).replace("PCAP", PCAP)

AGENT_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="e2e agent: answers with G.711 audio">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
      a=ptime:20
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <timewait milliseconds="2000"/>
</scenario>
""".replace("PCAP", PCAP)


PCAP_PACKETS = 236        # RTP packets in g711a.pcap (SIPp prints npkts when it loads it)


class Bench:
    """A ``prepaid run`` with a rich caller, and the two scenario files."""

    def __init__(self, workdir: Path, hold_ms: int):
        self.workdir = workdir
        self.hold_ms = hold_ms
        self.agent_port = free_port()
        (workdir / "node").mkdir()
        self.node = start_node(workdir / "node", agents=[f"sip:agent@127.0.0.1:{self.agent_port};transport=UDP"],
                               profile={"announce_tariff": "false", "increment": '"1/1"'},
                               sections={"sip": {"probe_interval_s": "0", "max_call_duration_s": "600"}})
        self.node.follow()
        self.node.topup(CALLER, "100000")
        self.carrier_xml = workdir / "e2e_carrier.xml"
        self.agent_xml = workdir / "e2e_agent.xml"
        self.carrier_xml.write_text(CARRIER_XML)
        self.agent_xml.write_text(AGENT_XML)

    def probe(self, calls: int, rate: float, tag: str) -> dict:
        workdir = self.workdir / tag
        timeout_s = calls / rate + self.hold_ms / 1000 + 30
        agent = start_sipp(str(self.agent_xml), workdir, local_port=self.agent_port, calls=calls,
                           timeout_s=timeout_s + 5, name="agent", extra=("-mp", str(free_port())))
        time.sleep(0.3)
        before = cpu_s(self.node.proc.pid)
        drops_before = udp_drops()
        started = time.monotonic()
        carrier = start_sipp(str(self.carrier_xml), workdir, remote=f"127.0.0.1:{self.node.sip_port}",
                             calls=calls, rate=rate, timeout_s=timeout_s, name="carrier",
                             extra=("-s", SERVICE, "-d", str(self.hold_ms), "-mp", str(free_port()),
                                    "-l", str(calls)))
        c = carrier.wait()
        a = agent.wait()
        elapsed = time.monotonic() - started
        cpu = cpu_s(self.node.proc.pid) - before
        drops = udp_drops() - drops_before
        # each side plays the pcap once: the node receives 2 x 236 per call and sends as many on
        rtp = calls * PCAP_PACKETS * 4
        clean = c.failed == 0 and c.successful == calls and a.successful == calls
        row = {"rate": rate, "calls": calls, "clean": clean, "carrier_ok": c.successful,
               "carrier_failed": c.failed, "agent_ok": a.successful, "agent_failed": a.failed,
               "cpu_s": round(cpu, 3), "cpu_ms_per_call": round(cpu / calls * 1000, 2),
               "elapsed_s": round(elapsed, 1), "udp_drops": drops, "rtp_datagrams": rtp,
               }
        print(f"  {tag:6} {rate:6.1f} cps x {calls}: {'clean' if clean else 'NOT clean'} (carrier ok "
              f"{c.successful} failed {c.failed}, agent ok {a.successful} failed {a.failed}, cpu {cpu:.2f} s, "
              f"{elapsed:.1f} s, UDP drops {drops} of {rtp} RTP datagrams)", flush=True)
        return row

    def stop(self) -> None:
        self.node.stop()


def highest_clean_rate(bench, calls: int, start: float, limit: float, steps: int) -> tuple[float, list]:
    """Double from ``start`` until a probe fails (or ``limit``), then bisect ``steps`` times."""
    return loadkit.highest_clean_rate(bench.probe, calls, start, limit, steps)


def most_concurrent(bench: Bench, levels: list[int]):
    """Each level: that many calls started within ~1 s, all held together; the highest clean level."""
    best, rows = 0, []
    for n in levels:
        row = bench.probe(n, float(n), f"c{n}")
        row["concurrent"] = n
        rows.append(row)
        if not row["clean"]:
            break
        best = n
    return best, rows


def run_cps(timeout_s: float) -> dict | None:
    script = ROOT / "bench" / "cps.py"
    if not script.exists():
        return None
    try:
        subprocess.run([sys.executable, str(script), "--quick", "--only", "prepaid"], cwd=ROOT,
                       timeout=timeout_s, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = json.loads((loadkit.RESULTS / "cps.json").read_text())
    except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
        return {"error": str(exc)}
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small probes, 2 bisection steps")
    parser.add_argument("--calls", type=int, default=None, help="calls per rate probe (200; quick 30)")
    parser.add_argument("--start", type=float, default=5.0)
    parser.add_argument("--limit", type=float, default=200.0)
    parser.add_argument("--steps", type=int, default=None, help="bisection steps (4; quick 2)")
    parser.add_argument("--hold-ms", type=int, default=9000, help="carrier's hold after ACK (the announcement "
                        "takes ~7 s, then the bridged part)")
    parser.add_argument("--concurrent", default=None, help="concurrency levels (25,50,100,200; quick 10,30,60)")
    parser.add_argument("--with-cps", action="store_true", help="run bench/cps.py --quick alongside")
    args = parser.parse_args()
    for name, full, quick in (("calls", 200, 30), ("steps", 4, 2), ("concurrent", "25,50,100,200", "10,30,60")):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if not Path(PCAP).exists():
        print(f"{PCAP} missing (Debian package sip-tester)")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        bench = Bench(Path(tmp), args.hold_ms)
        try:
            print("highest clean rate of full prepaid calls with media:", flush=True)
            rate, rate_rows = highest_clean_rate(bench, args.calls, args.start, args.limit, args.steps)
            print("most concurrent media calls:", flush=True)
            conc, conc_rows = most_concurrent(bench, [int(x) for x in args.concurrent.split(",")])
        finally:
            bench.stop()
    clean = [r for r in rate_rows + conc_rows if r["clean"]]
    cpu_ms = round(sum(r["cpu_s"] for r in clean) / sum(r["calls"] for r in clean) * 1000, 2) if clean else None
    cps = run_cps(600) if args.with_cps else None
    result = {"quick": args.quick, "hold_ms": args.hold_ms, "clean_cps": rate, "max_concurrent_clean": conc,
              "cpu_ms_per_call": cpu_ms, "packet_loss": "not measured (see the docstring)", "rate_probes": rate_rows,
              "concurrency_probes": conc_rows, "cps_py": cps}
    print()
    print(f"e2e (media, {args.hold_ms / 1000:.0f} s calls): highest clean rate {rate} calls/s, "
          f"{conc} concurrent calls clean, CPU {cpu_ms} ms per call")
    if cps and "prepaid" in cps:
        p = cps["prepaid"]
        print(f"cps.py (signalling only, 1 s calls): highest clean rate {p.get('clean_cps')} calls/s, "
              f"CPU {p.get('cpu_s_per_1000_calls')} s per 1000 calls")
        if p.get("clean_cps"):
            print(f"ratio e2e / cps.py clean rate: {rate / p['clean_cps']:.3f}")
    elif cps is not None:
        print(f"cps.py: {cps}")
    loadkit.write_results("e2e.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
