"""A durable job queue on :class:`~bridge.storage.Storage`: worker threads, retries, backoff.

A job is written in the same transaction as the data it acts on, so a restart never loses
work: unfinished jobs are picked up again when the runner starts. Jobs that share a ``queue``
run one at a time, in order (a customer's messages reach their thread in order).

A customer's jobs run in two lanes, each in order: ``slack`` (showing things in Slack) and
``crm`` (texting, consent pushes to CRM Text). The lane comes from the job kind (:data:`LANES`),
so a Slack post that cannot go out never holds back a staff reply or an opt-out.

A job that cannot run until a person fixes something outside smsbridge (a revoked Slack token,
the bot removed from a channel) raises :class:`Park`: it waits, with the jobs behind it in its
queue, until :meth:`JobRunner.unpark` resumes them in order.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from bridge.storage import Row, Storage, parse_iso, utcnow

log = logging.getLogger(__name__)

# A handler gets the job's payload plus ``_attempt`` (1 on the first run).
Handler = Callable[[dict[str, Any]], None]

SLACK, CRM = "slack", "crm"

# The lane of every job kind: the one place that says which work may not wait for which.
LANES: dict[str, str] = {
    # showing things in Slack
    "post_inbound": SLACK,
    "post_notice": SLACK,
    "thread_resolved": SLACK,
    "refresh_thread": SLACK,
    "mark_note": SLACK,
    "blast_progress": SLACK,
    "ops_alert": SLACK,
    "reply_feedback": SLACK,  # the reaction / note staff should see about a reply
    "post_outbound": SLACK,  # a /sms text shown in its thread
    "recover_reply": SLACK,  # a reply in a thread the database does not know: read Slack
    "show_decision": SLACK,  # a stop request's buttons give way to the staff decision
    "slack_recheck": SLACK,  # the Slack check again: Slack was busy, or a channel unarchived
    "command_answer": SLACK,  # what the person who used /sms (or its buttons) should see
    "blast_preview": SLACK,  # the blast form's preflight as the admin types (newest only)
    "blast_compose": SLACK,  # the blast form's full checks, then its confirmation
    # texting customers and telling CRM Text about consent
    "send_reply": CRM,
    "crm_opt_out": CRM,
    "crm_opt_in": CRM,
    "crm_status_check": CRM,
    "sms_command": CRM,
    "blast_sync": CRM,
    "blast_start": CRM,
    "blast_confirm": CRM,  # an admin's Send: launch the blast (durable)
    "blast_step": CRM,
}


def lane_of(kind: str) -> str:
    """The lane of a job kind; every kind must be listed in :data:`LANES`."""
    try:
        return LANES[kind]
    except KeyError:
        raise ValueError(f"job kind {kind!r} has no lane: add it to bridge.jobs.LANES") from None


def customer_queue(kind: str, customer_id: int) -> str:
    """The queue of a customer's job: one per customer and lane, each run in order."""
    return f"customer:{customer_id}:{lane_of(kind)}"


_current_job: ContextVar[tuple[int, str] | None] = ContextVar("smsbridge_current_job", default=None)


def current_job() -> int | None:
    """The id of the job running in this thread, if any (pacing keeps a slot per job)."""
    job = _current_job.get()
    return None if job is None else job[0]


def current_lane() -> str | None:
    """The lane of the job running in this thread, if any."""
    job = _current_job.get()
    return None if job is None else LANES.get(job[1])


@contextmanager
def running(job_id: int, kind: str = "") -> Iterator[None]:
    token = _current_job.set((job_id, kind))
    try:
        yield
    finally:
        _current_job.reset(token)


class Retry(Exception):
    """Raised by a handler to run the job again after ``delay`` seconds.

    ``free``: the attempt does not count (the job never reached the service: it waited for its
    turn, or the service said "slow down"), so it neither uses up a limited number of attempts
    nor makes the next run look like a retry after an unknown outcome.
    """

    def __init__(self, reason: str, delay: float | None = None, *, free: bool = False) -> None:
        super().__init__(reason)
        self.delay = delay
        self.free = free


class GiveUp(Exception):
    """Raised by a handler when retrying cannot help."""


class Park(GiveUp):
    """Raised by a handler when nothing can succeed until a person fixes ``key`` (e.g.
    ``slack:token``): the job waits, parked, with the jobs behind it in its queue.

    ``reason`` says what is wrong in plain words and ``fix`` what a person should do. A
    subclass of :class:`GiveUp`, so code that stops trying on GiveUp stops on Park too.
    """

    def __init__(self, reason: str, key: str, *, fix: str = "") -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason
        self.fix = fix


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
        on_park: Callable[[Row, Park], None] | None = None,
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
        self.on_park = on_park
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

    def unpark(self, key: str) -> int:
        """Resume the jobs parked under ``key``, in their order; return how many."""
        count = self.storage.unpark_jobs(key, self.clock())
        if count:
            log.info("resumed %d job(s) parked under %s", count, key)
            self._wake.set()
        return count

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
            with running(job["id"], job["kind"]):
                handler({**job["payload"], "_attempt": job["attempts"]})
        except Retry as exc:
            if exc.free:
                self._wait(job, str(exc), exc.delay or 1.0)
            else:
                self._retry_or_give_up(job, str(exc), exc.delay)
        except Park as exc:
            self._park(job, exc)
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

    def _wait(self, job: Row, reason: str, delay: float) -> None:
        """Run the job again after ``delay`` without counting this attempt."""
        log.debug("job %s (%s) waits %.1fs: %s", job["id"], job["kind"], delay, reason)
        self.storage.retry_job(
            job["id"], self.clock() + timedelta(seconds=delay), reason, refund=True
        )
        self._wake.set()

    def _park(self, job: Row, park: Park) -> None:
        """Keep the job (and its queue) waiting until ``unpark(park.key)``."""
        log.warning("job %s (%s) parked under %s: %s", job["id"], job["kind"], park.key, park)
        self.storage.park_job(job["id"], park.key, str(park))
        if self.on_park is not None:
            try:
                self.on_park(job, park)
            except Exception:
                log.exception("on_park for job %s failed", job["id"])

    def _give_up(self, job: Row, error: str) -> None:
        log.warning("job %s (%s) gave up: %s", job["id"], job["kind"], error)
        self.storage.finish_job(job["id"], "failed", error)
        if self.on_give_up is not None:
            try:
                self.on_give_up(job, error)
            except Exception:
                log.exception("on_give_up for job %s failed", job["id"])
