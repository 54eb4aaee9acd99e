"""CRM Text callbacks under load: ack times at a fixed request rate, on a fresh database, on
one holding a long history (1,000,000 messages), and with a job backlog (``/healthz`` too).

Used by ``python -m benchmarks.table``; asserts nothing.

The app runs in its own process (``python -m benchmarks.callbacks serve DATABASE_URL PORT``):
the real Flask app from ``bot.worker.local_app``, served by gunicorn as in production (one
process, gthread, 8 threads) on 127.0.0.1, talking to the fake Slack; the web process runs no
job workers, except with the backlog (the SQLite setup: one process does everything). The
load comes from this process: requests scheduled at a fixed rate (open loop), each one timed
from when it was due, so a server that falls behind shows in the numbers instead of slowing
the load down. A callback is the form CRM Text posts to
``/sms/inbound/<token>`` (the token in the path is how CRM Text's callbacks are authenticated).

The long history is written with bulk SQL (``generate_series`` on PostgreSQL, a recursive CTE
on SQLite), not through the app: N customers, each with an open thread and one recipient row of
a done blast sent yesterday, and M messages spread over them; callbacks then come from those
customers (the thread and blast lookups hit the big tables).
"""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

STORE, CHANNEL, TOKEN = "PIZZA", "CBENCH01", "bench-callback-token"
FIRST = 2_000_000  # customer x has the number 415 + (FIRST + x): a valid exchange


def phone_of(customer: int) -> str:
    """The CRM Text form (10 digits) of bulk customer ``customer``'s number."""
    return f"415{FIRST + customer}"


# -- the app, in its own process --------------------------------------------------------------


@contextmanager
def serving(database_url: str, run_workers: bool, *, serve: bool = True) -> Iterator[Any]:
    """The app on ``database_url``, talking to a fake Slack: served on 127.0.0.1 by a threaded
    test server (its URL), or (``serve`` off) the WSGI app itself for gunicorn."""
    from bot.app import services_of
    from bot.dev.fake_slack import FakeSlack
    from bot.dev.live import LiveServer
    from bot.worker import local_app
    from bridge.config import Config

    with FakeSlack() as slack:
        config = Config(
            slack_bot_token=slack.bot_token,
            slack_signing_secret="bench-signing-secret",
            slack_api_url=slack.api_url,
            crmtext_user="bench",
            crmtext_password="bench",
            crmtext_api_url="http://127.0.0.1:9/smapi/rest",
            stores={STORE: CHANNEL},
            callback_token=TOKEN,
            public_url="http://127.0.0.1",
            database_url=database_url,
            run_workers=run_workers,
        )
        app = local_app(config)
        if not serve:
            yield app
            return
        server = LiveServer(app)
        try:
            yield server.url
        finally:
            server.stop()
            services_of(app).close()


def serve(database_url: str, run_workers: bool, port: int) -> None:
    """Serve the app on ``database_url`` with gunicorn as in production (one process, gthread,
    8 threads; see gunicorn.conf.py) on 127.0.0.1:``port`` until SIGTERM."""
    from gunicorn.app.base import BaseApplication

    class Bench(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": 8,
                "keepalive": 5,
                "timeout": 120,
                "graceful_timeout": 5,
                "loglevel": "critical",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            import logging

            logging.disable(logging.WARNING)
            context = serving(database_url, run_workers, serve=False)
            return context.__enter__()  # lives as long as the worker process

    Bench().run()


class AppProcess:
    """The app served by gunicorn in a child process (its CPU is not the load generator's);
    ``startup``: seconds from starting the process to its first answer. ``in_process``: the
    app on a threaded test server in this process instead (the smoke test's tiny sizes)."""

    def __init__(
        self, database_url: str, *, run_workers: bool = False, in_process: bool = False
    ) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.here: AbstractContextManager[Any] | None = None
        began = time.perf_counter()
        if in_process:
            self.here = serving(database_url, run_workers)
            self.url = self.here.__enter__()
            self.startup = time.perf_counter() - began
            return
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.callbacks", "serve", database_url, str(port)]
            + (["--workers"] if run_workers else []),
            stdin=subprocess.DEVNULL,
        )
        self.process, self.url = process, f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while Connection(self.url).request("GET", "/livez") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the app process did not start")
            time.sleep(0.05)
        self.startup = time.perf_counter() - began

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.here is not None:
            self.here.__exit__(None, None, None)
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """Answer times (s, from when each request was due) and statuses of a load run."""

    times: list[float]
    statuses: list[int]
    rate: float

    def ms(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p99(self) -> float:
        return self.ms(0.99)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.statuses if s != 200)

    def cell(self) -> str:
        bad = f", {self.failed} not 200" if self.failed else ""
        return (
            f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms "
            f"({len(self.times)} at {self.rate:g}/s{bad})"
        )


def callback_form(n: int, customer: int) -> dict[str, str]:
    """The fields of CRM Text's callback for text ``n`` from bulk customer ``customer``."""
    return {
        "custID": str(7_000_000 + customer),
        "message": f"Is my order ready? ({n})",
        "keyword": STORE,
        "mobileNum": phone_of(customer),
        "optInStatus": "Opt-in",
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "subacct": "1",
        "custName": "",
        "msgID": f"{int(time.time() * 1000)}{n:07d}",
        "subacct_name": "Main St Pizza",
    }


class Connection:
    """One keep-alive HTTP/1.1 connection (``http.client``: far less client CPU per request
    than httpx, which matters when the load and the app share two cores)."""

    def __init__(self, url: str) -> None:
        self.host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        self.port = int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> int:
        body = urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            return 0

    def close(self) -> None:
        self.conn.close()


def load(
    url: str,
    request: Callable[[Connection, int], int],
    *,
    rate: float,
    count: int,
    senders: int = 24,
) -> Load:
    """``count`` requests at ``rate`` per second (open loop), from ``senders`` threads."""
    results: list[tuple[float, int]] = [(0.0, 0)] * count
    numbers = itertools.count()
    connections = [Connection(url) for _ in range(min(senders, count))]
    begin = time.perf_counter() + 0.05

    def send(connection: Connection) -> None:
        while (n := next(numbers)) < count:
            due = begin + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            status = request(connection, n)
            results[n] = (time.perf_counter() - due, status)

    threads = [threading.Thread(target=send, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    return Load([t for t, _ in results], [s for _, s in results], rate)


def callbacks(url: str, *, rate: float, count: int, customers: int, start: int = 0) -> Load:
    """Callbacks from ``customers`` bulk customers (round robin), after a short warm-up."""
    path = f"/sms/inbound/{TOKEN}"

    def post(connection: Connection, n: int) -> int:
        return connection.request(
            "POST", path, callback_form(start + n, (start + n) % customers + 1)
        )

    load(url, post, rate=rate, count=min(20, count))  # connections, caches, first queries
    return load(url, lambda c, n: post(c, n + 20), rate=rate, count=count)


def healthz(url: str, count: int) -> Load:
    """``count`` GET /healthz, one after another (timed from when each was sent)."""
    times, statuses = [], []
    connection = Connection(url)
    for _ in range(count):
        began = time.perf_counter()
        statuses.append(connection.request("GET", "/healthz"))
        times.append(time.perf_counter() - began)
    connection.close()
    return Load(times, statuses, 0)


# -- a database with a long history, built in bulk -----------------------------------------


def _series(backend: str, n: int) -> tuple[str, str]:
    """(the WITH clause, the FROM clause) giving x = 1..n."""
    if backend == "postgres":
        return "", f"generate_series(1, {int(n)}) AS g(x)"
    return (
        f"WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {int(n)})",
        "g",
    )


def build_history(database_url: str, customers: int, messages: int) -> dict[str, Any]:
    """Fill an empty migrated database: ``customers`` opted-in customers with an open thread
    each, one done blast sent to all of them yesterday, and ``messages`` messages."""
    from bridge.clock import iso
    from bridge.store import OPTED_IN, open_store

    began = time.perf_counter()
    store = open_store(database_url)
    store.migrate()
    store.stores.sync({STORE: CHANNEL})
    backend = store.backend
    now = datetime.now(UTC)
    day, two = iso(now - timedelta(days=1)), iso(now - timedelta(days=2))
    text = "'+1415' || (x + " + str(FIRST) + ")"
    with_c, from_c = _series(backend, customers)
    with_m, from_m = _series(backend, messages)
    with store.transaction():
        store.db.execute(
            f"{with_c} INSERT INTO customers (id, store, phone, name, crm_id, status, created_at,"
            " updated_at, consent_source, crm_synced, e164, area_code, state, zones)"
            f" SELECT x, ?, {text}, '', '' || (7000000 + x), ?, ?, ?, 'bench', 1, {text}, '415',"
            f" 'CA', 'America/Los_Angeles' FROM {from_c}",
            [STORE, OPTED_IN, two, two],
        )
        store.db.execute(
            f"{with_c} INSERT INTO threads (id, customer_id, channel_id, ts, opened_at,"
            " last_activity_at, thread_key, post_tried)"
            f" SELECT x, x, ?, '1700000000.' || x, ?, ?, 'bench:' || x, 0 FROM {from_c}",
            [CHANNEL, two, day],
        )
        store.db.execute(
            "INSERT INTO blasts (id, store, name, text, final_text, append_opt_out, mode, status,"
            " created_by, created_at, confirmed_at, started_at, finished_at, total, step_seq)"
            " VALUES (1, ?, 'bench', 'Sale', 'Sale. Reply STOP to opt out', 1, 'campaign',"
            " 'done', 'UADMIN', ?, ?, ?, ?, ?, 0)",
            [STORE, day, day, day, day, customers],
        )
        store.db.execute(
            f"{with_c} INSERT INTO blast_recipients (blast_id, customer_id, phone, status,"
            f" provider_id, attempted_at, finished_at) SELECT 1, x, {text}, 'sent',"
            f" 'b' || x, ?, ? FROM {from_c}",
            [day, day],
        )
        store.db.execute(
            f"{with_m} INSERT INTO messages (id, store, customer_id, thread_id, direction, kind,"
            " intent, text, media, provider_id, provider_time, slack_ts, status, created_at,"
            " message_key, post_tried)"
            f" SELECT x, ?, (x % {int(customers)}) + 1, (x % {int(customers)}) + 1,"
            " CASE WHEN x % 3 = 0 THEN 'out' ELSE 'in' END, 'sms', '', 'Order status please',"
            " '[]', 'h' || x, ?, '1700000001.' || x, 'posted', ?, 'bench:' || x, 0"
            f" FROM {from_m}",
            [STORE, two, two],
        )
    if backend == "postgres":
        for table in ("customers", "threads", "blasts", "messages"):
            store.db.one(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
    store.db.execute("ANALYZE")
    counted = store.db.one("SELECT count(*) AS n FROM messages")
    store.close()
    return {"seconds": time.perf_counter() - began, "messages": counted["n"] if counted else 0}


def fill_backlog(database_url: str, jobs: int) -> float:
    """``jobs`` jobs waiting (heads in backoff for an hour, the rest behind them); seconds."""
    from benchmarks.queue_claim import fill
    from bridge.store import open_store

    began = time.perf_counter()
    store = open_store(database_url)
    store.migrate()
    store.stores.sync({STORE: CHANNEL})
    fill(store, jobs, now=datetime.now(UTC), runnable=0)
    store.db.execute("ANALYZE")
    store.close()
    return time.perf_counter() - began


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], "--workers" in sys.argv[4:], int(sys.argv[3]))
    elif sys.argv[1:2] == ["build"]:
        print(json.dumps(build_history(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        raise SystemExit(
            "usage: python -m benchmarks.callbacks serve DATABASE_URL PORT [--workers]"
            " | build DATABASE_URL CUSTOMERS MESSAGES"
        )
