"""``prepaid db upgrade``, and the store access every operator command shares.

Operator commands use the store *inline* (``Store.open(url, inline=True)``):
the same ``thd`` functions and SQL as the server, run in the command's own
thread, every Deferred fired on return. On SQLite the schema is brought up to
date first (as ``prepaid run`` does); on PostgreSQL a store that is behind is
an error that says to run ``prepaid db upgrade``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import textwrap
from typing import Any, Iterable, Sequence

from billing.numbers import NumberRefused, entered, normalise

from ..config import Config, default_config_path, load_config
from ..schema import ConfigInvalid


class CommandError(Exception):
    """What went wrong, for standard error; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def register(sub) -> None:
    """Add ``prepaid db upgrade``."""
    p = sub.add_parser("db", help="the store's schema")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION")
    dbsub.required = True
    up = dbsub.add_parser("upgrade", help="bring the store's schema to the newest migration")
    add_config_argument(up)
    up.set_defaults(func=command(upgrade))


CONFIG_HELP = "config file (default: $PREPAID_CONFIG, else conf/prepaid.toml)"


def add_config_argument(p) -> None:
    """The ``--config`` option of a command that reads the config. ``prepaid`` itself has it too, so it may
    stand before or after the command; here it has no default, so that when it is not given after the command
    it does not hide the one given before (argparse lets a subcommand's default win)."""
    p.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)


def config_of(args) -> Config | None:
    """The config a command was given (``--config``, else the default), or None after printing every problem
    of it to standard error (the command then exits 2)."""
    try:
        return load_config(args.config or default_config_path())
    except ConfigInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def command(fn):
    """Wrap ``fn(args, config) -> int`` into a command: config loading and errors to standard error."""
    def run(args) -> int:
        config = config_of(args)
        if config is None:
            return 2
        try:
            return fn(args, config)
        except CommandError as exc:
            print(f"prepaid {args.command}: {exc}", file=sys.stderr)
            return exc.code
    return run


def upgrade(args, config: Config) -> int:
    """``prepaid db upgrade``: Alembic to head on the config's store."""
    from billing.db import engine as db_engine
    from billing.store import Store
    store = Store.open(config.store.url, inline=True, node_id=config.node_id)
    try:
        fired(store.upgrade())
        revision = db_engine.current_revision(store.pool.engine)
    except Exception as exc:
        raise CommandError(f"cannot upgrade the store: {exc}") from exc
    finally:
        store.close()
    print(f"store at revision {revision}")
    return 0


#: "from where" of the audit rows the command writes
CLI_SOURCE = "cli"


def cli_actor() -> str:
    """"Who" of the audit rows (and manual ledger rows) the command writes: the operator's login."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def open_store(config: Config):
    """The config's store, inline; schema checked (SQLite: upgraded) as the module docstring says."""
    from alembic.script import ScriptDirectory

    from billing.db import engine as db_engine
    from billing.store import Store
    try:
        store = Store.open(config.store.url, inline=True, node_id=config.node_id)
        if db_engine.is_sqlite(config.store.url):
            fired(store.upgrade())
        else:
            head = ScriptDirectory.from_config(db_engine.alembic_config()).get_current_head()
            current = db_engine.current_revision(store.pool.engine)
            if current != head:
                store.close()
                raise CommandError(f"the store is at revision {current or 'none'}, not {head}: "
                                   "run `prepaid db upgrade` first")
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"cannot open the store: {exc}") from exc
    return store


def fired(d):
    """The result of an already fired Deferred (inline store), raising its failure."""
    from twisted.python.failure import Failure
    out: list = []
    d.addBoth(out.append)
    if not out:
        raise RuntimeError("the store answered asynchronously where an inline store was expected")
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def profile_of(config: Config, name: str | None):
    """The config's profile ``name``, or a CommandError naming the profiles there are."""
    if name is None:
        return None
    profile = config.profiles.get(name)
    if profile is None:
        raise CommandError(f"no profile {name!r} in {config.path} (profiles: {', '.join(sorted(config.profiles))})",
                           code=2)
    return profile


def number_of(config: Config, text: str) -> str:
    """``text`` as E.164 by the config's region, or a CommandError: for looking an account up."""
    number = normalise(text, config.sip.default_region)
    if number is None:
        raise CommandError(f"not a phone number: {text!r}", code=2)
    return number


def valid_number_of(config: Config, text: str) -> str:
    """``text`` as E.164 when it is a valid number of its region, or a CommandError saying why: for a
    number that is credited or becomes an account's key."""
    try:
        return entered(text, config.sip.default_region)
    except NumberRefused as exc:
        raise CommandError(str(exc), code=2) from None


def iso_ms(at_ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC (``2026-11-29T02:30:00Z``)."""
    if at_ms is None:
        return None
    at = dt.datetime.fromtimestamp(at_ms / 1000, dt.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{at_ms % 1000:03d}Z" if at_ms % 1000 else "Z")


def parse_time_ms(text: str, *, end: bool = False) -> int:
    """``2026-11-01`` (a day: its start, or with ``end`` the start of the next day) or an ISO time, UTC."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end:
                day += dt.timedelta(days=1)
            at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        else:
            at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise CommandError(f"not a date (2026-11-01) or time (2026-11-01T12:00:00Z): {text!r}", code=2) from None
    return int(at.timestamp() * 1000)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on standard output."""
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


#: a table is at most this wide (a terminal beside another); wider text columns wrap, ``--json`` has it whole
TABLE_COLUMNS = 100
#: a text column is not narrowed below this many characters to make the table fit
MIN_WRAPPED_COLUMN = 8
#: an identifier up to this long (a UUID) is never wrapped
WHOLE_IDENTIFIER = 36
_GAP = "  "


def table_lines(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = (),
                max_width: int = TABLE_COLUMNS) -> list[str]:
    """A plain text table as lines: columns as wide as their widest cell, numbers (``right``) right-aligned
    and never wrapped; while it is wider than ``max_width``, the widest text column (one with words first) is
    narrowed and its cells wrap onto more lines (words kept whole where they fit). Identifiers up to
    :data:`WHOLE_IDENTIFIER` characters are never broken, even when the table is wider then."""
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    right = set(right)
    # a number column is as wide as its widest number; its header may wrap between words ("balance / after")
    widths = [max([max(map(len, h.split())) if i in right else len(h)] + [len(r[i]) for r in rows])
              for i, h in enumerate(headers)]
    excess = sum(widths) + len(_GAP) * (len(widths) - 1) - max_width
    prose = {i for i in range(len(widths)) if any(" " in r[i] for r in rows)}
    # a column of identifiers up to a UUID's length (times, numbers, session ids) is never broken: operators
    # copy and grep them; longer ones (SIP URIs) and prose wrap
    floor = [MIN_WRAPPED_COLUMN if i in prose or widths[i] > WHOLE_IDENTIFIER else widths[i]
             for i in range(len(widths))]
    while excess > 0:
        narrowable = [i for i in range(len(widths)) if i not in right and widths[i] > floor[i]]
        if not narrowable:
            break                                # numbers and identifiers alone are wider: the line is long
        # prose wraps between words; long names (URIs) only when prose alone cannot make it fit
        widest = max(narrowable, key=lambda i: (i in prose, widths[i]))
        cut = min(excess, widths[widest] - floor[widest])
        widths[widest] -= cut
        excess -= cut

    def physical(cells) -> list[str]:
        wrapped = [[c] if len(c) <= w else textwrap.wrap(c, w, break_on_hyphens=False) or [""]
                   for i, (c, w) in enumerate(zip(cells, widths))]
        out = []
        for n in range(max(len(parts) for parts in wrapped)):
            out.append(_GAP.join((parts[n] if n < len(parts) else "").rjust(w) if i in right
                                 else (parts[n] if n < len(parts) else "").ljust(w)
                                 for i, (parts, w) in enumerate(zip(wrapped, widths))).rstrip())
        return out
    lines = physical(headers) + [_GAP.join("-" * w for w in widths)]
    for r in rows:
        lines.extend(physical(r))
    return lines


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()) -> None:
    """:func:`table_lines` to standard output."""
    for line in table_lines(headers, rows, right=right):
        print(line)
