"""The ``prepaid`` command: one subcommand per module, wired with argparse.

Each command module exposes ``register(subparsers)``, which adds its parser and
sets ``func`` to a callable taking the parsed args and returning the exit code.
Errors go to standard error with a reason and a non-zero exit; ``--json``
output goes to standard output alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: modules that add subcommands; order is the order of ``prepaid --help``
COMMAND_MODULES = (
    "b2bua.commands.run",
    "b2bua.commands.check_config",
    "b2bua.commands.db",
    "b2bua.commands.accounts",
    "b2bua.commands.statement",
    "b2bua.commands.reconcile",
    "b2bua.commands.button",
    "b2bua.commands.apikey",
    "b2bua.commands.user",
    "b2bua.commands.payments",
    "b2bua.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepaid",
        description="Prepaid billing for premium telephone services: a SIP B2BUA.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
