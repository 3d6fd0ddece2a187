"""Statements of a call's hot path, compiled once per dialect and run on the connection's DB-API cursor.

SQLAlchemy's execute path costs ~25 us of CPU per statement on SQLite even for
a statement built once (cache key, execution context, result wrapping); the
same SQL on the DB-API cursor costs ~3 us. A call runs a dozen statements, so
the few that every call runs are :class:`Prepared`: written as ordinary Core
statements (with ``sa.bindparam`` for what varies), compiled for the
connection's dialect the first time, then run with the driver's own
``cursor.execute`` inside the caller's transaction (SQLAlchemy's
``Connection``; the commit is still its own). Both dialects, the same text the
Core statement would have sent.

What stays SQLAlchemy's: bind conversions (a column type's ``bind_processor``,
e.g. Boolean on SQLite, are applied here); driver errors arrive as SQLAlchemy's
(``IntegrityError`` for a UNIQUE violation, so callers catch the same
exceptions), and a lost connection is invalidated as SQLAlchemy would. What a
Prepared statement refuses at compile time: result columns whose type needs a
result conversion (rows come back as the driver's plain tuples, in the order
the statement names its columns) and ``IN`` lists (expanding parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: parameter names in placeholder order (positional paramstyles), or None (named: pass the dict)
    order: tuple[str, ...] | None
    #: the values of parameters the statement carries itself (literals such as ``state = 'open'``)
    fixed: dict[str, Any]
    #: bind conversions of the column types that have one
    convert: tuple[tuple[str, Callable[[Any], Any]], ...]


class Prepared:
    """One Core statement, run on the DB-API cursor of a SQLAlchemy ``Connection``.

    ``rows``/``first``/``scalar`` read what a SELECT or a RETURNING gives (plain
    tuples); ``rowcount`` is for statements without a result; ``many`` runs the
    statement once per parameter dict (``executemany``).
    """

    def __init__(self, statement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect) -> _Compiled:
        c = self.statement.compile(dialect=dialect)
        for column in getattr(self.statement, "exported_columns", ()):
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
                raise TypeError(f"Prepared: column {column.name} ({column.type}) needs a result conversion")
        for name, bind in c.binds.items():
            if bind.expanding:
                raise TypeError(f"Prepared: {name} is an IN list (expanding); use a SQLAlchemy statement")
        fixed = {name: bind.effective_value for name, bind in c.binds.items() if not bind.required}
        convert = tuple((name, proc) for name, bind in c.binds.items()
                        if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None)
        return _Compiled(c.string, tuple(c.positiontup) if c.positional else None, fixed, convert)

    def _execute(self, conn: sa.Connection, params: dict[str, Any], many: list[dict[str, Any]] | None = None):
        dialect = conn.dialect
        c = self._for(dialect)
        arguments = [self._arguments(c, p) for p in many] if many is not None else self._arguments(c, params)
        dbapi_conn = conn.connection.dbapi_connection
        cursor = dbapi_conn.cursor()
        try:
            if many is not None:
                cursor.executemany(c.sql, arguments)
            else:
                cursor.execute(c.sql, arguments)
        except dialect.loaded_dbapi.Error as err:
            lost = dialect.is_disconnect(err, dbapi_conn, cursor)
            if lost:
                conn.invalidate(err)
            raise sa.exc.DBAPIError.instance(c.sql, arguments, err, dialect.loaded_dbapi.Error,
                                             connection_invalidated=lost, dialect=dialect) from err
        return cursor

    @staticmethod
    def _arguments(c: _Compiled, params: dict[str, Any]):
        values = {**c.fixed, **params}
        for name, proc in c.convert:
            values[name] = proc(values[name])
        return values if c.order is None else tuple(values[name] for name in c.order)

    def rows(self, conn: sa.Connection, **params: Any) -> list[tuple]:
        """Every row the statement gives."""
        return self._execute(conn, params).fetchall()

    def first(self, conn: sa.Connection, **params: Any) -> tuple | None:
        """The first row the statement gives, or None."""
        cursor = self._execute(conn, params)
        row = cursor.fetchone()
        if row is not None:
            cursor.fetchall()  # a RETURNING of several rows is read to its end, as SQLAlchemy does
        return row

    def scalar(self, conn: sa.Connection, **params: Any) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, **params)
        return None if row is None else row[0]

    def rowcount(self, conn: sa.Connection, **params: Any) -> int:
        """Run it; how many rows it changed."""
        return self._execute(conn, params).rowcount

    def many(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Run it once for each parameter dict in ``rows``."""
        self._execute(conn, {}, many=rows)
