"""Shared fixtures: the fake Slack Web API, the CRM Text simulator and the app, all on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bot.app import Services, services_of
from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer, SlackSender
from bot.worker import local_app
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from tests import pg_server

SIGNING_SECRET = "test-signing-secret"
CALLBACK_TOKEN = "cb-0123456789abcdef"
CRM_USER, CRM_PASSWORD = "smsbridge", "s3cret"
PIZZA_CHANNEL, CARS_CHANNEL = "CPIZZA01", "CCARS001"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration comes from Config objects in tests, never from the machine's environment."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "CRMTEXT_", "SMS_", "BLAST_", "CALLBACK_")):
            monkeypatch.delenv(name)


class Clock:
    """A settable clock shared by the app and the simulator."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 24, 18, 0, tzinfo=UTC))  # 10:00 in California


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """The fake Slack. A test fails when Slack refused anything the app sent (a message or view
    breaking Block Kit's limits); a test that expects a refusal clears ``slack.refusals``."""
    with FakeSlack() as fake:
        fake.add_user("USAM", "Sam", "Sam Rivera")
        fake.add_user("UALEX", "Alex", "Alex Chen")
        yield fake
        fail_on_refusals(fake)


def fail_on_refusals(fake: FakeSlack) -> None:
    """Fail the test when Slack refused a message or view the app sent."""
    if fake.refusals:
        pytest.fail(
            f"Slack refused {len(fake.refusals)} request(s):\n" + "\n".join(fake.refusals),
            pytrace=False,
        )


@pytest.fixture
def sim(clock: Clock) -> Iterator[Simulator]:
    simulator = Simulator(
        CRM_USER,
        CRM_PASSWORD,
        [SimStore("PIZZA", "1001", "Main St Pizza"), SimStore("CARS", "1002", "Bay Cars")],
        speed=1000,
        clock=clock,
    )
    server = LiveServer(simulator.app())
    simulator.url = server.url  # type: ignore[attr-defined]
    yield simulator
    server.stop()


class Harness:
    """The whole system: app on a live port, simulator wired to its callback, fake Slack."""

    def __init__(self, config: Config, sim: Simulator, slack: FakeSlack, clock: Clock) -> None:
        self.config, self.sim, self.slack, self.clock = config, sim, slack, clock
        self.app: Flask
        self.server: LiveServer
        self.start()

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def start(self) -> None:
        crm = CrmTextClient(self.config.crmtext_api_url, CRM_USER, CRM_PASSWORD)
        self.app = local_app(self.config, clock=self.clock, crm=crm)
        self.server = LiveServer(self.app)
        self.sender = SlackSender(self.server.url, SIGNING_SECRET, slack=self.slack)
        for keyword in self.config.stores:
            crm.set_callback(keyword, f"{self.server.url}/sms/inbound/{CALLBACK_TOKEN}")

    def stop(self) -> None:
        self.server.stop()
        self.services.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def drain(self) -> int:
        """Run every runnable job now (tests run without background workers)."""
        return self.services.runner.drain()

    def text(self, keyword: str, phone: str, message: str, media: Any = None) -> dict[str, Any]:
        """A customer texts the store through the simulator; returns the simulator's result."""
        result = self.sim.customer_texts(keyword, phone, message, media)
        assert result["callback_status"] == 200, result
        return result

    def press(self, action_id: str, value: str, *, user: str = "USAM") -> None:
        """A staff member clicks a button in the store channel (a signed block_actions)."""
        response = self.sender.interaction(
            {
                "type": "block_actions",
                "user": {"id": user},
                "channel": {"id": PIZZA_CHANNEL},
                "actions": [{"action_id": action_id, "value": value, "type": "button"}],
            }
        )
        assert response.status_code == 200

    def callback_url(self, token: str = CALLBACK_TOKEN) -> str:
        return f"{self.server.url}/sms/inbound/{token}"


def backend_under_test() -> str:
    """``SMSBRIDGE_TEST_BACKEND=postgres`` runs the whole suite on PostgreSQL (a fresh database
    per test, see tests/pg_server.py); the default is SQLite."""
    backend = os.environ.get("SMSBRIDGE_TEST_BACKEND", "sqlite").strip() or "sqlite"
    if backend not in ("sqlite", "postgres"):
        raise RuntimeError(f"SMSBRIDGE_TEST_BACKEND must be sqlite or postgres, not {backend!r}")
    return backend


def database_url_for(tmp_path: Path) -> str:
    if backend_under_test() == "postgres":
        return pg_server.fresh_database()
    return f"sqlite:///{tmp_path / 'smsbridge.db'}"


def make_config(tmp_path: Path, slack: FakeSlack, sim: Simulator, **overrides: Any) -> Config:
    config = Config(
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        crmtext_user=CRM_USER,
        crmtext_password=CRM_PASSWORD,
        crmtext_api_url=f"{sim.url}/smapi/rest",  # type: ignore[attr-defined]
        stores={"PIZZA": PIZZA_CHANNEL, "CARS": CARS_CHANNEL},
        callback_token=CALLBACK_TOKEN,
        public_url="https://bridge.example.com",
        database_url=database_url_for(tmp_path),
        blast_admins=frozenset({"USAM"}),
        run_workers=False,
        slack_posts_per_second=0,  # no pacing on the frozen clock; see tests/test_slack_health.py
        inbound_media_hosts=(sim.url,),  # type: ignore[attr-defined]  # http://127.0.0.1:PORT
    )
    return replace(config, **overrides)


@pytest.fixture
def harness(tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock) -> Iterator[Harness]:
    h = Harness(make_config(tmp_path, slack, sim), sim, slack, clock)
    yield h
    h.stop()
