"""Slack problems (what is wrong, since when, how to fix it), the pacing of Slack posts, call
budgets and the blast form's view hashes: shared by every process using this database."""

from __future__ import annotations

from datetime import datetime, timedelta

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

    # -- call budgets ---------------------------------------------------------------------

    def take_budget(self, name: str, now: float, per_minute: int) -> float:
        """Use one call of the budget ``name`` (a token bucket of ``per_minute`` calls a
        minute, shared by every process): 0.0 when allowed, else the seconds to wait."""
        rate = per_minute / 60.0
        with self.db.transaction():
            self.db.lock(f"budget {name}")
            row = self.db.one("SELECT tokens, at FROM call_budgets WHERE name = ?", [name])
            tokens = float(per_minute)
            if row is not None:
                elapsed = max(0.0, now - float(row["at"]))
                tokens = min(tokens, float(row["tokens"]) + elapsed * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self.db.execute(
                "INSERT INTO call_budgets (name, tokens, at) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                [name, tokens, now],
            )
            return wait

    # -- view hashes ----------------------------------------------------------------------

    def remember_view_hash(self, old: str, new: str, now: datetime) -> None:
        """Our own views.update turned a view's hash ``old`` into ``new``."""
        self.db.execute(
            "INSERT INTO view_hashes (hash, next_hash, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (hash) DO UPDATE SET next_hash = excluded.next_hash",
            [old, new, iso(now)],
        )

    def newest_view_hash(self, hash_: str) -> str:
        """The hash the view has after our own updates since ``hash_`` (``hash_`` if none)."""
        seen = {hash_}
        while True:
            row = self.db.one("SELECT next_hash FROM view_hashes WHERE hash = ?", [hash_])
            if row is None or row["next_hash"] in seen:
                return hash_
            hash_ = str(row["next_hash"])
            seen.add(hash_)

    def forget_view_hashes(self, before: datetime) -> int:
        """Drop hashes recorded before ``before`` (a modal lives for minutes, not days)."""
        return self.db.execute("DELETE FROM view_hashes WHERE created_at < ?", [iso(before)])


VIEW_HASHES_KEPT = timedelta(days=1)
