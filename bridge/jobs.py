"""A durable job queue on :class:`~bridge.store.Store`: job declarations, lane pools,
leases, retries, backoff, and a clean stop.

A job is written in the same transaction as the data it acts on, so a restart never loses
work: unfinished jobs are picked up again when a runner starts. Jobs that share a ``queue``
run one at a time, in order (a customer's messages reach their thread in order).

Each kind of job is declared once, as a :class:`Job`: its handler, its limits (attempts,
patience, how many dead workers it may take down) and who is told when it gives up. Its lane
is a fact of the kind (:data:`LANES`, which enqueuers in ``bridge/`` need before any handler
exists). Lanes never wait for each other: each has its own pool of worker threads claiming only
that lane's jobs, so a Slack backlog never holds back a staff reply or an opt-out, slow picture
downloads never hold back texts, and a blast never holds back either.

A running job's lease is renewed while it runs (a heartbeat), so a lease that runs out means its
worker died; the claim that finds it so counts it (``lost``), and a job that keeps killing its
worker gives up at claim time after :attr:`Job.max_lost` tries and is reported. Attempts are
counted when a job is claimed. :meth:`JobRunner.shutdown` (SIGTERM) stops claiming, lets running
jobs finish within a grace period and gives back the rest at once (attempt not charged).

A job that cannot run until a person fixes something outside smsbridge (a revoked Slack token,
the bot removed from a channel) raises :class:`Park`: it waits, with the jobs behind it in its
queue, until :meth:`JobRunner.unpark` resumes them in order.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bridge.store import ClaimedJob, Store, parse_iso, utcnow

log = logging.getLogger(__name__)

# A handler gets the job's payload plus ``_attempt`` (1 on the first run).
Handler = Callable[[dict[str, Any]], None]
# Told when a job will not be tried again: the job as claimed and why.
GiveUpHandler = Callable[[ClaimedJob, str], None]

SLACK, CRM, MEDIA, BLAST = "slack", "crm", "media", "blast"

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
    "offer_opt_in": SLACK,  # a first texter's thread: not opted in, the opt-in request button
    # texting customers and telling CRM Text about consent
    "send_reply": CRM,
    "crm_opt_out": CRM,
    "crm_opt_in": CRM,
    "crm_status_check": CRM,
    "sms_command": CRM,
    "held_expire": CRM,  # a reply held for a customer who never opted in: report it not sent
    # downloading a customer's MMS picture and sharing it in the thread (slow senders)
    "share_picture": MEDIA,
    # store-wide blasts: the audience sync and the sending
    "blast_sync": BLAST,
    "blast_start": BLAST,
    "blast_confirm": BLAST,  # an admin's Send: launch the blast (durable)
    "blast_step": BLAST,
}

# Worker threads per lane in a process that runs jobs. Posting to different channels runs in
# parallel (a customer's posts stay in order: their queue runs one job at a time).
POOLS: dict[str, int] = {SLACK: 8, CRM: 4, MEDIA: 2, BLAST: 2}

# Seconds between looks at a lane whose due jobs all wait behind running ones.
BLOCKED_POLL = 0.25

# A job whose worker died this many times while running it is not tried again.
MAX_LOST = 3


def kinds_in(lanes: Collection[str]) -> list[str]:
    """The job kinds of ``lanes``."""
    return sorted(kind for kind, lane in LANES.items() if lane in lanes)


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


@dataclass(frozen=True)
class Job:
    """One kind of job, declared once: what runs it and its limits.

    ``max_attempts``: give up after this many attempts (a staff reply must be reported soon);
    None: retry with backoff until the job is the runner's ``max_age`` old, or for ever when
    ``patient`` (nothing may be lost). ``max_lost``: give up (at claim time) once the worker
    running it has died this many times. ``on_give_up``: who is told (else the runner's
    default report).
    """

    kind: str
    handler: Handler
    max_attempts: int | None = None
    patient: bool = False
    max_lost: int = MAX_LOST
    on_give_up: GiveUpHandler | None = None

    @property
    def lane(self) -> str:
        return lane_of(self.kind)


def lost_worker(lost: int) -> str:
    """Why a job that keeps killing its worker is not tried again."""
    return (
        f"the worker running this job stopped before it finished, {lost} times "
        "(killed, or out of memory?): not trying again"
    )


class JobRunner:
    """Runs jobs from storage: a pool of threads per lane (``start``), or inline (``drain``:
    tests, the CLI). ``shutdown`` stops it cleanly (SIGTERM)."""

    def __init__(
        self,
        storage: Store,
        jobs: Iterable[Job],
        *,
        pools: Mapping[str, int] | None = None,
        max_age: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(minutes=1),
        on_give_up: GiveUpHandler | None = None,
        on_park: Callable[[ClaimedJob, Park], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.storage = storage
        self.jobs: dict[str, Job] = {}
        for job in jobs:
            if job.kind in self.jobs:
                raise ValueError(f"job kind {job.kind!r} is declared twice")
            lane_of(job.kind)  # every kind has a lane
            self.jobs[job.kind] = job
        self.pools = dict(POOLS if pools is None else pools)
        self.max_age = max_age
        self.lease = lease
        self.on_give_up = on_give_up
        self.on_park = on_park
        self.clock = clock
        self._wake = {lane: threading.Event() for lane in set(LANES.values())}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: dict[int, threading.Thread] = {}  # jobs this process is running
        self._held_lock = threading.Lock()

    @property
    def handlers(self) -> dict[str, Handler]:
        return {kind: job.handler for kind, job in self.jobs.items()}

    def lanes(self) -> list[str]:
        """The lanes this runner has handlers for."""
        return sorted({job.lane for job in self.jobs.values()})

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start each lane's pool, and the heartbeat that renews the leases of running jobs."""
        self._stop.clear()
        for lane in self.lanes():
            for n in range(self.pools.get(lane, 1)):
                self._spawn(f"smsbridge-{lane}-{n}", self._loop, lane)
        self._spawn("smsbridge-heartbeat", self._heartbeat)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self.shutdown(timeout)

    def shutdown(self, grace: float = 20.0) -> list[int]:
        """Stop claiming, let running jobs finish for up to ``grace`` seconds, then give the
        rest back at once (another worker runs them now, attempt not charged). Returns the ids
        given back."""
        self._stop.set()
        self.wake()
        deadline = threading.Event()
        timer = threading.Timer(grace, deadline.set)
        timer.start()
        try:
            for thread in self._threads:
                while thread.is_alive() and not deadline.is_set():
                    thread.join(0.05)
        finally:
            timer.cancel()
        with self._held_lock:
            left = sorted(self._held)
            self._held.clear()
        for job_id in left:
            try:
                self.storage.jobs.release(job_id)
                log.warning("job %s given back unfinished (stopping)", job_id)
            except Exception:
                log.exception("could not give back job %s", job_id)
        self._threads = [t for t in self._threads if t.is_alive()]
        return left

    def stopping(self) -> bool:
        """Is the runner stopping? Long handlers may check and give their job back early."""
        return self._stop.is_set()

    def wake(self) -> None:
        """Tell idle workers that a job was added."""
        for event in self._wake.values():
            event.set()

    def unpark(self, key: str) -> int:
        """Resume the jobs parked under ``key``, in their order; return how many."""
        count = self.storage.jobs.unpark(key, self.clock())
        if count:
            log.info("resumed %d job(s) parked under %s", count, key)
            self.wake()
        return count

    def run_one(self, lanes: Collection[str] | None = None) -> bool:
        """Claim and run one job (of ``lanes``, else of any lane this runner serves); False
        when nothing is runnable now."""
        job = self.storage.jobs.claim(self.clock(), self.lease, lanes or self.lanes())
        if job is None:
            return False
        with self._held_lock:
            self._held[job.id] = threading.current_thread()
        try:
            self._run(job)
        finally:
            with self._held_lock:
                self._held.pop(job.id, None)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Run runnable jobs until none is left; return how many ran."""
        ran = 0
        while ran < limit and self.run_one():
            ran += 1
        return ran

    def _loop(self, lane: str) -> None:
        wake = self._wake[lane]
        while not self._stop.is_set():
            try:
                if self.run_one([lane]):
                    continue
            except Exception:  # the loop must survive a broken database moment
                log.exception("job loop error")
            wake.wait(self._idle_wait())
            wake.clear()

    def _idle_wait(self) -> float:
        """Until the next job is due; a due job this thread could not claim waits for its
        queue (a job running here wakes the lane when it ends; other processes' jobs are
        seen by polling), so it is looked at again 4 times a second, not in a busy loop."""
        upcoming = self.storage.jobs.next_time()
        if upcoming is None:
            return 1.0
        due_in = (upcoming - self.clock()).total_seconds()
        return BLOCKED_POLL if due_in <= 0 else max(0.01, min(1.0, due_in))

    def _heartbeat(self) -> None:
        """Renew the lease of every job this process is running, three times a lease."""
        every = self.lease.total_seconds() / 3
        while not self._stop.wait(every):
            with self._held_lock:
                held = list(self._held)
            for job_id in held:
                try:
                    self.storage.jobs.renew(job_id, self.clock() + self.lease)
                except Exception:
                    log.exception("could not renew the lease of job %s", job_id)

    # -- one job --------------------------------------------------------------------------

    def _run(self, job: ClaimedJob) -> None:
        declared = self.jobs.get(job.kind)
        lost = job.lost
        if declared is not None and lost >= declared.max_lost:
            self._give_up(job, lost_worker(lost))
            return
        limit = declared.max_attempts if declared is not None else None
        if limit is not None and job.attempts > limit:  # its last attempt died with it
            self._give_up(job, job.last_error or lost_worker(lost))
            return
        try:
            if declared is None:
                raise GiveUp(f"no handler for job kind {job.kind!r}")
            with running(job.id, job.kind):
                declared.handler({**job.payload, "_attempt": job.attempts})
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
            log.exception("job %s (%s) failed on attempt %s", job.id, job.kind, job.attempts)
            self._retry_or_give_up(job, f"{type(exc).__name__}: {exc}", None)
        else:
            self.storage.jobs.finish(job.id)
            self._wake[lane_of(job.kind)].set()  # the next job of its queue may run now

    def _retry_or_give_up(self, job: ClaimedJob, error: str, delay: float | None) -> None:
        """Retry with backoff; give up after the kind's attempt limit (if it has one, e.g. a
        staff reply must be reported soon) or once the job is ``max_age`` old."""
        declared = self.jobs.get(job.kind)
        limit = declared.max_attempts if declared is not None else None
        patient = declared is not None and declared.patient
        too_old = not patient and self.clock() - parse_iso(job.created_at) > self.max_age
        if too_old or (limit is not None and job.attempts >= limit):
            self._give_up(job, error)
            return
        wait = backoff(job.attempts) if delay is None else delay
        log.info("job %s (%s) retries in %.1fs: %s", job.id, job.kind, wait, error)
        self.storage.jobs.retry(job.id, self.clock() + timedelta(seconds=wait), error)
        self.wake()

    def _wait(self, job: ClaimedJob, reason: str, delay: float) -> None:
        """Run the job again after ``delay`` without counting this attempt."""
        log.debug("job %s (%s) waits %.1fs: %s", job.id, job.kind, delay, reason)
        self.storage.jobs.retry(
            job.id, self.clock() + timedelta(seconds=delay), reason, refund=True
        )
        self.wake()

    def _park(self, job: ClaimedJob, park: Park) -> None:
        """Keep the job (and its queue) waiting until ``unpark(park.key)``."""
        log.warning("job %s (%s) parked under %s: %s", job.id, job.kind, park.key, park)
        self.storage.jobs.park(job.id, park.key, str(park))
        if self.on_park is not None:
            try:
                self.on_park(job, park)
            except Exception:
                log.exception("on_park for job %s failed", job.id)

    def _give_up(self, job: ClaimedJob, error: str) -> None:
        log.warning("job %s (%s) gave up: %s", job.id, job.kind, error)
        self.storage.jobs.finish(job.id, "failed", error)
        declared = self.jobs.get(job.kind)
        report = declared.on_give_up if declared and declared.on_give_up else self.on_give_up
        if report is not None:
            try:
                report(job, error)
            except Exception:
                log.exception("on_give_up for job %s failed", job.id)
