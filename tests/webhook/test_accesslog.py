"""Access lines: in their own file when ``[http] access_log`` names one, else the node log's debug lines."""

from __future__ import annotations

import os

from twisted.logger import LogLevel

from tests.conftest import log_events_during
from webhook.accesslog import DebugLines, FileLines


def test_with_a_file_a_request_is_a_line_there_and_nothing_in_the_node_log(sqlite_env, tmp_path):
    """GET /healthz and /topup/demo: two lines in the file, in order, with method, path and status; the node
    log has no event at info or above naming them (at info a third of the node's lines were access lines)."""
    path = tmp_path / "access.log"
    sqlite_env.site.access_lines = FileLines(str(path))
    seen = log_events_during(lambda: (sqlite_env.call("GET", "/healthz"), sqlite_env.call("GET", "/topup/demo")))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and '"GET /healthz" 200' in lines[0] and '"GET /topup/demo" 200' in lines[1]
    assert not [e for e in seen if e.get("log_level", LogLevel.info) >= LogLevel.info
                and "/topup/demo" in str(e.get("line", "")) + str(e.get("log_format", ""))]


def test_without_a_file_a_request_is_a_debug_event(sqlite_env):
    """The default sink: each request one debug event carrying its line, none at info."""
    assert isinstance(sqlite_env.site.access_lines, DebugLines)
    seen = log_events_during(lambda: sqlite_env.call("GET", "/healthz"))
    access = [e for e in seen if e.get("log_namespace") == "webhook.access"]
    assert [e["log_level"] for e in access] == [LogLevel.debug] and '"GET /healthz" 200' in access[0]["line"]


def test_a_reopen_after_logrotate_moved_the_file_writes_a_new_one(tmp_path):
    """logrotate renames the file and sends SIGHUP: the next lines go to a new file of the old name."""
    path = tmp_path / "access.log"
    lines = FileLines(str(path))
    lines.write("one")
    os.rename(path, tmp_path / "access.log.1")
    lines.write("two")                        # still the moved file until the reopen
    lines.reopen()
    lines.write("three")
    lines.close()
    assert (tmp_path / "access.log.1").read_text() == "one\ntwo\n" and path.read_text() == "three\n"
