"""The announcement player on task.Clock: pacing, catch-up, stop, queues per leg, both legs at once, MIX."""

import pytest
from twisted.internet import task

from media import g711, tones
from media.player import MIX, REPLACE, Player
from media.stream import OutgoingStream


class FakeStream:
    """The three methods of OutgoingStream, recording what the player did and when."""

    def __init__(self, clock, codec="PCMA"):
        self.clock = clock
        self.codec = codec
        self.payload_type = 8 if codec == "PCMA" else 0
        self.sent = []           # (time, payload)
        self.filter = None
        self.muted = False
        self.mute_log = []

    def send_own_audio(self, payload):
        self.sent.append((self.clock.seconds(), payload))

    def set_audio_filter(self, f):
        self.filter = f

    def set_relay_muted(self, muted):
        self.muted = muted
        self.mute_log.append((self.clock.seconds(), muted))


def numbered(n, codec="PCMA", first=0):
    """n distinct 160-byte frames (frame i filled with one code), in both codecs."""
    frames = [bytes([(first + i) % 256]) * 160 for i in range(n)]
    other = "PCMU" if codec == "PCMA" else "PCMA"
    table = g711.alaw_to_ulaw if codec == "PCMA" else g711.ulaw_to_alaw
    return {codec: frames, other: [f.translate(table) for f in frames]}


def results(playback):
    out = []
    playback.done.addCallback(out.append)
    return out


def test_fake_and_real_stream_offer_the_players_interface():
    """The test double and media.stream.OutgoingStream both have codec and the three methods the player calls."""
    for cls in (FakeStream, OutgoingStream):
        for name in ("send_own_audio", "set_audio_filter", "set_relay_muted"):
            assert callable(getattr(cls, name))
    assert OutgoingStream(clock=lambda: 0.0).codec in ("PCMA", "PCMU")


def test_replace_sends_n_frames_in_n_times_20ms_then_unmutes():
    """REPLACE mutes the relay, sends frame k at k*20 ms, and done fires True at N*20 ms when the relay is unmuted."""
    clock = task.Clock()
    leg = FakeStream(clock)
    frames = numbered(50)
    pb = Player(clock).play([leg], frames, REPLACE)
    done = results(pb)
    assert leg.muted and len(leg.sent) == 1
    for k in range(1, 50):
        clock.advance(0.02)
        assert len(leg.sent) == k + 1
    assert [p for _, p in leg.sent] == frames["PCMA"]
    assert [round(t, 6) for t, _ in leg.sent] == [round(k * 0.02, 6) for k in range(50)]
    assert done == [] and leg.muted
    clock.advance(0.02)
    assert done == [True] and not leg.muted and pb.finished
    assert leg.mute_log == [(0, True), (pytest.approx(1.0), False)]
    clock.advance(1)
    assert len(leg.sent) == 50 and not clock.getDelayedCalls()


def test_late_wakeups_catch_up_by_timestamps_without_drift():
    """When the reactor wakes 100 ms late the due frames go out at once, and the pace stays on the original grid."""
    clock = task.Clock()
    leg = FakeStream(clock)
    Player(clock).play([leg], numbered(20), REPLACE)
    clock.advance(0.1)
    assert len(leg.sent) == 6
    clock.advance(0.013)             # off-grid wake: nothing new due until 0.12
    assert len(leg.sent) == 6
    clock.advance(0.007)
    assert len(leg.sent) == 7
    clock.pump([0.02] * 12)
    assert len(leg.sent) == 19 and leg.sent[-1][0] == pytest.approx(0.36)


def test_very_late_wakeup_sends_a_bounded_burst_and_loses_nothing():
    """A 1 s stall sends at most max_burst frames at once; the rest follow paced, none lost or reordered."""
    clock = task.Clock()
    leg = FakeStream(clock)
    frames = numbered(60)
    done = results(Player(clock, max_burst=5).play([leg], frames, REPLACE))
    clock.advance(1.0)
    assert len(leg.sent) == 1 + 5
    clock.pump([0.02] * 60)
    assert [p for _, p in leg.sent] == frames["PCMA"] and done == [True]


def test_stop_interrupts_and_done_fires_false():
    """stop() halts sending at once, unmutes the relay and fires done with False; later ticks send nothing."""
    clock = task.Clock()
    leg = FakeStream(clock)
    pb = Player(clock).play([leg], numbered(50), REPLACE)
    done = results(pb)
    clock.pump([0.02] * 9)
    pb.stop()
    assert done == [False] and not leg.muted and len(leg.sent) == 10
    clock.advance(2)
    assert len(leg.sent) == 10 and not clock.getDelayedCalls()
    pb.stop()                        # idempotent
    assert done == [False]


def test_queue_per_leg_plays_back_to_back():
    """A second play() on a busy leg waits; its first frame goes out exactly when the first playback ends."""
    clock = task.Clock()
    leg = FakeStream(clock)
    player = Player(clock)
    first = results(player.play([leg], numbered(10, first=0), REPLACE))
    second = results(player.play([leg], numbered(5, first=100), REPLACE))
    clock.pump([0.02] * 20)
    codes = [p[0] for _, p in leg.sent]
    assert codes == list(range(10)) + list(range(100, 105))
    assert leg.sent[10][0] == pytest.approx(0.2)
    assert first == [True] and second == [True] and not player.busy(leg)
    assert not leg.muted


def test_warning_to_both_legs_in_one_call():
    """One play() speaks a prompt to the caller (PCMA) and the 1400 Hz beeps to the agent (PCMU); done waits for both."""
    clock = task.Clock()
    caller, agent = FakeStream(clock, "PCMA"), FakeStream(clock, "PCMU")
    prompt, tone = numbered(80), tones.warning_tone()
    pb = Player(clock).play([caller, agent], [prompt, tone], [REPLACE, REPLACE])
    done = results(pb)
    clock.pump([0.02] * 60)
    assert [p for _, p in agent.sent] == tone["PCMU"] and not agent.muted
    assert done == [] and caller.muted
    clock.pump([0.02] * 25)
    assert [p for _, p in caller.sent] == prompt["PCMA"] and done == [True]


def test_each_leg_gets_its_own_codec():
    """A leg that negotiated PCMU is sent the PCMU frames of the same prompt."""
    clock = task.Clock()
    a, u = FakeStream(clock, "PCMA"), FakeStream(clock, "PCMU")
    frames = numbered(3)
    Player(clock).play([a, u], frames, REPLACE)
    clock.pump([0.02] * 3)
    assert [p for _, p in a.sent] == frames["PCMA"] and [p for _, p in u.sent] == frames["PCMU"]


def test_mix_adds_our_audio_to_relayed_payloads():
    """MIX installs a filter: each relayed payload comes back with our frame added; done fires and the filter goes."""
    clock = task.Clock()
    leg = FakeStream(clock, "PCMU")
    pcm = tones.tone_pcm(1000, 200, 0.3)
    ours = tones.frames_from_pcm(pcm, "PCMU")
    done = results(Player(clock).play([leg], {"PCMU": ours, "PCMA": tones.frames_from_pcm(pcm, "PCMA")}, MIX))
    assert leg.filter is not None and not leg.muted
    silence = tones.silence_frame("PCMU")
    out = []
    for _ in range(10):
        out.append(leg.filter(silence))
        clock.advance(0.02)
    assert out == ours                       # silence + ours == ours
    assert leg.sent == [] and done == [True] and leg.filter is None


def test_mix_clips_instead_of_wrapping():
    """Loud relayed audio plus a loud prompt saturates at full scale, it never wraps round to the other sign."""
    clock = task.Clock()
    leg = FakeStream(clock, "PCMA")
    loud = g711.encode_alaw(b"\xff\x7f" * 160)          # +32767
    Player(clock).play([leg], {"PCMA": [loud]}, MIX)
    mixed = leg.filter(loud)
    assert g711.decode_alaw(mixed) == g711.decode_alaw(loud)


def test_mix_sends_alone_when_relayed_audio_stops():
    """On hold or with silence suppression no relayed packets come: after the grace period our frames go out alone."""
    clock = task.Clock()
    leg = FakeStream(clock, "PCMA")
    frames = numbered(20)
    pb = Player(clock, mix_grace_ms=60).play([leg], frames, MIX)
    done = results(pb)
    silence = tones.silence_frame("PCMA")
    for _ in range(5):                        # relay flows for 100 ms
        leg.filter(silence)
        clock.advance(0.02)
    assert leg.sent == []
    clock.pump([0.02] * 40)                   # relay stops
    assert [p for _, p in leg.sent] == frames["PCMA"][5:]
    assert pb.frames_sent_own == 15 and done == [True] and leg.filter is None
    # own frames are paced one per 20 ms, not bursted
    gaps = {round(b[0] - a[0], 6) for a, b in zip(leg.sent, leg.sent[1:])}
    assert gaps == {0.02}


def test_stop_stream_drops_what_is_queued_on_that_leg():
    """stop_stream (call ended) stops the current and the queued playbacks of that leg, each done firing False."""
    clock = task.Clock()
    leg = FakeStream(clock)
    player = Player(clock)
    a = results(player.play([leg], numbered(10), REPLACE))
    b = results(player.play([leg], numbered(10), MIX))
    clock.advance(0.04)
    player.stop_stream(leg)
    assert a == [False] and b == [False] and not leg.muted and leg.filter is None
    assert not player.busy(leg)


def test_bad_frames_are_refused_before_anything_plays():
    """Frames missing the leg's codec, of the wrong size or uneven between codecs raise ValueError."""
    clock = task.Clock()
    leg = FakeStream(clock, "PCMU")
    player = Player(clock)
    with pytest.raises(ValueError):
        player.play([leg], {"PCMA": [b"\xd5" * 160]})
    with pytest.raises(ValueError):
        player.play([leg], {"PCMU": [b"\xff" * 159]})
    with pytest.raises(ValueError):
        player.play([leg], {"PCMU": [b"\xff" * 160], "PCMA": []})
    assert leg.sent == [] and not leg.muted and not player.busy(leg)


def test_a_failing_leg_does_not_stop_the_other():
    """When sending on one leg raises (its socket is gone) the other leg's announcement still plays to the end."""
    clock = task.Clock()
    broken, good = FakeStream(clock), FakeStream(clock)

    def boom(payload):
        raise OSError("network unreachable")

    broken.send_own_audio = boom
    frames = numbered(10)
    done = results(Player(clock).play([broken, good], frames, REPLACE))
    clock.pump([0.02] * 10)
    assert [p for _, p in good.sent] == frames["PCMA"] and done == [True]


def test_mix_follows_the_relayed_packet_size():
    """A leg with 30 ms packets (240 bytes) gets 240 of our samples mixed into each, none skipped or repeated."""
    clock = task.Clock()
    leg = FakeStream(clock, "PCMA")
    frames = numbered(6, first=0x10)                  # 960 samples
    done = results(Player(clock).play([leg], frames, MIX))
    silence = b"\xd5" * 240
    out = b""
    for _ in range(4):
        out += leg.filter(silence)
        clock.advance(0.03)
    assert out == b"".join(frames["PCMA"]) and done == [True] and leg.sent == []


def test_a_looping_playback_starts_again_without_a_gap_until_stopped():
    """``loop``: after the last frame the first follows 20 ms later, on the same grid, round after round;
    the relay stays muted all along, and only stop() ends it (done False, the relay unmuted, no timer left)."""
    clock = task.Clock()
    leg = FakeStream(clock)
    frames = numbered(3)
    pb = Player(clock).play([leg], frames, REPLACE, loop=True)
    done = results(pb)
    for _ in range(10):
        clock.advance(0.02)
    assert [p for _, p in leg.sent] == (frames["PCMA"] * 4)[:11]
    assert [round(t, 6) for t, _ in leg.sent] == [round(k * 0.02, 6) for k in range(11)]
    clock.advance(0.5)                     # a late wake-up catches up (max_burst), and keeps looping
    assert done == [] and leg.muted and len(leg.sent) > 11
    pb.stop()
    assert done == [False] and not leg.muted and not clock.getDelayedCalls()


def test_only_replace_loops():
    """A MIX playback has nothing of its own to loop over: asking for it is an error."""
    with pytest.raises(ValueError, match="REPLACE"):
        Player(task.Clock()).play([FakeStream(task.Clock())], numbered(3), MIX, loop=True)
