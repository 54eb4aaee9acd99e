"""Store-wide blasts and their per-recipient ledger."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bridge.clock import iso
from bridge.store.db import Database, Row, insert, update

ACTIVE_BLAST = ("confirmed", "scheduled", "sending", "paused")
RECIPIENT_BATCH = 20_000  # recipients per INSERT statement


class Blasts:
    ACTIVE_BLAST = ACTIVE_BLAST

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, fields: Row) -> int:
        with self.db.transaction():
            return int(insert(self.db, "blasts", fields))

    def get(self, blast_id: int) -> Row:
        row = self.db.one("SELECT * FROM blasts WHERE id = ?", [blast_id])
        if row is None:
            raise KeyError(f"no blast {blast_id}")
        return row

    def by_progress(self, channel: str, ts: str) -> Row | None:
        """The blast whose progress message is ``ts`` in ``channel``, if any."""
        return self.db.one(
            "SELECT * FROM blasts WHERE progress_channel = ? AND progress_ts = ?", [channel, ts]
        )

    def rows(self, store: str | None = None) -> list[Row]:
        if store is None:
            return self.db.all("SELECT * FROM blasts ORDER BY id")
        return self.db.all("SELECT * FROM blasts WHERE store = ? ORDER BY id", [store])

    def update(self, blast_id: int, **fields: Any) -> None:
        update(self.db, "blasts", {"id": blast_id}, fields)

    def move(
        self, blast_id: int, from_status: tuple[str, ...], to_status: str, **fields: Any
    ) -> bool:
        """Change a blast's status only from one of ``from_status``; False if it was not there."""
        marks = ", ".join("?" for _ in from_status)
        sets = ", ".join(f"{name} = ?" for name in ["status", *fields])
        changed = self.db.execute(
            f"UPDATE blasts SET {sets} WHERE id = ? AND status IN ({marks})",
            [to_status, *fields.values(), blast_id, *from_status],
        )
        return changed == 1

    def active(self, store: str) -> Row | None:
        marks = ", ".join("?" for _ in ACTIVE_BLAST)
        return self.db.one(
            f"SELECT * FROM blasts WHERE store = ? AND status IN ({marks}) ORDER BY id LIMIT 1",
            [store, *ACTIVE_BLAST],
        )

    def history(self, store: str, since: datetime) -> list[Row]:
        """Blasts of the store that started sending at or after ``since``."""
        return self.db.all(
            "SELECT * FROM blasts WHERE store = ? AND started_at >= ? ORDER BY started_at",
            [store, iso(since)],
        )

    def add_recipients(self, blast_id: int, recipients: list[tuple[int, str]]) -> None:
        """Record the blast's recipients ``(customer_id, phone)``, pending: one set-based
        statement per RECIPIENT_BATCH rows (the rows travel as one JSON array, unpacked by the
        database), so 100,000 recipients take a handful of statements, not thousands."""
        if self.db.backend == "sqlite":
            rows = (
                "json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
                " 'pending', '', '', NULL, NULL FROM json_each(?)"
            )
        else:
            rows = (
                "(r ->> 0)::bigint, r ->> 1, 'pending', '', '', NULL, NULL"
                " FROM jsonb_array_elements(?::jsonb) AS r"
            )
        with self.db.transaction():
            for start in range(0, len(recipients), RECIPIENT_BATCH):
                chunk = recipients[start : start + RECIPIENT_BATCH]
                self.db.execute(
                    "INSERT INTO blast_recipients (blast_id, customer_id, phone, status, reason,"
                    f" provider_id, attempted_at, finished_at) SELECT ?, {rows}"
                    " WHERE true ON CONFLICT DO NOTHING",  # WHERE: SQLite's parser needs it
                    [blast_id, json.dumps(chunk)],
                )

    def skip_no_longer_opted_in(self, blast_id: int, opted_in: int, now: datetime) -> int:
        """Skip every pending recipient who is no longer opted in, in one statement; return
        how many."""
        return self.db.execute(
            "UPDATE blast_recipients SET status = 'skipped',"
            " reason = 'opted out since the blast was confirmed', finished_at = ?"
            " WHERE blast_id = ? AND status = 'pending' AND EXISTS (SELECT 1 FROM customers c"
            " WHERE c.id = blast_recipients.customer_id AND COALESCE(c.status, -1) <> ?)",
            [iso(now), blast_id, opted_in],
        )

    def recipients(self, blast_id: int, status: str | None = None) -> list[Row]:
        if status is None:
            return self.db.all(
                "SELECT * FROM blast_recipients WHERE blast_id = ? ORDER BY customer_id",
                [blast_id],
            )
        return self.db.all(
            "SELECT * FROM blast_recipients WHERE blast_id = ? AND status = ? ORDER BY customer_id",
            [blast_id, status],
        )

    def update_recipient(self, blast_id: int, customer_id: int, **fields: Any) -> None:
        update(
            self.db, "blast_recipients", {"blast_id": blast_id, "customer_id": customer_id}, fields
        )

    def recipient_counts(self, blast_id: int) -> dict[str, int]:
        rows = self.db.all(
            "SELECT status, count(*) AS n FROM blast_recipients WHERE blast_id = ? GROUP BY status",
            [blast_id],
        )
        return {row["status"]: int(row["n"]) for row in rows}

    def recipient_reasons(self, blast_id: int, status: str) -> dict[str, int]:
        rows = self.db.all(
            "SELECT reason, count(*) AS n FROM blast_recipients WHERE blast_id = ? AND status = ?"
            " GROUP BY reason ORDER BY n DESC, reason",
            [blast_id, status],
        )
        return {row["reason"]: int(row["n"]) for row in rows}

    def skip_pending(self, blast_id: int, reason: str, now: datetime) -> int:
        return self.db.execute(
            "UPDATE blast_recipients SET status = 'skipped', reason = ?, finished_at = ?"
            " WHERE blast_id = ? AND status = 'pending'",
            [reason, iso(now), blast_id],
        )

    def campaign_sent(self, blast_id: int, now: datetime) -> int:
        """CRM Text took the campaign: every pending recipient counts as sent."""
        return self.db.execute(
            "UPDATE blast_recipients SET status = 'sent', reason = 'campaign', finished_at = ?"
            " WHERE blast_id = ? AND status = 'pending'",
            [iso(now), blast_id],
        )

    def recent_for(self, customer_id: int, since: datetime) -> Row | None:
        """The latest blast that texted this customer at or after ``since``."""
        return self.db.one(
            "SELECT b.* FROM blast_recipients r JOIN blasts b ON b.id = r.blast_id"
            " WHERE r.customer_id = ? AND r.status = 'sent' AND r.finished_at >= ?"
            " ORDER BY r.finished_at DESC LIMIT 1",
            [customer_id, iso(since)],
        )
