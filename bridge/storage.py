"""All persistence, behind one narrow interface (:class:`Storage`) over sqlite-utils.

Every public method is one transaction. A Postgres backend would implement the same methods.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import Table

from bridge.phones import locate
from bridge.schema import migrations

Row = dict[str, Any]

# CRM Text customer statuses (reference §4).
NEW, OPTED_IN, PENDING, OPTED_OUT = 1, 3, 4, 5
STATUS_NAMES = {
    NEW: "new guest",
    OPTED_IN: "opted in",
    PENDING: "opt-in pending",
    OPTED_OUT: "opted out",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Storage:
    """The store of stores, customers, threads, messages, consent, events, jobs and blasts."""

    def __init__(self, path: str) -> None:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.db = Database(conn)
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names."""
        with self._lock:
            pending = [m.name for m in migrations.pending(self.db)]
            migrations.apply(self.db)
            return pending

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One atomic unit of work; nests (savepoints) and serialises threads."""
        with self._lock, self.db.atomic():
            yield self.db

    def _t(self, name: str) -> Table:
        table = self.db[name]
        assert isinstance(table, Table)
        return table

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Row | None:
        with self._lock:
            cursor = self.db.execute(sql, params)
            row = cursor.fetchone()
            if row is None:
                return None
            return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _all(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[Row]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- stores ---------------------------------------------------------------------------

    def sync_stores(self, stores: dict[str, str]) -> None:
        """Make the stores table match configuration (keyword -> Slack channel)."""
        with self.transaction():
            for keyword, channel in stores.items():
                existing = self._one("SELECT * FROM stores WHERE keyword = ?", [keyword])
                if existing is None:
                    self._t("stores").insert(
                        {"keyword": keyword, "channel_id": channel, "name": ""}
                    )
                elif existing["channel_id"] != channel:
                    self._t("stores").update(keyword, {"channel_id": channel})

    def store(self, keyword: str) -> Row | None:
        return self._one("SELECT * FROM stores WHERE keyword = ?", [keyword.upper()])

    def set_store_details(self, keyword: str, name: str, store_id: str) -> None:
        with self.transaction():
            if name or store_id:
                self.db.execute(
                    "UPDATE stores SET name = coalesce(nullif(?, ''), name),"
                    " store_id = coalesce(nullif(?, ''), store_id) WHERE keyword = ?",
                    [name, store_id, keyword],
                )

    # -- customers and consent ------------------------------------------------------------

    def customer(self, customer_id: int) -> Row:
        row = self._one("SELECT * FROM customers WHERE id = ?", [customer_id])
        if row is None:
            raise KeyError(f"no customer {customer_id}")
        return row

    def find_customer(self, keyword: str, phone: str) -> Row | None:
        return self._one(
            "SELECT * FROM customers WHERE store = ? AND phone = ?", [keyword.upper(), phone]
        )

    def upsert_customer(
        self, keyword: str, phone: str, *, name: str = "", crm_id: str = "", now: datetime
    ) -> Row:
        """Find or create the customer; fill in name and CRM Text id when we learn them."""
        with self.transaction():
            row = self.find_customer(keyword, phone)
            if row is None:
                e164, area_code, state, zones = locate(phone).columns()
                self._t("customers").insert(
                    {
                        "store": keyword.upper(),
                        "phone": phone,
                        "name": name,
                        "crm_id": crm_id,
                        "status": NEW,
                        "created_at": iso(now),
                        "updated_at": iso(now),
                        "e164": e164,
                        "area_code": area_code,
                        "state": state,
                        "zones": zones,
                    }
                )
            else:
                self.db.execute(
                    "UPDATE customers SET name = coalesce(nullif(?, ''), name),"
                    " crm_id = coalesce(nullif(?, ''), crm_id) WHERE id = ?",
                    [name, crm_id, row["id"]],
                )
            found = self.find_customer(keyword, phone)
            assert found is not None
            return found

    def set_status(
        self,
        customer_id: int,
        status: int,
        *,
        how: str,
        text: str = "",
        actor: str = "",
        now: datetime,
    ) -> bool:
        """Change a customer's opt-in status and write the consent ledger; True if it changed."""
        with self.transaction():
            before = self.customer(customer_id)["status"]
            if before == status:
                return False
            self._t("customers").update(customer_id, {"status": status, "updated_at": iso(now)})
            self._t("consent").insert(
                {
                    "customer_id": customer_id,
                    "at": iso(now),
                    "status_from": before,
                    "status_to": status,
                    "how": how,
                    "text": text,
                    "actor": actor,
                }
            )
            return True

    def find_customers(self, keyword: str, phones: list[str]) -> dict[str, Row]:
        """The store's customers among ``phones`` (one query per 500), by phone."""
        found: dict[str, Row] = {}
        for i in range(0, len(phones), 500):
            chunk = phones[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(
                f"SELECT id, phone, status FROM customers WHERE store = ? AND phone IN ({marks})",
                [keyword.upper(), *chunk],
            )
            found.update((row["phone"], row) for row in rows)
        return found

    def add_customers(
        self, keyword: str, customers: list[tuple[str, str, str]], *, now: datetime
    ) -> None:
        """Add new customers ``(phone, name, crm_id)`` at once, each located at ingest; status
        NEW (their status is then set through :meth:`set_statuses`, with the consent ledger)."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO customers (store, phone, name, crm_id, status, created_at,"
                " updated_at, e164, area_code, state, zones)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (keyword.upper(), phone, name, crm_id, NEW, iso(now), iso(now),
                     *locate(phone).columns())
                    for phone, name, crm_id in customers
                ],
            )  # fmt: skip

    def set_statuses(self, moves: list[tuple[int, int, int]], *, how: str, now: datetime) -> int:
        """:meth:`set_status` for many customers ``(id, status before, status after)`` at once:
        each moves only if it still has its status before, and each move is in the ledger.
        Returns how many moved."""
        count = 0
        with self.transaction():
            for customer_id, before, after in moves:
                moved = self.db.execute(
                    "UPDATE customers SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                    [after, iso(now), customer_id, before],
                ).rowcount
                if moved:
                    self.db.execute(
                        "INSERT INTO consent (customer_id, at, status_from, status_to, how, text,"
                        " actor) VALUES (?, ?, ?, ?, ?, '', '')",
                        [customer_id, iso(now), before, after, how],
                    )
                    count += 1
        return count

    def consent_history(self, customer_id: int) -> list[Row]:
        return self._all("SELECT * FROM consent WHERE customer_id = ? ORDER BY id", [customer_id])

    def customers_with_status(self, keyword: str, status: int) -> list[Row]:
        return self._all(
            "SELECT * FROM customers WHERE store = ? AND status = ? ORDER BY id",
            [keyword.upper(), status],
        )

    def customers_of(self, keyword: str) -> list[Row]:
        return self._all("SELECT * FROM customers WHERE store = ? ORDER BY id", [keyword.upper()])

    def audience_counts(
        self, keyword: str
    ) -> tuple[list[str], dict[str, int], list[tuple[str | None, str, int]]]:
        """The store's audience worked out in the database from the locations stored at ingest
        (the rules of :func:`bridge.preflight.summarise`, which tests hold this to):

        * recipients: opted-in valid numbers (E.164) that no opted-out record shares, once each,
          in order of their first customer;
        * counts: ``opted_out`` (status), ``pending``, ``new``, ``invalid``, ``opted_out_number``
          (opted in, but the number is opted out elsewhere) and ``duplicate``;
        * places: ``(state, zones, recipients)`` in order of first appearance.

        Customers never located (added before ``m009``) are located first.
        """
        store = keyword.upper()
        with self.transaction():
            self._locate_missing(store)
            self.db.execute("DROP TABLE IF EXISTS temp.audience")
            # min(id) picks the first customer of a number; SQLite takes the bare columns
            # (state, zones) from that same row.
            self.db.execute(
                "CREATE TEMP TABLE audience AS SELECT e164, min(id) AS first, count(*) AS n,"
                " state, zones FROM customers WHERE store = ? AND status = ?"
                " AND e164 IS NOT NULL AND e164 NOT IN (SELECT e164 FROM customers"
                " WHERE store = ? AND status = ? AND e164 IS NOT NULL) GROUP BY e164",
                [store, OPTED_IN, store, OPTED_OUT],
            )
            recipients = [
                row[0] for row in self.db.execute("SELECT e164 FROM audience ORDER BY first")
            ]
            places = [
                (state, zones, n)
                for state, zones, n, _ in self.db.execute(
                    "SELECT state, zones, count(*), min(first) AS f FROM audience"
                    " GROUP BY state, zones ORDER BY f"
                )
            ]
            duplicate = self.db.execute("SELECT coalesce(sum(n - 1), 0) FROM audience").fetchone()
            row = self.db.execute(
                "SELECT sum(status = ?), sum(status = ?), sum(status NOT IN (?, ?, ?)),"
                " sum(status = ? AND e164 IS NULL), sum(status = ?)"
                " FROM customers WHERE store = ?",
                [OPTED_OUT, PENDING, OPTED_IN, OPTED_OUT, PENDING, OPTED_IN, OPTED_IN, store],
            ).fetchone()
            self.db.execute("DROP TABLE temp.audience")
        counts = {
            "opted_out": row[0] or 0,
            "pending": row[1] or 0,
            "new": row[2] or 0,
            "invalid": row[3] or 0,
            "duplicate": duplicate[0],
        }
        opted_in = row[4] or 0
        counts["opted_out_number"] = (
            opted_in - counts["invalid"] - len(recipients) - counts["duplicate"]
        )
        return recipients, counts, places

    def _locate_missing(self, store: str) -> None:
        rows = self.db.execute(
            "SELECT id, phone FROM customers WHERE store = ? AND zones IS NULL", [store]
        ).fetchall()
        self.db.conn.executemany(
            "UPDATE customers SET e164 = ?, area_code = ?, state = ?, zones = ? WHERE id = ?",
            [(*locate(phone).columns(), cid) for cid, phone in rows],
        )

    def audience_of(self, keyword: str) -> list[tuple[int, str, int, str | None, str | None, str]]:
        """What a blast preflight needs of every customer, read in one narrow query:
        ``(id, phone, status, e164, state, zones)`` in id order (location as stored at ingest)."""
        with self._lock:
            return self.db.execute(
                "SELECT id, phone, status, e164, state, zones FROM customers WHERE store = ?"
                " ORDER BY id",
                [keyword.upper()],
            ).fetchall()

    # -- threads --------------------------------------------------------------------------

    def thread(self, thread_id: int) -> Row:
        row = self._one("SELECT * FROM threads WHERE id = ?", [thread_id])
        if row is None:
            raise KeyError(f"no thread {thread_id}")
        return row

    def thread_by_ts(self, channel: str, ts: str) -> Row | None:
        return self._one("SELECT * FROM threads WHERE channel_id = ? AND ts = ?", [channel, ts])

    def current_thread(
        self, customer_id: int, channel: str, now: datetime, quiet: timedelta
    ) -> Row:
        """The customer's open thread, or a new one after a resolve or a quiet period."""
        with self.transaction():
            last = self._one(
                "SELECT * FROM threads WHERE customer_id = ? ORDER BY id DESC LIMIT 1",
                [customer_id],
            )
            stale = last is not None and (
                last["resolved_at"] is not None
                or last["channel_id"] != channel
                or parse_iso(last["last_activity_at"]) < now - quiet
            )
            if last is None or stale:
                new_id = (
                    self._t("threads")
                    .insert(
                        {
                            "customer_id": customer_id,
                            "channel_id": channel,
                            "ts": None,
                            "opened_at": iso(now),
                            "last_activity_at": iso(now),
                            "resolved_at": None,
                            "resolved_by": None,
                            "previous_id": last["id"] if last else None,
                            "thread_key": uuid.uuid4().hex,
                        }
                    )
                    .last_pk
                )
                return self.thread(int(new_id or 0))
            self._t("threads").update(last["id"], {"last_activity_at": iso(now)})
            return self.thread(last["id"])

    def add_known_thread(
        self, customer_id: int, channel: str, ts: str, thread_key: str, now: datetime
    ) -> Row:
        """A thread that exists in Slack but not here (lost database, another instance),
        rebuilt from its parent's metadata; the existing row if it is already known."""
        with self.transaction():
            known = self.thread_by_ts(channel, ts)
            if known is not None:
                return known
            if self._one("SELECT 1 AS x FROM threads WHERE thread_key = ?", [thread_key]):
                thread_key = uuid.uuid4().hex  # the same key in another row: keep ours unique
            new_id = (
                self._t("threads")
                .insert(
                    {
                        "customer_id": customer_id,
                        "channel_id": channel,
                        "ts": ts,
                        "opened_at": iso(now),
                        "last_activity_at": iso(now),
                        "resolved_at": None,
                        "resolved_by": None,
                        "previous_id": None,
                        "thread_key": thread_key,
                    }
                )
                .last_pk
            )
            return self.thread(int(new_id or 0))

    def newest_parent_ts(self, channel: str) -> str | None:
        """The newest thread parent we know was posted in ``channel`` (a Slack ts)."""
        row = self._one(
            "SELECT max(ts) AS ts FROM threads WHERE channel_id = ? AND ts IS NOT NULL", [channel]
        )
        return str(row["ts"]) if row and row["ts"] else None

    def newest_thread_ts(self, thread_id: int, but: int) -> str | None:
        """The newest Slack ts we know in a thread (its parent, any message but ``but``)."""
        row = self._one(
            "SELECT max(ts) AS ts FROM (SELECT ts FROM threads WHERE id = ?"
            " UNION ALL SELECT slack_ts AS ts FROM messages WHERE thread_id = ? AND id != ?)",
            [thread_id, thread_id, but],
        )
        return str(row["ts"]) if row and row["ts"] else None

    def update_thread(self, thread_id: int, **fields: Any) -> None:
        with self.transaction():
            self._t("threads").update(thread_id, fields)

    def set_thread_ts(self, thread_id: int, ts: str) -> None:
        with self.transaction():
            self._t("threads").update(thread_id, {"ts": ts})

    def resolve_thread(self, thread_id: int, by: str, now: datetime) -> bool:
        """Mark a thread resolved; False if it already was."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE threads SET resolved_at = ?, resolved_by = ?"
                " WHERE id = ? AND resolved_at IS NULL",
                [iso(now), by, thread_id],
            )
            return cursor.rowcount == 1

    # -- messages -------------------------------------------------------------------------

    def message(self, message_id: int) -> Row:
        row = self._one("SELECT * FROM messages WHERE id = ?", [message_id])
        if row is None:
            raise KeyError(f"no message {message_id}")
        return row

    def message_by_provider_id(self, keyword: str, provider_id: str) -> Row | None:
        return self._one(
            "SELECT * FROM messages WHERE store = ? AND provider_id = ?",
            [keyword.upper(), provider_id],
        )

    def message_by_source(self, source_key: str) -> Row | None:
        return self._one("SELECT * FROM messages WHERE source_key = ?", [source_key])

    def add_message(self, fields: Row) -> int:
        with self.transaction():
            record = dict(fields)
            if isinstance(record.get("media"), list):
                record["media"] = json.dumps(record["media"])
            record.setdefault("message_key", uuid.uuid4().hex)
            return int(self._t("messages").insert(record).last_pk or 0)

    def update_message(self, message_id: int, **fields: Any) -> None:
        with self.transaction():
            self._t("messages").update(message_id, fields)

    def unposted_after(self, thread_id: int, message_id: int, limit: int) -> list[Row]:
        """The thread's messages after ``message_id`` in order, up to ``limit`` of them."""
        return self._all(
            "SELECT * FROM messages WHERE thread_id = ? AND id > ? ORDER BY id LIMIT ?",
            [thread_id, message_id, limit],
        )

    def posted_with(self, message_id: int) -> list[Row]:
        """The messages one combined Slack post carries (its first message's id), in order."""
        return self._all("SELECT * FROM messages WHERE posted_with = ? ORDER BY id", [message_id])

    def thread_messages(self, thread_id: int) -> list[Row]:
        return self._all("SELECT * FROM messages WHERE thread_id = ? ORDER BY id", [thread_id])

    # -- processed events (idempotency keys) ----------------------------------------------

    def first_time(self, key: str, now: datetime) -> bool:
        """Record an idempotency key; True only the first time it is seen."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO events (key, seen_at) VALUES (?, ?)", [key, iso(now)]
            )
            return cursor.rowcount == 1

    # -- jobs -----------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        payload: Row,
        *,
        now: datetime,
        queue: str | None = None,
        customer_id: int | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> int | None:
        """Add a durable job; with a dedupe_key already used, add nothing and return None.

        Jobs in one ``queue`` run in order; ``customer_id`` names the customer's own queue in the
        job's lane (``bridge.jobs.LANES``), so everything about one customer happens in the order
        it arrived within a lane, and a stuck Slack post never holds back a text or an opt-out.
        """
        if queue is None:
            if customer_id is None:
                raise ValueError("enqueue needs a queue or a customer_id")
            from bridge.jobs import customer_queue  # bridge.jobs builds on this module

            queue = customer_queue(kind, customer_id)
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO jobs (kind, payload, queue, dedupe_key, status, attempts,"
                " run_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
                [
                    kind,
                    json.dumps(payload),
                    queue,
                    dedupe_key,
                    iso(now + timedelta(seconds=delay)),
                    iso(now),
                ],
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def waiting_job(self, dedupe_key: str) -> Row | None:
        """The unfinished (pending, running or parked) job with ``dedupe_key``, payload read."""
        row = self._one(
            "SELECT * FROM jobs WHERE dedupe_key = ? AND status IN ('pending', 'parked')",
            [dedupe_key],
        )
        if row is not None:
            row["payload"] = json.loads(row["payload"])
        return row

    def set_job_payload(self, job_id: int, payload: Row) -> None:
        """Change what an unfinished job will act on (e.g. a reply edited while it waits)."""
        with self.transaction():
            self.db.execute(
                "UPDATE jobs SET payload = ? WHERE id = ?", [json.dumps(payload), job_id]
            )

    def claim_job(
        self, now: datetime, lease: timedelta, lanes: Collection[str] | None = None
    ) -> Row | None:
        """Take the oldest runnable job (of ``lanes``, or any) whose queue has no older
        unfinished job; the claim counts an attempt. ``lost`` counts the claims that found the
        job abandoned (its last claim's lease ran out: the worker died while running it)."""
        kinds: list[str] = []
        if lanes is not None:
            from bridge.jobs import kinds_in  # bridge.jobs builds on this module

            kinds = kinds_in(lanes)
            if not kinds:
                return None
        only = f" AND j.kind IN ({', '.join('?' for _ in kinds)})" if lanes is not None else ""
        with self.transaction():
            row = self._one(
                "SELECT * FROM jobs j WHERE j.status = 'pending' AND j.run_at <= ?"
                " AND (j.locked_until IS NULL OR j.locked_until <= ?)"
                + only
                + " AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.queue = j.queue"
                "   AND e.status IN ('pending', 'parked') AND e.id < j.id)"
                " ORDER BY j.run_at, j.id LIMIT 1",
                [iso(now), iso(now), *kinds],
            )
            if row is None:
                return None
            lost = (row["lost"] or 0) + (1 if row["locked_until"] is not None else 0)
            self._t("jobs").update(
                row["id"],
                {
                    "locked_until": iso(now + lease),
                    "attempts": row["attempts"] + 1,
                    "lost": lost,
                },
            )
            row["attempts"] += 1
            row["lost"] = lost
            row["payload"] = json.loads(row["payload"])
            return row

    def renew_job(self, job_id: int, until: datetime) -> None:
        """Extend the lease of a job that is still running (its worker is alive)."""
        with self.transaction():
            self.db.execute(
                "UPDATE jobs SET locked_until = ? WHERE id = ? AND status = 'pending'"
                " AND locked_until IS NOT NULL",
                [iso(until), job_id],
            )

    def release_job(self, job_id: int) -> None:
        """Give a claimed job back now (the process is stopping): runnable at once by another
        worker, and the attempt is not charged."""
        with self.transaction():
            self.db.execute(
                "UPDATE jobs SET locked_until = NULL, attempts = max(attempts - 1, 0)"
                " WHERE id = ? AND status = 'pending' AND locked_until IS NOT NULL",
                [job_id],
            )

    def finish_job(self, job_id: int, status: str = "done", error: str = "") -> None:
        with self.transaction():
            self._t("jobs").update(
                job_id, {"status": status, "locked_until": None, "last_error": error}
            )

    def retry_job(self, job_id: int, run_at: datetime, error: str, *, refund: bool = False) -> None:
        """Run the job again at ``run_at``; ``refund``: this attempt does not count."""
        with self.transaction():
            self.db.execute(
                "UPDATE jobs SET run_at = ?, locked_until = NULL, last_error = ?,"
                " attempts = max(attempts - ?, 0) WHERE id = ?",
                [iso(run_at), error, 1 if refund else 0, job_id],
            )

    def park_job(self, job_id: int, key: str, error: str) -> None:
        """Keep the job waiting until :meth:`unpark_jobs` (``key``); the attempt does not count."""
        with self.transaction():
            self.db.execute(
                "UPDATE jobs SET status = 'parked', park_key = ?, locked_until = NULL,"
                " last_error = ?, attempts = max(attempts - 1, 0) WHERE id = ?",
                [key, error, job_id],
            )

    def park_pending(self, kinds: list[str], key: str, error: str, now: datetime) -> int:
        """Park every waiting job of ``kinds`` (they would fail the same way); return how many.
        A job running right now is left alone: it parks itself if it fails."""
        marks = ", ".join("?" for _ in kinds)
        with self.transaction():
            return self.db.execute(
                "UPDATE jobs SET status = 'parked', park_key = ?, last_error = ?"
                f" WHERE status = 'pending' AND kind IN ({marks})"
                " AND (locked_until IS NULL OR locked_until <= ?)",
                [key, error, *kinds, iso(now)],
            ).rowcount

    def unpark_jobs(self, key: str, now: datetime) -> int:
        """Make the jobs parked under ``key`` runnable now (they keep their order)."""
        with self.transaction():
            return self.db.execute(
                "UPDATE jobs SET status = 'pending', park_key = NULL, run_at = ?"
                " WHERE status = 'parked' AND park_key = ?",
                [iso(now), key],
            ).rowcount

    def park_keys(self) -> dict[str, int]:
        """How many jobs are parked under each key."""
        rows = self._all(
            "SELECT park_key, count(*) AS n FROM jobs WHERE status = 'parked' GROUP BY park_key"
        )
        return {row["park_key"]: row["n"] for row in rows}

    def jobs(self, status: str | None = None) -> list[Row]:
        if status is None:
            return self._all("SELECT * FROM jobs ORDER BY id")
        return self._all("SELECT * FROM jobs WHERE status = ? ORDER BY id", [status])

    def next_job_time(self) -> datetime | None:
        row = self._one("SELECT min(run_at) AS t FROM jobs WHERE status = 'pending'")
        return parse_iso(row["t"]) if row and row["t"] else None

    # -- Slack problems (what is wrong, since when, how to fix it) ------------------------

    def open_problem(self, key: str, problem: str, fix: str, now: datetime) -> bool:
        """Record a problem unless one is already open under ``key``; True when it is new."""
        with self.transaction():
            return (
                self.db.execute(
                    "INSERT OR IGNORE INTO slack_problems (key, problem, fix, since, resolved_at)"
                    " VALUES (?, ?, ?, ?, NULL)",
                    [key, problem, fix, iso(now)],
                ).rowcount
                == 1
            )

    def resolve_problem(self, key: str, now: datetime) -> Row | None:
        """Close the open problem under ``key``; return it, or None if none was open."""
        with self.transaction():
            row = self._one(
                "SELECT * FROM slack_problems WHERE key = ? AND resolved_at IS NULL", [key]
            )
            if row is None:
                return None
            self.db.execute(
                "UPDATE slack_problems SET resolved_at = ? WHERE id = ?", [iso(now), row["id"]]
            )
            return {**row, "resolved_at": iso(now)}

    def open_problems(self) -> list[Row]:
        return self._all("SELECT * FROM slack_problems WHERE resolved_at IS NULL ORDER BY id")

    # -- pacing of Slack posts (shared by every process using this database) --------------

    def reserve_slot(
        self, channel: str, job_id: int | None, now: float, interval: float, burst: int
    ) -> float:
        """The time (epoch seconds) at which a post to ``channel`` may go, keeping posts
        ``interval`` apart after a burst of ``burst`` (a token bucket, as GCRA).

        The slot is taken atomically in one statement, so processes sharing the database never
        get the same one. A job keeps its slot when it waits for it and runs again.
        """
        if job_id is not None:
            held = self._one(
                "SELECT at FROM slack_slots WHERE channel = ? AND job_id = ?", [channel, job_id]
            )
            if held is not None and float(held["at"]) > now - 60:
                return float(held["at"])  # a stale slot (the job failed meanwhile) is void
        tolerance = max(burst - 1, 0) * interval
        with self.transaction():
            (row,) = self._all(  # every row read, so the statement is complete
                "INSERT INTO slack_pacing (channel, tat) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET tat = max(tat, excluded.tat - ?) + ?"
                " RETURNING tat",
                [channel, now + interval, interval, interval],
            )
            at = max(now, float(row["tat"]) - interval - tolerance)
            if job_id is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO slack_slots (channel, job_id, at) VALUES (?, ?, ?)",
                    [channel, job_id, at],
                )
                self.db.execute("DELETE FROM slack_slots WHERE at < ?", [now - 3600])
            return at

    def release_slot(self, channel: str, job_id: int) -> None:
        """The job used its slot (or gave it back)."""
        with self.transaction():
            self.db.execute(
                "DELETE FROM slack_slots WHERE channel = ? AND job_id = ?", [channel, job_id]
            )

    def hold_channel(self, channel: str, until: float, interval: float, burst: int) -> None:
        """Slack said "slow down" for ``channel``: no slot before ``until``, then one per
        ``interval`` (the burst allowance refills from there)."""
        tat = until + max(burst - 1, 0) * interval
        with self.transaction():
            self.db.execute(
                "INSERT INTO slack_pacing (channel, tat) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET tat = max(tat, excluded.tat)",
                [channel, tat],
            )

    # -- media ----------------------------------------------------------------------------

    def add_media(
        self,
        media_id: str,
        message_id: int,
        content_type: str,
        extension: str,
        data: bytes,
        now: datetime,
    ) -> None:
        with self.transaction():
            self._t("media").insert(
                {
                    "id": media_id,
                    "message_id": message_id,
                    "content_type": content_type,
                    "extension": extension,
                    "data": data,
                    "created_at": iso(now),
                },
                replace=True,
            )

    def media(self, media_id: str) -> Row | None:
        return self._one("SELECT * FROM media WHERE id = ?", [media_id])

    # -- blasts ---------------------------------------------------------------------------

    ACTIVE_BLAST = ("confirmed", "scheduled", "sending", "paused")

    def add_blast(self, fields: Row) -> int:
        with self.transaction():
            return int(self._t("blasts").insert(fields).last_pk or 0)

    def blast(self, blast_id: int) -> Row:
        row = self._one("SELECT * FROM blasts WHERE id = ?", [blast_id])
        if row is None:
            raise KeyError(f"no blast {blast_id}")
        return row

    def blast_by_progress(self, channel: str, ts: str) -> Row | None:
        """The blast whose progress message is ``ts`` in ``channel``, if any."""
        return self._one(
            "SELECT * FROM blasts WHERE progress_channel = ? AND progress_ts = ?", [channel, ts]
        )

    def blasts(self, store: str | None = None) -> list[Row]:
        if store is None:
            return self._all("SELECT * FROM blasts ORDER BY id")
        return self._all("SELECT * FROM blasts WHERE store = ? ORDER BY id", [store])

    def update_blast(self, blast_id: int, **fields: Any) -> None:
        with self.transaction():
            self._t("blasts").update(blast_id, fields)

    def move_blast(
        self, blast_id: int, from_status: tuple[str, ...], to_status: str, **fields: Any
    ) -> bool:
        """Change a blast's status only from one of ``from_status``; False if it was not there."""
        with self.transaction():
            marks = ", ".join("?" for _ in from_status)
            sets = ", ".join(f"{name} = ?" for name in ["status", *fields])
            cursor = self.db.execute(
                f"UPDATE blasts SET {sets} WHERE id = ? AND status IN ({marks})",
                [to_status, *fields.values(), blast_id, *from_status],
            )
            return cursor.rowcount == 1

    def active_blast(self, store: str) -> Row | None:
        marks = ", ".join("?" for _ in self.ACTIVE_BLAST)
        return self._one(
            f"SELECT * FROM blasts WHERE store = ? AND status IN ({marks}) ORDER BY id LIMIT 1",
            [store, *self.ACTIVE_BLAST],
        )

    def blast_history(self, store: str, since: datetime) -> list[Row]:
        """Blasts of the store that started sending at or after ``since``."""
        return self._all(
            "SELECT * FROM blasts WHERE store = ? AND started_at >= ? ORDER BY started_at",
            [store, iso(since)],
        )

    def add_recipients(self, blast_id: int, recipients: list[tuple[int, str]]) -> None:
        with self.transaction():
            self._t("blast_recipients").insert_all(
                (
                    {
                        "blast_id": blast_id,
                        "customer_id": c,
                        "phone": p,
                        "status": "pending",
                        "reason": "",
                        "provider_id": "",
                        "attempted_at": None,
                        "finished_at": None,
                    }
                    for c, p in recipients
                ),
                ignore=True,
            )

    def recipients(self, blast_id: int, status: str | None = None) -> list[Row]:
        if status is None:
            return self._all(
                "SELECT * FROM blast_recipients WHERE blast_id = ? ORDER BY customer_id", [blast_id]
            )
        return self._all(
            "SELECT * FROM blast_recipients WHERE blast_id = ? AND status = ? ORDER BY customer_id",
            [blast_id, status],
        )

    def update_recipient(self, blast_id: int, customer_id: int, **fields: Any) -> None:
        with self.transaction():
            self._t("blast_recipients").update((blast_id, customer_id), fields)

    def recipient_counts(self, blast_id: int) -> dict[str, int]:
        rows = self._all(
            "SELECT status, count(*) AS n FROM blast_recipients WHERE blast_id = ? GROUP BY status",
            [blast_id],
        )
        return {row["status"]: row["n"] for row in rows}

    def recipient_reasons(self, blast_id: int, status: str) -> dict[str, int]:
        rows = self._all(
            "SELECT reason, count(*) AS n FROM blast_recipients WHERE blast_id = ? AND status = ?"
            " GROUP BY reason ORDER BY n DESC",
            [blast_id, status],
        )
        return {row["reason"]: row["n"] for row in rows}

    def skip_pending(self, blast_id: int, reason: str, now: datetime) -> int:
        with self.transaction():
            return self.db.execute(
                "UPDATE blast_recipients SET status = 'skipped', reason = ?, finished_at = ?"
                " WHERE blast_id = ? AND status = 'pending'",
                [reason, iso(now), blast_id],
            ).rowcount

    def recent_blast_for(self, customer_id: int, since: datetime) -> Row | None:
        """The latest blast that texted this customer at or after ``since``."""
        return self._one(
            "SELECT b.* FROM blast_recipients r JOIN blasts b ON b.id = r.blast_id"
            " WHERE r.customer_id = ? AND r.status = 'sent' AND r.finished_at >= ?"
            " ORDER BY r.finished_at DESC LIMIT 1",
            [customer_id, iso(since)],
        )

    def pending_opt_outs(self, store: str) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM jobs j JOIN customers c"
            " ON c.id = json_extract(j.payload, '$.customer_id')"
            " WHERE j.kind = 'crm_opt_out' AND j.status = 'pending' AND c.store = ?",
            [store],
        )
        return int(row["n"]) if row else 0

    def has_pending_job(self, kind: str, field: str, value: Any) -> bool:
        """Is a job of ``kind`` whose payload has ``field == value`` still waiting?"""
        row = self._one(
            "SELECT 1 AS x FROM jobs WHERE kind = ? AND status = 'pending'"
            " AND json_extract(payload, '$.' || ?) = ? LIMIT 1",
            [kind, field, value],
        )
        return row is not None

    def has_later_job(self, queue: str, job_id: int) -> bool:
        """Is a job added to ``queue`` after ``job_id`` still waiting (a newer keystroke)?"""
        row = self._one(
            "SELECT 1 AS x FROM jobs WHERE queue = ? AND id > ? AND status = 'pending' LIMIT 1",
            [queue, job_id],
        )
        return row is not None

    def latest_payload(self, kind: str, queue: str) -> Row | None:
        """The payload of the newest job of ``kind`` in ``queue`` (any status), if any."""
        row = self._one(
            "SELECT payload FROM jobs WHERE queue = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            [queue, kind],
        )
        return None if row is None else dict(json.loads(row["payload"]))

    def undecided_stop_requests(self, store: str) -> int:
        """Texts that sound like a stop request from customers still opted in, undecided."""
        row = self._one(
            "SELECT count(*) AS n FROM messages m JOIN customers c ON c.id = m.customer_id"
            " WHERE m.store = ? AND m.intent = 'soft_stop' AND m.decided_by IS NULL"
            " AND c.status = ?",
            [store, OPTED_IN],
        )
        return int(row["n"]) if row else 0

    def housekeeping(self, now: datetime, media_age: timedelta, keep: timedelta) -> dict[str, int]:
        """Drop what nobody needs any more: expired pictures, old finished jobs and old
        idempotency keys (Slack and CRM Text never redeliver after a few hours)."""
        with self.transaction():
            return {
                "media": self.db.execute(
                    "DELETE FROM media WHERE created_at < ?", [iso(now - media_age)]
                ).rowcount,
                "jobs": self.db.execute(
                    "DELETE FROM jobs WHERE status NOT IN ('pending', 'parked') AND created_at < ?",
                    [iso(now - keep)],
                ).rowcount,
                "events": self.db.execute(
                    "DELETE FROM events WHERE seen_at < ?", [iso(now - keep)]
                ).rowcount,
            }

    def asked_to_stop(self, customer_id: int) -> bool:
        """Has the customer sent a text that sounds like "stop" that staff have not decided on?"""
        row = self._one(
            "SELECT 1 AS x FROM messages WHERE customer_id = ? AND intent = 'soft_stop'"
            " AND decided_by IS NULL LIMIT 1",
            [customer_id],
        )
        return row is not None

    def opt_out_unpushed(self, customer_id: int) -> bool:
        """Is a local opt-out still on its way to CRM Text (its optoutcustomer job waiting or
        failed)? If not, CRM Text knows, and an opt-in there is the customer rejoining."""
        row = self._one(
            "SELECT status FROM jobs WHERE kind = 'crm_opt_out'"
            " AND json_extract(payload, '$.customer_id') = ? ORDER BY id DESC LIMIT 1",
            [customer_id],
        )
        return row is not None and row["status"] != "done"
