"""The metrics registry (webhook/metrics.py): labelled counters, gauges, histograms and collectors, as
Prometheus reads them."""

from __future__ import annotations

import pytest

from webhook.metrics import DECLARED, STORE_BUCKETS_S, Metrics, Sample, parse_text


def test_labelled_counters_render_once_per_series_and_sum_by_label_subset():
    """A counter's series are one line each, labels sorted and escaped; ``value`` with fewer labels sums
    the series that carry them (a dashboard's ``sum by``)."""
    m = Metrics()
    m.inc("prepaid_calls_total", outcome="talked", profile="demo")
    m.inc("prepaid_calls_total", outcome="talked", profile="demo")
    m.inc("prepaid_calls_total", outcome="no_credit", profile='de"mo')
    text = m.render().decode()
    assert "# TYPE prepaid_calls_total counter" in text
    assert 'prepaid_calls_total{outcome="talked",profile="demo"} 2' in text
    assert 'prepaid_calls_total{outcome="no_credit",profile="de\\"mo"} 1' in text
    assert m.value("prepaid_calls_total") == 3
    assert m.value("prepaid_calls_total", outcome="talked") == 2
    assert m.value("prepaid_calls_total", outcome="cut_off") == 0


def test_undeclared_names_wrong_kinds_and_negative_counts_are_refused():
    """Only names of the declared table, each used as its kind, and counters only go up."""
    m = Metrics()
    with pytest.raises(KeyError):
        m.inc("nope")
    with pytest.raises(TypeError):
        m.observe("prepaid_calls_total", 1.0)
    with pytest.raises(TypeError):
        m.inc("prepaid_store_seconds")
    with pytest.raises(ValueError):
        m.inc("prepaid_calls_total", -1, outcome="talked")


def test_histogram_has_cumulative_buckets_sum_and_count():
    """Observations land in the first bucket whose bound is >= the value; buckets are cumulative with
    ``le="+Inf"`` last; ``_sum`` and ``_count`` follow, as histogram_quantile() needs them."""
    m = Metrics()
    for seconds in (0.0005, 0.001, 0.003, 0.2, 9.0):
        m.observe("prepaid_store_seconds", seconds, mode="now")
    samples = parse_text(m.render().decode())

    def bucket(le: str) -> float:
        return samples[("prepaid_store_seconds_bucket", (("le", le), ("mode", "now")))]
    assert bucket("0.001") == 2 and bucket("0.0025") == 2 and bucket("0.005") == 3
    assert bucket("0.25") == 4 and bucket("5") == 4 and bucket("+Inf") == 5
    assert samples[("prepaid_store_seconds_count", (("mode", "now"),))] == 5
    assert samples[("prepaid_store_seconds_sum", (("mode", "now"),))] == pytest.approx(9.2045)
    assert len([k for k in samples if k[0] == "prepaid_store_seconds_bucket"]) == len(STORE_BUCKETS_S) + 1
    assert m.value("prepaid_store_seconds", mode="now") == 5


def test_collector_samples_carry_labels_with_one_help_and_type_per_name():
    """Collectors may give several labelled samples of one name (plain tuples too): one HELP and TYPE,
    then a line per series."""
    m = Metrics()
    m.add_collector(lambda: [Sample("prepaid_x_dropped_total", "dropped", "counter", 2, (("reason", "a"),)),
                             ("prepaid_x_dropped_total", "dropped", "counter", 3, (("reason", "b"),)),
                             ("prepaid_x_open", "open", "gauge", 1.5)])
    text = m.render().decode()
    assert text.count("# TYPE prepaid_x_dropped_total counter") == 1
    assert 'prepaid_x_dropped_total{reason="a"} 2' in text and 'prepaid_x_dropped_total{reason="b"} 3' in text
    assert "prepaid_x_open 1.5" in text


def test_every_declared_metric_is_listed_before_it_moves():
    """A fresh registry still names every declared metric (HELP and TYPE), so a scrape shows what exists."""
    text = Metrics().render().decode()
    for name, declared in DECLARED.items():
        assert f"# TYPE {name} {declared.kind}" in text


def test_a_gauge_is_set_not_added():
    """A gauge holds the last value set for its labels (it may go down)."""
    m = Metrics()
    m.set("prepaid_calls_active", 5)
    m.set("prepaid_calls_active", 2)
    assert m.value("prepaid_calls_active") == 2
    assert "prepaid_calls_active 2\n" in m.render().decode()
    with pytest.raises(TypeError):
        m.inc("prepaid_calls_active")
