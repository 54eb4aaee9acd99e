"""Slack problems (what is wrong, since when, how to fix it) and the pacing of Slack posts,
shared by every process using this database."""

from __future__ import annotations

from datetime import datetime

from bridge.clock import iso
from bridge.store.db import Database, Row, greatest


class SlackState:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- problems -------------------------------------------------------------------------

    def open_problem(self, key: str, problem: str, fix: str, now: datetime) -> bool:
        """Record a problem unless one is already open under ``key``; True when it is new."""
        changed = self.db.execute(
            "INSERT INTO slack_problems (key, problem, fix, since, resolved_at)"
            " VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
            [key, problem, fix, iso(now)],
        )
        return changed == 1

    def resolve_problem(self, key: str, now: datetime) -> Row | None:
        """Close the open problem under ``key``; return it, or None if none was open."""
        return self.db.one(
            "UPDATE slack_problems SET resolved_at = ? WHERE key = ? AND resolved_at IS NULL"
            " RETURNING *",
            [iso(now), key],
        )

    def open_problems(self) -> list[Row]:
        return self.db.all("SELECT * FROM slack_problems WHERE resolved_at IS NULL ORDER BY id")

    # -- pacing ---------------------------------------------------------------------------

    def reserve_slot(
        self, channel: str, job_id: int | None, now: float, interval: float, burst: int
    ) -> float:
        """The time (epoch seconds) at which a post to ``channel`` may go, keeping posts
        ``interval`` apart after a burst of ``burst`` (a token bucket, as GCRA).

        The slot is taken atomically in one statement, so processes sharing the database never
        get the same one. A job keeps its slot when it waits for it and runs again.
        """
        if job_id is not None:
            held = self.db.one(
                "SELECT at FROM slack_slots WHERE channel = ? AND job_id = ?", [channel, job_id]
            )
            if held is not None and float(held["at"]) > now - 60:
                return float(held["at"])  # a stale slot (the job failed meanwhile) is void
        tolerance = max(burst - 1, 0) * interval
        most = greatest(self.db)
        with self.db.transaction():
            row = self.db.one(
                "INSERT INTO slack_pacing (channel, tat) VALUES (?, ?) ON CONFLICT (channel)"
                f" DO UPDATE SET tat = {most}(slack_pacing.tat, excluded.tat - ?) + ?"
                " RETURNING tat",
                [channel, now + interval, interval, interval],
            )
            assert row is not None
            at = max(now, float(row["tat"]) - interval - tolerance)
            if job_id is not None:
                self.db.execute(
                    "INSERT INTO slack_slots (channel, job_id, at) VALUES (?, ?, ?)"
                    " ON CONFLICT (channel, job_id) DO UPDATE SET at = excluded.at",
                    [channel, job_id, at],
                )
                self.db.execute("DELETE FROM slack_slots WHERE at < ?", [now - 3600])
            return at

    def release_slot(self, channel: str, job_id: int) -> None:
        """The job used its slot (or gave it back)."""
        self.db.execute(
            "DELETE FROM slack_slots WHERE channel = ? AND job_id = ?", [channel, job_id]
        )

    def hold_channel(self, channel: str, until: float, interval: float, burst: int) -> None:
        """Slack said "slow down" for ``channel``: no slot before ``until``, then one per
        ``interval`` (the burst allowance refills from there)."""
        tat = until + max(burst - 1, 0) * interval
        self.db.execute(
            "INSERT INTO slack_pacing (channel, tat) VALUES (?, ?) ON CONFLICT (channel)"
            f" DO UPDATE SET tat = {greatest(self.db)}(slack_pacing.tat, excluded.tat)",
            [channel, tat],
        )
