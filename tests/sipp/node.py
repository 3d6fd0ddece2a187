"""A real ``prepaid run`` in a subprocess, on free ports, with its own SQLite store: the B2BUA under test.

:func:`start_node` writes a config (the example's, with ports, store, agents
and profile keys changed), starts ``prepaid run`` and waits for its ready
line; :class:`Node` tops up callers with the real ``prepaid topup`` command and
reads the call records and ledger straight from the store's file.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import worker_rtp_range
from tests.sipp.harness import ROOT, _env, free_port
from webhook.metrics import parse_text

EXAMPLE = ROOT / "conf" / "prepaid.toml"
#: the RTP ports a node of a test gets: 1000 pairs, more than any test's calls at once
RTP_WINDOW_PORTS = 2000


def write_config(workdir: Path, *, sip_port: int, agents: list[str], trusted: list[str] | None = None,
                 profile: dict[str, str] | None = None, http_port: int | None = None,
                 store_url: str | None = None, node_id: str | None = None,
                 sections: dict[str, dict[str, str]] | None = None) -> Path:
    """The example config with our ports, store and agents; ``profile`` overrides `key = value` lines.

    ``store_url`` replaces the SQLite store (e.g. a PostgreSQL schema shared by several nodes),
    ``node_id`` sets ``[node] id``, and ``sections`` overrides `key = value` lines (TOML values) of
    other sections, e.g. ``{"store": {"lease_s": "5"}, "sip": {"session_expires_s": "90"}}``.
    """
    text = EXAMPLE.read_text()
    text = text.replace("udp_port = 5060", f"udp_port = {sip_port}").replace("tcp_port = 5060", f"tcp_port = {sip_port}")
    text = text.replace('url = "sqlite:///../var/prepaid.db"',
                        "url = " + json.dumps(store_url or f"sqlite:///{workdir}/prepaid.db"))
    if node_id is not None:
        text = text.replace('# id = "node-a"', "id = " + json.dumps(node_id))
    text = text.replace("port = 8080", f"port = {http_port or free_port()}")
    text = text.replace("port = 8090", "port = 0")      # the portal: a free port, named in the ready line
    rtp_min, rtp_max = worker_rtp_range()               # this xdist worker's own RTP ports
    # a node takes pairs from the bottom of its range up: a window at a random place in the slice, so that
    # nodes running at once elsewhere on the machine (another run, a developer's node) rarely start on
    # the same ports (all 16 pairs a call may try were busy once: 503 "no RTP ports free")
    window = min(RTP_WINDOW_PORTS, rtp_max - rtp_min + 1)
    rtp_min = random.randrange(rtp_min, rtp_max - window + 2, 2)
    rtp_max = rtp_min + window - 1
    text = text.replace("rtp_port_min = 20000", f"rtp_port_min = {rtp_min}")
    text = text.replace("rtp_port_max = 29999", f"rtp_port_max = {rtp_max}")
    # the relay in the node's own process, as the suite's timings assume; a test about media workers sets
    # sections={"media": {"workers": "1"}}
    text = _set_keys(text, "media", {"workers": "0"})
    text = text.replace('agents = ["sip:agent@127.0.0.1:5070"]', "agents = " + json.dumps(agents))
    if trusted is not None:
        text = text.replace('trusted = ["127.0.0.1"]', "trusted = " + json.dumps(trusted))
    text = text.replace('[profiles.demo]\n', '[profiles.demo]\n', 1)
    for key, value in (profile or {}).items():
        lines = text.split("\n")
        start = lines.index("[profiles.demo]")
        for i in range(start + 1, len(lines)):
            if lines[i].startswith("["):
                lines.insert(i, f"{key} = {value}")
                break
            if lines[i].split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        text = "\n".join(lines)
    for section, values in (sections or {}).items():
        text = _set_keys(text, section, values)
    path = workdir / "prepaid.toml"
    path.write_text(text)
    return path


def _set_keys(text: str, section: str, values: dict[str, str]) -> str:
    """``text`` with ``key = value`` set in ``[section]`` (replaced where the key is, else added at its end)."""
    lines = text.split("\n")
    start = lines.index(f"[{section}]")
    for key, value in values.items():
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        for i in range(start + 1, end):
            if lines[i].split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            lines.insert(end, f"{key} = {value}")
    return "\n".join(lines)


@dataclass
class Node:
    proc: subprocess.Popen
    config: Path
    workdir: Path
    sip_port: int
    output: list
    #: (time.monotonic(), line) of each line printed after the ready line, once :meth:`follow` runs
    lines: list = field(default_factory=list)
    _reader: threading.Thread | None = None

    def follow(self) -> "Node":
        """Read the node's output on a thread from now on, each line with the time it was seen.

        Tests that wait for a log line use :meth:`wait_line`; it also keeps a long call's logging from
        filling the pipe.
        """
        def read() -> None:
            for raw in iter(self.proc.stdout.readline, b""):
                self.lines.append((time.monotonic(), raw.decode(errors="replace")))
        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        return self

    def wait_line(self, needle: str, timeout_s: float, since: float = 0.0) -> tuple[float, str] | None:
        """The first (time, line) seen at or after ``since`` containing ``needle``, waiting at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for seen, line in list(self.lines):
                if seen >= since and needle in line:
                    return seen, line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def prepaid(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "b2bua.node.cli", *args, "--config", str(self.config)],
                              cwd=self.workdir, env=_env(), capture_output=True, text=True, timeout=60)

    def topup(self, number: str, amount: str) -> None:
        done = self.prepaid("topup", "--profile", "demo", number, amount)
        assert done.returncode == 0, done.stderr

    def rows(self, sql: str, *args) -> list[sqlite3.Row]:
        db = sqlite3.connect(self.workdir / "prepaid.db")
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def records(self, timeout_s: float = 10.0, count: int = 1) -> list[sqlite3.Row]:
        """The call records, waiting (bounded) until ``count`` are written."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.rows("select * from call_records order by id")
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    @property
    def ports(self) -> dict[str, int]:
        """The ports of the node's ready line (``udp``, ``tcp``, ``tls``, ``http``, ``portal``)."""
        ready = next(line for line in "".join(self.output).splitlines() if line.startswith('{"ready": true'))
        return json.loads(ready)["ports"]

    def scrape(self, listener: str = "portal", headers: dict | None = None) -> tuple[int, str]:
        """(status, body) of ``GET /metrics`` on the ``portal`` or the public (``http``) listener."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports[listener]}/metrics", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode(errors="replace")

    def metrics(self) -> dict:
        """The node's /metrics (read on the portal's listener) as {(name, labels): value}."""
        status, text = self.scrape()
        assert status == 200, text
        return parse_text(text)

    def balance_cents(self, number: str) -> int:
        return self.rows("select balance_cents from accounts where number = ?", number)[0][0]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self._reader is not None:       # followed: the reader thread has the output
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=5)
            self.output.extend(line for _, line in self.lines)
            self.lines = []
            return "".join(self.output)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        if out:
            self.output.append(out.decode(errors="replace"))
        return "".join(self.output)


def start_node(workdir: Path, *, entry: str = "b2bua.node.cli", sip_port: int | None = None,
               ready_timeout_s: float = 20.0, **config) -> Node:
    """``prepaid run`` (the module ``entry``'s ``run`` command) on the config :func:`write_config` makes, on
    ``sip_port`` (a free one when None: a node restarted where it was passes its old port), ready within
    ``ready_timeout_s`` (a node under tracemalloc with several frames starts several times slower)."""
    sip_port = sip_port or free_port()
    path = write_config(workdir, sip_port=sip_port, **config)
    proc = subprocess.Popen([sys.executable, "-m", entry, "run", "--config", str(path)], cwd=workdir,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    deadline = time.monotonic() + ready_timeout_s
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)       # raw reads: a buffered readline would hide lines from select
        if not chunk:
            break
        seen += chunk
        if b'{"ready": true' in seen:
            return Node(proc, path, workdir, sip_port, [seen.decode(errors="replace")])
    proc.kill()
    raise RuntimeError("prepaid run did not get ready:\n" + seen.decode(errors="replace")[-3000:])
