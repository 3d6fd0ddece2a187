"""``prepaid run [--config PATH]``: serve SIP, RTP and HTTP with the store."""

from __future__ import annotations

import sys

from ..config import default_config_path, load_config
from ..schema import ConfigInvalid
from .db import add_config_argument


def register(sub) -> None:
    p = sub.add_parser("run", help="serve SIP, RTP and HTTP")
    add_config_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    path = args.config or default_config_path()
    try:
        config = load_config(path)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    from twisted.internet import reactor

    from ..app import serve
    return serve(config, reactor)
