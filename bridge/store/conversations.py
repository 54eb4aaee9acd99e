"""Threads, messages and processed-event keys: the conversation with each customer."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from bridge.clock import iso, parse_iso
from bridge.store.db import Database, Row, insert, update


class Conversations:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- threads --------------------------------------------------------------------------

    def thread(self, thread_id: int) -> Row:
        row = self.db.one("SELECT * FROM threads WHERE id = ?", [thread_id])
        if row is None:
            raise KeyError(f"no thread {thread_id}")
        return row

    def thread_by_ts(self, channel: str, ts: str) -> Row | None:
        return self.db.one(
            "SELECT * FROM threads WHERE channel_id = ? AND ts = ? ORDER BY id LIMIT 1",
            [channel, ts],
        )

    def current_thread(
        self, customer_id: int, channel: str, now: datetime, quiet: timedelta
    ) -> Row:
        """The customer's open thread, or a new one after a resolve or a quiet period."""
        with self.db.transaction():
            self.db.lock(f"customer threads {customer_id}")  # two processes, one thread
            last = self.db.one(
                "SELECT * FROM threads WHERE customer_id = ? ORDER BY id DESC LIMIT 1",
                [customer_id],
            )
            stale = last is not None and (
                last["resolved_at"] is not None
                or last["channel_id"] != channel
                or parse_iso(last["last_activity_at"]) < now - quiet
            )
            if last is None or stale:
                new_id = self._add_thread(
                    customer_id, channel, None, now, last["id"] if last else None
                )
                return self.thread(new_id)
            update(self.db, "threads", {"id": last["id"]}, {"last_activity_at": iso(now)})
            return self.thread(last["id"])

    def _add_thread(
        self,
        customer_id: int,
        channel: str,
        ts: str | None,
        now: datetime,
        previous_id: int | None,
        thread_key: str | None = None,
    ) -> int:
        return int(
            insert(
                self.db,
                "threads",
                {
                    "customer_id": customer_id,
                    "channel_id": channel,
                    "ts": ts,
                    "opened_at": iso(now),
                    "last_activity_at": iso(now),
                    "resolved_at": None,
                    "resolved_by": None,
                    "previous_id": previous_id,
                    "thread_key": thread_key or uuid.uuid4().hex,
                },
            )
        )

    def add_known_thread(
        self, customer_id: int, channel: str, ts: str, thread_key: str, now: datetime
    ) -> Row:
        """A thread that exists in Slack but not here (lost database, another instance),
        rebuilt from its parent's metadata; the existing row if it is already known."""
        with self.db.transaction():
            self.db.lock(f"customer threads {customer_id}")
            known = self.thread_by_ts(channel, ts)
            if known is not None:
                return known
            if self.db.one("SELECT 1 AS x FROM threads WHERE thread_key = ?", [thread_key]):
                thread_key = uuid.uuid4().hex  # the same key in another row: keep ours unique
            return self.thread(self._add_thread(customer_id, channel, ts, now, None, thread_key))

    def newest_parent_ts(self, channel: str) -> str | None:
        """The newest thread parent we know was posted in ``channel`` (a Slack ts)."""
        row = self.db.one(
            "SELECT max(ts) AS ts FROM threads WHERE channel_id = ? AND ts IS NOT NULL", [channel]
        )
        return str(row["ts"]) if row and row["ts"] else None

    def newest_thread_ts(self, thread_id: int, but: int) -> str | None:
        """The newest Slack ts we know in a thread (its parent, any message but ``but``)."""
        row = self.db.one(
            "SELECT max(ts) AS ts FROM (SELECT ts FROM threads WHERE id = ?"
            " UNION ALL SELECT slack_ts AS ts FROM messages WHERE thread_id = ? AND id != ?) AS t",
            [thread_id, thread_id, but],
        )
        return str(row["ts"]) if row and row["ts"] else None

    def update_thread(self, thread_id: int, **fields: Any) -> None:
        update(self.db, "threads", {"id": thread_id}, fields)

    def set_thread_ts(self, thread_id: int, ts: str) -> None:
        update(self.db, "threads", {"id": thread_id}, {"ts": ts})

    def resolve_thread(self, thread_id: int, by: str, now: datetime) -> bool:
        """Mark a thread resolved; False if it already was."""
        changed = self.db.execute(
            "UPDATE threads SET resolved_at = ?, resolved_by = ?"
            " WHERE id = ? AND resolved_at IS NULL",
            [iso(now), by, thread_id],
        )
        return changed == 1

    # -- messages -------------------------------------------------------------------------

    def message(self, message_id: int) -> Row:
        row = self.db.one("SELECT * FROM messages WHERE id = ?", [message_id])
        if row is None:
            raise KeyError(f"no message {message_id}")
        return row

    def message_by_provider_id(self, keyword: str, provider_id: str) -> Row | None:
        return self.db.one(
            "SELECT * FROM messages WHERE store = ? AND provider_id = ?",
            [keyword.upper(), provider_id],
        )

    def message_by_source(self, source_key: str) -> Row | None:
        return self.db.one("SELECT * FROM messages WHERE source_key = ?", [source_key])

    def add_message(self, fields: Row) -> int:
        record = dict(fields)
        if isinstance(record.get("media"), list):
            record["media"] = json.dumps(record["media"])
        record.setdefault("message_key", uuid.uuid4().hex)
        with self.db.transaction():
            return int(insert(self.db, "messages", record))

    def update_message(self, message_id: int, **fields: Any) -> None:
        update(self.db, "messages", {"id": message_id}, fields)

    def move_message(self, message_id: int, before: str, after: str, **fields: Any) -> bool:
        """Change a message's status from ``before`` to ``after`` (and ``fields``) only if it
        still has ``before``: of two racing changes (a held reply released and expired at
        once) exactly one wins. True if this one did."""
        sets = ", ".join(f"{name} = ?" for name in ["status", *fields])
        changed = self.db.execute(
            f"UPDATE messages SET {sets} WHERE id = ? AND status = ?",
            [after, *fields.values(), message_id, before],
        )
        return changed == 1

    def held_messages(self, customer_id: int) -> list[Row]:
        """The customer's replies held until they opt in, oldest first."""
        return self.db.all(
            "SELECT * FROM messages WHERE customer_id = ? AND status = 'awaiting_opt_in'"
            " ORDER BY id",
            [customer_id],
        )

    def latest_thread(self, customer_id: int) -> Row | None:
        """The customer's newest thread that is in Slack, if any."""
        return self.db.one(
            "SELECT * FROM threads WHERE customer_id = ? AND ts IS NOT NULL ORDER BY id DESC"
            " LIMIT 1",
            [customer_id],
        )

    def unposted_after(self, thread_id: int, message_id: int, limit: int) -> list[Row]:
        """The thread's messages after ``message_id`` in order, up to ``limit`` of them."""
        return self.db.all(
            "SELECT * FROM messages WHERE thread_id = ? AND id > ? ORDER BY id LIMIT ?",
            [thread_id, message_id, limit],
        )

    def posted_with(self, message_id: int) -> list[Row]:
        """The messages one combined Slack post carries (its first message's id), in order."""
        return self.db.all("SELECT * FROM messages WHERE posted_with = ? ORDER BY id", [message_id])

    def thread_messages(self, thread_id: int) -> list[Row]:
        return self.db.all("SELECT * FROM messages WHERE thread_id = ? ORDER BY id", [thread_id])

    def held_replies(self, customer_id: int) -> list[Row]:
        """Staff replies held until staff decide on the customer's possible stop request."""
        return self.db.all(
            "SELECT * FROM messages WHERE customer_id = ? AND direction = 'out'"
            " AND status = 'held' ORDER BY id",
            [customer_id],
        )

    def holding(self, customer_ids: list[int]) -> set[int]:
        """Which of ``customer_ids`` have a reply held of either kind (for an opt-in or for a
        decision on a stop request); one query per 500."""
        found: set[int] = set()
        for i in range(0, len(customer_ids), 500):
            chunk = customer_ids[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.all(
                "SELECT DISTINCT customer_id FROM messages WHERE status IN"
                f" ('held', 'awaiting_opt_in') AND customer_id IN ({marks})",
                chunk,
            )
            found.update(row["customer_id"] for row in rows)
        return found

    # -- processed events (idempotency keys) ----------------------------------------------

    def first_time(self, key: str, now: datetime) -> bool:
        """Record an idempotency key; True only the first time it is seen."""
        changed = self.db.execute(
            "INSERT INTO events (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [key, iso(now)],
        )
        return changed == 1
