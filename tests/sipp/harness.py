"""Running SIPp against our SIP side, bounded in calls and time, on 127.0.0.1 with ports chosen free at run time.

Reusable by every part's SIPp tests:

* :func:`run_sipp` runs SIPp to its end (``-m`` calls, a hard wall-clock bound)
  and returns a :class:`SippResult` read from its ``-trace_stat`` file: the
  successful and failed call counts, its exit code, its screen and errors.
  ``scenario`` is a built-in name (``uac``, ``uas``...) or an XML path.
* :func:`start_sipp` starts it without waiting (SIPp as the UAS our side calls);
  :meth:`SippProcess.wait` then gives the same result.
* :func:`our_side` runs one of ``tests.support.sip_apps`` (or any module printing the
  same ``{"ready": true, "ports": {...}}`` line) in a subprocess on a real
  reactor, and stops it after; :func:`run_our_uac` runs our UAC to its end.
* :func:`free_port` picks a port free for UDP and TCP on 127.0.0.1 (SIPp's own
  ``-p 0`` means 5060, never wanted here).

Every subprocess is killed if it outlives its bound; nothing is left running.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from b2bua.netutil import free_port  # noqa: E402,F401 - re-exported for the tests

SIPP = shutil.which("sipp")
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"




@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    retransmissions: int
    stats: dict[str, str]
    screen: str
    errors: str

    def summary(self) -> str:
        return (f"sipp rc={self.returncode} ok={self.successful} failed={self.failed} "
                f"retrans={self.retransmissions}\n{self.screen[-3000:]}\n{self.errors[-2000:]}")


def _read_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = [r for r in csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";") if r]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def _count(stats: dict[str, str], key: str) -> int:
    try:
        return int(stats.get(key, "") or -1)
    except ValueError:
        return -1


@dataclass
class SippProcess:
    proc: subprocess.Popen
    workdir: Path
    deadline: float
    local_port: int
    name: str

    def wait(self) -> SippResult:
        try:
            self.proc.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        screen = self.workdir / f"{self.name}.screen.log"
        errors = self.workdir / f"{self.name}.errors.log"
        stats = _read_stats(self.workdir / f"{self.name}.stat.csv")
        return SippResult(
            returncode=self.proc.returncode,
            successful=_count(stats, "SuccessfulCall(C)"),
            failed=_count(stats, "FailedCall(C)"),
            retransmissions=_count(stats, "Retransmissions(C)"),
            stats=stats,
            screen=screen.read_text(errors="replace") if screen.exists() else "",
            errors=errors.read_text(errors="replace") if errors.exists() else "",
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_sipp(scenario: str, workdir: Path, *, remote: str | None = None, transport: str = "u1",
               calls: int = 1, rate: float = 10.0, local_port: int | None = None,
               extra: tuple[str, ...] = (), timeout_s: float = 30.0, name: str = "sipp") -> SippProcess:
    """Start SIPp (built-in ``scenario`` or an XML path); it ends after ``calls`` calls or ``timeout_s``."""
    if SIPP is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    workdir.mkdir(parents=True, exist_ok=True)
    local_port = local_port or free_port()
    scen = ["-sf", str(scenario)] if str(scenario).endswith(".xml") else ["-sn", scenario]
    argv = [SIPP, *scen, "-i", "127.0.0.1", "-p", str(local_port), "-t", transport,
            "-m", str(calls), "-r", str(rate), "-timeout", f"{int(timeout_s)}s", "-timeout_error",
            "-trace_stat", "-stf", str(workdir / f"{name}.stat.csv"), "-fd", "1",
            "-trace_screen", "-screen_file", str(workdir / f"{name}.screen.log"),
            "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
            "-nostdin", *extra]
    if remote:
        argv.append(remote)
    proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return SippProcess(proc, workdir, time.monotonic() + timeout_s + 5.0, local_port, name)


def run_sipp(scenario: str, workdir: Path, **kwargs) -> SippResult:
    """Run SIPp to its end and read its counts; see :func:`start_sipp` for the arguments."""
    return start_sipp(scenario, workdir, **kwargs).wait()


# ---- our side in a subprocess ---------------------------------------------------------------------
@dataclass
class OurSide:
    proc: subprocess.Popen
    ports: dict[str, int]
    lines: list[dict] = field(default_factory=list)

    def stop(self, timeout_s: float = 5.0) -> list[dict]:
        """SIGTERM, wait, SIGKILL if needed; returns the JSON lines it printed after "ready"."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.lines += _json_lines(out)
        return self.lines


def _json_lines(text: str) -> list[dict]:
    found = []
    for line in (text or "").splitlines():
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return found


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m ...`` subprocesses: ours, with the repository first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


_env = subprocess_env   # the old name, used by tests/sipp/node.py


@contextlib.contextmanager
def our_side(*args: str, module: str = "tests.support.sip_apps", ready_timeout_s: float = 15.0):
    """Run ``python -m module *args`` until the block ends; yields an :class:`OurSide` with its bound ports."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=_env(), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ready_timeout_s
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError(f"{module} did not get ready: {''.join(seen)[-2000:]}")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                seen.append(line)
                with contextlib.suppress(ValueError):
                    msg = json.loads(line)
                    if msg.get("ready"):
                        break
        side = OurSide(proc, msg["ports"])
        yield side
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_our_uac(target: str, *, calls: int, rate: float, hold_ms: int, timeout_s: float = 60.0,
                extra: tuple[str, ...] = ()) -> dict:
    """Run ``tests.support.sip_apps uac`` to its end; returns its final counts (``succeeded``, ``failed``...)."""
    argv = [sys.executable, "-m", "tests.support.sip_apps", "uac", "--target", target, "--calls", str(calls),
            "--rate", str(rate), "--hold-ms", str(hold_ms), "--timeout-s", str(timeout_s), *extra]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=_env(), text=True, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout_s + 10)
    except subprocess.TimeoutExpired as exc:
        return {"succeeded": 0, "failed": calls, "error": f"uac hung: {exc}"}
    lines = [line for line in _json_lines(done.stdout) if not line.get("ready")]
    if not lines:
        return {"succeeded": 0, "failed": calls, "error": done.stderr[-2000:], "returncode": done.returncode}
    return {**lines[-1], "returncode": done.returncode, "stderr": done.stderr[-2000:]}
