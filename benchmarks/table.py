"""Issue 8's benchmark table on SQLite and PostgreSQL: one Markdown row per metric.

    python -m benchmarks.table --backend both --scale full    # the table (about 11 min)
    python -m benchmarks.table --backend sqlite               # quick scale, about a minute
    python -m benchmarks.table --backend postgres --postgres-url postgresql://…/postgres

PostgreSQL: without ``--postgres-url`` a throwaway server is started (initdb into a temp dir,
``tests/pg_server.py``) and removed at the end; with it, the benchmark creates its databases
there (the URL's user must be allowed to) and drops them at the end. Every measurement gets
a fresh database. Prints progress to stderr and the table to stdout; asserts nothing.

``--scale quick`` runs every measurement at smaller sizes (the sizes are in each row) so the
harness can be tried in about a minute per backend; ``--scale full`` is what issue 8 asks for.
What each row measures is described in the module it comes from: ``benchmarks/callbacks.py``
(callback acks, ``/healthz``, the 1,000,000-message database, the job backlog),
``slack_burst.py`` (the 300-text drain), ``blast_scale.py`` (preflight, sync and blast steps),
``blast_throughput.py``, ``lanes.py`` (staff replies during a drain, posting across channels).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import blast_scale, blast_throughput, callbacks, lanes, slack_burst

BACKENDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


@dataclass(frozen=True)
class Scale:
    rate: float = 100.0  # callbacks per second
    callbacks: int = 1000  # callbacks measured per run
    drain_texts: int = 300
    drain_rate: float = 10.0  # Slack posts/s per channel in the drain (scaled from 1)
    sizes: tuple[int, ...] = (10_000, 100_000)  # customers for preflight and sync
    per_store: int = 20  # blast recipients per store (3 stores)
    latency: float = 0.2  # seconds per CRM Text call in the throughput run
    backlog: int = 100_000  # jobs waiting
    healthz: int = 50
    customers: int = 100_000  # customers in the long-history database
    messages: int = 1_000_000
    reply_texts: int = 300
    replies: int = 10
    channels: int = 50
    per_channel: int = 10
    slack_latency: float = 0.1
    in_process: bool = False  # the app and the blast_scale children in this process


SCALES = {
    "full": Scale(),
    "quick": Scale(
        callbacks=300,
        drain_texts=100,
        drain_rate=20.0,
        sizes=(1_000, 10_000),
        per_store=5,
        backlog=10_000,
        healthz=20,
        customers=10_000,
        messages=100_000,
        reply_texts=100,
        replies=3,
        per_channel=3,
    ),
    # the smoke test's: every measurement runs, nothing is big enough to mean anything
    "tiny": Scale(
        rate=50.0,
        callbacks=10,
        drain_texts=6,
        drain_rate=50.0,
        sizes=(20,),
        per_store=1,
        latency=0.0,
        backlog=100,
        healthz=3,
        customers=50,
        messages=200,
        reply_texts=4,
        replies=1,
        channels=3,
        per_channel=2,
        slack_latency=0.0,
        in_process=True,
    ),
}


@dataclass
class Row:
    metric: str
    target: str
    cells: dict[str, str] = field(default_factory=dict)


class Table:
    """Rows in the order first seen; a cell per backend."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def put(self, backend: str, metric: str, value: str, target: str = "") -> None:
        row = self.rows.setdefault(metric, Row(metric, target))
        row.cells[backend] = value
        print(f"[{backend}] {metric}: {value}", file=sys.stderr, flush=True)

    def markdown(self, backends: list[str]) -> str:
        heads = ["metric", *(BACKENDS[b] for b in backends), "target"]
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for row in self.rows.values():
            cells = [row.cells.get(b, "not run") for b in backends]
            lines.append("| " + " | ".join([row.metric, *cells, row.target or "—"]) + " |")
        return "\n".join(lines)


class Databases:
    """Fresh empty databases of one backend, each a URL: files in ``folder`` (SQLite), or
    databases created on the PostgreSQL server ``server`` and dropped by :meth:`close`."""

    def __init__(self, backend: str, folder: Path, server: str = "") -> None:
        self.backend, self.folder, self.server = backend, folder, server
        self.made: list[str] = []

    def new(self) -> str:
        name = f"bench_{os.getpid()}_{len(self.made) + 1}"
        self.made.append(name)
        if self.backend == "sqlite":
            return f"sqlite:///{self.folder / f'{name}.db'}"
        self._admin(f'CREATE DATABASE "{name}"')
        return f"{self.server.rpartition('/')[0]}/{name}"

    def close(self) -> None:
        if self.backend == "postgres":
            for name in self.made:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type,unused-ignore]


def n(value: int) -> str:
    return f"{value:,}"


# -- the measurements: each puts its rows ---------------------------------------------------


def measure_callbacks(t: Table, b: str, db: Databases, s: Scale) -> None:
    with callbacks.AppProcess(db.new(), in_process=s.in_process) as app:
        load = callbacks.callbacks(app.url, rate=s.rate, count=s.callbacks, customers=500)
    t.put(b, f"callback ack at {s.rate:g} req/s, empty database", load.cell())


def measure_drain(t: Table, b: str, db: Databases, s: Scale) -> None:
    result = slack_burst.run(
        texts=s.drain_texts,
        customers=max(1, s.drain_texts // 5),
        rate=s.drain_rate,
        fake_burst=4,
        burst=3,
        paced=True,
        database_url=db.new(),
    )
    share = result.rate_limited / result.post_calls if result.post_calls else 0.0
    t.put(
        b,
        f"{s.drain_texts}-text drain into one channel (Slack {s.drain_rate:g} msg/s)",
        f"{result.drain_seconds / result.ideal_seconds:.2f} x ideal ({result.drain_seconds:.1f}"
        f" s), 429s {share:.1%}, in order: {'yes' if result.in_order else 'NO'}, lost"
        f" {result.lost}, doubled {result.duplicates}"
        + (f", NOT POSTED {result.missing}" if result.missing else ""),
        "≤ 1 % 429s; in order; none lost",
    )


def measure_blast_scale(t: Table, b: str, db: Databases, s: Scale) -> None:
    pre, sync, acks = blast_scale.measure(list(s.sizes), db.new, in_process=s.in_process)
    small, big = min(s.sizes), max(s.sizes)
    for size in s.sizes:
        p, y = pre[size], sync[size]
        t.put(
            b,
            f"preflight, {n(size)} customers",
            f"{p['seconds']:.3f} s (CPU {p['cpu']:.3f} s), peak RSS {p['peak']:.0f} MB"
            f" (+{p['rise']:.1f} MB)",
            "< 0.5 s at 100,000" if size == big else "",
        )
        t.put(
            b,
            f"audience sync, {n(size)} customers",
            f"{y['seconds']:.2f} s (simulator {y['crm_wait']:.2f} s, app CPU {y['cpu']:.2f} s),"
            f" peak RSS {y['peak']:.0f} MB (+{y['rise']:.1f} MB)",
        )
    if big != small:

        def ratio(a: float, c: float) -> str:
            return f"{c / a:.1f}" if a > 0 else "—"

        grow = big // small
        t.put(
            b,
            f"growth {n(small)} → {n(big)} customers ({grow}x)",
            f"preflight time x{ratio(pre[small]['seconds'], pre[big]['seconds'])},"
            f" +RSS x{ratio(pre[small]['rise'], pre[big]['rise'])}; sync time"
            f" x{ratio(sync[small]['seconds'], sync[big]['seconds'])}, app CPU"
            f" x{ratio(sync[small]['cpu'], sync[big]['cpu'])}, +RSS"
            f" x{ratio(sync[small]['rise'], sync[big]['rise'])}",
            f"time ≤ {grow}x (linear); sync memory flat",
        )
    for step, done in (
        ("/sms-blast", "/sms-blast done"),
        ("keystroke", "keystroke done"),
        ("compose submit", "compose done"),
        ("confirm submit", "confirm done"),
    ):
        t.put(
            b,
            f"blast step ack at {n(big)} customers: {step}",
            f"{acks[step] * 1000:.0f} ms (work done {acks[done]:.2f} s later)",
            "ack < 1 s",
        )


def measure_throughput(t: Table, b: str, db: Databases, s: Scale) -> None:
    for workers in (1, 3):
        metric = (
            f"blast throughput, 3 stores × {s.per_store}, CRM Text {s.latency * 1000:.0f} ms"
            f"/call, {workers} worker{'s' if workers > 1 else ''}"
        )
        if b == "sqlite" and workers > 1:
            t.put(
                b, metric, "n/a: with SQLite one process runs the jobs", "3 texts/s (1/s per blast)"
            )
            continue
        result = blast_throughput.run(
            db.new(), workers=workers, per_store=s.per_store, latency=s.latency
        )
        t.put(b, metric, result.cell(), "3 texts/s (1/s per blast)")


def measure_backlog(t: Table, b: str, db: Databases, s: Scale) -> None:
    url = db.new()
    callbacks.fill_backlog(url, s.backlog)
    # PostgreSQL as deployed: web processes store and enqueue, `smsbridge worker` runs the jobs.
    workers = b == "sqlite"
    with callbacks.AppProcess(url, run_workers=workers, in_process=s.in_process) as app:
        t.put(
            b,
            f"start-up with {n(s.backlog)} jobs waiting (process start to first answer)",
            f"{app.startup:.2f} s",
        )
        load = callbacks.callbacks(app.url, rate=s.rate, count=s.callbacks // 2, customers=500)
        t.put(b, f"callback ack at {s.rate:g} req/s, {n(s.backlog)} jobs waiting", load.cell())
        health = callbacks.healthz(app.url, s.healthz)
        t.put(
            b,
            f"/healthz, {n(s.backlog)} jobs waiting",
            f"p50 {health.p50:.1f} ms, max {max(health.times) * 1000:.1f} ms ({len(health.times)}"
            " in a row)" + (f", {health.failed} not 200" if health.failed else ""),
        )


def measure_history(t: Table, b: str, db: Databases, s: Scale) -> None:
    url = db.new()
    built = (
        callbacks.build_history(url, s.customers, s.messages)
        if s.in_process
        else _in_child("benchmarks.callbacks", "build", url, str(s.customers), str(s.messages))
    )
    print(
        f"[{b}] built {n(built['messages'])} messages in {built['seconds']:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    with callbacks.AppProcess(url, in_process=s.in_process) as app:
        load = callbacks.callbacks(app.url, rate=s.rate, count=s.callbacks, customers=s.customers)
    t.put(
        b,
        f"callback ack at {s.rate:g} req/s, {n(s.messages)} messages, {n(s.customers)} customers"
        " and threads, a blast to all",
        load.cell(),
        "p99 < 25 ms",
    )


def measure_lanes(t: Table, b: str, db: Databases, s: Scale) -> None:
    reply = lanes.staff_reply_latency(
        s.reply_texts, s.drain_rate, s.slack_latency, replies=s.replies, database_url=db.new()
    )
    t.put(
        b,
        f"staff reply during a {s.reply_texts}-text drain (Slack {s.drain_rate:g} msg/s,"
        f" {s.slack_latency * 1000:.0f} ms/call)",
        f"p50 {_median(reply.waits) * 1000:.0f} ms, max {max(reply.waits) * 1000:.0f} ms"
        f" ({len(reply.waits)} replies; {reply.waiting} texts still waiting)",
        "< 1 s",
    )
    posting = lanes.posting_across_channels(
        s.channels, s.per_channel, s.slack_latency, database_url=db.new()
    )
    t.put(
        b,
        f"posting across {s.channels} channels ÷ {s.channels} msg/s ({s.per_channel} texts each,"
        f" {s.slack_latency * 1000:.0f} ms/call)",
        f"{posting.share:.2f} ({posting.posted} posts in {posting.elapsed:.1f} s,"
        f" {posting.rate_limited} answered 429)",
        "≥ 0.9",
    )


MEASUREMENTS: dict[str, Callable[[Table, str, Databases, Scale], None]] = {
    "callbacks": measure_callbacks,
    "drain": measure_drain,
    "blast_scale": measure_blast_scale,
    "throughput": measure_throughput,
    "backlog": measure_backlog,
    "history": measure_history,
    "lanes": measure_lanes,
}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _in_child(module: str, *args: str) -> dict[str, Any]:
    import json

    done = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def postgres(url: str) -> Iterator[str]:
    """The server to benchmark on: ``url``, or a throwaway one started now."""
    if url:
        yield url
        return
    from tests import pg_server

    started, folder = pg_server.start()
    try:
        yield started
    finally:
        pg_server.stop(folder)


def run(
    backends: list[str], scale: Scale, *, only: list[str] | None = None, postgres_url: str = ""
) -> Table:
    """Every measurement on every backend; a failed one shows as an error in its row."""
    table = Table()
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, _server(backend, postgres_url) as server:
            databases = Databases(backend, Path(tmp), server)
            try:
                for name, measure in MEASUREMENTS.items():
                    if only and name not in only:
                        continue
                    began = time.monotonic()
                    try:
                        measure(table, backend, databases, scale)
                    except Exception as exc:  # noqa: BLE001  # its row says what broke
                        traceback.print_exc()
                        table.put(backend, f"{name} (failed)", f"error: {exc!s:.200}")
                    print(
                        f"[{backend}] {name} took {time.monotonic() - began:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
            finally:
                databases.close()
    return table


@contextmanager
def _server(backend: str, url: str) -> Iterator[str]:
    if backend != "postgres":
        yield ""
        return
    with postgres(url) as server:
        yield server


def _machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f};"
        f" Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--scale", choices=list(SCALES), default="quick")
    parser.add_argument("--postgres-url", default="", help="a server to create databases on")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    only = [o.strip() for o in args.only.split(",") if o.strip()] or None
    began = time.monotonic()
    started = datetime.now(UTC)
    before = _machine()
    table = run(backends, SCALES[args.scale], only=only, postgres_url=args.postgres_url)
    print(
        f"smsbridge benchmarks, scale {args.scale}, started {started:%Y-%m-%d %H:%M} UTC,"
        f" took {time.monotonic() - began:.0f} s\nmachine at start: {before}\n"
        f"machine at end: {_machine()}\n"
    )
    print(table.markdown(backends))


if __name__ == "__main__":
    main()
