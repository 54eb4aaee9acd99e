"""Worker processes on a real PostgreSQL, as a PaaS runs them: a worker killed (kill -9) or
stopped (SIGTERM, a deploy) in the middle of a blast, a job that kills its worker, and an
opt-out pushed to CRM Text while Slack is down.

The blast is composed and confirmed through the real Slack flow in the test process; the
sending is done by ``python -m tests.worker_process`` (the real runner and handlers). CRM Text
answers one chosen text late (:meth:`Simulator.answer_late`), so the worker is stopped exactly
while that text is out but its answer has not come back."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack
from bridge.jobs import lost_worker
from bridge.store import OPTED_OUT, Row, utcnow
from tests import pg_server
from tests.conftest import CALLBACK_TOKEN, PIZZA_CHANNEL, Clock, Harness, make_config
from tests.test_blasts import MESSAGE, compose, confirm, seed
from tests.test_flow_postgres_processes import Processes, start_web, wait_until
from tests.test_worker import worker_env

RECIPIENTS = 30
STOPPED_AT = 11  # the text in flight when the worker is stopped
RATE = 50  # blast texts a second (one a second in production: too slow for a test)
LATE = 5.0  # seconds CRM Text takes to answer the text in flight (the worker is gone by then)


@pytest.fixture
def pg(tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock) -> Iterator[Harness]:
    """The app on a PostgreSQL database of its own, whatever backend the suite runs on."""
    config = make_config(tmp_path, slack, sim, database_url=pg_server.fresh_database())
    harness = Harness(config, sim, slack, clock)
    yield harness
    harness.stop()


@pytest.fixture
def procs(pg: Harness, tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(worker_env(pg), tmp_path)
    yield processes
    processes.stop_all()


def start_worker(
    procs: Processes, name: str, offset: float, *args: str, lease: float = 1.0
) -> subprocess.Popen[bytes]:
    """A worker process whose clock runs from the harness's (a morning in California: the
    blast's quiet hours never depend on when the test runs)."""
    return procs.start(
        name,
        [
            sys.executable,
            "-m",
            "tests.worker_process",
            "--lease",
            str(lease),
            "--clock-offset",
            str(offset),
            "--blast-rate",
            str(RATE),
            *args,
        ],
    )


def launch_blast(pg: Harness) -> tuple[list[str], float]:
    """An admin confirms a blast to RECIPIENTS customers (the workers will send it); the
    numbers, and the clock offset for worker processes."""
    numbers = [f"41555502{n:02d}" for n in range(RECIPIENTS)]
    seed(pg, numbers)
    assert confirm(pg, compose(pg, MESSAGE, append=False)).status_code == 200
    return numbers, (pg.clock.now - utcnow()).total_seconds()


def blast_of(pg: Harness) -> Row:
    [blast] = pg.services.storage.blasts.rows("PIZZA")
    return blast


def texted(sim: Simulator) -> list[tuple[str, str]]:
    """The texts that reached customers' phones (CRM Text accepted them)."""
    return [(d.phone, d.text) for d in sim.outbox if d.kind == "sms"]


def send_calls(sim: Simulator) -> Counter[str]:
    """How many times smsbridge asked CRM Text to text each number."""
    return Counter(c["params"]["phone_number"] for c in sim.calls if c["method"] == "sendsmsmsg")


def progress_texts(slack: FakeSlack) -> list[str]:
    """The blast's progress message as the channel shows it (its fallback text)."""
    return [m.text for m in slack.top_level(PIZZA_CHANNEL) if m.text.startswith("Blast “")]


def slack_progress(slack: FakeSlack) -> list[str]:
    """The progress message's sections, as the channel shows them."""
    return [
        "\n".join(b["text"]["text"] for b in m.blocks or [] if b["type"] == "section")
        for m in slack.top_level(PIZZA_CHANNEL)
        if m.text.startswith("Blast “")
    ]


def assert_sent_once_each(pg: Harness, numbers: list[str]) -> None:
    """Every recipient texted once, the exact text; CRM Text asked twice only for the text in
    flight when the worker stopped (its duplicate answer shows it had gone out); the blast
    done, and its one progress message says so."""
    blast = blast_of(pg)
    assert sorted(texted(pg.sim)) == sorted((p, MESSAGE) for p in numbers)
    in_flight = texted(pg.sim)[STOPPED_AT - 1][0]
    assert send_calls(pg.sim) == Counter({**dict.fromkeys(numbers, 1), in_flight: 2})
    assert blast["status"] == "done"
    assert pg.services.storage.blasts.recipient_counts(blast["id"]) == {"sent": RECIPIENTS}
    assert progress_texts(pg.slack) == [
        f"Blast “{blast['name']}”: {RECIPIENTS} sent, 0 failed, 0 skipped"
    ]
    [shown] = slack_progress(pg.slack)
    assert shown.splitlines()[0].endswith("— done"), shown
    assert f"{RECIPIENTS} sent · 0 failed · 0 skipped · 0 to go, of {RECIPIENTS}" in shown


def test_a_worker_killed_mid_blast_another_finishes_it_and_no_one_is_texted_twice(
    pg: Harness, procs: Processes, sim: Simulator, slack: FakeSlack
) -> None:
    numbers, offset = launch_blast(pg)
    sim.answer_late("sendsmsmsg", STOPPED_AT, LATE)
    first = start_worker(procs, "worker-a", offset)
    wait_until(lambda: len(texted(sim)) >= STOPPED_AT, "the blast under way", procs, 60)
    first.kill()  # kill -9: CRM Text took the text, the worker never heard back
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert len(texted(sim)) == STOPPED_AT
    start_worker(procs, "worker-b", offset)  # its lease ran out: the step is taken over
    wait_until(lambda: blast_of(pg)["status"] == "done", "the blast finished", procs, 60)
    wait_until(lambda: "0 to go" in str(slack_progress(slack)), "progress final", procs, 30)
    assert_sent_once_each(pg, numbers)


def test_sigterm_mid_blast_gives_the_step_back_and_another_worker_goes_on_at_once(
    pg: Harness, procs: Processes, sim: Simulator, slack: FakeSlack
) -> None:
    numbers, offset = launch_blast(pg)
    sim.answer_late("sendsmsmsg", STOPPED_AT, LATE)
    lease = "300"  # a worker that died holding it would block the blast for five minutes
    first = start_worker(procs, "worker-a", offset, "--grace", "1", lease=float(lease))
    wait_until(lambda: len(texted(sim)) >= STOPPED_AT, "the blast under way", procs, 60)
    first.send_signal(signal.SIGTERM)  # a deploy
    assert first.wait(timeout=20) == 0, procs.output()
    storage = pg.services.storage
    held = [j for j in storage.jobs.rows() if j["locked_until"] is not None]
    assert held == []  # nothing left locked: given back, not left to expire
    [step] = [j for j in storage.jobs.rows("pending") if j["kind"] == "blast_step"]
    assert step["attempts"] == 0  # giving it back did not use up an attempt
    start_worker(procs, "worker-b", offset, lease=float(lease))
    wait_until(lambda: blast_of(pg)["status"] == "done", "the blast finished", procs, 30)
    wait_until(lambda: "0 to go" in str(slack_progress(slack)), "progress final", procs, 30)
    assert_sent_once_each(pg, numbers)


def test_a_blast_step_that_kills_its_worker_pauses_the_blast_and_tells_the_channel(
    pg: Harness, procs: Processes, sim: Simulator, slack: FakeSlack
) -> None:
    _, offset = launch_blast(pg)
    for death in range(3):  # the platform restarts the worker each time it dies
        proc = start_worker(procs, f"worker-{death}", offset, "--crash", "blast_step")
        assert proc.wait(timeout=60) == 137, procs.output()
    start_worker(procs, "worker-3", offset, "--crash", "blast_step")
    wait_until(lambda: blast_of(pg)["status"] == "paused", "the blast paused", procs, 30)
    blast = blast_of(pg)
    wait_until(lambda: "paused" in str(slack_progress(slack)), "progress shows it", procs, 30)
    assert texted(sim) == []
    assert pg.services.storage.blasts.recipient_counts(blast["id"]) == {"pending": RECIPIENTS}
    [step] = [j for j in pg.services.storage.jobs.rows() if j["kind"] == "blast_step"]
    assert (step["status"], step["lost"]) == ("failed", 3)
    report = f"Paused: {lost_worker(3)}. Press Resume to continue where it stopped."
    assert blast["report"] == report
    [shown] = slack_progress(slack)
    assert shown.endswith(report), shown


def test_an_opt_out_is_pushed_to_crm_text_while_slack_is_down(
    pg: Harness, procs: Processes, slack: FakeSlack, sim: Simulator
) -> None:
    """A web process and a worker; Slack answers 503 to every call. A customer texts
    UNSUBSCRIBE to the web process: the worker tells CRM Text at once (an opt-out never waits
    behind Slack), while Slack still has shown nothing."""
    web = start_web(procs, "web")
    worker = procs.start("worker", [sys.executable, "-m", "bot.cli", "worker"])
    phone = "4155550190"
    sim.add_customer("PIZZA", phone, status=3)
    wait_until(lambda: "running lanes" in procs.output(), "the worker started", procs, 60)
    slack.outage()
    before = len(slack.messages)
    answer = sim.customer_texts(
        "PIZZA", phone, "UNSUBSCRIBE", callback_url=f"{web}/sms/inbound/{CALLBACK_TOKEN}"
    )
    assert answer["callback_status"] == 200
    wait_until(
        lambda: sim.customer_status("PIZZA", phone) == OPTED_OUT,
        "CRM Text has the opt-out",
        procs,
        30,
    )
    opt_outs = [c for c in sim.calls if c["method"] == "optoutcustomer"]
    assert [c["params"]["phone_number"] for c in opt_outs] == [phone]
    assert len(slack.messages) == before  # Slack showed nothing ...
    assert worker.poll() is None

    def tried_slack() -> bool:
        return any(c.args["channel"] == PIZZA_CHANNEL for c in slack.calls_to("chat.postMessage"))

    wait_until(tried_slack, "the worker tried to post the text", procs, 30)  # ... though it tried
    assert len(slack.messages) == before
