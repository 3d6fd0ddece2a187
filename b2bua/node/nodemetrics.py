"""The node's figures in its one registry: why calls ended, billed seconds, top-ups, the store's latency and
errors, the SIP core's drops and internal errors, config reloads, and the public /metrics token.

    figures = NodeMetrics(metrics, holder)         # metrics: the node's webhook.metrics.Metrics
    stoppers = figures.watch_store(store)          # store latency, errors, top-ups
    figures.watch_sip(endpoint)                    # drops by reason, internal errors
    figures.call_ended(record)                     # each call record, as the node writes it

A call's outcome is :func:`billing.db.calls.outcome`, the very function by which the portal's call list
(EVN) says what became of a call, so a graph and the list never disagree.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterator

from twisted.logger import Logger

from billing.db.calls import outcome
from billing.db.rows import CallRecord
from billing.observe import JobTiming, Topup
from webhook.metrics import Metrics, Sample, declared_sample
from webhook.metrics_access import MetricsTokenInvalid, read_metrics_token

from .config import Config

log = Logger()

#: how the SIP core names an internal error it survived, by where it happened (see b2bua/sip/endpoint.py)
_INTERNAL = re.compile(r"^internal error(?: (?:in|on) (?P<where>[a-z ]+))?: (?P<error>\w+)$")


def drop_reason(why: str) -> str:
    """A drop's text as a label value: ``"bad response: Missing Via header"`` -> ``"bad_response"``."""
    return re.sub(r"[^a-z0-9]+", "_", why.split(":", 1)[0].lower()).strip("_") or "other"


def sip_samples(dropped: dict[str, int]) -> Iterator[Sample]:
    """The SIP core's ``dropped`` counts as drops by reason and internal errors by where and error class."""
    drops: dict[str, int] = {}
    for why, count in dropped.items():
        internal = _INTERNAL.match(why)
        if internal is not None:
            where = (internal.group("where") or "receive").replace(" ", "_")
            yield declared_sample("prepaid_sip_internal_errors_total", count,
                                  (("error", internal.group("error")), ("where", where)))
            continue
        reason = drop_reason(why)
        drops[reason] = drops.get(reason, 0) + count
    for reason, count in sorted(drops.items()):
        yield declared_sample("prepaid_sip_dropped_total", count, (("reason", reason),))


def watch_store(metrics: Metrics, store) -> list[Callable[[], None]]:
    """Time every job of ``store`` (latency histogram, errors) and count every top-up it credits, by method
    and profile, with its amount; returns the functions that stop it."""
    def job(timing: JobTiming) -> None:
        metrics.observe("prepaid_store_seconds", timing.seconds, mode=timing.mode)
        if timing.error is not None:
            metrics.inc("prepaid_store_errors_total", error=timing.error)

    def topup(credited: Topup) -> None:
        metrics.inc("prepaid_topups_total", method=credited.method, profile=credited.profile)
        metrics.inc("prepaid_topup_cents_total", credited.amount_cents, method=credited.method,
                    profile=credited.profile)
    return [store.on_job(job), store.on_topup(topup)]


class NodeMetrics:
    """What feeds the node's registry from its parts; the parts import nothing of it."""

    def __init__(self, metrics: Metrics, holder, environ=os.environ) -> None:
        """``holder`` is the node's config holder: its reload results are counted and each reload re-reads
        the public /metrics token."""
        self.metrics = metrics
        self._holder = holder
        self._environ = environ
        self._token = self._read_token(holder.current, "")
        holder.listen(lambda old, new: self._reloaded())
        metrics.add_collector(self._reload_samples)

    # -- the public listener's bearer token ------------------------------------------------------

    def token(self) -> str:
        """``[metrics] token`` of the secrets file in force ("" : /metrics is not served on the public port)."""
        return self._token

    def _read_token(self, config: Config, keep: str) -> str:
        try:
            return read_metrics_token(config.payments.secrets_file, self._environ)
        except MetricsTokenInvalid as exc:
            log.error("{problem}; /metrics on the public port keeps its {state}", problem=str(exc),
                      state="token" if keep else "404")
            return keep

    def _reloaded(self) -> None:
        self._token = self._read_token(self._holder.current, self._token)

    def _reload_samples(self) -> Iterator[Sample]:
        yield declared_sample("prepaid_config_reloads_total", self._holder.applied, (("result", "ok"),))
        yield declared_sample("prepaid_config_reloads_total", self._holder.refused, (("result", "invalid"),))

    # -- calls -------------------------------------------------------------------------------------

    def call_ended(self, record: CallRecord) -> None:
        """A call's record: counted by outcome and profile; its billed seconds by profile."""
        self.metrics.inc("prepaid_calls_total", outcome=outcome(record), profile=record.profile)
        if record.billed_s:
            self.metrics.inc("prepaid_billed_seconds_total", record.billed_s, profile=record.profile)

    # -- the store ---------------------------------------------------------------------------------

    def watch_store(self, store) -> list[Callable[[], None]]:
        """See :func:`watch_store`."""
        return watch_store(self.metrics, store)

    # -- SIP ---------------------------------------------------------------------------------------

    def watch_sip(self, endpoint) -> None:
        """The SIP endpoint's drops and internal errors, read at each scrape."""
        self.metrics.add_collector(lambda: sip_samples(endpoint.dropped))
