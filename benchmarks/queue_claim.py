"""What claiming a job costs with 10 and with 100,000 jobs waiting, on both backends.

``python -m benchmarks.queue_claim`` (prints, asserts nothing; starts a throwaway PostgreSQL
unless SMSBRIDGE_TEST_POSTGRES_URL is set). The backlog is what an hour of Slack outage leaves:
most queue heads waiting in backoff, the rest of each queue behind its head; 200 runnable
heads in other queues are claimed and finished one by one.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.clock import iso
from bridge.store import Store, open_store
from tests import pg_server

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
PER_QUEUE = 10


def fill(store: Store, waiting: int, *, now: datetime = NOW, runnable: int = 200) -> None:
    """``waiting`` jobs in queues of PER_QUEUE, each head in backoff for an hour after ``now``,
    and ``runnable`` jobs ready to run (``send_reply`` heads of their own queues)."""
    rows = []
    for n in range(waiting):
        queue, position = divmod(n, PER_QUEUE)
        rows.append(
            (
                "post_inbound",
                "{}",
                f"customer:{queue}:slack",
                "pending",
                # the head retries in an hour; the jobs behind it were due long ago
                iso(now + (timedelta(hours=1) if position == 0 else -timedelta(hours=1))),
                iso(now),
                "slack",
                1 if position == 0 else 0,
            )
        )
    with store.transaction():
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            store.db.execute(
                "INSERT INTO jobs (kind, payload, queue, status, run_at, created_at, lane, head,"
                " attempts) VALUES " + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, 0)" for _ in chunk),
                [v for row in chunk for v in row],
            )
    for n in range(runnable):
        store.jobs.enqueue("send_reply", {}, queue=f"runnable:{n}", now=now)


def claim_times(store: Store) -> list[float]:
    times = []
    while True:
        began = time.perf_counter()
        job = store.jobs.claim(NOW, timedelta(minutes=5))
        times.append(time.perf_counter() - began)
        if job is None:
            return times
        store.jobs.finish(job.id)


def run(backend: str, waiting: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = (
            f"sqlite:///{Path(tmp) / 'q.db'}" if backend == "sqlite" else pg_server.fresh_database()
        )
        store = open_store(url)
        store.migrate()
        fill(store, waiting)
        if backend == "postgres":
            store.db.execute("ANALYZE jobs")
        times = claim_times(store)
        store.close()
    ms = sorted(t * 1000 for t in times)
    print(
        f"{backend:8} {waiting:>7,} waiting: claim p50 {statistics.median(ms):.2f} ms,"
        f" p99 {ms[int(len(ms) * 0.99)]:.2f} ms ({len(ms)} claims)"
    )


def main() -> None:
    for backend in ("sqlite", "postgres"):
        for waiting in (10, 100_000):
            run(backend, waiting)


if __name__ == "__main__":
    main()
