"""Worker processes: a job that kills its worker gives up and is reported; SIGTERM gives work
back at once; one process per SQLite database. Real subprocesses on a real database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.dev.fake_slack import FakeSlack
from bridge.jobs import SLACK, Job, JobRunner, lost_worker
from bridge.storage import Storage, utcnow
from tests.conftest import (
    CALLBACK_TOKEN,
    CRM_PASSWORD,
    CRM_USER,
    PIZZA_CHANNEL,
    SIGNING_SECRET,
    Harness,
)

ROOT = Path(__file__).resolve().parent.parent


def worker_env(harness: Harness) -> dict[str, str]:
    config = harness.config
    stores = ",".join(f"{k}={c}" for k, c in config.stores.items())
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": config.slack_bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": config.slack_api_url,
        "CRMTEXT_USER": CRM_USER,
        "CRMTEXT_PASSWORD": CRM_PASSWORD,
        "CRMTEXT_API_URL": config.crmtext_api_url,
        "SMS_STORES": stores,
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": config.public_url,
        "DATABASE_URL": config.database_url,
        "BLAST_ADMINS": "USAM",
    }


class Workers:
    """Starts worker subprocesses and makes sure none outlives the test."""

    def __init__(self, harness: Harness) -> None:
        self.env = worker_env(harness)
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str, module: str = "tests.worker_process") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


@pytest.fixture
def workers(harness: Harness) -> Iterator[Workers]:
    w = Workers(harness)
    yield w
    w.stop_all()


def wait_line(proc: subprocess.Popen[str], wanted: str, timeout: float = 30.0) -> list[str]:
    """Read the process's output until a line starting with ``wanted``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        if line.startswith(wanted):
            return seen
    raise AssertionError(f"no line starting {wanted!r}; output:\n" + "\n".join(seen))


def job_row(storage: Storage, job_id: int) -> dict[str, object]:
    return next(j for j in storage.jobs() if j["id"] == job_id)


def test_a_job_that_kills_its_worker_gives_up_after_three_deaths_and_is_reported(
    harness: Harness, workers: Workers, slack: FakeSlack
) -> None:
    storage = harness.services.storage
    job_id = storage.enqueue("refresh_thread", {"thread_id": 1}, queue="t:1", now=utcnow())
    assert job_id is not None
    for death in range(3):  # the platform restarts the worker each time it dies
        proc = workers.start("--crash", "refresh_thread", "--lease", "1")
        wait_line(proc, f"crashing on {{'thread_id': 1, '_attempt': {death + 1}}}")
        assert proc.wait(timeout=20) == 137
        assert job_row(storage, job_id)["status"] == "pending"
    workers.start("--crash", "refresh_thread", "--lease", "1")
    dm = slack.dm_channel("USAM")
    reason = lost_worker(3)
    slack.wait_for(lambda: len(slack.top_level(dm)) == 1, timeout=30)
    assert [m.text for m in slack.top_level(dm)] == [
        f":warning: smsbridge gave up on a `refresh_thread` job (#{job_id}): {reason}"
    ]
    row = job_row(storage, job_id)
    assert (row["status"], row["last_error"], row["lost"]) == ("failed", reason, 3)
    assert reason == (
        "the worker running this job stopped before it finished, 3 times "
        "(killed, or out of memory?): not trying again"
    )


def test_sigterm_gives_the_running_job_back_and_another_worker_runs_it_at_once(
    harness: Harness, workers: Workers, slack: FakeSlack
) -> None:
    storage = harness.services.storage
    job_id = storage.enqueue(
        "ops_alert",
        {"channel": PIZZA_CHANNEL, "text": "Deploys lose nothing"},
        queue="ops:x",
        now=utcnow(),
    )
    first = workers.start("--hang", "ops_alert", "--grace", "1")  # a 60 s lease
    wait_line(first, "running {'channel': 'CPIZZA01', 'text': 'Deploys lose nothing'")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0
    row = job_row(storage, job_id)
    assert (row["status"], row["locked_until"], row["attempts"]) == ("pending", None, 0)
    workers.start()  # the new release, handlers as shipped: runs it now, not in 60 s
    slack.wait_for(lambda: job_row(storage, job_id)["status"] == "done", timeout=20)
    assert [m.text for m in slack.top_level(PIZZA_CHANNEL)] == ["Deploys lose nothing"]


def own_sqlite(workers: Workers, tmp_path: Path) -> str:
    """These processes get a SQLite database of their own, whatever backend the suite runs
    on (the harness serves only as fake Slack and CRM Text simulator)."""
    path = str(tmp_path / "web.db")
    workers.env["DATABASE_URL"] = f"sqlite:///{path}"
    return path


def test_a_second_process_on_one_sqlite_database_is_refused_with_the_reason(
    harness: Harness, workers: Workers, tmp_path: Path
) -> None:
    path = own_sqlite(workers, tmp_path)
    first = workers.start("worker", module="bot.cli")
    wait_line(first, "INFO bot.worker: smsbridge worker running lanes blast, crm, media, slack")
    second = workers.start("worker", module="bot.cli")
    assert second.wait(timeout=30) == 3
    out, _ = second.communicate()
    assert out.strip().splitlines()[-1] == (
        f"smsbridge: process {first.pid} is already using the SQLite database {path}. With "
        "SQLite one process does everything: run a single web process (it runs the job "
        "workers itself) and no `smsbridge worker`. To run more processes, set DATABASE_URL "
        "to a PostgreSQL database."
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_web_process_on_sqlite_runs_the_jobs_refuses_a_second_and_stops_cleanly(
    harness: Harness, workers: Workers, slack: FakeSlack, tmp_path: Path
) -> None:
    path = own_sqlite(workers, tmp_path)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    port = free_port()
    workers.env.update(PORT=str(port), WEB_CONCURRENCY="3")
    web = subprocess.Popen(
        [gunicorn, "bot.wsgi:app"],  # settings: gunicorn.conf.py, as the Procfile runs it
        cwd=ROOT,
        env=workers.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers.procs.append(web)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/livez").status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    harness.services.crm.set_callback("PIZZA", f"{url}/sms/inbound/{CALLBACK_TOKEN}")
    harness.sim.add_customer("PIZZA", "4155550101", status=3)
    harness.text("PIZZA", "4155550101", "Is my pizza on the way?")
    slack.wait_for(lambda: len(slack.top_level(PIZZA_CHANNEL)) == 1, timeout=20)
    assert [m.text for m in slack.top_level(PIZZA_CHANNEL)] == [
        "Text from (415) 555-0101: Is my pizza on the way?"
    ]
    workers.env.update(PORT=str(free_port()))
    second = subprocess.Popen(
        [gunicorn, "bot.wsgi:app"],
        cwd=ROOT,
        env=workers.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers.procs.append(second)
    assert second.wait(timeout=30) == 3  # gunicorn: a worker failed to boot
    out, _ = second.communicate()
    holder = Path(f"{path}.lock").read_text()  # the first one's gunicorn worker
    assert (
        f"smsbridge: process {holder} is already using the SQLite database {path}. With "
        "SQLite one process does everything: run a single web process (it runs the job "
        "workers itself) and no `smsbridge worker`. To run more processes, set DATABASE_URL "
        "to a PostgreSQL database.\n"
    ) in out
    web.send_signal(signal.SIGTERM)
    assert web.wait(timeout=40) == 0


def test_a_running_jobs_lease_is_renewed_so_no_other_worker_runs_it_twice(
    harness: Harness,
) -> None:
    storage = harness.services.storage
    runs: list[str] = []
    release = threading.Event()

    def slow(payload: dict[str, Any]) -> None:
        runs.append(payload["text"])
        release.wait(10)

    lease = timedelta(seconds=0.3)
    first = JobRunner(storage, [Job("ops_alert", slow)], lease=lease, pools={SLACK: 1})
    storage.enqueue("ops_alert", {"channel": "C1", "text": "once"}, queue="ops:C1", now=utcnow())
    first.start()
    try:
        while not runs:  # the first worker has it
            time.sleep(0.01)
        deadline = time.monotonic() + 2.0  # more than six leases
        while time.monotonic() < deadline:
            assert storage.claim_job(utcnow(), lease, [SLACK]) is None  # another worker
            time.sleep(0.05)
    finally:
        release.set()
        first.shutdown(5)
    assert runs == ["once"]
    assert [j["status"] for j in storage.jobs()] == ["done"]
