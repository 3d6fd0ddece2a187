"""G.711 coding and the player's MIX filter: microseconds per 20 ms frame, against audioop in the same run.

The stdlib ``audioop`` (C, deprecated, gone in 3.13) is the reference where it
still exists.  Measured per 160-sample frame:

- ``encode``: media.g711.encode_alaw vs audioop.lin2alaw
- ``decode``: media.g711.decode_alaw vs audioop.alaw2lin
- ``mix``: the player's MIX filter (decode, add a prompt frame, clip, encode)
  vs audioop.alaw2lin + audioop.add + audioop.lin2alaw

and the share of one core the MIX filter costs per mixed leg (50 frames a second).

    .venv/bin/python bench/media_player.py [--frames 5000]

Writes ``bench/results/media_player.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import task  # noqa: E402

from media import g711, tones  # noqa: E402
from media.player import MIX, Player  # noqa: E402

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
except ImportError:  # Python 3.13+
    audioop = None


class _Leg:
    codec = "PCMA"

    def __init__(self):
        self.filter = None

    def send_own_audio(self, payload):
        pass

    def set_audio_filter(self, f):
        self.filter = f

    def set_relay_muted(self, muted):
        pass


def per_frame_us(fn, frames: int) -> float:
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(frames):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / frames * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5000)
    args = ap.parse_args(argv)
    pcm = tones.tone_pcm(1000, 20, 0.3)
    alaw = g711.encode_alaw(pcm)
    prompt = tones.frames_from_pcm(tones.tone_pcm(700, 20, 0.3), "PCMA") * (3 * args.frames + 10)

    clock = task.Clock()
    leg = _Leg()
    Player(clock).play([leg], {"PCMA": prompt}, MIX)

    def mix_ours():
        leg.filter(alaw)
        clock.advance(0.02)

    ref_pcm = g711.decode_alaw(prompt[0])

    rows = {
        "encode": (lambda: g711.encode_alaw(pcm), audioop and (lambda: audioop.lin2alaw(pcm, 2))),
        "decode": (lambda: g711.decode_alaw(alaw), audioop and (lambda: audioop.alaw2lin(alaw, 2))),
        "mix": (mix_ours, audioop and (lambda: audioop.lin2alaw(
            audioop.add(audioop.alaw2lin(alaw, 2), ref_pcm, 2), 2))),
    }
    results = {}
    print(f"{'per 20 ms frame':16} {'prepaid us':>11} {'audioop us':>11} {'ratio':>7}")
    for name, (ours, ref) in rows.items():
        ours_us = per_frame_us(ours, args.frames)
        ref_us = per_frame_us(ref, args.frames) if ref else None
        ratio = ours_us / ref_us if ref_us else None
        results[name] = {"prepaid_us": round(ours_us, 2), "audioop_us": ref_us and round(ref_us, 2),
                         "ratio": ratio and round(ratio, 1)}
        print(f"{name:16} {ours_us:11.2f} {ref_us or float('nan'):11.2f} {ratio or float('nan'):7.1f}x")
    core_share = results["mix"]["prepaid_us"] * 50 / 1e6
    results["mix_core_share_per_leg"] = round(core_share, 5)
    results["mixed_legs_per_core"] = int(1 / core_share)
    print(f"MIX filter: {core_share * 100:.2f} % of a core per mixed leg, ~{int(1 / core_share)} mixed legs per core")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "media_player.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
