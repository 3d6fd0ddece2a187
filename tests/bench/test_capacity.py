"""The pure parts of bench/capacity.py: RFC 3550 jitter, loss by sequence numbers, the p99, the prompt's
arrival, the ramp's verdict (bench/rtpstats.py), and the CPU of a process tree (bench/loadkit.py)."""

from __future__ import annotations

import datetime

import pytest

from bench.loadkit import TreeCpu, WorkersUnsupported, descendants, media_workers_sections
from bench.rtpstats import (Histogram, RampLimits, StepFigures, answer_times, audible, jitter_step, prompt_figures,
                            ramp_verdict, window_loss)
from media.g711 import ALAW_DECODE, SILENCE


def test_jitter_moves_a_sixteenth_of_the_way_to_each_transit_change():
    """RFC 3550 A.8: J += (|D| - J) / 16, D the change of transit; a late packet and an early one count alike."""
    assert jitter_step(0.0, 0.010, 0.026) == pytest.approx(0.001)
    assert jitter_step(0.0, 0.026, 0.010) == pytest.approx(0.001)
    assert jitter_step(0.001, 0.010, 0.010) == pytest.approx(0.001 * 15 / 16)


def test_a_steady_transit_has_no_jitter_however_long_it_is():
    """Only the change of transit counts: 80 ms every packet is jitter 0."""
    j = 0.0
    for _ in range(100):
        j = jitter_step(j, 0.080, 0.080)
    assert j == 0.0


def test_loss_counts_the_windows_sequence_numbers_of_every_stream():
    """Two streams sent 100 and 50 packets in the window; 99 and 50 arrived: 1 of 150 lost."""
    assert window_loss([(10, 110), (0, 50)], [99, 50]) == (150, 149, pytest.approx(1 / 150))


def test_a_duplicated_packet_does_not_hide_a_lost_one():
    """More arrivals than were sent (duplicates) count as all arrived, not as negative loss."""
    assert window_loss([(0, 10)], [12]) == (10, 10, 0.0)
    assert window_loss([], []) == (0, 0, 0.0)


def test_a_stream_that_delivered_nothing_is_all_lost():
    assert window_loss([(0, 50), (0, 50)], [50, 0])[2] == pytest.approx(0.5)


def test_p99_is_the_upper_edge_of_its_bin():
    """99 values of 1 ms and one of 30 ms: p99 is 1.0..1.1 ms, the max 30 ms; p100 reaches it."""
    h = Histogram(bin_ms=0.1, top_ms=100)
    for _ in range(99):
        h.add(1.0)
    h.add(30.0)
    assert 1.0 <= h.quantile(0.99) <= 1.1 + 1e-9
    assert h.quantile(1.0) == pytest.approx(30.0)
    assert Histogram().quantile(0.99) is None


def test_values_past_the_top_fall_in_the_last_bin_and_keep_the_max():
    h = Histogram(bin_ms=1.0, top_ms=10)
    h.add(500.0)
    assert h.quantile(0.99) == 500.0 and h.max_ms == 500.0


def test_g711_silence_is_not_the_announcement_and_speech_is():
    """An A-law frame of idle codes is silent; one sample near full scale makes it audible."""
    silent = bytes([SILENCE["PCMA"]]) * 160
    assert not audible(silent, ALAW_DECODE)
    loud = bytes([SILENCE["PCMA"]]) * 159 + bytes([ALAW_DECODE.index(max(ALAW_DECODE))])
    assert audible(loud, ALAW_DECODE)


TRACE = """----------------------------------------------- 2026-12-05 21:25:36.298039
UDP message sent (638 bytes):

INVITE sip:+493012345678@127.0.0.1:32122 SIP/2.0
CSeq: 1 INVITE

m=audio 43580 RTP/AVP 8 0 101

----------------------------------------------- 2026-12-05 21:25:36.303291
UDP message received [678] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE

m=audio 48102 RTP/AVP 8 101

----------------------------------------------- 2026-12-05 21:25:36.803291
UDP message received [678] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE

m=audio 48102 RTP/AVP 8 101

----------------------------------------------- 2026-12-05 21:25:37.000000
UDP message received [300] bytes :

SIP/2.0 200 OK
CSeq: 2 BYE

"""


def test_the_answer_is_the_first_200_to_the_invite_keyed_by_the_nodes_media_port():
    """Our INVITE's SDP, a retransmitted 200 and the 200 to the BYE do not count."""
    at = datetime.datetime(2026, 12, 5, 21, 25, 36, 303291).timestamp()
    assert answer_times(TRACE) == {48102: pytest.approx(at)}


def test_prompt_delays_are_measured_from_the_answer():
    """Three legs: heard 0.2 s and 1.5 s after their answers, one never heard."""
    legs = [[1000, 10.0, 10.2], [1002, 10.0, 11.5], [1004, 10.0, None]]
    figures = prompt_figures(legs, {1000: 10.0, 1002: 10.0, 1004: 10.0})
    assert figures["matched"] == 2 and figures["unheard"] == 1
    assert figures["max_ms"] == pytest.approx(1500.0) and figures["late_over_1_s"] == 1


LIMITS = RampLimits(loss_max=0.001, jitter_p99_max_ms=20.0, max_calls=1000, time_cap_s=100.0)


@pytest.mark.parametrize("figures, next_held, elapsed_s, verdict", [
    (StepFigures(500, 0.0, 2.0, 0.0), 650, 30.0, None),
    (StepFigures(500, 0.0011, 2.0, 0.0), 650, 30.0, "loss"),
    (StepFigures(500, 0.001, 2.0, 0.0), 650, 30.0, None),             # 0.1 % exactly is not above it
    (StepFigures(500, 0.0, 20.5, 0.0), 650, 30.0, "jitter"),
    (StepFigures(500, 0.0, None, 0.0), 650, 30.0, "jitter"),          # nothing arrived to time
    (StepFigures(500, 0.5, 50.0, 0.2), 650, 30.0, "generator"),       # the generator's overload, first
    (StepFigures(500, 0.0, 2.0, 0.05), 650, 30.0, None),              # 5 % of its slots skipped: still fine
    (StepFigures(950, 0.0, 2.0, 0.0), 1100, 30.0, "max calls"),
    (StepFigures(500, 0.0, 2.0, 0.0), 650, 95.0, "time cap"),         # the next level would end past 100 s
])
def test_the_ramp_stops_at_the_first_limit_reached(figures, next_held, elapsed_s, verdict):
    assert ramp_verdict(figures, LIMITS, next_held, elapsed_s, step_s=10.0) == verdict


def test_tree_cpu_sums_the_descendants_and_keeps_an_ended_workers_last_reading():
    """Node 10 with workers 11 and 12 (12's child 13); 20 is not the node's. 11 exits between samples:
    it still counts what it had. A reused pid with a new start time is a new process."""
    tables = iter([
        {(10, 1): (1, 1.0), (11, 2): (10, 0.5), (12, 3): (10, 0.5), (13, 4): (12, 0.1), (20, 5): (1, 9.0)},
        {(10, 1): (1, 1.5), (12, 3): (10, 0.9), (13, 4): (12, 0.1), (20, 5): (1, 12.0)},
        {(10, 1): (1, 1.5), (12, 3): (10, 0.9), (13, 4): (12, 0.1), (11, 9): (10, 0.2)},
    ])
    tree = TreeCpu(10, read_table=lambda: next(tables))
    assert tree.sample() == pytest.approx(2.1)
    assert tree.sample() == pytest.approx(3.0)            # 1.5 + 0.5 (11, last read) + 0.9 + 0.1
    assert tree.sample() == pytest.approx(3.2)            # the new 11 adds its own 0.2
    assert tree.pids == {10, 11, 12, 13}


def test_descendants_follow_every_generation_and_nothing_else():
    assert descendants({2: 1, 3: 2, 4: 3, 5: 1, 6: 99}, 2) == {2, 3, 4}


def test_workers_zero_writes_nothing_where_the_schema_lacks_the_key_and_others_are_refused():
    """A node without [media] workers runs workers = 0 as it is; 2 is reported, not written."""
    from b2bua.node.config import SCHEMA
    media = next(s for s in SCHEMA.tables if s.name == "media")
    assert media_workers_sections(None) == {}
    if "workers" in {f.name for f in media.fields}:
        assert media_workers_sections(2) == {"media": {"workers": "2"}}
    else:
        assert media_workers_sections(0) == {}
        with pytest.raises(WorkersUnsupported):
            media_workers_sections(2)


def test_a_relay_window_too_short_to_measure_is_refused_by_name():
    """bench/media_workers.py --relay-seconds must leave a measured window: at or below the margin it asked the
    reactor for a negative wait and printed nothing; now argparse names the option and the reason."""
    import argparse
    from bench.media_workers import RELAY_MARGIN_S, relay_seconds

    assert relay_seconds("12") == 12.0
    with pytest.raises(argparse.ArgumentTypeError, match="more than 4.5 s"):
        relay_seconds(str(RELAY_MARGIN_S))
