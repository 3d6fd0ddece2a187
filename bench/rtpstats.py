"""What the receivers of ``bench/capacity.py`` compute, as plain functions of plain values.

* :func:`jitter_step`: the interarrival jitter of RFC 3550 (section 6.4.1, A.8), ``J += (|D| - J) / 16``
  with ``D`` the change in transit time (arrival minus send time) from one packet of a stream to the next.
  The send time is the one the sender wrote into the payload when it really sent (not the nominal RTP
  timestamp), so that the load generator's own lateness is not counted as the relay's jitter.
* :func:`window_loss`: loss by sequence numbers: each stream's packets with a sequence number in
  ``[lo, hi)`` (those sent inside the measuring window) against those that arrived.
* :class:`Histogram`: per-packet values in fixed bins, for a p99 without keeping every value.
* :func:`audible`: whether a G.711 A-law frame is more than silence (the announcement has arrived).
* :func:`answer_times`, :func:`prompt_figures`: when SIPp saw each call answered (its ``-trace_msg``
  file), and how long after that the announcement was heard.
* :func:`ramp_verdict`: whether the ramp of held calls goes on, or why it stops.
"""

from __future__ import annotations

import datetime
import re
import statistics
from dataclasses import dataclass
from typing import Sequence

JITTER_DIVISOR = 16              # RFC 3550 A.8: the estimator's gain is 1/16
#: a frame whose loudest sample (linear, of 32768) reaches this is audible: about -42 dBFS, far above the
#: +-8 of G.711's idle codes and far below speech
AUDIBLE_PEAK = 256
PROMPT_LIMIT_S = 1.0             # the announcement is heard within this long of the answer


def jitter_step(jitter_s: float, transit_before_s: float, transit_s: float) -> float:
    """The RFC 3550 jitter estimate after one more packet whose transit is ``transit_s`` (the stream's
    packet before had ``transit_before_s``)."""
    d = transit_s - transit_before_s
    if d < 0:
        d = -d
    return jitter_s + (d - jitter_s) / JITTER_DIVISOR


def window_loss(sent: Sequence[tuple[int, int]], received: Sequence[int]) -> tuple[int, int, float]:
    """(expected, received, loss ratio) over streams: ``sent[i] = (lo, hi)`` are the sequence numbers stream
    ``i`` sent inside the window (``lo`` included, ``hi`` not), ``received[i]`` how many of those arrived
    (a duplicate counts once at most: received is capped at expected per stream)."""
    expected = got = 0
    for (lo, hi), count in zip(sent, received):
        n = max(0, hi - lo)
        expected += n
        got += min(n, count)
    return expected, got, (1.0 - got / expected) if expected else 0.0


class Histogram:
    """Counts of values in bins of ``bin_ms`` up to ``top_ms`` (larger values fall in the last bin)."""

    def __init__(self, bin_ms: float = 0.1, top_ms: float = 1000.0) -> None:
        self.bin_ms = bin_ms
        self.counts = [0] * (int(top_ms / bin_ms) + 1)
        self.max_ms = 0.0
        self.n = 0

    def add(self, value_ms: float) -> None:
        i = int(value_ms / self.bin_ms)
        self.counts[i if i < len(self.counts) else -1] += 1
        self.n += 1
        if value_ms > self.max_ms:
            self.max_ms = value_ms

    def quantile(self, q: float) -> float | None:
        """The upper edge of the bin holding the ``q`` quantile (None when empty): at most one bin high (the
        last bin, open above, gives the largest value)."""
        if not self.n:
            return None
        rank = q * self.n
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                if i == len(self.counts) - 1:       # the last bin has no upper edge: its values go to the max
                    return self.max_ms
                return min((i + 1) * self.bin_ms, self.max_ms)
        return self.max_ms


def audible(payload: bytes, decode: Sequence[int], peak: int = AUDIBLE_PEAK) -> bool:
    """Is this G.711 frame (``decode``: code -> linear sample) louder than ``peak`` anywhere?"""
    return any(abs(decode[code]) >= peak for code in payload)


@dataclass(frozen=True)
class RampLimits:
    """When the ramp stops: the issue's thresholds, and the bounds of every run."""

    loss_max: float = 0.001              # 0.1 %
    jitter_p99_max_ms: float = 20.0
    max_calls: int = 1200
    time_cap_s: float = 150.0
    #: the generator skipped more than this share of its send slots (it was more than 40 ms behind): its
    #: own overload, not the relay's, would then be measured
    generator_skipped_max: float = 0.05


@dataclass(frozen=True)
class StepFigures:
    held_calls: int
    loss: float
    jitter_p99_ms: float | None
    generator_skipped_share: float


def ramp_verdict(step: StepFigures, limits: RampLimits, next_held: int, elapsed_s: float,
                 step_s: float) -> str | None:
    """None to go on to ``next_held`` calls, else why the ramp stops. ``elapsed_s`` is the ramp's time so
    far, ``step_s`` what the last step took (the next one is expected to take as long)."""
    if step.generator_skipped_share > limits.generator_skipped_max:
        return "generator"              # first: loss or jitter then may be the generator's own
    if step.loss > limits.loss_max:
        return "loss"
    if step.jitter_p99_ms is None or step.jitter_p99_ms > limits.jitter_p99_max_ms:
        return "jitter"
    if next_held > limits.max_calls:
        return "max calls"
    if elapsed_s + step_s > limits.time_cap_s:
        return "time cap"
    return None


_MESSAGE_HEAD = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$", re.MULTILINE)
_MEDIA_PORT = re.compile(r"^m=audio (\d+) ", re.MULTILINE)


def answer_times(trace: str) -> dict[int, float]:
    """From a SIPp ``-trace_msg`` file: the port of each 200-to-INVITE's SDP -> when it was received
    (epoch seconds; SIPp writes local time). The first 200 of a call counts, not its retransmissions."""
    found: dict[int, float] = {}
    heads = list(_MESSAGE_HEAD.finditer(trace))
    for head, after in zip(heads, heads[1:] + [None]):
        body = trace[head.end(): after.start() if after else len(trace)]
        if "message received" not in body[:80] or "SIP/2.0 200" not in body or "CSeq: 1 INVITE" not in body:
            continue
        port = _MEDIA_PORT.search(body)
        if port and int(port.group(1)) not in found:
            found[int(port.group(1))] = datetime.datetime.strptime(head.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return found


def prompt_figures(legs: list, answers: dict[int, float]) -> dict:
    """How long after the answer each call's announcement was heard on the carrier's side."""
    delays = sorted(heard - answers[port] for port, _, heard in legs if heard is not None and port in answers)
    unheard = sum(1 for port, _, heard in legs if heard is None)
    if not delays:
        return {"calls": len(legs), "matched": 0, "unheard": unheard}
    return {"calls": len(legs), "matched": len(delays), "unheard": unheard,
            "p50_ms": round(statistics.median(delays) * 1000, 1),
            "p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000, 1),
            "max_ms": round(delays[-1] * 1000, 1),
            f"late_over_{PROMPT_LIMIT_S:g}_s": sum(1 for d in delays if d > PROMPT_LIMIT_S)}
