"""Every button, form and request Slack signs gets a 2xx and the right outcome, even when it
comes from before a lost database or carries a value smsbridge cannot read; a body that is
not Slack's is a 400 with a log line, never a 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from bot.dev.fake_slack import Message
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_reconcile import lose_the_database

JANE = "4155550101"


def stop_request(harness: Harness) -> Message:
    """Jane texts something that may be a stop request: a card with Opt out buttons."""
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    return parent


def button_value(card: Message, action_id: str) -> str:
    for block in card.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button")


def press_on(
    harness: Harness, card: Message | None, action_id: str, value: str, user: str = "USAM"
) -> httpx.Response:
    """A block_actions from a message, as Slack sends it: the message (with its metadata)
    and where it is."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": PIZZA_CHANNEL},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }
    if card is not None:
        message: dict[str, Any] = {"type": "message", "ts": card.ts, "text": card.text}
        message.update(blocks=card.blocks, user=card.user)
        if card.metadata is not None:
            message["metadata"] = card.metadata
        payload["container"] = {
            "type": "message",
            "message_ts": card.ts,
            "channel_id": PIZZA_CHANNEL,
            "is_ephemeral": False,
        }
        payload["message"] = message
    return harness.sender.interaction(payload)


def ephemerals(harness: Harness, user: str = "USAM") -> list[str]:
    return [m.text for m in harness.slack.messages if m.ephemeral_for == user]


def test_opt_out_on_a_card_from_before_a_lost_database_opts_the_customer_out(
    harness: Harness,
) -> None:
    card = stop_request(harness)
    value = button_value(card, "opt_out_customer")
    lose_the_database(harness)
    assert press_on(harness, card, "opt_out_customer", value).status_code == 200
    harness.drain()
    [call] = [c for c in harness.sim.calls if c["method"] == "optoutcustomer"]
    assert call["params"]["phone_number"] == JANE
    assert harness.sim.customer_status("PIZZA", JANE) == 5
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    [entry] = harness.services.storage.customers.consent_history(customer["id"])
    assert (entry["status_to"], entry["actor"]) == (5, "USAM")
    assert ephemerals(harness) == [
        ":no_entry: (415) 555-0101 is opted out: CRM Text is being told. smsbridge had lost "
        "its record of this text, so the buttons stay on the card."
    ]


def test_opt_out_on_a_card_that_names_no_customer_explains_and_opts_nobody_out(
    harness: Harness,
) -> None:
    card = stop_request(harness)
    value = button_value(card, "opt_out_customer")
    lose_the_database(harness)
    card.metadata = None
    assert press_on(harness, card, "opt_out_customer", value).status_code == 200
    harness.drain()
    assert [c for c in harness.sim.calls if c["method"] == "optoutcustomer"] == []
    assert ephemerals(harness) == [
        ":warning: Nobody was opted out: smsbridge has no record of this text and its card "
        "does not say which customer sent it. Opt them out in the CRM Text admin."
    ]


def test_not_a_stop_request_on_a_card_from_before_a_lost_database_is_answered(
    harness: Harness,
) -> None:
    card = stop_request(harness)
    value = button_value(card, "not_a_stop_request")
    lose_the_database(harness)
    assert press_on(harness, card, "not_a_stop_request", value).status_code == 200
    harness.drain()
    assert ephemerals(harness) == [
        ":information_source: smsbridge has no record of this text any more, so there was "
        "nothing to record. Nobody was opted out."
    ]


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        ("send_opt_in", "not json"),
        ("send_opt_in", '{"keyword": "PIZZA"}'),
        ("opt_out_customer", "abc"),
        ("not_a_stop_request", ""),
        ("blast_pause", "x1"),
    ],
)
def test_a_button_value_smsbridge_cannot_read_is_answered_200_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture, action_id: str, value: str
) -> None:
    with caplog.at_level(logging.WARNING):
        assert press_on(harness, None, action_id, value).status_code == 200
    harness.drain()
    assert f"button {action_id} with a value smsbridge cannot read: {value!r}" in caplog.text
    assert ephemerals(harness) == [
        ":warning: That button is out of date, so nothing was done. Use `/sms` or "
        "`/sms-blast` again."
    ]
    assert [c for c in harness.sim.calls if c["method"].startswith("opt")] == []


def test_a_non_admin_pressing_pause_while_slack_rate_limits_is_answered_200_and_told_later(
    harness: Harness,
) -> None:
    harness.slack.fail_next("chat.postEphemeral", status=429, retry_after=5)
    assert press_on(harness, None, "blast_pause", "1", user="UALEX").status_code == 200
    harness.drain()
    harness.clock.advance(seconds=6)
    harness.drain()
    assert ephemerals(harness, "UALEX") == [
        "Only blast admins can text every customer: <@USAM>. Ask one of them."
    ]


def blast_view(callback_id: str, private_metadata: str) -> dict[str, Any]:
    return {
        "id": "V1",
        "hash": "h",
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Confirm the blast"},
        "blocks": [],
        "state": {"values": {}},
    }


@pytest.mark.parametrize(
    ("callback_id", "metadata"),
    [
        ("blast_confirm", json.dumps({"blast_id": 42})),
        ("blast_confirm", "not json"),
        ("blast_compose", "not json"),
    ],
)
def test_a_blast_form_smsbridge_no_longer_knows_says_so_in_the_modal(
    harness: Harness, callback_id: str, metadata: str
) -> None:
    response = harness.sender.interaction(
        {
            "type": "view_submission",
            "user": {"id": "USAM"},
            "view": blast_view(callback_id, metadata),
        }
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    assert answer["view"]["blocks"][0]["text"]["text"] == (
        ":x: smsbridge no longer knows this blast form (it was restarted with a new database, "
        "or the form is out of date). Nothing was sent. Close it and start again with "
        "`/sms-blast`."
    )
    assert harness.services.storage.blasts.rows() == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("GARBAGE", "application/json"),
        ("[1, 2]", "application/json"),
        ("payload=%7Bx", "application/x-www-form-urlencoded"),
        ("payload=5", "application/x-www-form-urlencoded"),
    ],
)
def test_a_signed_body_that_is_not_slacks_is_a_400_with_a_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture, body: str, content_type: str
) -> None:
    with caplog.at_level(logging.WARNING):
        response = harness.sender.post(body, content_type)
    assert response.status_code == 400
    assert "Slack request with a body smsbridge cannot read" in caplog.text
