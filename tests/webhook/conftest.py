"""Fixtures of the web side's tests."""

from __future__ import annotations

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
