"""The whole flow on a real PostgreSQL with real OS processes, as a PaaS runs it: two web
processes (gunicorn, as the Procfile starts them) and one ``smsbridge worker``.

Customers text concurrently, their callbacks alternating between the two web processes; each
customer's texts appear once, in order, in one thread. Staff reply in those threads; Slack's
retry of each reply event reaches the other web process; each reply is texted once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack, Message
from bot.dev.live import SlackSender
from bridge.store import open_store
from tests import pg_server
from tests.conftest import (
    CALLBACK_TOKEN,
    CARS_CHANNEL,
    CRM_PASSWORD,
    CRM_USER,
    PIZZA_CHANNEL,
    SIGNING_SECRET,
)
from tests.test_worker import free_port

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = {"PIZZA": PIZZA_CHANNEL, "CARS": CARS_CHANNEL}
CUSTOMERS = 10
TEXTS_EACH = 4
FAILED_POSTS = 4
DEADLINE = 180.0  # seconds; posting is paced at about one message per second per channel


class Processes:
    """Starts smsbridge processes (output to files) and makes sure none outlives the test."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.running.append((name, proc, log))
        return proc

    def output(self) -> str:
        return "\n".join(
            f"--- {name} (exit {proc.poll()}):\n{(self.folder / f'{name}.log').read_text()}"
            for name, proc, _ in self.running
        )

    def stop_all(self) -> None:
        for _, proc, log in self.running:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            log.close()


@pytest.fixture
def database_url() -> str:
    return pg_server.fresh_database()


@pytest.fixture
def processes(
    database_url: str, slack: FakeSlack, sim: Simulator, tmp_path: Path
) -> Iterator[Processes]:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "CRMTEXT_USER": CRM_USER,
        "CRMTEXT_PASSWORD": CRM_PASSWORD,
        "CRMTEXT_API_URL": f"{sim.url}/smapi/rest",  # type: ignore[attr-defined]
        "SMS_STORES": ",".join(f"{k}={c}" for k, c in CHANNELS.items()),
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": "https://bridge.example.com",
        "DATABASE_URL": database_url,
        "BLAST_ADMINS": "USAM",
    }
    procs = Processes(env, tmp_path)
    yield procs
    procs.stop_all()


def wait_until(
    check: Callable[[], bool], what: str, procs: Processes, timeout: float = DEADLINE
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}\n{procs.output()}")
        time.sleep(0.1)


def start_web(procs: Processes, name: str) -> str:
    """One web process on its own port (gunicorn as the Procfile runs it); its base URL."""
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = procs.start(name, [gunicorn, "bot.wsgi:app"], PORT=str(port), WEB_CONCURRENCY="1")
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"{name} exited\n{procs.output()}"
        try:
            return httpx.get(f"{url}/livez", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, f"{name} answers /livez", procs, timeout=60)
    return url


def phone(customer: int) -> str:
    return f"41555501{customer:02d}"


def store_of(customer: int) -> str:
    return "PIZZA" if customer % 2 == 0 else "CARS"


def sent_text(customer: int, n: int) -> str:
    return f"Order question {n + 1} from customer {customer}"


def shown(customer: int, n: int) -> str:
    """How the n-th text of a customer reads in Slack: the first opens the thread."""
    if n > 0:
        return sent_text(customer, n)
    digits = phone(customer)
    return f"Text from ({digits[:3]}) {digits[3:6]}-{digits[6:]}: {sent_text(customer, 0)}"


def reply_text(customer: int) -> str:
    return f"Thanks, customer {customer}: your order ships today"


def parent_of(slack: FakeSlack, customer: int) -> Message:
    channel = CHANNELS[store_of(customer)]
    [parent] = [m for m in slack.top_level(channel) if m.text == shown(customer, 0)]
    return parent


def thread_texts(slack: FakeSlack, customer: int) -> list[str]:
    """The texts a reader sees in the customer's thread, in order (texts that queued up behind
    Slack may share one post, one line each)."""
    channel = CHANNELS[store_of(customer)]
    posts = slack.thread(channel, parent_of(slack, customer).ts)
    return [line for m in posts for line in m.text.split("\n")]


def all_shown(slack: FakeSlack) -> int:
    """How many texts the store channels show (one line each)."""
    posts = [
        m for c in CHANNELS.values() for p in slack.top_level(c) for m in slack.thread(c, p.ts)
    ]
    return sum(len(m.text.split("\n")) for m in posts)


def job_statuses(database_url: str) -> set[str]:
    store = open_store(database_url)
    try:
        return {j["status"] for j in store.jobs.rows()}
    finally:
        store.close()


def settled(database_url: str) -> bool:
    """No job is waiting or running (anything doubled would have been done by now)."""
    return job_statuses(database_url) <= {"done", "failed"}


def test_two_web_processes_and_a_worker_show_each_text_once_in_order_and_text_each_reply_once(
    processes: Processes, slack: FakeSlack, sim: Simulator, database_url: str
) -> None:
    python = sys.executable
    migrate = processes.start("migrate", [python, "-m", "bot.cli", "migrate"])
    assert migrate.wait(timeout=60) == 0, processes.output()  # the release phase
    web = [start_web(processes, "web-a"), start_web(processes, "web-b")]
    processes.start("worker", [python, "-m", "bot.cli", "worker"])
    callbacks = [f"{url}/sms/inbound/{CALLBACK_TOKEN}" for url in web]
    for customer in range(CUSTOMERS):
        sim.add_customer(store_of(customer), phone(customer), status=3)

    def customer_texts(customer: int) -> list[Any]:
        """One customer's texts, one after another (each acked before the next is sent),
        alternating between the web processes."""
        return [
            sim.customer_texts(
                store_of(customer),
                phone(customer),
                sent_text(customer, n),
                callback_url=callbacks[(customer + n) % 2],
            )["callback_status"]
            for n in range(TEXTS_EACH)
        ]

    # Slack fails a few posts (its 5xx): each is retried later. Per-customer order means the
    # customer's next texts wait for it; without it they would overtake it (or open a second
    # thread when the failed post was the one opening the thread).
    slack.fail_next("chat.postMessage", status=500, error="internal_error", times=FAILED_POSTS)
    with ThreadPoolExecutor(CUSTOMERS) as pool:  # the ten customers at once
        statuses = list(pool.map(customer_texts, range(CUSTOMERS)))
    assert statuses == [[200] * TEXTS_EACH] * CUSTOMERS
    # both web processes took callbacks
    assert {entry["url"] for entry in sim.callback_log} == set(callbacks)

    total = CUSTOMERS * TEXTS_EACH
    wait_until(lambda: all_shown(slack) >= total, f"{total} texts in Slack", processes)
    wait_until(lambda: settled(database_url), "the queue is empty", processes)
    for keyword, channel in CHANNELS.items():  # one thread per customer, nothing else
        mine = [c for c in range(CUSTOMERS) if store_of(c) == keyword]
        assert sorted(m.text for m in slack.top_level(channel)) == sorted(shown(c, 0) for c in mine)
    for customer in range(CUSTOMERS):  # every text once, in the order it was sent
        assert thread_texts(slack, customer) == [shown(customer, n) for n in range(TEXTS_EACH)], (
            processes.output()
        )
    assert all_shown(slack) == total
    assert job_statuses(database_url) == {"done"}
    posts = [
        m for c in CHANNELS.values() for p in slack.top_level(c) for m in slack.thread(c, p.ts)
    ]
    tries = [
        c for c in slack.calls_to("chat.postMessage") if c.args["channel"] in CHANNELS.values()
    ]
    assert len(tries) == len(posts) + FAILED_POSTS  # Slack did fail some, each posted once later
    assert slack.refusals == []

    senders = [SlackSender(url, SIGNING_SECRET, slack=slack) for url in web]
    for customer in range(CUSTOMERS):
        channel = CHANNELS[store_of(customer)]
        parent = parent_of(slack, customer)
        typed = slack.add_message(channel, reply_text(customer), user="USAM", thread_ts=parent.ts)
        event = {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": "USAM",
            "text": reply_text(customer),
            "ts": typed.ts,
            "thread_ts": parent.ts,
            "event_ts": typed.ts,
        }
        first = senders[0].event(event, event_id=f"EvReply{customer:02d}")
        retry = senders[1].event(event, event_id=f"EvReply{customer:02d}", retry_num=1)
        assert (first.status_code, retry.status_code) == (200, 200)

    def texted() -> list[tuple[str, str, str]]:
        return sorted((d.keyword, d.phone, d.text) for d in sim.outbox if d.kind == "sms")

    wait_until(lambda: len(texted()) >= CUSTOMERS, "every reply texted", processes)
    wait_until(lambda: settled(database_url), "the queue is empty", processes)
    assert texted() == sorted((store_of(c), phone(c), reply_text(c)) for c in range(CUSTOMERS))
    assert job_statuses(database_url) == {"done"}
    assert len([c for c in sim.calls if c["method"] == "sendsmsmsg"]) == CUSTOMERS
