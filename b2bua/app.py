"""Wiring the running server: config, logging, SIGHUP reload, and the services."""

from __future__ import annotations

import signal
import sys

from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from .config import Config
from .reload import ConfigHolder

log = Logger()


def serve(config: Config, reactor) -> int:
    """Start every service of ``config`` on ``reactor`` and run until stopped."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    holder = ConfigHolder(config)
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(holder.reload))
    log.info("prepaid node {node} starting with {path}", node=config.node_id, path=config.path)
    reactor.run()
    return 0
