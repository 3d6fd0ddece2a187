"""Fixtures of the web side's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .harness import Env


@pytest.fixture
def env(store_url):
    """Fakes, a threaded store on SQLite or PostgreSQL, and our Site, all on 127.0.0.1 port 0."""
    e = Env(store_url)
    yield e
    e.close()


@pytest.fixture
def sqlite_env(tmp_path):
    """The same on SQLite alone (for tests whose point is not the database)."""
    e = Env(f"sqlite:///{tmp_path}/web.db")
    yield e
    e.close()


@pytest.fixture
def logged():
    """Formatted log lines emitted during the test (twisted.logger)."""
    from twisted.logger import formatEvent, globalLogPublisher
    lines: list[str] = []

    def observer(event):
        lines.append(formatEvent(event))
    globalLogPublisher.addObserver(observer)
    yield lines
    globalLogPublisher.removeObserver(observer)


@pytest.fixture
def served(tmp_path):
    """tests.webhook.serve in a child process: (its URLs as a dict, the SQLite path)."""
    db = tmp_path / "browser.db"
    proc = subprocess.Popen([sys.executable, "-m", "tests.webhook.serve", str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        line = proc.stdout.readline()
        assert line, "the server process did not start"
        yield json.loads(line), str(db)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
