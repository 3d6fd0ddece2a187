"""A declared schema for TOML config: fields with types, ranges and help text.

The schema is data: a :class:`Section` lists its :class:`Field` objects, and
:func:`validate` walks a parsed TOML document against it, collecting *every*
problem as a :class:`ConfigProblem` (file, dotted key, reason) instead of
stopping at the first.  Converters turn raw TOML values into the typed values
that the rest of the program uses (``Decimal`` for money, ``int`` seconds...).

A field whose converter is a :class:`Relative` names a file or folder: given
the config file's folder, :func:`validate` resolves a relative value against it,
so that what a config names does not depend on the working directory of
whoever started the program.

Tests pin: unknown keys are reported, missing required keys are reported,
every problem carries the dotted key, and values are converted, not copied;
relative file names resolve against the config file's folder, absolute ones
and empty ones stay as they are.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

_MISSING = object()


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, printed as ``file:key: reason``."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.key}: {self.reason}"


class ConfigInvalid(Exception):
    """Raised with the whole list of problems when a config does not validate."""

    def __init__(self, problems: list[ConfigProblem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class Invalid(ValueError):
    """A converter's complaint about one value; the walker adds file and key."""


Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class Relative:
    """A converter for a value that names a file or folder: ``resolve(value, folder)`` makes a relative one
    absolute against the config file's folder."""

    convert: Converter
    resolve: Callable[[Any, str], Any]

    def __call__(self, value: Any) -> Any:
        return self.convert(value)


@dataclass(frozen=True)
class Field:
    """One key: its converter, default (absent = required) and help text."""

    name: str
    convert: Converter
    help: str
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class Section:
    """A TOML table with declared keys; ``tables`` holds nested sections."""

    name: str
    help: str
    fields: tuple[Field, ...] = ()
    tables: tuple["Section", ...] = ()
    #: a section of named entries (``[profiles.NAME]``), each checked by ``entry``
    entry: "Section | None" = None
    required: bool = True


def validate(doc: Mapping[str, Any], section: Section, file: str, prefix: str = "",
             folder: str | None = None) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Check ``doc`` against ``section``; return converted values and problems. With ``folder`` (the config
    file's), :class:`Relative` values resolve against it."""
    problems: list[ConfigProblem] = []
    out: dict[str, Any] = {}

    def key_of(name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    if section.entry is not None:
        for name, value in doc.items():
            if not isinstance(value, Mapping):
                problems.append(ConfigProblem(file, key_of(name), "must be a table"))
                continue
            sub, subproblems = validate(value, section.entry, file, key_of(name), folder)
            problems.extend(subproblems)
            out[name] = sub
        return out, problems

    known = {f.name for f in section.fields} | {t.name for t in section.tables}
    for name in doc:
        if name not in known:
            problems.append(ConfigProblem(file, key_of(name), "unknown key"))
    for f in section.fields:
        if f.name not in doc:
            if f.required:
                problems.append(ConfigProblem(file, key_of(f.name), f"missing: {f.help}"))
            else:
                out[f.name] = f.default
            continue
        try:
            out[f.name] = f.convert(doc[f.name])
            if folder is not None and isinstance(f.convert, Relative):
                out[f.name] = f.convert.resolve(out[f.name], folder)
        except Invalid as exc:
            problems.append(ConfigProblem(file, key_of(f.name), str(exc)))
    for table in section.tables:
        value = doc.get(table.name, _MISSING)
        if value is _MISSING:
            if table.required and table.entry is None:
                problems.append(ConfigProblem(file, key_of(table.name), f"missing table: {table.help}"))
                continue
            value = {}
        if not isinstance(value, Mapping):
            problems.append(ConfigProblem(file, key_of(table.name), "must be a table"))
            continue
        sub, subproblems = validate(value, table, file, key_of(table.name), folder)
        problems.extend(subproblems)
        out[table.name] = sub
    return out, problems


# -- converters -------------------------------------------------------------

def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, not {type(value).__name__}")
    return value


def nonempty_string(value: Any) -> str:
    value = string(value)
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def _resolve_file(value: str, folder: str) -> str:
    return value if not value or os.path.isabs(value) else os.path.normpath(os.path.join(folder, value))


#: a file or folder name; relative ones are the config file's folder's (the empty default stays empty)
path = Relative(string, _resolve_file)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, not {value!r}")
    return value


def integer(minimum: int | None = None, maximum: int | None = None) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"must be a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            raise Invalid(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise Invalid(f"must be at most {maximum}, not {value}")
        return value
    return convert


def port(value: Any) -> int:
    return integer(0, 65535)(value)


def decimal(minimum: Decimal | None = None) -> Converter:
    """Money and rates as exact decimals; given as strings ("1.99") so TOML floats never round."""
    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise Invalid(f"must be a decimal in quotes like \"1.99\", not {value!r}")
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise Invalid(f"not a decimal number: {value!r}") from None
        if not result.is_finite():
            raise Invalid(f"not a finite number: {value!r}")
        if minimum is not None and result < minimum:
            raise Invalid(f"must be at least {minimum}, not {value}")
        return result
    return convert


def choice(*choices: str) -> Converter:
    def convert(value: Any) -> str:
        value = string(value)
        if value not in choices:
            raise Invalid(f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
        return value
    return convert


def ip_address(value: Any) -> str:
    value = string(value)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid(f"not an IP address: {value!r}") from None


def ip_network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    value = string(value)
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise Invalid(f"not an IP address or CIDR range: {value!r}") from None


def list_of(item: Converter, minimum: int = 0) -> Converter:
    def convert(value: Any) -> tuple:
        if not isinstance(value, list):
            raise Invalid(f"must be a list, not {type(value).__name__}")
        if len(value) < minimum:
            raise Invalid(f"must list at least {minimum} item(s)")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(item(v))
            except Invalid as exc:
                raise Invalid(f"item {i + 1}: {exc}") from None
        return tuple(out)
    return convert


def mapping_of(key: Converter, value: Converter) -> Converter:
    def convert(raw: Any) -> dict:
        if not isinstance(raw, Mapping):
            raise Invalid(f"must be a table, not {type(raw).__name__}")
        out = {}
        for k, v in raw.items():
            try:
                out[key(k)] = value(v)
            except Invalid as exc:
                raise Invalid(f"entry {k!r}: {exc}") from None
        return out
    return convert


def describe(section: Section, prefix: str = "") -> list[tuple[str, str]]:
    """Every key with its help text, for ``prepaid check-config --help-keys`` and the docs."""
    rows: list[tuple[str, str]] = []
    for f in section.fields:
        rows.append((f"{prefix}{f.name}", f.help))
    for t in section.tables:
        rows.extend(describe(t, f"{prefix}{t.name}."))
    if section.entry is not None:
        rows.extend(describe(section.entry, f"{prefix}NAME."))
    return rows
