"""The per-source rate limit of new INVITEs (b2bua.admission), on plain numbers."""

from b2bua.admission import Admission, AdmissionSettings, SourceRate


def test_a_burst_is_admitted_then_the_source_waits_for_its_rate():
    """``burst`` INVITEs at once go on; the next waits 1/per_s; after that wait one more goes on."""
    rate = SourceRate(per_s=2.0, burst=3)
    assert [rate.admit("198.51.100.7", 100.0) for _ in range(3)] == [None, None, None]
    assert rate.admit("198.51.100.7", 100.0) == 0.5
    assert rate.admit("198.51.100.7", 100.5) is None
    assert rate.admit("198.51.100.7", 100.5) == 0.5


def test_sources_are_counted_apart():
    """One source at its limit does not hold back another."""
    rate = SourceRate(per_s=1.0, burst=1)
    assert rate.admit("198.51.100.7", 0.0) is None
    assert rate.admit("198.51.100.7", 0.0) == 1.0
    assert rate.admit("198.51.100.8", 0.0) is None


def test_the_table_of_sources_is_bounded():
    """A flood from many addresses keeps at most ``max_sources`` buckets, the least recently seen go first."""
    rate = SourceRate(per_s=1.0, burst=1, max_sources=100)
    for i in range(1000):
        rate.admit(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(rate) == 100
    assert rate.admit("10.0.3.231", 0.0) == 1.0        # the last one seen is still remembered


def test_zero_rate_means_no_limit():
    """``per_s = 0`` admits everything and remembers nothing."""
    rate = SourceRate(per_s=0.0, burst=1)
    assert all(rate.admit("192.0.2.1", 0.0) is None for _ in range(10_000))
    assert len(rate) == 0


def test_retry_after_is_whole_seconds_and_trusted_carriers_have_their_own_limit():
    """Retry-After rounds the wait up to whole seconds (at least 1); trusted sources use the trusted rate."""
    admission = Admission(AdmissionSettings(invites_per_s=0.25, invite_burst=1, trusted_invites_per_s=0.0))
    assert admission.retry_after_s("203.0.113.9", False, 0.0) is None
    assert admission.retry_after_s("203.0.113.9", False, 0.0) == 4
    assert admission.retry_after_s("203.0.113.9", False, 3.5) == 1
    assert all(admission.retry_after_s("192.0.2.1", True, 0.0) is None for _ in range(1000))


def test_readiness_names_what_runs_short():
    """/healthz's problems: RTP port pairs under the floor, descriptors under the floor; none when fine."""
    from b2bua.node.app import readiness_problems
    from b2bua.limits import DescriptorHeadroom
    assert readiness_problems(port_pairs_free=100, port_pairs=5000, headroom=DescriptorHeadroom(50, 65536)) == []
    assert readiness_problems(port_pairs_free=3, port_pairs=5000, headroom=DescriptorHeadroom(1000, 1024)) == [
        "RTP port pairs short: 3 of 5000 free", "descriptors short: 1000 open of 1024"]
    # a range smaller than the floor is short only when it is all used
    assert readiness_problems(port_pairs_free=2, port_pairs=2, headroom=DescriptorHeadroom(50, 65536)) == []
