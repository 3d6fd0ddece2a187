"""Holding the config snapshot in force, and swapping it whole on a reload only when the new one is good.

    holder = ConfigHolder(take_snapshot(config, now_ms=...), clock=reactor)
    holder.snapshot.config, holder.snapshot.web, holder.snapshot.loaded_ms
    holder.reload()      # SIGHUP, or the portal's "Reload config": a ReloadResult

Tests pin: a reload that fails validation (the config file, the secrets file, or a check such as the
media prompts) logs every problem as ``file:key: reason`` and keeps the old snapshot; a good one replaces
it, tells every listener, and names in its log line each restart-only setting that changed and was not
applied (those keep their running values in the new snapshot).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger

from .config import Config, load_config
from .schema import ConfigInvalid, ConfigProblem
from .snapshot import ConfigSnapshot, keep_restart_only, restart_only_changes, take_snapshot

log = Logger()

#: ``check(new)`` before a swap: raises ConfigInvalid (or any error) to refuse the new snapshot
Check = Callable[[ConfigSnapshot], None]
#: ``listener(old, new)`` after a swap
Listener = Callable[[ConfigSnapshot, ConfigSnapshot], None]


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did: ``applied``, the problems that refused it, the restart-only keys left as they were."""

    applied: bool
    loaded_ms: int
    problems: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()


class ConfigHolder:
    """The current :class:`ConfigSnapshot`; ``current`` is its config, for the parts that read only that."""

    def __init__(self, snapshot: ConfigSnapshot, *, clock=None, loader: Callable[[str], Config] = load_config,
                 environ=os.environ) -> None:
        self.snapshot = snapshot
        self._clock = clock
        self._loader = loader
        self._environ = environ
        self._checks: list[Check] = []
        self._listeners: list[Listener] = []
        #: reloads that took effect, and reloads refused (for /metrics)
        self.applied = 0
        self.refused = 0

    @property
    def current(self) -> Config:
        return self.snapshot.config

    def check(self, check: Check) -> None:
        """``check(new)`` runs before each swap; when it raises, the reload is refused."""
        self._checks.append(check)

    def listen(self, listener: Listener) -> None:
        """``listener(old, new)`` is called after each reload that took effect."""
        self._listeners.append(listener)

    def _now_ms(self) -> int:
        if self._clock is None:
            return int(time.time() * 1000)
        return int(self._clock.seconds() * 1000)

    def reload(self) -> ReloadResult:
        """Re-read the config file and the secrets file; the new snapshot is in force when ``applied``."""
        old = self.snapshot
        path = old.config.path
        try:
            loaded = self._loader(path)
            not_applied = tuple(restart_only_changes(old.config, loaded))
            new = take_snapshot(keep_restart_only(old.config, loaded), now_ms=self._now_ms(), environ=self._environ)
            for check in self._checks:
                check(new)
        except ConfigInvalid as exc:
            return self._refused(path, [str(p) for p in exc.problems])
        except Exception as exc:   # a check that failed in its own way: still no half-applied config
            log.failure("config reload of {path}: a check failed", path=path)
            return self._refused(path, [str(ConfigProblem(path, "(reload)", f"{type(exc).__name__}: {exc}"))])
        self.snapshot = new
        self.applied += 1
        for listener in self._listeners:
            listener(old, new)
        for missing in sorted(set(new.unpaid) - set(old.unpaid)):      # each once: at start, or when it goes off
            log.warn("config reload: {missing}", missing=missing)
        for back in sorted(set(old.unpaid) - set(new.unpaid)):
            log.info("config reload: credentials now complete; on again: {back}", back=back)
        if not_applied:
            log.warn("config reloaded from {path}; not applied until a restart: {keys}", path=path,
                     keys=", ".join(not_applied))
        else:
            log.info("config reloaded from {path}", path=path)
        return ReloadResult(True, new.loaded_ms, not_applied=not_applied)

    def _refused(self, path: str, problems: list[str]) -> ReloadResult:
        self.refused += 1
        for problem in problems:
            log.error("config reload refused: {problem}", problem=problem)
        log.error("config reload of {path} refused ({n} problem(s)); the running config stays",
                  path=path, n=len(problems))
        return ReloadResult(False, self.snapshot.loaded_ms, problems=tuple(problems))
