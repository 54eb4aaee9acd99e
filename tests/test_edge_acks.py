"""The Slack edge never acks what it did not store, and interactive paths never wait on a 429.

* Bolt learns the bot identity from one ``auth.test`` at start-up; while Slack cannot tell it
  (a 429 storm on a fresh process), events are answered 5xx so Slack retries them, and a person
  who typed a command is told to try again.
* ``views.open`` answered 429 does not hold a slash command past Slack's 3 s window.
* ``app_rate_limited``, unknown events and every message subtype get a 2xx, never a 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack, Message
from tests.conftest import PIZZA_CHANNEL, Clock, Harness, make_config

JANE = "4155550101"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def storm(tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock) -> Iterator[Any]:
    """Start the app while Slack answers ``auth.test`` with 429 (Retry-After given per test)."""
    started: list[Harness] = []

    def start(*, times: int, retry_after: int) -> Harness:
        slack.fail_next("auth.test", status=429, retry_after=retry_after, times=times)
        harness = Harness(make_config(tmp_path, slack, sim), sim, slack, clock)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.stop()


def open_thread(harness: Harness) -> Message:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()
    return harness.slack.top_level(PIZZA_CHANNEL)[-1]


def reply_event(harness: Harness, parent: Message, text: str) -> dict[str, Any]:
    message = harness.slack.add_message(PIZZA_CHANNEL, text, user="USAM", thread_ts=parent.ts)
    return {
        "type": "message",
        "channel": PIZZA_CHANNEL,
        "channel_type": "channel",
        "user": "USAM",
        "text": text,
        "ts": message.ts,
        "thread_ts": parent.ts,
        "event_ts": message.ts,
    }


def slack_calls(harness: Harness) -> list[str]:
    return [c.method for c in harness.slack.calls]


def texted(harness: Harness) -> list[tuple[str, str]]:
    return [(d.phone, d.text) for d in harness.sim.outbox if d.kind == "sms"]


def test_a_staff_reply_while_slack_rate_limits_auth_test_is_retried_and_texted_once(
    storm: Any,
) -> None:
    harness = storm(times=100, retry_after=0)  # a fresh process in a 429 storm
    parent = open_thread(harness)
    event = reply_event(harness, parent, "It left 5 minutes ago")

    first = harness.sender.event(event, event_id="EvSTORM1")
    harness.drain()
    assert first.status_code == 503
    assert texted(harness) == []

    harness.slack.recover("auth.test")
    retried = harness.sender.event(event, event_id="EvSTORM1", retry_num=1)
    harness.drain()
    assert retried.status_code == 200
    assert texted(harness) == [(JANE, "It left 5 minutes ago")]

    again = harness.sender.event(event, event_id="EvSTORM1", retry_num=2)
    harness.drain()
    assert again.status_code == 200
    assert texted(harness) == [(JANE, "It left 5 minutes ago")]


def test_within_retry_after_the_request_does_not_call_auth_test_again(storm: Any) -> None:
    harness = storm(times=100, retry_after=30)
    parent = open_thread(harness)
    event = reply_event(harness, parent, "On its way")
    calls = len(harness.slack.calls_to("auth.test"))
    response = harness.sender.event(event)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"  # the harness's clock has not moved
    harness.clock.advance(seconds=12)
    later = harness.sender.event(event, event_id="EvLATER")
    assert later.status_code == 503
    assert later.headers["Retry-After"] == "18"
    assert len(harness.slack.calls_to("auth.test")) == calls
    harness.drain()
    assert texted(harness) == []

    harness.slack.recover("auth.test")
    harness.clock.advance(seconds=18)  # Slack's 30 s are over: the next request asks again
    response = harness.sender.event(event, event_id="EvAFTER")
    assert response.status_code == 200
    assert len(harness.slack.calls_to("auth.test")) == calls + 1
    harness.drain()
    assert texted(harness) == [(JANE, "On its way")]


def test_the_identity_from_start_up_serves_every_request_without_auth_test(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    at_start = len(harness.slack.calls_to("auth.test"))
    assert at_start >= 1
    for n in range(3):
        response = harness.sender.event(reply_event(harness, parent, f"Update {n}"))
        assert response.status_code == 200
    harness.drain()
    assert len(harness.slack.calls_to("auth.test")) == at_start
    assert texted(harness) == [(JANE, "Update 0"), (JANE, "Update 1"), (JANE, "Update 2")]


def test_a_command_while_slack_rate_limits_auth_test_tells_the_person_to_try_again(
    storm: Any,
) -> None:
    harness = storm(times=100, retry_after=30)
    harness.sim.add_customer("PIZZA", JANE, status=3)
    response = harness.sender.command(
        "/sms", "(415) 555-0101 Hi", user="USAM", channel=PIZZA_CHANNEL
    )
    assert response.status_code == 200
    assert response.text == (
        "Slack is rate-limiting smsbridge right now, so nothing was done. "
        "Please try again in 30 seconds."
    )
    harness.drain()
    assert texted(harness) == []
    # nothing stored for the command; only the start-up check waits to run again
    assert [j["kind"] for j in harness.services.storage.jobs.rows("pending")] == ["slack_recheck"]


def test_a_button_press_while_slack_rate_limits_auth_test_is_answered_5xx(storm: Any) -> None:
    harness = storm(times=100, retry_after=30)
    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "channel_id": PIZZA_CHANNEL, "message_ts": "1.0"},
            "actions": [{"action_id": "resolve_thread", "value": "x", "type": "button"}],
        }
    )
    assert response.status_code == 503


def test_app_rate_limited_is_answered_200_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = (
        '{"token": "legacy", "type": "app_rate_limited", "team_id": "T1", '
        '"minute_rate_limited": 1518467820, "api_app_id": "A1"}'
    )
    with caplog.at_level("WARNING", logger="bot.listeners"):
        response = harness.sender.post(body, "application/json")
    assert response.status_code == 200
    assert (
        "Slack is rate-limiting event deliveries to this app for team T1 since 2018-02-12 20:37 "
        "UTC (more than 30,000 events an hour): Slack events from then may be late or missing"
    ) in caplog.messages


@pytest.mark.parametrize(
    "event",
    [
        {"type": "pin_added", "user": "USAM", "channel_id": PIZZA_CHANNEL, "event_ts": "1.0"},
        {
            "type": "app_mention",
            "user": "USAM",
            "text": "<@UBOT> hi",
            "channel": PIZZA_CHANNEL,
            "ts": "1.000001",
            "event_ts": "1.000001",
        },
        {
            "type": "message",
            "subtype": "some_future_subtype",
            "channel": PIZZA_CHANNEL,
            "ts": "1.000002",
            "event_ts": "1.000002",
        },
        {
            "type": "reaction_removed",
            "user": "USAM",
            "reaction": "tada",
            "item": {"type": "message", "channel": PIZZA_CHANNEL, "ts": "1.0"},
            "event_ts": "1.000003",
        },
    ],
)
def test_events_smsbridge_does_not_act_on_are_answered_200(
    harness: Harness, event: dict[str, Any]
) -> None:
    before = slack_calls(harness)
    response = harness.sender.event(event)
    assert response.status_code == 200, response.text
    harness.drain()
    assert slack_calls(harness) == before


def test_a_rate_limited_views_open_answers_the_command_at_once(harness: Harness) -> None:
    """Slack asks for a 10-minute wait: had the command slept on Retry-After (or retried),
    the answer could not come back within the sender's 30 s timeout, nor after one call."""
    harness.slack.fail_next("views.open", status=429, retry_after=600)
    response = harness.sender.command(
        "/sms-blast", "Pizza night!", user="USAM", channel=PIZZA_CHANNEL
    )
    assert response.status_code == 200
    assert response.text == (
        "Slack is rate-limiting smsbridge right now, so the blast form did not open. "
        "Please run /sms-blast again in 600 seconds."
    )
    assert len(harness.slack.calls_to("views.open")) == 1


def test_url_verification_is_answered_while_slack_rate_limits_auth_test(storm: Any) -> None:
    """Slack checks the Request URL before anything else; the bot identity is not needed."""
    harness = storm(times=100, retry_after=30)
    before = len(harness.slack.calls_to("auth.test"))
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1a", "type": "url_verification"})
    unsigned = httpx.post(harness.sender.url, content=body.encode(), headers=JSON)
    assert unsigned.status_code == 401
    response = harness.sender.post(body, "application/json")
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1a"}
    assert len(harness.slack.calls_to("auth.test")) == before


def test_a_failed_start_up_check_is_logged_in_plain_words(
    storm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="bot.identity"):
        storm(times=100, retry_after=30)
    assert (
        "Slack auth.test failed at start-up (ratelimited; Slack asked to wait 30 s). Until it "
        "succeeds, Slack events are answered 503 so Slack delivers them again, and commands ask "
        "people to retry."
    ) in caplog.messages


def test_a_reply_while_slack_cannot_be_reached_is_answered_5xx(
    tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock
) -> None:
    slack.drop_next("auth.test", times=100)  # every auth.test: the connection drops
    harness = Harness(make_config(tmp_path, slack, sim), sim, slack, clock)
    try:
        parent = open_thread(harness)
        event = reply_event(harness, parent, "Back online")
        assert harness.sender.event(event, event_id="EvDROP").status_code == 503
        slack.recover("auth.test")
        assert harness.sender.event(event, event_id="EvDROP", retry_num=1).status_code == 200
        harness.drain()
        assert texted(harness) == [(JANE, "Back online")]
    finally:
        harness.stop()


def test_a_link_button_or_an_unknown_action_is_answered_200(harness: Harness) -> None:
    before = slack_calls(harness)
    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "channel_id": PIZZA_CHANNEL, "message_ts": "1.0"},
            "actions": [
                {"action_id": "open_crm", "type": "button", "url": "https://crm.example.com/"}
            ],
        }
    )
    assert response.status_code == 200
    assert slack_calls(harness) == before


def test_an_unknown_command_is_answered_with_what_smsbridge_knows(harness: Harness) -> None:
    response = harness.sender.command("/smsx", "hi", user="USAM", channel=PIZZA_CHANNEL)
    assert response.status_code == 200
    assert response.text == "smsbridge does not know /smsx; try /sms or /sms-blast."
