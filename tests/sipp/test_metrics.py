"""What an operator graphs, from a real node: ``prepaid run`` with SIPp as carrier and agent, calls of several
outcomes, a top-up through the balance API, a webhook that does not verify, a dropped SIP message, reloads;
then ``/metrics`` scraped on the portal's listener, and the public port refusing it without the token."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, start_sipp
from tests.sipp.node import start_node
from tests.sipp.test_calls import CALLER, FROM_CALLER, SERVICE, agent_uri
from tests.node.test_grafana import dashboard_metric_names

pytestmark = [pytest.mark.sipp, pytest.mark.slow, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

TOKEN = "metrics-scraper-token-0123456789"
#: 236 G.711 A-law packets (4.7 s), shipped with SIPp
PCAP = Path("/usr/share/sip-tester/g711a.pcap")
NO_ACCOUNT = "+49301234568"


def with_audio(workdir: Path, scenario: str) -> str:
    """``scenario`` that plays :data:`PCAP` as RTP once its call is up (after its ACK is sent or received)."""
    text = (SCENARIOS / scenario).read_text()
    play = f'<nop><action><exec play_pcap_audio="{PCAP}"/></action></nop>'
    marker = "  <pause/>" if "<pause/>" in text else '  <recv request="BYE"/>'
    path = workdir / f"audio_{scenario}"
    path.write_text(text.replace(marker, f"  {play}\n{marker}", 1))
    return str(path)


def agent(workdir: Path, scenario: str, port: int, name: str):
    return start_sipp(scenario if scenario.startswith("/") else str(SCENARIOS / scenario), workdir,
                      local_port=port, timeout_s=40, name=name,
                      extra=("-aa", "-d", "1000", "-mp", str(free_port()), "-trace_msg", "-message_file",
                             str(workdir / f"{name}.msg")))


def start_call(node, workdir: Path, scenario: str, name: str, *, from_header: str = FROM_CALLER,
               extra: str = "X-Test: 1", hold_ms: int = 4500):
    """One call from the SIPp carrier (its own media port) to the service number, started (not awaited)."""
    return start_sipp(scenario if scenario.startswith("/") else str(SCENARIOS / scenario), workdir,
                      remote=f"127.0.0.1:{node.sip_port}", timeout_s=30, name=name,
                      extra=("-s", SERVICE, "-d", str(hold_ms), "-mp", str(free_port()), "-key", "from_header",
                             from_header, "-key", "extra", extra, "-trace_msg", "-message_file",
                             str(workdir / f"{name}.msg")))


def ended_well(sipp) -> None:
    """Wait for a call of :func:`start_call` to end: SIPp counts it good."""
    result = sipp.wait()
    assert (result.successful, result.failed) == (1, 0), result.summary()


def call(node, workdir: Path, scenario: str, name: str, **how) -> None:
    """One call of :func:`start_call`, to its end."""
    ended_well(start_call(node, workdir, scenario, name, **how))


def wait_for(node, check, timeout_s: float = 15.0) -> dict:
    """The scrape once ``check(samples)`` holds (bounded): call records and reloads land a moment after."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = node.metrics()
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def api_credit(node, number: str, amount_cents: int) -> int:
    made = node.prepaid("apikey", "create", "--provider", "metrics-test", "--profile", "demo", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{node.ports['http']}/api/v1/accounts/demo/{number.replace('+', '%2B')}/credit",
        data=json.dumps({"amount_cents": amount_cents, "reference": "metrics-1"}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status


def post(url: str, body: bytes) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


@pytest.fixture
def node(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[metrics]\ntoken = "{TOKEN}"\n')
    os.chmod(secrets, 0o600)
    agent_port = free_port()
    n = start_node(tmp_path, agents=[agent_uri(agent_port)],
                   profile={"announce_tariff": "false", "ring_timeout_s": "2"},
                   sections={"payments": {"secrets_file": json.dumps(str(secrets))}})
    n.follow()
    n.agent_port = agent_port
    yield n
    log = n.stop()
    (tmp_path / "node.log").write_text(log)
    assert "Traceback" not in log, log[-4000:]


def test_metrics_after_calls_of_each_outcome_a_top_up_a_bad_webhook_a_drop_and_reloads(tmp_path, node):
    """Every counter an operator graphs moves as the node's work says: calls by outcome and profile, billed
    seconds, active calls back at 0, an API top-up by method and amount, a webhook verification failure, a
    SIP drop, store latency observed without errors, RTP relayed, reloads ok and invalid; the public port
    answers /metrics only to the bearer of [metrics] token, and every name the Grafana dashboard uses is on it."""
    workdir = tmp_path
    node.topup(CALLER, "10")

    # the refused calls ring no agent: they run while the talked call does
    refused = [
        # no credit: a caller without account is told so and hung up on
        start_call(node, workdir, "carrier_wait_bye.xml", "nocredit", from_header=f"<sip:{NO_ACCOUNT}@127.0.0.1>"),
        # not identified: withheld, no asserted identity
        start_call(node, workdir, "carrier_wait_bye.xml", "anon",
                   from_header='"Anonymous" <sip:anonymous@anonymous.invalid>', extra="Privacy: id")]
    # talked: audio both ways while bridged
    ag = agent(workdir, with_audio(workdir, "agent_answer.xml"), node.agent_port, "agent1")
    call(node, workdir, with_audio(workdir, "carrier_call.xml"), "talk", hold_ms=6000)
    assert ag.wait().successful == 1
    for sipp in refused:
        ended_well(sipp)
    # no agent: the only agent rings out its 2 s and is cancelled
    ag = agent(workdir, "agent_noanswer.xml", node.agent_port, "agent2")
    call(node, workdir, "carrier_wait_bye.xml", "noagent")
    assert ag.wait().successful == 1

    assert api_credit(node, NO_ACCOUNT, 1500) == 200
    assert post(f"http://127.0.0.1:{node.ports['http']}/hooks/paypal", b"{}") in (400, 401)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", ("127.0.0.1", node.sip_port))

    config = node.config.read_text()
    since = time.monotonic()
    node.proc.send_signal(signal.SIGHUP)
    assert node.wait_line("config reloaded", 10, since) is not None
    node.config.write_text(config.replace('landline_per_minute = "1.99"', 'landline_per_minute = "one"'))
    since = time.monotonic()
    node.proc.send_signal(signal.SIGHUP)
    assert node.wait_line("refused", 10, since) is not None
    node.config.write_text(config)

    s = wait_for(node, lambda s: total(s, "prepaid_calls_total") >= 4
                 and total(s, "prepaid_config_reloads_total", result="invalid") >= 1)
    by_outcome = {o: total(s, "prepaid_calls_total", outcome=o, profile="demo")
                  for o in ("talked", "no_credit", "unidentified", "no_agent", "cut_off", "failed")}
    assert by_outcome == {"talked": 1, "no_credit": 1, "unidentified": 1, "no_agent": 1, "cut_off": 0,
                          "failed": 0}, s
    assert total(s, "prepaid_calls_active") == 0
    assert total(s, "prepaid_billed_seconds_total", profile="demo") == 60
    assert total(s, "prepaid_topups_total", method="api", profile="demo") == 1
    assert total(s, "prepaid_topup_cents_total", method="api", profile="demo") == 1500
    assert total(s, "prepaid_webhook_verification_failures_total", method="paypal") == 1
    assert total(s, "prepaid_sip_dropped_total") >= 1
    assert total(s, "prepaid_sip_internal_errors_total") == 0
    assert total(s, "prepaid_store_seconds_count") >= 8          # accounts, sessions, debits, records...
    assert total(s, "prepaid_store_seconds_bucket", le="+Inf") == total(s, "prepaid_store_seconds_count")
    assert total(s, "prepaid_store_errors_total") == 0
    assert total(s, "prepaid_rtp_packets_relayed_total") > 0
    assert ("prepaid_rtp_packets_dropped_total", ()) in s
    assert total(s, "prepaid_config_reloads_total", result="ok") == 1
    assert total(s, "prepaid_config_reloads_total", result="invalid") == 1

    assert node.scrape("http")[0] == 401
    assert node.scrape("http", {"Authorization": "Bearer wrong"})[0] == 401
    status, text = node.scrape("http", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "prepaid_calls_total{" in text
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert dashboard_metric_names() <= exported, dashboard_metric_names() - exported
