"""Fixtures of the web side's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .harness import Env

#: complete credentials for the example config's three merchant accounts: those the fake providers take
SECRETS = """
[accounts.demo-paypal]
client_id = "pp-client"
secret = "pp-secret"
webhook_id = "WH-1"
[accounts.demo-klarna]
client_id = "K123456_abc"
secret = "klarna-secret"
[accounts.demo-paysafecard]
secret = "psc_test_key"
"""


@pytest.fixture
def conf(tmp_path):
    """The example config with its store in tmp_path, HTTP on port 0 and a secrets file."""
    text = open("conf/prepaid.toml", encoding="utf-8").read()
    text = text.replace('url = "sqlite:///../var/prepaid.db"', f'url = "sqlite:///{tmp_path}/p.db"')
    text = text.replace("port = 8080", "port = 0")
    text = text.replace('# secrets_file = "/etc/prepaid/secrets.toml"', f'secrets_file = "{tmp_path}/secrets.toml"')
    (tmp_path / "secrets.toml").write_text(SECRETS)
    path = tmp_path / "prepaid.toml"
    path.write_text(text)
    return str(path)


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
