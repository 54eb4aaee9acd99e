"""``smsbridge db copy --to URL``: move an install to another database (SQLite -> PostgreSQL).

Every table is copied row for row, ids kept, into a migrated and empty target; PostgreSQL's id
sequences are moved past the copied ids. The source is only read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.store import Store

# Parents before children (foreign keys), each with the columns that order it.
TABLES: list[tuple[str, str]] = [
    ("stores", "keyword"),
    ("customers", "id"),
    ("consent", "id"),
    ("threads", "id"),
    ("messages", "id"),
    ("events", "key"),
    ("jobs", "id"),
    ("media", "id"),
    ("blasts", "id"),
    ("blast_recipients", "blast_id, customer_id"),
    ("slack_problems", "id"),
    ("slack_pacing", "channel"),
    ("slack_slots", "channel, job_id"),
]
IDENTITY = ["customers", "consent", "threads", "messages", "jobs", "blasts", "slack_problems"]
CHUNK = 500


class TargetNotEmpty(Exception):
    """The target database already holds data; copying would mix two installs."""


def copy_database(source: Store, target: Store) -> dict[str, int]:
    """Copy every row from ``source`` to ``target`` (migrated here); return rows per table."""
    source.migrate()
    target.migrate()
    for table, _ in TABLES:
        row = target.db.one(f"SELECT count(*) AS n FROM {table}")
        if row and row["n"]:
            raise TargetNotEmpty(f"the target database already has rows in {table}")
    copied: dict[str, int] = {}
    with target.transaction():
        for table, order in TABLES:
            copied[table] = 0
            offset = 0
            while True:
                rows = source.db.all(
                    f"SELECT * FROM {table} ORDER BY {order} LIMIT ? OFFSET ?", [CHUNK, offset]
                )
                if not rows:
                    break
                names = list(rows[0])
                marks = "(" + ", ".join("?" for _ in names) + ")"
                target.db.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                    + ", ".join(marks for _ in rows),
                    [row[name] for row in rows for name in names],
                )
                copied[table] += len(rows)
                offset += CHUNK
        if target.backend == "postgres":
            for table in IDENTITY:
                target.db.one(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" coalesce(max(id), 0) + 1, false) FROM {table}"
                )
    return copied
