"""The node's one metrics registry, rendered for ``/metrics`` in the Prometheus text format (version 0.0.4).

    metrics = Metrics()
    metrics.inc("prepaid_calls_total", outcome="talked", profile="demo")
    metrics.observe("prepaid_store_seconds", 0.004, mode="now")
    metrics.add_collector(lambda: [Sample("prepaid_calls_active", "calls in progress", "gauge", 3)])

What a part counts or times itself is declared in :data:`DECLARED` (its kind, its help text, a
histogram's buckets): a name not declared there is refused, so that the README and the Grafana
dashboard (``conf/grafana/prepaid.json``) can name every series the node exports. Figures owned
elsewhere (the calls open, the RTP relay's counters, the SIP core's drops) come from collectors
read at each scrape; their samples may carry labels.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

Labels = tuple[tuple[str, str], ...]


class Sample(NamedTuple):
    """One figure from a collector: ``kind`` is "counter" or "gauge"; ``labels`` as (name, value) pairs."""

    name: str
    help: str
    kind: str
    value: float
    labels: Labels = ()


@dataclass(frozen=True)
class Declared:
    """A metric the parts update through the registry: "counter", "gauge" or "histogram" (with ``buckets``,
    upper bounds in the metric's unit, ascending; ``+Inf`` is implied)."""

    kind: str
    help: str
    buckets: tuple[float, ...] = ()


#: store operations, from the ask on the reactor thread to the answer back on it (seconds)
STORE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

DECLARED: dict[str, Declared] = {
    "prepaid_http_requests_total": Declared("counter", "HTTP requests answered, by route and status"),
    "prepaid_payments_started_total": Declared("counter", "payments sent to a provider, by method"),
    "prepaid_payment_credits_total": Declared("counter", "payments credited (once each), by method"),
    "prepaid_notifications_rejected_total": Declared("counter", "provider notifications refused (4xx), by method"),
    "prepaid_webhook_verification_failures_total": Declared(
        "counter", "provider notifications whose origin or content the adapter could not verify "
        "(signature, unknown at the provider, malformed), by method"),
    "prepaid_provider_errors_total": Declared("counter",
                                              "provider calls that failed after their retries, by method"),
    "prepaid_api_requests_total": Declared("counter", "balance API requests, by operation and status"),
    "prepaid_rate_limited_total": Declared("counter", "requests refused by the rate limit"),
    "prepaid_http_connections_refused_total": Declared(
        "counter", "HTTP connections closed at once, over the cap per source address or in all, by listener "
        "and reason"),
    "prepaid_http_timeouts_total": Declared(
        "counter", "HTTP connections closed because a request's headers or body came too slowly, by listener "
        "and phase"),
    "prepaid_calls_total": Declared("counter", "calls ended, by outcome (as the portal's call list says it) "
                                               "and profile"),
    "prepaid_billed_seconds_total": Declared("counter", "seconds billed to callers, by profile"),
    "prepaid_topups_total": Declared("counter", "top-ups credited, by method (paypal, klarna, paysafecard, "
                                                "manual, api) and profile"),
    "prepaid_topup_cents_total": Declared("counter", "amounts of the top-ups credited in cents (without "
                                                     "bonus), by method and profile"),
    "prepaid_store_seconds": Declared("histogram", "store operations from the ask to the answer, by mode "
                                                   "(now, or soon: waits up to 50 ms to share a commit)",
                                      STORE_BUCKETS_S),
    "prepaid_store_errors_total": Declared("counter", "store operations that failed (not a refusal such as "
                                                      "no account), by error"),
    # figures read from their owners at each scrape (collectors); declared here so that the README and the
    # dashboard can rely on them
    "prepaid_calls_active": Declared("gauge", "calls in progress on this node"),
    "prepaid_rtp_packets_relayed_total": Declared("counter", "RTP packets relayed between legs"),
    "prepaid_rtp_packets_dropped_total": Declared("counter", "RTP packets dropped (malformed, unknown type, muted)"),
    "prepaid_sip_dropped_total": Declared("counter", "SIP messages dropped without an answer, by reason"),
    "prepaid_sip_internal_errors_total": Declared("counter", "errors inside the SIP core that it survived (the "
                                                             "message or timer was dropped), by where and error"),
    "prepaid_config_reloads_total": Declared("counter", "config reloads (SIGHUP, the portal), by result: ok, or "
                                                        "invalid (the running config stayed)"),
    "prepaid_http_connections_open": Declared("gauge", "HTTP connections open, by listener"),
}

#: the counters of :data:`DECLARED` by name and help text (the table before gauges and histograms came)
HELP = {name: d.help for name, d in DECLARED.items() if d.kind == "counter"}


def declared_sample(name: str, value: float, labels: Labels = ()) -> Sample:
    """A collector's sample of a name in :data:`DECLARED` (its help and kind from there)."""
    declared = DECLARED[name]
    return Sample(name, declared.help, declared.kind, value, labels)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _key(labels: dict) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _text(labels: Labels) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels)


def _series(name: str, labels: Labels, value: float) -> str:
    text = _text(labels)
    return f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


class _Histogram:
    """Bucket counts (not cumulative), sum and count of one labelled series."""

    __slots__ = ("counts", "sum", "count")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.sum = 0.0
        self.count = 0


class Metrics:
    """Counters, gauges and histograms by name and labels, plus collectors read at each scrape."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(int))
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)
        self._collectors: list[Callable[[], Iterable[tuple]]] = []

    def add_collector(self, collect: Callable[[], Iterable[tuple]]) -> None:
        """Samples owned elsewhere (calls, RTP relay, SIP core, billing), read at each scrape: :class:`Sample`
        or plain ``(name, help, kind, value[, labels])`` tuples. The web side imports nothing of their owners;
        they hand it this function."""
        self._collectors.append(collect)

    @staticmethod
    def _declared(name: str, kind: str) -> Declared:
        declared = DECLARED.get(name)
        if declared is None:
            raise KeyError(f"unknown metric {name}")
        if declared.kind != kind:
            raise TypeError(f"{name} is a {declared.kind}, not a {kind}")
        return declared

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add ``amount`` (>= 0) to the counter ``name`` with these labels."""
        self._declared(name, "counter")
        if amount < 0:
            raise ValueError(f"{name}: a counter only goes up")
        self._values[name][_key(labels)] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set the gauge ``name`` with these labels."""
        self._declared(name, "gauge")
        self._values[name][_key(labels)] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        """One observation of the histogram ``name`` (e.g. a duration in seconds)."""
        declared = self._declared(name, "histogram")
        series = self._histograms[name].get(_key(labels))
        if series is None:
            series = self._histograms[name][_key(labels)] = _Histogram(len(declared.buckets))
        series.counts[bisect_left(declared.buckets, value)] += 1
        series.sum += value
        series.count += 1

    def value(self, name: str, **labels: str) -> float:
        """The sum of the counter's or gauge's series whose labels include ``labels`` (0 when none);
        for a histogram, its observations counted."""
        wanted = set(_key(labels))
        if name in self._histograms:
            return sum(h.count for key, h in self._histograms[name].items() if wanted <= set(key))
        return sum(v for key, v in self._values.get(name, {}).items() if wanted <= set(key))

    def samples(self) -> list[Sample]:
        """What the collectors say now, each as a :class:`Sample`."""
        out = []
        for collect in self._collectors:
            out.extend(Sample(*sample) for sample in collect())
        return out

    def render(self) -> bytes:
        """Every declared metric (with its HELP and TYPE even before it moved; a collector's samples of a
        declared name under it), then the other collectors' samples, one HELP and TYPE per name."""
        lines: list[str] = []
        grouped: dict[str, list[Sample]] = {}
        for sample in self.samples():
            grouped.setdefault(sample.name, []).append(sample)
        for name, declared in DECLARED.items():
            lines.append(f"# HELP {name} {declared.help}")
            lines.append(f"# TYPE {name} {declared.kind}")
            if declared.kind == "histogram":
                for labels, series in sorted(self._histograms.get(name, {}).items()):
                    lines.extend(_histogram_lines(name, declared.buckets, labels, series))
                continue
            for labels, value in sorted(self._values.get(name, {}).items()):
                lines.append(_series(name, labels, value))
            lines.extend(_series(name, tuple(s.labels), s.value) for s in grouped.pop(name, ()))
        for name, samples in grouped.items():
            lines.append(f"# HELP {name} {samples[0].help}")
            lines.append(f"# TYPE {name} {samples[0].kind}")
            lines.extend(_series(name, tuple(s.labels), s.value) for s in samples)
        return ("\n".join(lines) + "\n").encode()


def _histogram_lines(name: str, bounds: tuple[float, ...], labels: Labels, series: _Histogram) -> list[str]:
    """``_bucket`` lines (cumulative, ``le`` ascending, ``+Inf`` last), then ``_sum`` and ``_count``."""
    lines = []
    running = 0
    for bound, count in zip((*bounds, math.inf), series.counts):
        running += count
        lines.append(_series(f"{name}_bucket", (*labels, ("le", _number(bound))), running))
    lines.append(_series(f"{name}_sum", labels, series.sum))
    lines.append(_series(f"{name}_count", labels, series.count))
    return lines


def parse_text(text: str) -> dict[tuple[str, Labels], float]:
    """Prometheus text as {(name, labels): value}, for tests and tools reading ``/metrics``.

    Only what :meth:`Metrics.render` writes: no timestamps, label values without commas or braces."""
    found: dict[tuple[str, Labels], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, rest = series.partition("{")
        labels: Labels = ()
        if rest:
            pairs = [p.split("=", 1) for p in rest.rstrip("}").split(",") if p]
            labels = tuple(sorted((k, v.strip('"').replace('\\"', '"').replace("\\\\", "\\")) for k, v in pairs))
        found[(name, labels)] = float(value)
    return found
