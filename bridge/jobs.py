"""A durable job queue on :class:`~bridge.storage.Storage`: worker threads, retries, backoff.

A job is written in the same transaction as the data it acts on, so a restart never loses
work: unfinished jobs are picked up again when the runner starts. Jobs that share a ``queue``
run one at a time, in order (a customer's messages reach their thread in order).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bridge.storage import Row, Storage, parse_iso, utcnow

log = logging.getLogger(__name__)

# A handler gets the job's payload plus ``_attempt`` (1 on the first run).
Handler = Callable[[dict[str, Any]], None]


class Retry(Exception):
    """Raised by a handler to run the job again after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class GiveUp(Exception):
    """Raised by a handler when retrying cannot help."""


def backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: 1, 2, 4 … capped at 5 minutes, with jitter."""
    base: float = min(2 ** (attempt - 1), 300)
    return base * random.uniform(0.8, 1.2)


class JobRunner:
    """Runs jobs from storage on a few daemon threads; ``drain()`` runs them inline (tests, CLI)."""

    def __init__(
        self,
        storage: Storage,
        handlers: dict[str, Handler],
        *,
        workers: int = 2,
        max_attempts: dict[str, int] | None = None,
        max_age: timedelta = timedelta(hours=24),
        patient: frozenset[str] = frozenset(),
        lease: timedelta = timedelta(minutes=5),
        on_give_up: Callable[[Row, str], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.storage = storage
        self.handlers = handlers
        self.workers = workers
        self.max_attempts = max_attempts or {}
        self.max_age = max_age
        self.patient = patient  # kinds retried for as long as it takes (nothing may be lost)
        self.lease = lease
        self.on_give_up = on_give_up
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"smsbridge-jobs-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def wake(self) -> None:
        """Tell idle workers that a job was added."""
        self._wake.set()

    def run_one(self) -> bool:
        """Claim and run one job; False when nothing is runnable now."""
        job = self.storage.claim_job(self.clock(), self.lease)
        if job is None:
            return False
        self._run(job)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Run runnable jobs until none is left; return how many ran."""
        ran = 0
        while ran < limit and self.run_one():
            ran += 1
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_one():
                    continue
            except Exception:  # the loop must survive a broken database moment
                log.exception("job loop error")
            self._wake.wait(self._idle_wait())
            self._wake.clear()

    def _idle_wait(self) -> float:
        upcoming = self.storage.next_job_time()
        if upcoming is None:
            return 1.0
        return max(0.01, min(1.0, (upcoming - self.clock()).total_seconds()))

    def _run(self, job: Row) -> None:
        handler = self.handlers.get(job["kind"])
        try:
            if handler is None:
                raise GiveUp(f"no handler for job kind {job['kind']!r}")
            handler({**job["payload"], "_attempt": job["attempts"]})
        except Retry as exc:
            self._retry_or_give_up(job, str(exc), exc.delay)
        except GiveUp as exc:
            self._give_up(job, str(exc))
        except Exception as exc:
            log.exception(
                "job %s (%s) failed on attempt %s", job["id"], job["kind"], job["attempts"]
            )
            self._retry_or_give_up(job, f"{type(exc).__name__}: {exc}", None)
        else:
            self.storage.finish_job(job["id"])

    def _retry_or_give_up(self, job: Row, error: str, delay: float | None) -> None:
        """Retry with backoff; give up after the kind's attempt limit (if it has one, e.g. a
        staff reply must be reported soon) or once the job is ``max_age`` old."""
        limit = self.max_attempts.get(job["kind"])
        too_old = (
            job["kind"] not in self.patient
            and self.clock() - parse_iso(job["created_at"]) > self.max_age
        )
        if too_old or (limit is not None and job["attempts"] >= limit):
            self._give_up(job, error)
            return
        wait = backoff(job["attempts"]) if delay is None else delay
        log.info("job %s (%s) retries in %.1fs: %s", job["id"], job["kind"], wait, error)
        self.storage.retry_job(job["id"], self.clock() + timedelta(seconds=wait), error)
        self._wake.set()

    def _give_up(self, job: Row, error: str) -> None:
        log.warning("job %s (%s) gave up: %s", job["id"], job["kind"], error)
        self.storage.finish_job(job["id"], "failed", error)
        if self.on_give_up is not None:
            try:
                self.on_give_up(job, error)
            except Exception:
                log.exception("on_give_up for job %s failed", job["id"])
