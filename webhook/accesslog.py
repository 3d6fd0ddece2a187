"""Where the HTTP listeners' access lines go.

At ``info`` a node's log was a third access lines; they are a different
record (who asked for what) with a different reader and rotation. So:

- without ``[http] access_log`` they are the node log's ``debug`` lines
  (:class:`DebugLines`): there when an operator turns the level up, gone otherwise;
- with it, they go to that file alone (:class:`FileLines`), one line a request,
  written as it is answered; the node reopens it on SIGHUP, after logrotate has
  moved it.

Each line is what :func:`webhook.server.access_log_line` makes of a request:
no query strings, references, tokens or phone numbers.

Tests pin: a request's line is in the file and not in the node log; without
the file it is a debug event; a reopen after the file was moved writes a new
file.
"""

from __future__ import annotations

from typing import Protocol

from twisted.logger import Logger

log = Logger(namespace="webhook.access")


class AccessLines(Protocol):
    """What a listener hands its access lines to."""

    def write(self, line: str) -> None:
        """One request's line, without its newline."""

    def reopen(self) -> None:
        """Start writing afresh (a log file moved away by logrotate); nothing for a log that is not a file."""

    def close(self) -> None:
        """No more lines."""


class DebugLines:
    """Access lines as the node log's debug events."""

    def write(self, line: str) -> None:
        log.debug("{line}", line=line)

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class FileLines:
    """Access lines appended to ``path``, line-buffered (a line is in the file once its request is answered)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, line: str) -> None:
        self._file.write(line + "\n")

    def reopen(self) -> None:
        self._file.close()
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")

    def close(self) -> None:
        self._file.close()


def access_lines(path: str) -> AccessLines:
    """The file ``path`` (``[http] access_log``), or the node log at debug when it is empty."""
    return FileLines(path) if path else DebugLines()
