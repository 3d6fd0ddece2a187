"""Counters for ``/metrics`` in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

#: one sample from a collector: (name, help, "counter" or "gauge", value)
Sample = tuple[str, str, str, float]

HELP = {
    "prepaid_http_requests_total": "HTTP requests answered, by route and status",
    "prepaid_payments_started_total": "payments sent to a provider, by method",
    "prepaid_payment_credits_total": "payments credited (once each), by method",
    "prepaid_notifications_rejected_total": "provider notifications refused (4xx), by method",
    "prepaid_provider_errors_total": "provider calls that failed after their retries, by method",
    "prepaid_api_requests_total": "balance API requests, by operation and status",
    "prepaid_rate_limited_total": "requests refused by the rate limit",
    "prepaid_http_connections_refused_total":
        "HTTP connections closed at once, over the cap per source address or in all, by reason",
    "prepaid_http_timeouts_total": "HTTP connections closed because a request's headers or body came too slowly, by phase",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], int]] = defaultdict(lambda: defaultdict(int))
        self._collectors: list[Callable[[], Iterable[Sample]]] = []

    def add_collector(self, collect: Callable[[], Iterable[Sample]]) -> None:
        """Samples owned elsewhere (calls, RTP relay, billing), read at each scrape; the web side
        imports nothing of their owners, they hand it this function."""
        self._collectors.append(collect)

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        if name not in HELP:
            raise KeyError(f"unknown metric {name}")
        self._counters[name][tuple(sorted((k, str(v)) for k, v in labels.items()))] += amount

    def value(self, name: str, **labels: str) -> int:
        return self._counters.get(name, {}).get(tuple(sorted((k, str(v)) for k, v in labels.items())), 0)

    def render(self) -> bytes:
        lines = []
        for name, help_text in HELP.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(self._counters.get(name, {}).items()):
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{text}}} {value}" if text else f"{name} {value}")
        for collect in self._collectors:
            for name, help_text, kind, value in collect():
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                lines.append(f"{name} {value:g}")
        return ("\n".join(lines) + "\n").encode()
