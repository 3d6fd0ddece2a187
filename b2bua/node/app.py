"""Wiring the running server: store, billing, SIP, media and HTTP from one config, on one reactor.

:class:`Node` is everything ``prepaid run`` serves, built from a
:class:`~b2bua.node.config.Config` and an injected reactor, so that the tests and
``prepaid demo`` start the very same thing on ephemeral ports.  ``start()``
fires with the bound ports; ``stop()`` closes sockets, stops timers and the
store's thread pool.  Every part reads the config snapshot of ``node.holder``
(:mod:`b2bua.node.reload`): a reload (SIGHUP, the portal's "Reload config") swaps it
whole, re-reading the secrets file too, and the router, call settings, billing,
media prompts, web pages and portal see it from then on; a config that does not
validate changes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import (FileLogObserver, FilteringLogObserver, Logger, LogLevel, LogLevelFilterPredicate,
                            formatEventAsClassicLogText, formatTime, globalLogBeginner)

from billing.db.sessions import SqlSessionStore
from billing.pinguard import PinGuard
from billing.reconcile import Reconciler
from billing.session import CallBilling
from billing.store import Store
from media.library import PromptError
from media.workers import WorkerEngine, WorkerSettings, spawn_process

from .. import heap
from ..callmedia import CallMediaFactory, prompt_sets, ringback_files
from ..capabilities import ALLOWED_METHODS, SUPPORTED_AS_UAS
from ..calls import CallManager, CallSettings
from .config import RINGBACK_NAMES, Config
from ..faults import CallFaults
from .schema import ConfigInvalid, ConfigProblem
from ..probe import AgentProber
from .reload import ConfigHolder
from .snapshot import ConfigSnapshot, take_snapshot
from ..routing import Router
from ..sip.endpoint import SipEndpoint
from .stdlog import bridge_stdlib_logging
from .nodemetrics import NodeMetrics
from ..limits import DescriptorHeadroom, descriptor_headroom, raise_descriptor_limit
from ..transport import listen_sip
from .webapp import start_web
from webhook.portal import pages
from webhook.portal.pages import reload as reload_page
from webhook.accesslog import AccessLines, access_lines
from webhook.metrics import Metrics
from webhook.metrics_access import no_token
from webhook.portal.server import build_portal_site
from webhook.server import listen

log = Logger()


#: how long a stopping node waits for its calls' legs to answer the BYEs it sent, and then for the records
STOP_GRACE_S = 2.0


def call_settings(config: Config) -> CallSettings:
    return CallSettings(trusted=tuple(config.trusted_carriers), default_region=config.sip.default_region,
                        max_call_duration_s=config.sip.max_call_duration_s,
                        session_expires_s=config.sip.session_expires_s, min_se_s=config.sip.min_se_s,
                        log_steps=config.log_level == "debug", untrusted=config.untrusted,
                        admission=config.admission)


@dataclass(frozen=True)
class Ports:
    """What the node listens on (ports chosen by the OS when the config says 0)."""

    sip_udp: int | None
    sip_tcp: int | None
    sip_tls: int | None
    http: int | None
    portal: int | None = None


class Node:
    """One prepaid node: SIP, RTP, HTTP and the store, started and stopped as a whole."""

    def __init__(self, config: Config, reactor, *, web_factory=None, portal_factory=None, environ=os.environ):
        """Raises ConfigInvalid when the secrets file that ``config`` names cannot be read."""
        self.reactor = reactor
        self.holder = ConfigHolder(take_snapshot(config, now_ms=int(reactor.seconds() * 1000), environ=environ),
                                   clock=reactor, environ=environ)
        self.holder.check(self._check_prompts)
        self.holder.listen(self._reloaded)
        self.web_factory = web_factory
        #: ``factory(node)`` with ``port`` and ``stop()``: the provider portal's listener (None: no portal)
        self.portal_factory = portal_factory
        self.media: CallMediaFactory | None = None
        #: the media worker processes (``[media] workers``; None: the media runs in this process)
        self.media_workers: WorkerEngine | None = None
        self._reload_listeners: list = []
        self.store: Store | None = None
        self.manager: CallManager | None = None
        self.transports = None          # SipTransports, once started: call control flushes it after each input
        self.prober: AgentProber | None = None
        self.ports: Ports | None = None
        self._stoppers: list = []
        #: both HTTP listeners' access lines: ``[http] access_log`` (reopened at each reload), else debug lines
        self.access_lines: AccessLines = access_lines(config.http.access_log)
        #: the node's one metrics registry (served by the portal, and by the public port to a bearer)
        self.metrics = Metrics()
        self.figures = NodeMetrics(self.metrics, self.holder)

    @property
    def config(self) -> Config:
        return self.holder.current

    @inlineCallbacks
    def start(self):
        """Open the store, start billing, SIP, media and HTTP; fires with :class:`Ports`."""
        config = self.config
        if config.store.url.startswith("sqlite:///"):
            path = config.store.url[len("sqlite:///"):]
            if path and os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
        self._stoppers.append(self.access_lines.close)          # stopped last: the listeners' last lines
        self.store = store = Store.open(config.store.url, self.reactor, node_id=config.node_id)
        self._stoppers.append(store.close)
        self._stoppers.extend(self.figures.watch_store(store))
        if store.url.startswith("sqlite"):
            yield store.upgrade()    # the embedded default upgrades itself; PostgreSQL: `prepaid db upgrade`
        watcher = store.watch_balances().start()
        self._stoppers.append(watcher.stop)
        sessions = SqlSessionStore(store, lease_s=config.store.lease_s)
        self.billing = CallBilling(sessions, self.reactor, node_id=config.node_id, lease_s=config.store.lease_s,
                                   renew_interval_s=config.store.renew_interval_s,
                                   max_call_s=config.sip.max_call_duration_s,
                                   log_failure=lambda f: log.failure("billing", f))
        self._stoppers.append(self.billing.stop)
        reconciler = Reconciler(store, self.reactor, config.store.reconcile_interval_s, lease_s=config.store.lease_s)
        reconciler.start()
        self._stoppers.append(reconciler.stop)

        if config.media.workers:
            self.media_workers = self._media_workers(config)
            self._stoppers.append(self.media_workers.close)
            yield self.media_workers.start()    # each worker has loaded the prompts (a bad one fails the start here)
        self.media = CallMediaFactory.from_config(
            self.reactor, config, refusal_ports_percent=lambda: self.config.admission.refusal_ports_percent,
            engine=self.media_workers)
        self._stoppers.append(self.media.close)

        endpoint = SipEndpoint(local_host=config.sip.address,
                               local_ports={"udp": config.sip.udp_port, "tcp": config.sip.tcp_port,
                                            "tls": config.sip.tls_port},
                               user_agent=config.sip.user_agent, allowed_methods=ALLOWED_METHODS,
                               supported_extensions=SUPPORTED_AS_UAS, report_ended=True)
        self.figures.watch_sip(endpoint)
        self.router = Router(config.profiles.values(), config.sip.default_region)
        self.pin_guard = PinGuard(store, lambda: self.config.pin.rule(),
                                  carrier_rule=lambda: self.config.pin.carrier_rule(),
                                  carriers=lambda: self.config.trusted_carriers,
                                  actor=f"node:{config.node_id}")
        self.prober = AgentProber(endpoint=endpoint, reactor=self.reactor, router=lambda: self.router,
                                  agents=lambda: [a for p in self.config.profiles.values() for a in p.agents],
                                  interval_s=config.sip.probe_interval_s, flush=self._flush_sip)
        self.manager = CallManager(endpoint=endpoint, reactor=self.reactor, router=self.router,
                                   settings=call_settings(config), billing=self.billing,
                                   record=self._record, flush=self._flush_sip,
                                   media_for_call=self._media_for_call, pin_lookup=self._pin_lookup,
                                   pin_gate=self.pin_guard, faults=CallFaults(strict=False),
                                   probes=self.prober.on_event)
        self.transports, bound = listen_sip(self.reactor, endpoint, config.sip, self.manager.on_event)
        endpoint.local_ports.update(bound.by_transport())      # Via and Contact name the ports bound
        self._stoppers.append(self.transports.stop)
        self._stoppers.append(self._end_calls)      # stoppers run last first: the calls end while SIP still runs
        self.prober.start()
        self._stoppers.append(self.prober.stop)

        for missing in self.holder.snapshot.unpaid:     # once each; a reload logs what changed
            log.warn("{missing}", missing=missing)
        web = (self.web_factory or NodeWebSide)(self, config)
        self._stoppers.append(web.stop)
        self.metrics.add_collector(self.samples)
        http_port = web.port
        portal_port = None
        if self.portal_factory is not None:
            portal = self.portal_factory(self)
            self._stoppers.append(portal.stop)
            portal_port = portal.port
        self.ports = Ports(bound.udp, bound.tcp, bound.tls, http_port, portal_port)
        log.info("prepaid node {node} serving: SIP udp {udp} tcp {tcp} tls {tls}, HTTP {http}, portal {portal}, "
                 "store {store}", node=config.node_id, udp=bound.udp, tcp=bound.tcp, tls=bound.tls, http=http_port,
                 portal=portal_port, store=store.url)
        return self.ports

    def _media_workers(self, config: Config) -> WorkerEngine:
        """``[media] workers`` processes on shares of the RTP range (media.workers), told the prompts to load."""
        m = config.media
        settings = WorkerSettings(m.address, m.silence_timeout_s, tuple(str(n) for n in config.trusted_carriers),
                                  tuple(sorted(prompt_sets(config))), tuple(sorted(ringback_files(config))),
                                  config.log_level)
        log.info("media: {workers} worker processes on RTP ports {lo}..{hi}", workers=m.workers, lo=m.rtp_port_min,
                 hi=m.rtp_port_max)
        return WorkerEngine(self.reactor, settings, m.rtp_port_min, m.rtp_port_max, m.workers,
                            spawn_process(self.reactor))

    def readiness(self) -> list[str]:
        """/healthz: what keeps this node from taking new calls now (none: ready)."""
        engine = self.media.engine
        return readiness_problems(port_pairs_free=engine.counters().port_pairs_free, port_pairs=engine.port_pairs,
                                  headroom=descriptor_headroom())

    def _flush_sip(self) -> None:
        """Send what the SIP endpoint has for the wire (call control and the prober, after each input)."""
        self.transports.flush()

    def _media_for_call(self, call_id: str, profile):
        """A new call's anchored media; dead media (the relay's silence timeout) ends the call."""
        return self.media.for_call(call_id, profile.language, profile.prompts_dir,
                                   on_dead=self.manager.media_dead(call_id), on_dtmf=self.manager.media_dtmf(call_id),
                                   withheld_pin=profile.withheld == "pin", ringback=profile.ringback)

    def _pin_lookup(self, profile_name: str, pin: str):
        """The E.164 number of the account with this customer PIN, or None."""
        return self.store.account_by_pin(profile_name, pin).addCallback(
            lambda account: account.number if account is not None else None)

    def samples(self):
        """The node's own figures for ``/metrics``: calls, SIP, RTP relay, billing."""
        relay = self.media.engine.counters()
        counts = self.manager.open_counts()
        return [
            ("prepaid_calls_active", "calls in progress on this node", "gauge", counts.calls),
            ("prepaid_calls_completed_total", "calls ended on this node", "counter", self.manager.completed),
            ("prepaid_call_unknown_events_total", "events a call's table has no row for, dropped (a bug; logged "
             "with the call id)", "counter", self.manager.faults.unknown_transitions),
            ("prepaid_call_errors_total", "exceptions caught in call control and its media handlers (a bug; "
             "logged with the call id)", "counter", self.manager.faults.errors + self.media.failed_handlers),
            ("prepaid_sip_internal_errors_total", "exceptions caught in the SIP core and around its event handler, "
             "the message or event dropped (a bug; logged with its traceback)", "counter",
             self.transports.core_faults + self.transports.user_failures),
            ("prepaid_store_listener_errors_total", "exceptions out of the store's listeners (balance news, top-ups, "
             "job timings), the others told still (a bug; logged with its traceback)", "counter",
             self.store.listener_failures),
            ("prepaid_invites_untrusted_refused_total", "new INVITEs from outside the trusted carriers refused (403)",
             "counter", self.manager.refused_early["untrusted"]),
            ("prepaid_invites_rate_limited_total", "new INVITEs over their source's rate (503 with Retry-After)",
             "counter", self.manager.refused_early["rate"]),
            ("prepaid_sip_connections_refused_total", "SIP TCP/TLS connections closed at once: over a cap",
             "counter", self.transports.refused_connections),
            ("prepaid_sip_connections_closed_slow_total", "SIP TCP/TLS connections closed: a message not whole "
             "by its deadline", "counter", self.transports.closed_slow),
            ("prepaid_sip_connections_closed_idle_total", "SIP TCP/TLS connections closed: idle", "counter",
             self.transports.closed_idle),
            ("prepaid_sip_transactions_open", "SIP transactions alive", "gauge", counts.transactions),
            ("prepaid_sip_dialogs_open", "SIP dialogs alive", "gauge", counts.dialogs),
            ("prepaid_billing_debits_total", "debits ahead made by this node's call sessions", "counter",
             self.billing.debits),
            ("prepaid_pin_lockouts_total", "PIN entry locked by this node's calls (too many wrong PINs)", "counter",
             self.pin_guard.lockouts),
            ("prepaid_rtp_packets_relayed_total", "RTP packets relayed between legs", "counter", relay.packets_relayed),
            ("prepaid_rtp_packets_dropped_total", "RTP packets dropped (malformed, unknown type, muted)", "counter",
             relay.packets_dropped),
            ("prepaid_rtp_packets_stray_total", "RTP packets from addresses not latched", "counter",
             relay.packets_stray),
            ("prepaid_rtp_sessions_open", "media sessions open", "gauge", relay.sessions_open),
            ("prepaid_rtp_port_pairs_free", "RTP port pairs free in the range", "gauge", relay.port_pairs_free),
            ("prepaid_media_worker_restarts_total", "media workers started again after one died (its calls ended "
             "as media_failed; logged with its pid)", "counter", self.media.engine.restarts),
        ]

    def _record(self, record) -> None:
        self.figures.call_ended(record)
        self.store.add_call_record(record).addErrback(
            lambda f: log.failure("call record of {call_id} not written", f, call_id=record.call_id))

    def _check_prompts(self, new: ConfigSnapshot) -> None:
        """Before a reload takes effect: the new profiles' prompts, operators' folders read again; a bad
        recording refuses the whole reload (ConfigInvalid naming the profile's prompts_dir, or its ringback
        for a music file), with the old prompts kept."""
        if self.media is None:
            return
        try:
            self.media.reload_prompts(new.config)
        except PromptError as exc:
            config = new.config
            keys = [f"profiles.{p.name}.ringback" for p in config.profiles.values()
                    if p.ringback not in RINGBACK_NAMES and p.ringback in str(exc)]
            keys += [f"profiles.{p.name}.prompts_dir" for p in config.profiles.values()
                     if p.prompts_dir and p.prompts_dir in str(exc)]
            raise ConfigInvalid([ConfigProblem(config.path, keys[0] if keys else "profiles.*.prompts_dir",
                                               str(exc))]) from None

    def _reloaded(self, old: ConfigSnapshot, snapshot: ConfigSnapshot) -> None:
        """The parts that hold something made from the config get it made afresh (the web side and the
        portal read the holder at each request)."""
        if self.manager is None:
            return
        new = snapshot.config
        self.router = Router(new.profiles.values(), new.sip.default_region)
        self.manager.router = self.router
        self.manager.settings = call_settings(new)
        self.billing.max_call_s = new.sip.max_call_duration_s
        if self.media is not None:
            self.media.engine.set_latch_networks(new.trusted_carriers)
        if self.media_workers is not None:      # this process's own log follows in serve (follow_log_level)
            self.media_workers.set_log_level(new.log_level)
        self.access_lines.reopen()     # logrotate moved the file, then sent SIGHUP
        for listener in self._reload_listeners:
            listener(new)

    @inlineCallbacks
    def _end_calls(self):
        """A graceful stop ends every open call: BYE to both legs, billing ended at this instant, and the
        record written; legs whose BYE is not answered within ``STOP_GRACE_S`` are not waited for."""
        calls = self.manager.end_all("node_stopped")
        if not calls:
            return
        log.info("stopping: {count} call(s) ended", count=len(calls))
        yield self._all_or_timeout([call.finished for call in calls], STOP_GRACE_S)
        for call in calls:
            self.manager.give_up_on_legs(call)
        yield self._all_or_timeout([call.finished for call in calls], STOP_GRACE_S)
        # the records ride in the store's next batch: written now, while the store still runs
        yield self._all_or_timeout([self.store.records.flush()], STOP_GRACE_S)

    def _all_or_timeout(self, deferreds: list, timeout_s: float) -> Deferred:
        """Fires (with None) when every one of ``deferreds`` has fired, or after ``timeout_s``; it cancels
        none of them and leaves their results to whoever else waits on them."""
        waiter: Deferred = Deferred()
        left = len(deferreds)

        def one_done(result):
            nonlocal left
            left -= 1
            if left == 0 and not waiter.called:
                timer.cancel()
                waiter.callback(None)
            return result
        timer = self.reactor.callLater(timeout_s, lambda: waiter.called or waiter.callback(None))
        for d in deferreds:
            d.addBoth(one_done)
        return waiter

    @inlineCallbacks
    def stop(self):
        """Stop everything, last started first; waits for what returns Deferreds."""
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                yield maybeDeferred(stopper)
            except Exception:
                log.failure("stopping {stopper}", stopper=getattr(stopper, "__qualname__", type(stopper).__name__))


#: /healthz says "not ready" below these: a load balancer then sends new calls elsewhere while the calls
#: in progress go on (the attack run saw UDP OPTIONS answered 200 while no RTP port or descriptor was left)
READY_MIN_FREE_PORT_PAIRS = 4
READY_MIN_FREE_DESCRIPTORS = 64


def readiness_problems(*, port_pairs_free: int, port_pairs: int, headroom: DescriptorHeadroom) -> list[str]:
    """What keeps a node from taking new calls now: RTP port pairs or descriptors running short."""
    problems = []
    if port_pairs_free < min(READY_MIN_FREE_PORT_PAIRS, port_pairs):
        problems.append(f"RTP port pairs short: {port_pairs_free} of {port_pairs} free")
    if headroom.free < READY_MIN_FREE_DESCRIPTORS:
        problems.append(f"descriptors short: {headroom.open} open of {headroom.limit}")
    return problems


class NodeWebSide:
    """``Node``'s default web factory: ``factory(node, config)`` with ``port``, ``metrics`` (the site's
    :class:`webhook.metrics.Metrics`, which the node adds its figures to) and ``stop()``. The site reads
    the holder's snapshot at each request: payment methods whose merchant account has no credentials are
    left off the page (the node still serves calls, the balance API and the other methods)."""

    def __init__(self, node: Node, config: Config) -> None:
        holder = node.holder
        self.listening = start_web(lambda: holder.snapshot.web, node.store, node.reactor, config.http,
                                   readiness=node.readiness, metrics=node.metrics, metrics_token=node.figures.token)
        self.listening.factory.access_lines = node.access_lines
        self.port = self.listening.getHost().port
        self.metrics = self.listening.factory.app.metrics

    def stop(self):
        return self.listening.stopListening()


class NodePortal:
    """The provider portal on ``[portal]`` (HTTPS with its own certificate): ``factory(node)`` with ``port`` and
    ``stop()``. Its pages read the config the node's holder has in force at each request."""

    def __init__(self, node: Node) -> None:
        holder = node.holder
        settings = holder.current.portal
        site = build_portal_site(node.store, lambda: holder.current, node.reactor,
                                 routes=pages.routes() + reload_page.routes_for(holder.reload,
                                                                                lambda: holder.snapshot.loaded_ms),
                                 config_loaded_ms=lambda: holder.snapshot.loaded_ms, metrics=node.metrics)
        site.access_lines = node.access_lines
        self.listening = listen(site, node.reactor, settings.address, settings.port,
                                tls_certificate=settings.tls_certificate, tls_private_key=settings.tls_private_key)
        self.port = self.listening.getHost().port

    def stop(self):
        return self.listening.stopListening()


class _SecondStamp:
    """Twisted's time prefix (``formatTime``), made once per second: it has no finer part, and making it
    (time zone offset, strftime) was a third of a log line's cost; a node writes one line per call."""

    def __init__(self) -> None:
        self._second: int | None = None
        self._stamp = "-"

    def __call__(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._second, self._stamp = second, formatTime(when)
        return self._stamp


def log_observer(level: str, out, levels: LogLevelFilterPredicate | None = None) -> FilteringLogObserver:
    """Text lines on ``out`` for events at ``level`` (``[node] log_level``) and above, as
    ``textFileLogObserver`` writes them; ``levels``, when given, is the filter (to change its level later)."""
    stamp = _SecondStamp()
    lines = FileLogObserver(out, lambda event: formatEventAsClassicLogText(event, formatTime=stamp))
    levels = levels if levels is not None else LogLevelFilterPredicate()
    levels.setLogLevelForNamespace("", LogLevel.levelWithName(level))
    return FilteringLogObserver(lines, [levels])


def follow_log_level(levels: LogLevelFilterPredicate):
    """A reload listener: the node's log level becomes the new config's ``[node] log_level``."""
    def reloaded(old: ConfigSnapshot, new: ConfigSnapshot) -> None:
        levels.setLogLevelForNamespace("", LogLevel.levelWithName(new.config.log_level))
        bridge_stdlib_logging(new.config.log_level)
    return reloaded


def serve(config: Config, reactor) -> int:
    """``prepaid run``: start a :class:`Node` on ``reactor`` and run until SIGTERM/SIGINT."""
    levels = LogLevelFilterPredicate()
    globalLogBeginner.beginLoggingTo([log_observer(config.log_level, sys.stdout, levels)], redirectStandardIO=False)
    bridge_stdlib_logging(config.log_level)     # libraries' logging records into the same lines
    raise_descriptor_limit()   # every connection and RTP port is a descriptor: the soft limit up to the hard one
    try:
        node = Node(config, reactor, portal_factory=NodePortal)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            log.critical("prepaid cannot start: {problem}", problem=str(problem))
        return 2
    node.holder.listen(follow_log_level(levels))
    exit_code = [0]

    def started(ports: Ports) -> None:
        frozen = heap.settle()
        log.debug("{frozen} objects of the startup frozen out of the collector's walks", frozen=frozen)
        # one machine-readable line for scripts and tests that start us on port 0
        print(json.dumps({"ready": True, "ports": {"udp": ports.sip_udp, "tcp": ports.sip_tcp,
                                                   "tls": ports.sip_tls, "http": ports.http,
                                                   "portal": ports.portal}}), flush=True)

    def failed(failure) -> None:
        log.failure("prepaid could not start", failure)
        exit_code[0] = 1
        reactor.stop()

    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(node.holder.reload))

    stopping = False

    def stop_once() -> None:
        # a second SIGTERM while the calls are being ended (a service manager's, a test's) changes nothing:
        # Twisted's own handler would call reactor.stop() again and log ReactorNotRunning as CRITICAL
        nonlocal stopping
        if not stopping:
            stopping = True
            reactor.stop()

    def own_stop_signals() -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: reactor.callFromThread(stop_once))
    reactor.callWhenRunning(own_stop_signals)
    reactor.callWhenRunning(lambda: node.start().addCallbacks(started, failed))
    reactor.addSystemEventTrigger("before", "shutdown", node.stop)
    reactor.run()
    return exit_code[0]
