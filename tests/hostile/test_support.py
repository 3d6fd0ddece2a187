"""The attack suite's reading of a process's memory and descriptors."""

import os

from tests.hostile.support import Resources, report, resources


def test_resources_of_this_process_counts_an_opened_descriptor():
    """A descriptor opened between two readings is counted; memory is read as a positive KiB figure."""
    before = resources(os.getpid())
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        after = resources(os.getpid())
    finally:
        os.close(fd)
    assert after.fds == before.fds + 1
    assert before.rss_kib > 0


def test_report_names_the_attack_and_both_readings(capsys):
    """The printed line carries the attack, what was tried, and both readings."""
    line = report("flood", "10 INVITEs", Resources(1000, 10), Resources(1200, 11))
    assert line == "[hostile] flood: 10 INVITEs; node RSS 1000 -> 1200 KiB, descriptors 10 -> 11"
    assert line in capsys.readouterr().out
