"""Subcommands of ``prepaid``; each module has ``register(subparsers)``."""
