"""Store-wide blasts and their per-recipient ledger."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bridge.clock import iso
from bridge.consent import OPTED_IN
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

    def sent_to_since(self, phone: str, since: datetime) -> int:
        """Blast texts sent to ``phone`` (E.164, any store) after ``since``, and those being
        sent now (``attempted_at`` set, not finished: another store's blast may be texting the
        number this moment). The first from the m012 index; the second from the pending rows
        of the active blasts alone (few: a blast texted one by one has at most 700)."""
        marks = ", ".join("?" for _ in ACTIVE_BLAST)
        row = self.db.one(
            "SELECT (SELECT count(*) FROM blast_recipients WHERE phone = ? AND status = 'sent'"
            " AND finished_at > ?) + (SELECT count(*) FROM blast_recipients WHERE blast_id IN"
            f" (SELECT id FROM blasts WHERE status IN ({marks})) AND status = 'pending'"
            " AND phone = ? AND attempted_at IS NOT NULL) AS n",
            [phone, iso(since), *ACTIVE_BLAST, phone],
        )
        return int(row["n"]) if row else 0

    def recent_texts_of_pending(
        self, blast_id: int, states: list[str], since: datetime
    ) -> list[tuple[str, str, str]]:
        """``(phone, state, finished_at)`` of every blast text sent after ``since`` to a pending
        recipient of the blast whose customer is in one of ``states``: one query, the texts read
        through the ``blast_recipients_sent_phone`` index (m012)."""
        if not states:
            return []
        marks = ", ".join("?" for _ in states)
        return self.db.tuples(
            "SELECT s.phone, c.state, s.finished_at FROM blast_recipients r"
            " JOIN customers c ON c.id = r.customer_id"
            " JOIN blast_recipients s ON s.phone = r.phone AND s.status = 'sent'"
            " AND s.finished_at > ?"
            f" WHERE r.blast_id = ? AND r.status = 'pending' AND c.state IN ({marks})",
            [iso(since), blast_id, *states],
        )

    def at_cap(self, store: str, caps: dict[str, int], since: datetime) -> int:
        """Opted-in numbers of the store in a capped state that already got their state's cap
        of blast texts after ``since`` (any store): per number one count from the m012 index."""
        if not caps:
            return 0
        cases = " ".join("WHEN ? THEN ?" for _ in caps)
        marks = ", ".join("?" for _ in caps)
        row = self.db.one(
            "SELECT count(DISTINCT c.e164) AS n FROM customers c"
            f" WHERE c.store = ? AND c.status = ? AND c.state IN ({marks})"
            " AND (SELECT count(*) FROM blast_recipients s WHERE s.phone = c.e164"
            f" AND s.status = 'sent' AND s.finished_at > ?) >= CASE c.state {cases} END",
            [store.upper(), OPTED_IN, *caps, iso(since), *(v for kv in caps.items() for v in kv)],
        )
        return int(row["n"]) if row else 0
