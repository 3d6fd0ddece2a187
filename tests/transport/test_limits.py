"""The node's descriptor limit: raised from soft to hard at start and logged; the headroom a readiness check reads."""

from __future__ import annotations

import os
import resource

from twisted.logger import globalLogPublisher

from b2bua.limits import UNLIMITED_TARGET, DescriptorLimit, descriptor_headroom, raise_descriptor_limit


class FakeLimits:
    """getrlimit/setrlimit over a (soft, hard) pair; ``refuse`` makes setrlimit raise as the kernel does."""

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.pair = (soft, hard)
        self.refuse = refuse

    def get(self, which):
        assert which == resource.RLIMIT_NOFILE
        return self.pair

    def set(self, which, pair):
        if self.refuse:
            raise ValueError("not allowed to raise maximum limit")
        self.pair = pair


def _logged(fn):
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        result = fn()
    finally:
        globalLogPublisher.removeObserver(seen.append)
    return result, [e["log_format"].format(**e) for e in seen if e.get("log_namespace") == "b2bua.limits"]


def test_the_soft_limit_is_raised_to_the_hard_limit_and_both_are_logged():
    """1024/524288 as many service managers start us: the soft limit becomes 524288; one line says both."""
    fake = FakeLimits(1024, 524288)
    result, lines = _logged(lambda: raise_descriptor_limit(getrlimit=fake.get, setrlimit=fake.set))
    assert result == DescriptorLimit(1024, 524288, 524288) and fake.pair == (524288, 524288)
    assert lines == ["descriptor limit: soft 524288 (was 1024), hard 524288"]


def test_no_hard_limit_raises_to_the_kernels_usual_ceiling_and_a_refusal_keeps_the_soft_limit():
    """An unlimited hard limit is raised to 2**20; a refused raise is logged and the soft limit kept."""
    fake = FakeLimits(1024, resource.RLIM_INFINITY)
    assert raise_descriptor_limit(getrlimit=fake.get, setrlimit=fake.set).soft == UNLIMITED_TARGET
    refused = FakeLimits(1024, 4096, refuse=True)
    result, lines = _logged(lambda: raise_descriptor_limit(getrlimit=refused.get, setrlimit=refused.set))
    assert result == DescriptorLimit(1024, 1024, 4096)
    assert lines[0].startswith("descriptor soft limit stays 1024: raising it to 4096 was refused")


def test_headroom_counts_this_processes_open_descriptors_against_the_soft_limit():
    """A descriptor opened between two readings is one more open and one less free."""
    before = descriptor_headroom()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        after = descriptor_headroom()
    finally:
        os.close(fd)
    assert after.open == before.open + 1 and after.free == before.free - 1
    assert before.limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert 0 < after.free_fraction < 1
