"""The durable job queue, in the application's own database.

Jobs sharing a ``queue`` run one at a time, in order. Only a queue's *head* (its oldest
unfinished job, pending or parked; ``head = 1``) can be claimed, and the next job becomes head
in the same transaction that finishes the current one. So two workers, in any number of
processes, never run two jobs of one queue at once, and claiming is one indexed look-up among
runnable heads (``idx_jobs_claim``), whatever the backlog behind them. On PostgreSQL a claim
uses ``FOR UPDATE SKIP LOCKED``, and enqueue/finish take a per-queue advisory lock so a job
enqueued while its queue's head finishes still becomes head. Attempts are counted at claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.clock import iso, parse_iso
from bridge.store.db import Database, Row, greatest

UNFINISHED = "('pending', 'parked')"


@dataclass(frozen=True)
class ClaimedJob:
    """A job as a worker claimed it: what runs it needs, typed (``payload`` read from JSON).

    ``attempts`` includes this claim; ``lost`` counts the claims that found the job abandoned
    (its worker died running it); ``last_error`` is the previous attempt's error, if any."""

    id: int
    kind: str
    queue: str
    payload: dict[str, Any]
    attempts: int
    lost: int
    created_at: str
    last_error: str | None

    @classmethod
    def from_row(cls, row: Row) -> ClaimedJob:
        return cls(
            id=int(row["id"]),
            kind=str(row["kind"]),
            queue=str(row["queue"]),
            payload=dict(json.loads(row["payload"])),
            attempts=int(row["attempts"]),
            lost=int(row.get("lost") or 0),
            created_at=str(row["created_at"]),
            last_error=row.get("last_error") or None,
        )


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        from bridge.jobs import LANES, customer_queue  # bridge.jobs builds on the store

        if queue is None:
            if customer_id is None:
                raise ValueError("enqueue needs a queue or a customer_id")
            queue = customer_queue(kind, customer_id)
        with self.db.transaction():
            self.db.lock(f"queue {queue}")
            row = self.db.one(
                "INSERT INTO jobs (kind, payload, queue, dedupe_key, status, attempts, run_at,"
                " created_at, lane, head) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?,"
                f" CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE queue = ? AND status IN {UNFINISHED})"
                " THEN 0 ELSE 1 END) ON CONFLICT DO NOTHING RETURNING id",
                [
                    kind,
                    json.dumps(payload),
                    queue,
                    dedupe_key,
                    iso(now + timedelta(seconds=delay)),
                    iso(now),
                    LANES.get(kind),
                    queue,
                ],
            )
            return int(row["id"]) if row else None

    def waiting(self, dedupe_key: str) -> Row | None:
        """The unfinished (pending, running or parked) job with ``dedupe_key``, payload read."""
        row = self.db.one(
            f"SELECT * FROM jobs WHERE dedupe_key = ? AND status IN {UNFINISHED}", [dedupe_key]
        )
        if row is not None:
            row["payload"] = json.loads(row["payload"])
        return row

    def set_payload(self, job_id: int, payload: Row) -> None:
        """Change what an unfinished job will act on (e.g. a reply edited while it waits)."""
        self.db.execute("UPDATE jobs SET payload = ? WHERE id = ?", [json.dumps(payload), job_id])

    def claim(
        self, now: datetime, lease: timedelta, lanes: Iterable[str] | None = None
    ) -> ClaimedJob | None:
        """Take the oldest runnable job that heads its queue (of ``lanes``, if given: the kinds
        :data:`bridge.jobs.LANES` puts in them now); its attempt counts now, so a job that
        kills its worker still runs out of attempts. ``lost`` counts the claims that found the
        job abandoned (its lease ran out: the worker running it died)."""
        kind_test, kinds = "", []
        if lanes is not None:
            from bridge.jobs import kinds_in  # bridge.jobs builds on the store

            kinds = kinds_in(set(lanes))
            if not kinds:
                return None
            kind_test = f" AND kind IN ({', '.join('?' for _ in kinds)})"
        skip = " FOR UPDATE SKIP LOCKED" if self.db.backend == "postgres" else ""
        with self.db.transaction():
            row = self.db.one(
                "UPDATE jobs SET locked_until = ?, attempts = attempts + 1,"
                " lost = lost + CASE WHEN locked_until IS NULL THEN 0 ELSE 1 END WHERE id ="
                " (SELECT id FROM jobs WHERE status = 'pending' AND head = 1 AND run_at <= ?"
                f" AND (locked_until IS NULL OR locked_until <= ?){kind_test}"
                f" ORDER BY run_at, id LIMIT 1{skip}) RETURNING *",
                [iso(now + lease), iso(now), iso(now), *kinds],
            )
        return None if row is None else ClaimedJob.from_row(row)

    def renew(self, job_id: int, until: datetime) -> None:
        """Extend the lease of a job that is still running (its worker is alive)."""
        self.db.execute(
            "UPDATE jobs SET locked_until = ? WHERE id = ? AND status = 'pending'"
            " AND locked_until IS NOT NULL",
            [iso(until), job_id],
        )

    def release(self, job_id: int, now: datetime | None = None) -> None:
        """Give a claimed job back, runnable now, without charging the attempt (SIGTERM)."""
        most = greatest(self.db)
        run_at, params = ("", [job_id]) if now is None else (", run_at = ?", [iso(now), job_id])
        self.db.execute(
            f"UPDATE jobs SET locked_until = NULL, attempts = {most}(attempts - 1, 0){run_at}"
            " WHERE id = ? AND status = 'pending' AND locked_until IS NOT NULL",
            params,
        )

    def finish(self, job_id: int, status: str = "done", error: str = "") -> None:
        with self.db.transaction():
            row = self.db.one("SELECT queue FROM jobs WHERE id = ?", [job_id])
            if row is None:
                return
            self.db.lock(f"queue {row['queue']}")
            self.db.execute(
                "UPDATE jobs SET status = ?, locked_until = NULL, last_error = ?, head = 0"
                " WHERE id = ?",
                [status, error, job_id],
            )
            self._promote(row["queue"])

    def _promote(self, queue: str) -> None:
        """Make the queue's oldest unfinished job its head."""
        self.db.execute(
            "UPDATE jobs SET head = 1 WHERE head = 0 AND id = (SELECT min(id) FROM jobs"
            f" WHERE queue = ? AND status IN {UNFINISHED})",
            [queue],
        )

    def retry(self, job_id: int, run_at: datetime, error: str, *, refund: bool = False) -> None:
        """Run the job again at ``run_at``; ``refund``: this attempt does not count."""
        self.db.execute(
            "UPDATE jobs SET run_at = ?, locked_until = NULL, last_error = ?,"
            f" attempts = {greatest(self.db)}(attempts - ?, 0) WHERE id = ?",
            [iso(run_at), error, 1 if refund else 0, job_id],
        )

    def park(self, job_id: int, key: str, error: str) -> None:
        """Keep the job waiting until :meth:`unpark` (``key``); the attempt does not count."""
        self.db.execute(
            "UPDATE jobs SET status = 'parked', park_key = ?, locked_until = NULL,"
            f" last_error = ?, attempts = {greatest(self.db)}(attempts - 1, 0) WHERE id = ?",
            [key, error, job_id],
        )

    def park_pending(self, kinds: list[str], key: str, error: str, now: datetime) -> int:
        """Park every waiting job of ``kinds`` (they would fail the same way); return how many.
        A job running right now is left alone: it parks itself if it fails."""
        marks = ", ".join("?" for _ in kinds)
        return self.db.execute(
            "UPDATE jobs SET status = 'parked', park_key = ?, last_error = ?"
            f" WHERE status = 'pending' AND kind IN ({marks})"
            " AND (locked_until IS NULL OR locked_until <= ?)",
            [key, error, *kinds, iso(now)],
        )

    def unpark(self, key: str, now: datetime) -> int:
        """Make the jobs parked under ``key`` runnable now (they keep their order)."""
        return self.db.execute(
            "UPDATE jobs SET status = 'pending', park_key = NULL, run_at = ?"
            " WHERE status = 'parked' AND park_key = ?",
            [iso(now), key],
        )

    def park_keys(self) -> dict[str, int]:
        """How many jobs are parked under each key."""
        rows = self.db.all(
            "SELECT park_key, count(*) AS n FROM jobs WHERE status = 'parked' GROUP BY park_key"
        )
        return {row["park_key"]: int(row["n"]) for row in rows}

    def rows(self, status: str | None = None) -> list[Row]:
        if status is None:
            return self.db.all("SELECT * FROM jobs ORDER BY id")
        return self.db.all("SELECT * FROM jobs WHERE status = ? ORDER BY id", [status])

    def summary(self) -> Row:
        """``pending`` (how many jobs wait), ``oldest_pending`` (the oldest one's created_at)
        and ``failed``, counted in the database: /healthz answers at once with a backlog."""
        row = self.db.one(
            "SELECT coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,"
            " min(CASE WHEN status = 'pending' THEN created_at END) AS oldest_pending,"
            " coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed"
            " FROM jobs WHERE status IN ('pending', 'failed')"
        )
        assert row is not None
        return {
            "pending": int(row["pending"]),
            "oldest_pending": row["oldest_pending"],
            "failed": int(row["failed"]),
        }

    def next_time(self) -> datetime | None:
        """When the next job becomes runnable (only queue heads can run)."""
        row = self.db.one(
            "SELECT run_at FROM jobs WHERE status = 'pending' AND head = 1 ORDER BY run_at LIMIT 1"
        )
        return parse_iso(row["run_at"]) if row else None

    def has_later(self, queue: str, job_id: int) -> bool:
        """Is a job added to ``queue`` after ``job_id`` still waiting (a newer keystroke)?"""
        row = self.db.one(
            "SELECT 1 AS x FROM jobs WHERE queue = ? AND id > ? AND status = 'pending' LIMIT 1",
            [queue, job_id],
        )
        return row is not None

    def latest_payload(self, kind: str, queue: str) -> Row | None:
        """The payload of the newest job of ``kind`` in ``queue`` (any status), if any."""
        row = self.db.one(
            "SELECT payload FROM jobs WHERE queue = ? AND kind = ? ORDER BY id DESC LIMIT 1",
            [queue, kind],
        )
        return None if row is None else dict(json.loads(row["payload"]))

    def has_pending(self, kind: str, field: str, value: Any) -> bool:
        """Is a job of ``kind`` whose payload has ``field == value`` still waiting?"""
        if self.db.backend == "sqlite":
            test = "CAST(json_extract(payload, '$.' || ?) AS TEXT) = ?"
        else:
            test = "(payload::jsonb ->> ?) = ?"
        row = self.db.one(
            f"SELECT 1 AS x FROM jobs WHERE kind = ? AND status = 'pending' AND {test} LIMIT 1",
            [kind, field, str(value)],
        )
        return row is not None
