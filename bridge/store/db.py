"""One narrow database interface (:class:`Database`) and its two backends.

SQL is written once with ``?`` placeholders; the PostgreSQL adapter translates them for
psycopg. Rows come back as dicts. A transaction belongs to the thread that opened it and nests
(savepoints); outside one, each statement commits on its own.

* SQLite: one connection per thread (WAL, busy timeout), every write in ``BEGIN IMMEDIATE``,
  so processes and threads queue for the write lock instead of failing with "database is
  locked".
* PostgreSQL: psycopg 3 connections from a ``psycopg_pool.ConnectionPool``; a thread holds one
  connection for the length of its transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

Row = dict[str, Any]
Params = Sequence[Any]


class Database(Protocol):
    """What the stores need from a database, and nothing more."""

    backend: str  # "sqlite" or "postgres"

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement (in a transaction); return how many rows it changed."""
        ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...

    def all(self, sql: str, params: Params = ()) -> list[Row]: ...

    def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples: for a bulk read on a hot path (a blast's whole audience)."""
        ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def lock(self, key: str) -> None:
        """Serialise transactions that touch ``key`` until this transaction ends (PostgreSQL:
        an advisory lock; SQLite: nothing to do, every write transaction is exclusive)."""
        ...

    def close(self) -> None: ...


def greatest(db: Database) -> str:
    """The two-argument maximum function's name."""
    return "max" if db.backend == "sqlite" else "greatest"


def insert(db: Database, table: str, record: Row, *, returning: str = "id") -> Any:
    """Insert one row; return its ``returning`` column."""
    names = list(record)
    row = db.one(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        f" RETURNING {returning}",
        [record[n] for n in names],
    )
    assert row is not None
    return row[returning]


def update(db: Database, table: str, where: Row, fields: Row) -> int:
    """``UPDATE table SET fields WHERE where`` (equalities); return the rows changed."""
    if not fields:
        return 0
    sets = ", ".join(f"{name} = ?" for name in fields)
    test = " AND ".join(f"{name} = ?" for name in where)
    return db.execute(
        f"UPDATE {table} SET {sets} WHERE {test}", [*fields.values(), *where.values()]
    )


def _plain(params: Params) -> list[Any]:
    """Booleans as 0/1: flags are INTEGER columns on both backends."""
    return [int(p) if isinstance(p, bool) else p for p in params]


class SqliteDatabase:
    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        # An in-memory database exists in one connection only: share it, one thread at a time.
        self._shared = self._connect() if path == ":memory:" else None
        self._memory_lock = threading.RLock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (migrations use it through sqlite-utils)."""
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._memory_lock if self._shared is not None else _nothing():
            conn = self.connection()
            depth: int = getattr(self._local, "depth", 0)
            name = f"sp{depth}"
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
            self._local.depth = depth + 1
            try:
                yield
            except BaseException:
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")
            finally:
                self._local.depth = depth

    def _cursor(self, sql: str, params: Params) -> sqlite3.Cursor:
        return self.connection().execute(sql, _plain(params))

    def execute(self, sql: str, params: Params = ()) -> int:
        with self.transaction():
            return self._cursor(sql, params).rowcount

    def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        with self._memory_lock if self._shared is not None else _nothing():
            cursor = self._cursor(sql, params)
            rows = cursor.fetchall()  # every row read, so a RETURNING statement completes
            names = [c[0] for c in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in rows]

    def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._memory_lock if self._shared is not None else _nothing():
            return self._cursor(sql, params).fetchall()

    def lock(self, key: str) -> None:
        return None

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()
        self._local = threading.local()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    backend = "postgres"

    def __init__(self, url: str, *, max_size: int = 10) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = "postgresql://" + url.split("://", 1)[1]
        self.pool: ConnectionPool[Any] = ConnectionPool(
            self.url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=True,
            name="smsbridge",
            check=ConnectionPool.check_connection,  # a server restart leaves dead connections
        )
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with conn.transaction():
                yield
            return
        with self.pool.connection() as conn, conn.transaction():
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def all(self, sql: str, params: Params = ()) -> list[Row]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return list(conn.execute(_pg_sql(sql), _plain(params)).fetchall())
        with self.pool.connection() as conn:
            return list(conn.execute(_pg_sql(sql), _plain(params)).fetchall())

    def tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        # fetchall() loads every row in one call: about a third cheaper than iterating the
        # cursor row by row for the preflight's 100,000 rows.
        from psycopg.rows import tuple_row

        conn = getattr(self._local, "conn", None)
        if conn is not None:
            cursor = conn.cursor(row_factory=tuple_row)
            return list(cursor.execute(_pg_sql(sql), _plain(params)).fetchall())
        with self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row)
            return list(cursor.execute(_pg_sql(sql), _plain(params)).fetchall())

    def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = ()) -> int:
        with self.transaction():
            cursor = self._local.conn.execute(_pg_sql(sql), _plain(params))
            return int(cursor.rowcount)

    def lock(self, key: str) -> None:
        self.one("SELECT pg_advisory_xact_lock(hashtext(?))", [key])

    def close(self) -> None:
        self.pool.close()


def connect(database_url: str) -> SqliteDatabase | PostgresDatabase:
    """The database behind ``sqlite:///path`` or ``postgres(ql)://…``."""
    if database_url.startswith("sqlite:///"):
        return SqliteDatabase(database_url.removeprefix("sqlite:///"))
    if database_url.startswith(("postgres://", "postgresql://")):
        return PostgresDatabase(database_url)
    raise ValueError("DATABASE_URL must start with sqlite:///, postgres:// or postgresql://")
