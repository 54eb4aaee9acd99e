"""Running jobs in a process: ``smsbridge worker``, and the in-process workers of a SQLite web
process.

With SQLite, one process does everything: the web process runs the job workers itself, and
every process that serves or works takes a lock on the database (``<file>.lock``), so a
second one (another gunicorn worker, a ``smsbridge worker``) is refused at start with a clear
message instead of fighting over the file ("database is locked"). With PostgreSQL, web
processes store and enqueue, and any number of ``smsbridge worker`` processes claim jobs.

On SIGTERM (a deploy, a restart) a worker stops claiming, lets running jobs finish within a
grace period, gives back what it still holds (another process runs it at once, attempt not
charged) and exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import FrameType

from flask import Flask

from bot.services import Services
from bot.slack_health import auth_answer
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.jobs import JobRunner
from bridge.store import utcnow

log = logging.getLogger(__name__)

GRACE_SECONDS = 20.0  # PaaS platforms kill 30 s after SIGTERM (Heroku, Render)
HOUSEKEEPING_EVERY = 3600.0  # seconds between housekeeping runs in a worker


def uses_sqlite(config: Config) -> bool:
    return config.database_url.startswith("sqlite:")


class DatabaseInUse(Exception):
    """Another process already serves or works on this SQLite database."""


def in_use_message(path: str, pid: str) -> str:
    who = f"process {pid}" if pid else "another process"
    return (
        f"smsbridge: {who} is already using the SQLite database {path}. With SQLite one "
        "process does everything: run a single web process (it runs the job workers itself) "
        "and no `smsbridge worker`. To run more processes, set DATABASE_URL to a PostgreSQL "
        "database."
    )


@dataclass
class SqliteLock:
    """An exclusive lock on ``<database>.lock`` for as long as this process lives."""

    path: str
    fd: int = -1

    def acquire(self) -> SqliteLock:
        lock_path = f"{self.path}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise DatabaseInUse(in_use_message(self.path, holder)) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def hold_database(config: Config) -> SqliteLock | None:
    """Take the SQLite lock (None with PostgreSQL or an in-memory database)."""
    if not uses_sqlite(config) or config.sqlite_path == ":memory:":
        return None
    return SqliteLock(config.sqlite_path).acquire()


def migrate(services: Services) -> list[str]:
    """Apply pending migrations and make the stores table match configuration (the release
    step; with SQLite, the one process does it at start)."""
    applied = services.storage.migrate()
    services.storage.stores.sync(dict(services.config.stores))
    return applied


def starting(services: Services) -> None:
    """What a process that runs jobs does first: check Slack (token, scopes, channels: problems
    logged and alerted, fixed ones resumed) and tidy old rows."""
    services.health.check(auth_answer(services.identity))
    services.housekeeping()


class Worker:
    """Runs the job lanes until told to stop; housekeeping at start and then every
    ``housekeeping_every`` seconds (every worker process does it: deleting what is already
    deleted is harmless, and it never touches consent, see Store.housekeeping)."""

    def __init__(
        self,
        services: Services,
        grace: float = GRACE_SECONDS,
        housekeeping_every: float = HOUSEKEEPING_EVERY,
    ) -> None:
        self.services = services
        self.runner: JobRunner = services.runner
        self.grace = grace
        self.housekeeping_every = housekeeping_every
        self.stop = threading.Event()

    def start(self) -> None:
        starting(self.services)
        self.runner.start()
        threading.Thread(target=self._chores, name="smsbridge-chores", daemon=True).start()

    def _chores(self) -> None:
        while not self.stop.wait(self.housekeeping_every):
            try:
                self.services.housekeeping()
            except Exception:
                log.exception("housekeeping failed")

    def shutdown(self) -> list[int]:
        """Stop claiming; finish or give back what is running (see JobRunner.shutdown)."""
        self.stop.set()
        released = self.runner.shutdown(self.grace)
        log.info("worker stopped; %d job(s) given back", len(released))
        return released


def serve(runner: JobRunner, *, grace: float = GRACE_SECONDS, start: bool = True) -> int:
    """Run ``runner``'s lanes until SIGTERM or SIGINT, then shut it down cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if start:
        runner.start()
    while not stop.wait(1.0):
        pass
    runner.shutdown(grace)
    return 0


def run_worker(config: Config, *, grace: float = GRACE_SECONDS) -> int:
    """``smsbridge worker``: run the job lanes in this process until SIGTERM."""
    from bot.services import build_services

    try:
        lock = hold_database(config)
    except DatabaseInUse as exc:
        print(exc, file=sys.stderr, flush=True)
        return 3
    services = build_services(config)
    if lock is not None:
        migrate(services)
    worker = Worker(services, grace)
    worker.start()
    log.info("smsbridge worker running lanes %s", ", ".join(services.runner.lanes()))
    try:
        return serve(services.runner, grace=grace, start=False)
    finally:
        worker.stop.set()
        services.close()
        if lock is not None:
            lock.release()


def local_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    crm: CrmTextClient | None = None,
) -> Flask:
    """One process doing everything on a database it owns (tests, the demo, benchmarks):
    build, migrate, check Slack, and start the job workers unless ``config.run_workers`` is
    off. Takes no lock: the caller owns the database."""
    from bot.app import create_app
    from bot.services import build_services

    services = build_services(config, clock=clock, crm=crm)
    migrate(services)
    if config.run_workers:
        Worker(services).start()
    else:
        starting(services)
    return create_app(config, services=services)
