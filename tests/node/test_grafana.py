"""The Grafana dashboard (conf/grafana/prepaid.json) is built on the names the node exports, and graphs
every figure an operator was promised: calls by outcome, active calls, billed minutes, top-ups, webhook
failures, SIP drops, store latency, RTP, reloads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from webhook.metrics import DECLARED

DASHBOARD = Path(__file__).resolve().parents[2] / "conf" / "grafana" / "prepaid.json"


def dashboard_expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]] + \
        [v["query"] for v in doc["templating"]["list"] if v["type"] == "query"]


def dashboard_metric_names() -> set[str]:
    """The metric names the dashboard's queries use (a histogram's ``_bucket``/``_sum``/``_count`` as its own)."""
    names = set()
    for expr in dashboard_expressions():
        for name in re.findall(r"\bprepaid_[a-z0-9_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            names.add(base if DECLARED.get(base) and DECLARED[base].kind == "histogram" else name)
    return names


def test_every_name_the_dashboard_uses_is_one_the_node_exports():
    """Each name is declared in the node's registry (which renders every declared name on /metrics), as
    the kind the query treats it as: rate() and increase() only of counters, quantiles only of histograms."""
    names = dashboard_metric_names()
    assert names <= set(DECLARED), names - set(DECLARED)
    for expr in dashboard_expressions():
        for name in re.findall(r"(?:rate|increase)\((prepaid_[a-z0-9_]+)", expr):
            assert name.endswith("_bucket") or DECLARED[name].kind == "counter", expr
        for name in re.findall(r"histogram_quantile\([^,]+, sum by \(le\) \(rate\((prepaid_[a-z0-9_]+)", expr):
            assert name.endswith("_bucket") and DECLARED[name[:-len("_bucket")]].kind == "histogram", expr


def test_the_dashboard_graphs_every_promised_figure():
    """Nothing the operator was promised is left off the dashboard."""
    assert dashboard_metric_names() >= {
        "prepaid_calls_total", "prepaid_calls_active", "prepaid_billed_seconds_total", "prepaid_topups_total",
        "prepaid_topup_cents_total", "prepaid_webhook_verification_failures_total", "prepaid_sip_dropped_total",
        "prepaid_sip_internal_errors_total", "prepaid_store_seconds", "prepaid_store_errors_total",
        "prepaid_rtp_packets_relayed_total", "prepaid_rtp_packets_dropped_total", "prepaid_config_reloads_total"}
    quantiles = [e for e in dashboard_expressions() if "histogram_quantile" in e]
    assert any("histogram_quantile(0.5," in e for e in quantiles)
    assert any("histogram_quantile(0.99," in e for e in quantiles)
