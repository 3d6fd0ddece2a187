"""The standard library's ``logging`` into the node's one log.

The node logs through Twisted's logger; libraries it uses (SQLAlchemy, psycopg,
urllib3 under treq's neighbours, pydub) log through ``logging``, which
``prepaid run`` never configured: their warnings printed without a time, their
info lines were lost. :func:`bridge_stdlib_logging` hands every such record to
Twisted's logger under the record's own logger name as namespace, at the same
level, so that it is formatted, filtered (``[node] log_level``) and written like
the node's own lines, and exceptions keep their traceback.

Libraries' info records come only at ``log_level = "debug"``: at info a node's
start was a dozen lines of Alembic's plugins.

Tests pin: a stdlib warning arrives as a Twisted event at warn with its logger's
name as namespace and its message formatted; below the level nothing is built;
at info a library's info record is left out; an exception record carries its
failure.
"""

from __future__ import annotations

import logging

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

_LEVELS = ((logging.CRITICAL, LogLevel.critical), (logging.ERROR, LogLevel.error),
           (logging.WARNING, LogLevel.warn), (logging.INFO, LogLevel.info))

#: ``[node] log_level`` as the standard library's numbers. Libraries' info lines (Alembic's eight "setup
#: plugin" lines at every start, SQLAlchemy's pool) are detail an operator asks for: they come at debug
STDLIB_LEVEL = {"debug": logging.DEBUG, "info": logging.WARNING, "warn": logging.WARNING, "error": logging.ERROR}


def twisted_level(levelno: int) -> LogLevel:
    """The Twisted level of a stdlib level number (custom levels fall to the next lower one)."""
    for floor, level in _LEVELS:
        if levelno >= floor:
            return level
    return LogLevel.debug


class TwistedHandler(logging.Handler):
    """A ``logging`` handler that emits each record as a Twisted log event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):            # a library's bad format string: keep what it meant
            text = f"{record.msg!r} % {record.args!r}"
        logger = Logger(namespace=record.name)
        level = twisted_level(record.levelno)
        if record.exc_info and record.exc_info[1] is not None:
            logger.failure("{text}", Failure(record.exc_info[1], record.exc_info[0], record.exc_info[2]),
                           level=level, text=text)
        else:
            logger.emit(level, "{text}", text=text)


def bridge_stdlib_logging(level: str, root: logging.Logger | None = None) -> TwistedHandler:
    """Send every stdlib record at ``level`` (``[node] log_level``) and above to Twisted's logger, in place of
    whatever handlers the root logger had; returns the handler."""
    root = root if root is not None else logging.getLogger()
    handler = TwistedHandler()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(STDLIB_LEVEL[level])
    return handler
