"""``prepaid demo``: the whole system on a temporary SQLite store, one scripted call, and its timeline.

:func:`demo_config` turns the example config into a demo one (SQLite in a
temporary folder, SIP/HTTP/RTP on free ports of 127.0.0.1, the demo profile's
agent at the built-in agent, timing scaled down: increments of 1/1, the warning
5 s before the end, top-ups of cents so that the credit lasts seconds).
:class:`Demo` starts a :class:`~b2bua.node.app.Node` with the real call media on the
injected reactor, tops up the demo caller through the store (with the bonus),
lets the built-in carrier (:class:`~demo.phone.TestUa`, a 700 Hz tone) call
the service number, the built-in agent answer (a 1900 Hz tone), tops up again
during the call, and waits until the credit is spent and the call is settled.

:meth:`Demo.listen` finds the prompts and tones in what the two phones
recorded (cross-correlation); :mod:`demo.report` makes the timeline and
the verdict of it all.
"""

from __future__ import annotations

import json
import pathlib
import random
import tomllib
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from twisted.internet.defer import Deferred, inlineCallbacks, returnValue
from twisted.internet.task import deferLater
from twisted.logger import Logger

from media.tones import RINGBACK_CADENCES, beeps_pcm, cadence_pcm

from b2bua.netutil import free_port
from b2bua.node.app import Node
from b2bua.callports import Announcement, Say
from b2bua.callmedia import agent_phrase_for, phrase_for
from b2bua.node.config import load_config
from media.library import PromptLibrary
from .report import PROFILE, DemoResult
from .phone import TestUa, band_level, find

__all__ = ["DemoPlan", "Demo", "demo_config", "write_demo_config", "example_config_path", "sipp_scenario",
           "free_port", "CALLER"]

log = Logger()

CALLER = "+493088776655"             # a Berlin landline: the landline tariff
CARRIER_HZ = 700
AGENT_HZ = 1900
TONE_AMPLITUDE = 1500                # about -27 dBov: a voice under the prompts mixed over it
HEARD_SCORE = 0.6                    # normalised correlation that counts as "heard" (mixed over a tone)
TONE_SHARE = 0.8                     # the other side's tone is this share of the two tones' levels we heard


@dataclass(frozen=True)
class DemoPlan:
    """The script: amounts in cents (each with its bonus in the demo profile), times in seconds."""

    first_topup_cents: int = 50
    first_bonus_cents: int = 5
    midcall_topup_cents: int = 20
    midcall_bonus_cents: int = 2
    topup_after_answer_s: float = 3.0
    warn_before_s: int = 5
    increment: str = "1/1"
    agent_ring_s: float = 1.5          # long enough for one whole burst of the ringback (de: 1 s)
    watchdog_s: float = 90.0


def example_config_path() -> pathlib.Path:
    """``conf/prepaid.toml`` of this checkout (next to the package), else of the working directory."""
    here = pathlib.Path(__file__).resolve().parent.parent / "conf" / "prepaid.toml"
    return here if here.exists() else pathlib.Path("conf/prepaid.toml")




def demo_config(example: dict[str, Any], *, folder: pathlib.Path, agent_uri: str, plan: DemoPlan,
                sip_port: int, http_port: int, rtp_range: tuple[int, int], secrets_file: str = "",
                paypal_cert_origin: str | None = None) -> dict[str, Any]:
    """The example config (as parsed TOML) changed for the demo; the example itself is not touched.

    ``secrets_file`` and ``paypal_cert_origin`` (the demo's PayPal signer) go to ``[payments]``.
    """
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in example.items()}
    raw["node"] = {"id": "demo"}
    raw["sip"] = {**raw.get("sip", {}), "address": "127.0.0.1", "udp_port": sip_port, "tcp_port": sip_port}
    for key in ("tls_port", "tls_certificate", "tls_private_key", "tls_client_ca", "tls_server_ca"):
        raw["sip"].pop(key, None)
    raw["carriers"] = {**raw.get("carriers", {}), "trusted": ["127.0.0.1"]}
    raw["http"] = {**raw.get("http", {}), "address": "127.0.0.1", "port": http_port,
                   "public_url": f"http://127.0.0.1:{http_port}"}
    raw["store"] = {**raw.get("store", {}), "url": f"sqlite:///{folder / 'prepaid.db'}"}
    raw["media"] = {**raw.get("media", {}), "address": "127.0.0.1", "rtp_port_min": rtp_range[0],
                    "rtp_port_max": rtp_range[1], "workers": 0}      # the demo's node runs in one process
    raw["payments"] = {**raw.get("payments", {}), "secrets_file": secrets_file}
    if paypal_cert_origin:
        raw["payments"]["paypal_cert_origins"] = [paypal_cert_origin]
    profiles = {name: dict(p) for name, p in raw.get("profiles", {}).items()}
    demo = profiles.get(PROFILE)
    if demo is None:
        raise ValueError(f"the example config has no [profiles.{PROFILE}]")
    demo.update({"agents": [agent_uri], "increment": plan.increment, "warn_before_s": plan.warn_before_s,
                 "charging_starts": "answer", "ring_timeout_s": 10,
                 "topups": {_eur(plan.first_topup_cents): _eur(plan.first_bonus_cents),
                            _eur(plan.midcall_topup_cents): _eur(plan.midcall_bonus_cents)}})
    demo.pop("first_caller", None)
    raw["profiles"] = {PROFILE: demo}
    return raw


def _eur(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def dump_toml(data: dict[str, Any]) -> str:
    """TOML for the config's subset: tables of strings, numbers, booleans and lists of those."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    def key(k: str) -> str:
        return k if k.replace("_", "").replace("-", "").isalnum() else value(k)

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{key(k)} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{key(k)}" if prefix else key(k), v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"


def write_demo_config(folder: pathlib.Path, *, agent_uri: str, plan: DemoPlan,
                      example_path: pathlib.Path | None = None, paypal_cert_origin: str | None = None) -> pathlib.Path:
    """Write ``folder/prepaid.toml`` (free ports, SQLite in ``folder``); returns its path.

    With ``paypal_cert_origin`` (the web side is wired) it also writes ``folder/secrets.toml`` with made-up
    credentials for the demo profile's merchant accounts, and names both in ``[payments]``.
    """
    example = tomllib.loads((example_path or example_config_path()).read_text())
    base = random.randrange(30000, 59000, 2)
    secrets_file = ""
    if paypal_cert_origin is not None:
        from .web import write_secrets
        accounts = set(example.get("profiles", {}).get(PROFILE, {}).get("payments", {}).values())
        secrets_file = str(write_secrets(folder, accounts))
    raw = demo_config(example, folder=folder, agent_uri=agent_uri, plan=plan, sip_port=free_port(),
                      http_port=free_port(), rtp_range=(base, base + 400), secrets_file=secrets_file,
                      paypal_cert_origin=paypal_cert_origin)
    path = folder / "prepaid.toml"
    path.write_text("# prepaid demo: the example config with free ports, a temporary store, scaled timing\n"
                    + dump_toml(raw))
    return path


def sipp_scenario(folder: pathlib.Path, caller: str = CALLER) -> pathlib.Path:
    """A SIPp carrier scenario whose From is ``caller`` (SIPp's built-in uac sends From ``sipp``)."""
    path = folder / "demo_carrier.xml"
    path.write_text(_SIPP_UAC.replace("CALLER", caller))
    return path


# ---- the run -------------------------------------------------------------------------------------
class Demo:
    """One scripted call through a whole node on ``reactor``; :meth:`run` fires with a :class:`DemoResult`."""

    def __init__(self, reactor, folder: pathlib.Path, plan: DemoPlan = DemoPlan(), *, web: bool = True,
                 caller: str = CALLER) -> None:
        self.reactor = reactor
        self.folder = folder
        self.plan = plan
        self.caller = caller
        self.node: Node | None = None
        self.agent = TestUa(reactor, name="agent", tone_hz=AGENT_HZ, amplitude=TONE_AMPLITUDE, answer=True,
                            ring_s=plan.agent_ring_s, ssrc=0xA6E17)
        self.carrier = TestUa(reactor, name="carrier", tone_hz=CARRIER_HZ, amplitude=TONE_AMPLITUDE, ssrc=0xCA881E)
        self.config_path: pathlib.Path | None = None
        self.web = web
        self.paypal = None
        self.midcall: tuple[bool, str] = (False, "no mid-call top-up was made")

    @inlineCallbacks
    def start(self):
        """Start the phones and the node; fires with the node's :class:`~b2bua.node.app.Ports`."""
        self.agent.start()
        self.carrier.start()
        origin = None
        if self.web:
            from .web import DemoPayPal
            self.paypal = DemoPayPal(self.reactor)
            origin = self.paypal.listen()
        self.config_path = write_demo_config(self.folder, agent_uri=self.agent.uri, plan=self.plan,
                                             paypal_cert_origin=origin)
        config = load_config(str(self.config_path))
        # the demo's own secrets file (its config names it), whatever $PREPAID_SECRETS says
        self.node = Node(config, self.reactor, environ={})
        ports = yield self.node.start()
        returnValue(ports)

    @inlineCallbacks
    def run(self):
        """Top up, call, top up mid-call, wait for the cut-off and the settlement; fires with a DemoResult."""
        ports = yield self.start()
        node, plan = self.node, self.plan
        config = node.config
        profile = config.profiles[PROFILE]
        media_wired = getattr(node, "media", None) is not None
        result = DemoResult(config=config, plan=plan, ports=ports, media_wired=media_wired,
                            web_wired=self.web)
        done_calls: list = []
        node.manager.on_call_done = done_calls.append
        yield node.store.topup(profile.billing, self.caller, plan.first_topup_cents, source="demo",
                               external_ref=f"demo-{uuid.uuid4().hex}", actor="demo", note="before the call")
        service = profile.service_numbers[0]
        target = f"sip:{service}@127.0.0.1:{ports.sip_udp}"
        self.agent.answered.addCallback(lambda _: self.reactor.callLater(plan.topup_after_answer_s, self._midcall))
        carrier_ended = self.carrier.call(target, from_=f"<sip:{self.caller}@127.0.0.1;user=phone>")
        result.carrier = yield carrier_ended
        if self.agent.invited_at is not None:
            yield _wait_for(self.reactor, lambda: True if self.agent.ended.called else None, 5.0)
            result.agent = self.agent.summary()
        result.call = call = yield _wait_for(self.reactor, lambda: done_calls[0] if done_calls else None, 10.0)
        if call is not None:
            yield call.finished
            records = yield _wait_for_deferred(
                self.reactor, lambda: node.store.calls(PROFILE, self.caller), lambda rows: bool(rows), 5.0)
            mine = [r for r in records or () if r.call_id == call.call_id]
            result.record = mine[0] if mine else None
        entries = yield node.store.transactions(profile=PROFILE, number=self.caller)
        result.ledger = sorted(entries, key=lambda e: e.id)
        account = yield node.store.account(PROFILE, self.caller)
        result.balance_cents = account.balance_cents if account is not None else None
        if result.media_wired:
            result.heard = self.listen(profile.language, call)
        result.midcall_ok, result.midcall = self.midcall
        returnValue(result)

    def _midcall(self) -> None:
        """Top up during the call: as PayPal would (a signed webhook to our /hooks/paypal), else through the store."""
        if self.carrier.ended.called:
            return
        node = self.node
        profile = node.config.profiles[PROFILE]
        amount = self.plan.midcall_topup_cents
        if self.paypal is not None:
            from .web import paypal_topup
            d = paypal_topup(self.reactor, node.config, node.store, self.paypal, node.ports.http, PROFILE,
                             self.caller, amount)

            def answered(reply) -> None:
                status, answer = reply
                ok = status == 200 and isinstance(answer, dict) and answer.get("credited") == 1
                self.midcall = (ok, f"PayPal webhook POST /hooks/paypal: HTTP {status} {json.dumps(answer)}")
            d.addCallback(answered)
        else:
            d = node.store.topup(profile.billing, self.caller, amount, source="demo",
                                 external_ref=f"demo-{uuid.uuid4().hex}", actor="demo", note="during the call")
            d.addCallback(lambda r: setattr(self, "midcall", (r.applied, "through the store (web side not wired)")))

        def failed(f) -> None:
            self.midcall = (False, f"mid-call top-up failed: {f.getErrorMessage()}")
            log.failure("demo: mid-call top-up failed", f)
        d.addErrback(failed)

    def listen(self, lang: str, call) -> dict[str, tuple[bool, float | None, float]]:
        """Find the prompts and tones in what each phone recorded: what -> (heard, reactor time, score)."""
        library = PromptLibrary(None, lang)
        minutes = call.session.minutes if call is not None and call.session is not None else 0
        session = call.session if call is not None else None
        per_minute = session.tariff.per_minute if session is not None and call.announce_tariff else None
        klass = call.identity.caller_class.value if call is not None and call.identity.caller_class else None
        # the warning says the time left when it fires: warn_before_s (the demo's top-up moves the end past it)
        warning = Announcement(Say.WARNING, seconds=self.plan.warn_before_s,
                               agent_tone=self.node.config.profiles[PROFILE].agent_warning == "tone")
        agent_names = agent_phrase_for(warning, lang)

        def said(say: Say, *minutes_options) -> list[np.ndarray]:
            return [_pcm(library, phrase_for(Announcement(say, minutes=m), lang)) for m in minutes_options]

        # what the node says is the product's choice (e.g. the minutes after a top-up): try each wording
        patterns = {
            "announcement": (self.carrier, [_pcm(library, phrase_for(
                Announcement(Say.MINUTES, minutes=minutes, per_minute=per_minute, caller_class=klass), lang))]),
            "topped-up message": (self.carrier, said(Say.TOPPED_UP, None, 0, 1, 2)),
            "warning (spoken)": (self.carrier, [_pcm(library, phrase_for(warning, lang))]),
            "warning (agent)": (self.agent, [_pcm(library, agent_names)] if agent_names is not None
                                else [np.frombuffer(beeps_pcm(), dtype="<i2").astype(float)]),
            "final message (caller)": (self.carrier, said(Say.USED_UP, None)),
            "final message (agent)": (self.agent, said(Say.USED_UP, None)),
        }
        ringback = self.node.config.profiles[PROFILE].ringback
        if ringback in RINGBACK_CADENCES:        # its first burst, heard by the carrier while the agent rings
            cadence = RINGBACK_CADENCES[ringback]
            burst = cadence_pcm(cadence)[:2 * 8 * cadence.on_off_ms[0]]
            patterns[f"ringback ({ringback})"] = (self.carrier, [np.frombuffer(burst, dtype="<i2").astype(float)])
        heard: dict[str, tuple[bool, float | None, float]] = {}
        for what, (phone, options) in patterns.items():
            signal, t0 = phone.rtp.recording()
            lag, score = max((find(signal, pattern) for pattern in options), key=lambda found: found[1])
            heard[what] = (score >= HEARD_SCORE, (t0 + lag / 8000) if t0 is not None else None, score)
        for what, phone, other in (("agent's tone (caller)", self.carrier, self.agent),
                                   ("caller's tone (agent)", self.agent, self.carrier)):
            signal, t0 = phone.rtp.recording()
            mine = band_level(signal, phone.rtp.tone_hz) if len(signal) else 0.0
            theirs = band_level(signal, other.rtp.tone_hz) if len(signal) else 0.0
            share = theirs / (theirs + mine) if theirs + mine > 0 else 0.0
            heard[what] = (share >= TONE_SHARE, t0, share)
        return heard

    @inlineCallbacks
    def stop(self):
        """Stop the phones and the node (sockets, timers, the store's threads)."""
        for ua in (self.carrier, self.agent):
            try:
                yield ua.stop()
            except Exception:
                log.failure("demo: stopping {name}", name=ua.name)
        if self.node is not None:
            yield self.node.stop()
        if self.paypal is not None:
            yield self.paypal.stop()


def _pcm(library, names) -> np.ndarray:
    return np.frombuffer(library.pcm(names), dtype="<i2").astype(float)


def _wait_for(reactor, get, timeout_s: float) -> Deferred:
    """Fires with ``get()`` once it is not None (polled every 50 ms), or None after ``timeout_s``."""
    d: Deferred = Deferred()
    deadline = reactor.seconds() + timeout_s

    def poll() -> None:
        value = get()
        if value is not None:
            d.callback(value)
        elif reactor.seconds() >= deadline:
            d.callback(None)
        else:
            reactor.callLater(0.05, poll)
    poll()
    return d


@inlineCallbacks
def _wait_for_deferred(reactor, ask, good, timeout_s: float):
    """Ask ``ask()`` (a Deferred) every 100 ms until ``good(answer)``; the last answer after ``timeout_s``."""
    deadline = reactor.seconds() + timeout_s
    while True:
        answer = yield ask()
        if good(answer) or reactor.seconds() >= deadline:
            returnValue(answer)
        yield deferLater(reactor, 0.1, lambda: None)


_SIPP_UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- The prepaid demo's carrier: calls -s SERVICE as CALLER, holds until our BYE (the credit ends), or 60 s. -->
<scenario name="prepaid demo carrier">
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
      m=audio [media_port] RTP/AVP 8 0
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
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
  <recv request="BYE" timeout="60000" ontimeout="hangup"/>
  <send next="end">
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
  <label id="hangup"/>
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
  <recv response="200"/>
  <label id="end"/>
</scenario>
"""
