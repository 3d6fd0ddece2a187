"""``prepaid check-config PATH``: every problem as ``file:key: reason`` (exit 2), or a summary (exit 0)."""

from __future__ import annotations

import sys

from ..config import load_config
from ..schema import ConfigInvalid


def register(sub) -> None:
    p = sub.add_parser("check-config", help="validate a config file and say what it would serve")
    p.add_argument("path", help="the TOML file")
    p.set_defaults(func=check_config)


def check_config(args) -> int:
    try:
        config = load_config(args.path)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 2
    print(config.summary())
    return 0
