"""Records of the standard library's logging, as Twisted events in the node's one log."""

from __future__ import annotations

import logging

from twisted.logger import LogLevel, formatEvent

from b2bua.node.stdlog import bridge_stdlib_logging
from tests.conftest import log_events_during


def test_a_library_warning_is_a_twisted_event_with_its_logger_name_and_level():
    """``logging.getLogger("sqlalchemy.pool").warning("%d left", 3)`` arrives at warn, namespace
    sqlalchemy.pool, text "3 left"; an info record under level warn arrives not at all."""
    root = logging.getLogger("test-bridge-root")
    root.propagate = False                    # the stand-in for the root logger: not on to pytest's handler
    bridge_stdlib_logging("warn", root)
    lib = root.getChild("sqlalchemy.pool")
    seen = log_events_during(lambda: (lib.warning("%d left", 3), lib.info("not wanted")))
    assert [(e["log_namespace"], e["log_level"], formatEvent(e)) for e in seen] == [
        ("test-bridge-root.sqlalchemy.pool", LogLevel.warn, "3 left")]


def test_an_exception_record_carries_its_failure_and_a_bad_format_is_kept():
    """``log.exception`` in a library gives an error event with the traceback's failure; a record whose args
    do not fit its format is shown as it was meant, not lost."""
    root = logging.getLogger("test-bridge-exc")
    root.propagate = False
    bridge_stdlib_logging("debug", root)

    def fail():
        try:
            raise ValueError("boom")
        except ValueError:
            root.exception("while doing %s", "x")
        root.error("%d things", "many")
    seen = log_events_during(fail)
    assert seen[0]["log_level"] == LogLevel.error and seen[0]["log_failure"].check(ValueError)
    assert formatEvent(seen[0]) == "while doing x"
    assert "'%d things' % ('many',)" in formatEvent(seen[1])


def test_at_info_a_librarys_info_record_is_left_out_and_at_debug_it_comes():
    """A node at info does not print Alembic's "setup plugin" lines; at debug they are there, at info level."""
    root = logging.getLogger("test-bridge-levels")
    root.propagate = False
    bridge_stdlib_logging("info", root)
    assert log_events_during(lambda: root.getChild("alembic").info("setup plugin")) == []
    bridge_stdlib_logging("debug", root)
    [event] = log_events_during(lambda: root.getChild("alembic").info("setup plugin"))
    assert event["log_level"] == LogLevel.info
