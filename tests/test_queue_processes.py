"""Two OS processes claiming from one queue table (a real PostgreSQL, and one SQLite file):
each queue's jobs run in order, never two at once, and no job runs twice."""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.store import open_store
from tests import pg_server

QUEUES, PER_QUEUE = 6, 15


def _work(url: str, name: str) -> None:
    """A worker process: claim, record start and end, finish; stop when nothing is left."""
    store = open_store(url)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 1.5:
        job = store.jobs.claim(datetime.now(UTC), timedelta(minutes=5))
        if job is None:
            time.sleep(0.005)
            continue
        idle_since = time.monotonic()
        started = time.time()
        time.sleep(random.uniform(0, 0.01))
        store.db.execute(
            "INSERT INTO test_runs (job_id, queue, seq, worker, started, ended)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [job.id, job.queue, job.payload["seq"], name, started, time.time()],
        )
        store.jobs.finish(job.id)
    store.close()


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_processes_keep_each_queue_in_order_and_run_each_job_once(
    backend: str, tmp_path: Path
) -> None:
    url = pg_server.fresh_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'q.db'}"
    store = open_store(url)
    store.migrate()
    store.db.execute(
        "CREATE TABLE test_runs (job_id BIGINT, queue TEXT, seq INTEGER, worker TEXT,"
        " started DOUBLE PRECISION, ended DOUBLE PRECISION)"
    )
    now = datetime.now(UTC) - timedelta(seconds=1)
    for q in range(QUEUES):  # a burst from each customer in turn
        for seq in range(PER_QUEUE):
            store.jobs.enqueue("post_inbound", {"seq": seq}, queue=f"customer:{q}:slack", now=now)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_work, args=(url, f"w{n}")) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    runs = store.db.all("SELECT * FROM test_runs ORDER BY started")
    assert sorted(r["job_id"] for r in runs) == [j["id"] for j in store.jobs.rows()]  # once each
    assert {j["status"] for j in store.jobs.rows()} == {"done"}
    assert {r["worker"] for r in runs} == {"w0", "w1"}  # both did work
    for q in range(QUEUES):
        mine = [r for r in runs if r["queue"] == f"customer:{q}:slack"]
        assert [r["seq"] for r in mine] == list(range(PER_QUEUE))  # in order
        assert all(a["ended"] <= b["started"] for a, b in zip(mine, mine[1:], strict=False))
    store.close()
