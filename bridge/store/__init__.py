"""All persistence: :func:`open_store` gives a :class:`Store` of small per-aggregate stores
over one narrow :class:`~bridge.store.db.Database` (SQLite or PostgreSQL).

``store.customers`` (customers and consent), ``store.stores`` (keyword -> channel),
``store.conversations`` (threads, messages, processed-event keys), ``store.jobs`` (the durable
queue), ``store.blasts`` (blasts and recipients), ``store.media`` and ``store.slack`` (Slack
problems and pacing). Each method is one transaction; ``store.transaction()`` groups several.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from bridge.clock import iso, parse_iso, utcnow
from bridge.consent import NEW, OPTED_IN, OPTED_OUT, PENDING, STATUS_NAMES
from bridge.store.blasts import Blasts
from bridge.store.conversations import Conversations
from bridge.store.customers import Customers, Stores
from bridge.store.db import Database, Row, connect
from bridge.store.media import Media
from bridge.store.queue import ClaimedJob, Jobs
from bridge.store.schema import migrate, pending
from bridge.store.slack import VIEW_HASHES_KEPT, SlackState

__all__ = [
    "ClaimedJob",
    "NEW",
    "OPTED_IN",
    "OPTED_OUT",
    "PENDING",
    "STATUS_NAMES",
    "Row",
    "Store",
    "iso",
    "open_store",
    "parse_iso",
    "utcnow",
]


class Store:
    """The store of stores, customers, threads, messages, consent, events, jobs and blasts."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.stores = Stores(db)
        self.customers = Customers(db)
        self.conversations = Conversations(db)
        self.jobs = Jobs(db)
        self.blasts = Blasts(db)
        self.media = Media(db)
        self.slack = SlackState(db)

    @property
    def backend(self) -> str:
        return self.db.backend

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names."""
        return migrate(self.db)

    def pending_migrations(self) -> list[str]:
        """The migrations not applied yet (none: the database is up to date)."""
        return pending(self.db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work in this thread; nests (savepoints)."""
        with self.db.transaction():
            yield

    def lock(self, key: str) -> None:
        """Inside a transaction: other processes' transactions locking ``key`` wait for this one
        (the same SMS delivered to two web processes at once is stored once)."""
        self.db.lock(key)

    def housekeeping(self, now: datetime, media_age: timedelta, keep: timedelta) -> dict[str, int]:
        """Drop what nobody needs any more: expired pictures, old finished jobs and old
        idempotency keys (Slack and CRM Text never redeliver after a few hours). Consent lives
        on the customer, so nothing dropped here changes who may be texted."""
        with self.db.transaction():
            return {
                "media": self.db.execute(
                    "DELETE FROM media WHERE created_at < ?", [iso(now - media_age)]
                ),
                "jobs": self.db.execute(
                    "DELETE FROM jobs WHERE status NOT IN ('pending', 'parked') AND created_at < ?",
                    [iso(now - keep)],
                ),
                "events": self.db.execute(
                    "DELETE FROM events WHERE seen_at < ?", [iso(now - keep)]
                ),
                "view_hashes": self.slack.forget_view_hashes(now - VIEW_HASHES_KEPT),
            }


def open_store(database_url: str) -> Store:
    """The store behind ``sqlite:///path`` or ``postgres://…`` / ``postgresql://…``."""
    return Store(connect(database_url))
