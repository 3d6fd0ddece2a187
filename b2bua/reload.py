"""Holding the running config, and swapping it on SIGHUP only when the new one validates.

Tests pin: a reload that fails validation logs every problem and keeps the old
config; a good one replaces it and tells every listener.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from .config import Config, load_config
from .schema import ConfigInvalid

log = Logger()


class ConfigHolder:
    """The current :class:`Config`, with listeners told of each successful reload."""

    def __init__(self, config: Config, loader: Callable[[str], Config] = load_config):
        self.current = config
        self._loader = loader
        self._listeners: list[Callable[[Config, Config], None]] = []
        #: reloads tried, by result: "ok" (in force) or "invalid" (refused, the running config stays)
        self.results: dict[str, int] = {"ok": 0, "invalid": 0}

    def listen(self, listener: Callable[[Config, Config], None]) -> None:
        """``listener(old, new)`` is called after each reload that took effect."""
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Re-read the file; True when the new config is in force."""
        path = self.current.path
        try:
            new = self._loader(path)
        except ConfigInvalid as exc:
            for problem in exc.problems:
                log.error("config reload refused: {problem}", problem=str(problem))
            log.error("config reload of {path} refused ({n} problem(s)); the running config stays",
                      path=path, n=len(exc.problems))
            self.results["invalid"] += 1
            return False
        old, self.current = self.current, new
        self.results["ok"] += 1
        for listener in self._listeners:
            listener(old, new)
        log.info("config reloaded from {path}", path=path)
        return True
