"""The node's figures (b2bua/node/nodemetrics.py): calls by the portal's outcome, billed seconds, top-ups and
store timings from a real store, SIP drops and internal errors, reload results, the public token."""

from __future__ import annotations

import shutil

from b2bua.node.config import load_config
from b2bua.node.nodemetrics import NodeMetrics, drop_reason, sip_samples
from b2bua.node.reload import ConfigHolder
from b2bua.node.snapshot import take_snapshot
from billing.db.rows import CallRecord
from tests.billing.test_store import DEMO
from tests.conftest import fired
from webhook.metrics import Metrics, parse_text

TOKEN = "scrape-me-0123456789abcdefghij"


def record(end_reason: str, *, answered: bool = True, billed_s: int = 0, profile: str = "demo") -> CallRecord:
    return CallRecord(call_id="c1", profile=profile, service_number="+493012345678", caller="+49301234567",
                      identity_source="from", privacy=False, caller_class="landline", agent_tried="sip:a@h",
                      agent_answered="sip:a@h" if answered else None, invite_ms=0, answer_ms=None, end_ms=1,
                      end_reason=end_reason, a_status=200, b_status=None, billed_s=billed_s)


def figures(tmp_path, secrets: str = "") -> tuple[NodeMetrics, ConfigHolder]:
    path = tmp_path / "prepaid.toml"
    shutil.copy("conf/prepaid.toml", path)
    holder = ConfigHolder(take_snapshot(load_config(str(path)), now_ms=0))
    env = {"PREPAID_SECRETS": secrets} if secrets else {}
    return NodeMetrics(Metrics(), holder, env), holder


def test_calls_are_counted_by_the_outcome_the_call_list_shows(tmp_path):
    """Talked, cut off, no credit, not identified, no agent and failed, as billing.db.calls.outcome() says;
    billed seconds add up by profile."""
    node, _ = figures(tmp_path)
    for r in (record("caller_hangup", billed_s=60), record("credit_exhausted", billed_s=120),
              record("no_credit", answered=False), record("unidentified", answered=False),
              record("no_agent", answered=False), record("media_timeout", answered=False),
              record("agent_hangup", billed_s=60, profile="other")):
        node.call_ended(r)
    m = node.metrics
    assert [m.value("prepaid_calls_total", outcome=o) for o in
            ("talked", "cut_off", "no_credit", "unidentified", "no_agent", "failed")] == [2, 1, 1, 1, 1, 1]
    assert m.value("prepaid_calls_total", outcome="talked", profile="other") == 1
    assert m.value("prepaid_billed_seconds_total", profile="demo") == 180
    assert m.value("prepaid_billed_seconds_total", profile="other") == 60


def test_store_jobs_and_topups_of_a_real_store(tmp_path, store):
    """Every store job lands in the latency histogram; a payment and a manual top-up count by method with
    their amounts (bonus not counted); a repeat counts nothing."""
    node, _ = figures(tmp_path)
    node.watch_store(store)
    fired(store.topup(DEMO, "+4915112345678", 1000, source="paypal", external_ref="P1", actor="webhook:paypal"))
    fired(store.topup(DEMO, "+4915112345678", 1000, source="paypal", external_ref="P1", actor="webhook:paypal"))
    fired(store.manual(DEMO, "+4915112345678", 2000, kind="topup", external_ref="m1", actor="cli",
                       audit_actor="cli"))
    m = node.metrics
    assert m.value("prepaid_topups_total", method="paypal", profile="demo") == 1
    assert m.value("prepaid_topup_cents_total", method="paypal") == 1000
    assert m.value("prepaid_topup_cents_total", method="manual") == 2000
    assert m.value("prepaid_store_seconds", mode="now") == 3
    assert m.value("prepaid_store_errors_total") == 0


def test_sip_drops_by_reason_and_internal_errors_apart():
    """The endpoint's drop texts become short reasons; its internal errors are a metric of their own, by
    where and error class."""
    assert drop_reason("bad response: Missing Via header") == "bad_response"
    assert drop_reason("unparseable request without Via") == "unparseable_request_without_via"
    samples = {(s.name, s.labels): s.value for s in sip_samples({
        "bad response: Missing Via header": 2, "bad response: Bad CSeq header": 1, "ACK for nothing": 4,
        "internal error: KeyError": 1, "internal error in timers: ValueError": 2,
        "internal error on transport error: OSError": 3})}
    assert samples == {
        ("prepaid_sip_dropped_total", (("reason", "ack_for_nothing"),)): 4,
        ("prepaid_sip_dropped_total", (("reason", "bad_response"),)): 3,
        ("prepaid_sip_internal_errors_total", (("error", "KeyError"), ("where", "receive"))): 1,
        ("prepaid_sip_internal_errors_total", (("error", "ValueError"), ("where", "timers"))): 2,
        ("prepaid_sip_internal_errors_total", (("error", "OSError"), ("where", "transport_error"))): 3}


def test_reloads_by_result_and_the_token_read_again(tmp_path):
    """A refused reload counts invalid, a good one ok; a reload re-reads the public /metrics token, and a
    token file that turned bad keeps the token in force."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[metrics]\ntoken = "{TOKEN}"\n')
    node, holder = figures(tmp_path, str(secrets))
    assert node.token() == TOKEN
    path = tmp_path / "prepaid.toml"
    good = path.read_text()
    path.write_text(good.replace('"1.99"', '"one"'))
    holder.reload()
    secrets.write_text(f'[metrics]\ntoken = "{TOKEN}-2"\n')
    path.write_text(good)
    holder.reload()
    assert node.token() == f"{TOKEN}-2"
    secrets.write_text('[metrics]\ntoken = "short"\n')
    holder.reload()
    assert node.token() == f"{TOKEN}-2"
    samples = parse_text(node.metrics.render().decode())
    assert samples[("prepaid_config_reloads_total", (("result", "ok"),))] == 2
    assert samples[("prepaid_config_reloads_total", (("result", "invalid"),))] == 1
