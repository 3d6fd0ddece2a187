"""The ``prepaid`` command: one subcommand per module, wired with argparse.

Each command module exposes ``register(subparsers)``, which adds its parser and
sets ``func`` to a callable taking the parsed args and returning the exit code.
Errors go to standard error with a reason and a non-zero exit; ``--json``
output goes to standard output alone.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from .commands.db import CONFIG_HELP

#: modules that add subcommands; order is the order of ``prepaid --help``
COMMAND_MODULES = (
    "b2bua.node.commands.run",
    "b2bua.node.commands.check_config",
    "b2bua.node.commands.db",
    "b2bua.node.commands.accounts",
    "b2bua.node.commands.statement",
    "b2bua.node.commands.reconcile",
    "b2bua.node.commands.button",
    "b2bua.node.commands.apikey",
    "b2bua.node.commands.user",
    "b2bua.node.commands.payments",
    "b2bua.node.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepaid",
        description="Prepaid billing for premium telephone services: a SIP B2BUA.")
    parser.add_argument("--config", default=None, help=CONFIG_HELP + "; before or after the command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: the exit status of a command whose reader went away (``prepaid transactions | head``): 128 + SIGPIPE,
#: what a shell's ``pipefail`` sees from any Unix tool that is stopped by a closed pipe
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()        # a closed pipe shows here, not at exit where it would print a traceback
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader has gone: say nothing more, and let the interpreter's last flush go nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
