"""Slack's published sample payloads, run through the real endpoint.

Each file in tests/fixtures/slack/ (see SOURCES.md there) is a request body as Slack sends it,
with ids adapted to the test harness. Each is posted to ``/slack/events`` with a real signature
and must get a 2xx. Where smsbridge acts, the test asserts what people see (the SMS text and
number the simulator received, the exact text in the thread, the modal); where it does not act,
that nothing changed. Values only a live conversation has (the ``ts`` of a real customer
thread, a fresh ``trigger_id``, file URLs on the fake Slack) are filled in at run time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.blast_blocks import COMPOSE, CONFIRM
from bot.dev.fake_crmtext import make_png
from bot.dev.fake_slack import Message
from tests.conftest import PIZZA_CHANNEL, Harness

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
JANE = "4155550101"
FORM = "application/x-www-form-urlencoded"


def load(name: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    assert isinstance(body, dict)
    return body


# -- sending as Slack does ---------------------------------------------------------------------


def post_event(harness: Harness, body: dict[str, Any]) -> httpx.Response:
    return harness.sender.post(json.dumps(body), "application/json")


def post_interaction(harness: Harness, payload: dict[str, Any]) -> httpx.Response:
    payload = dict(payload, trigger_id=harness.sender.trigger_id())
    response = harness.sender.post(urlencode({"payload": json.dumps(payload)}), FORM)
    if response.status_code == 200 and response.content:
        harness.slack.check_interaction_response(payload["type"], response.json())
    return response


def post_command(harness: Harness, form: dict[str, Any]) -> httpx.Response:
    form = dict(form, trigger_id=harness.sender.trigger_id(), response_url="http://127.0.0.1:9/")
    return harness.sender.post(urlencode(form), FORM)


def ok(response: httpx.Response) -> httpx.Response:
    assert 200 <= response.status_code < 300, (response.status_code, response.text)
    return response


# -- the world before and after ----------------------------------------------------------------


def world(harness: Harness) -> dict[str, Any]:
    """Everything a person could see or smsbridge would do next."""
    storage = harness.services.storage
    return {
        "slack calls": [(c.method, c.args) for c in harness.slack.calls if c.method != "auth.test"],
        "slack messages": [
            (m.channel, m.ts, m.text, list(m.reactions)) for m in harness.slack.messages
        ],
        "texts": [(d.phone, d.text) for d in harness.sim.outbox],
        "crm calls": len(harness.sim.calls),
        "jobs": [
            (j["kind"], j["status"]) for s in ("pending", "failed") for j in storage.jobs.rows(s)
        ],
    }


def nothing_changes(harness: Harness, send: Callable[[], httpx.Response]) -> None:
    before = world(harness)
    ok(send())
    harness.drain()
    assert world(harness) == before


def texted(harness: Harness) -> list[tuple[str, str]]:
    return [(d.phone, d.text) for d in harness.sim.outbox if d.kind == "sms"]


def thread_texts(harness: Harness, parent: Message) -> list[str]:
    return [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]


def open_thread(harness: Harness) -> Message:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()
    return harness.slack.top_level(PIZZA_CHANNEL)[-1]


def in_thread(harness: Harness, body: dict[str, Any], parent: Message) -> dict[str, Any]:
    """The recorded event as a reply Slack now holds in the customer's thread."""
    body = copy.deepcopy(body)
    event = body["event"]
    held = harness.slack.add_message(
        PIZZA_CHANNEL,
        event.get("text", ""),
        user=event.get("user") or "UOTHERBOT",
        thread_ts=parent.ts,
    )
    event.update(ts=held.ts, event_ts=held.ts, thread_ts=parent.ts, channel=PIZZA_CHANNEL)
    return body


def sent_reply(harness: Harness, parent: Message, text: str) -> Message:
    """A staff reply already texted to the customer (the thread_reply sample with this text)."""
    body = load("message__thread_reply")
    body["event"]["text"] = text
    body["event_id"] = f"Ev-sent-{text}"
    body = in_thread(harness, body, parent)
    ok(post_event(harness, body))
    harness.drain()
    assert texted(harness)[-1] == (JANE, text)
    [held] = [m for m in harness.slack.messages if m.ts == body["event"]["ts"]]
    return held


# -- message events ----------------------------------------------------------------------------


def test_a_top_level_channel_message_is_not_texted(harness: Harness) -> None:
    open_thread(harness)
    nothing_changes(harness, lambda: post_event(harness, load("message__top_level")))


def test_a_staff_reply_in_a_customer_thread_is_texted(harness: Harness) -> None:
    parent = open_thread(harness)
    body = in_thread(harness, load("message__thread_reply"), parent)
    ok(post_event(harness, body))
    harness.drain()
    assert texted(harness) == [(JANE, "Hello World!")]
    [reply] = [m for m in harness.slack.messages if m.ts == body["event"]["ts"]]
    assert reply.reactions == ["outbox_tray"]


def test_a_reply_also_sent_to_the_channel_is_texted(harness: Harness) -> None:
    parent = open_thread(harness)
    body = in_thread(harness, load("message__thread_broadcast"), parent)
    body["event"]["root"].update(ts=parent.ts, thread_ts=parent.ts)
    ok(post_event(harness, body))
    harness.drain()
    assert texted(harness) == [(JANE, "Hi there!")]


def test_a_picture_shared_in_a_customer_thread_goes_out_as_mms(harness: Harness) -> None:
    parent = open_thread(harness)
    body = in_thread(harness, load("message__file_share"), parent)
    [recorded] = body["event"]["files"]
    held = harness.slack.add_file(recorded["id"], make_png("file.png"), "image/png", "file.png")
    for key in ("url_private", "url_private_download", "permalink"):  # files.slack.com → the fake
        recorded[key] = held[key]
    ok(post_event(harness, body))
    harness.drain()
    [send] = [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"]
    assert send["params"]["phone_number"] == JANE
    assert send["params"]["message"] == "Hi there!"
    assert send["params"]["mmsurl"].startswith("https://bridge.example.com/media/")


def test_a_slack_connect_picture_reply_is_stored_before_the_ack(harness: Harness) -> None:
    """The event carries only ``file_access: check_file_info``; the edge stores the reply with
    the file's id (the send fetches the file through files.info) and texts the words."""
    parent = open_thread(harness)
    body = in_thread(harness, load("message__file_share_slack_connect"), parent)
    harness.slack.add_file(
        "F12345678", make_png("photo.png"), "image/png", "photo.png", connect=True
    )
    ok(post_event(harness, body))
    stored = harness.services.storage.conversations.message_by_source(
        f"slack:{PIZZA_CHANNEL}:{body['event']['ts']}"
    )
    assert stored is not None
    assert [f["id"] for f in json.loads(stored["media"])] == ["F12345678"]
    harness.drain()
    [send, *_] = [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"]
    assert (send["params"]["phone_number"], send["params"]["message"]) == (
        JANE,
        "message message message",
    )


@pytest.mark.parametrize("name", ["message__bot_message", "message__bot_id_without_subtype"])
def test_a_bot_posting_in_a_customer_thread_is_not_texted(harness: Harness, name: str) -> None:
    parent = open_thread(harness)
    body = in_thread(harness, load(name), parent)
    nothing_changes(harness, lambda: post_event(harness, body))


def test_editing_a_texted_reply_is_noted_in_the_thread(harness: Harness) -> None:
    parent = open_thread(harness)
    held = sent_reply(harness, parent, "original message")
    body = load("message__message_changed")
    body["event"]["message"]["ts"] = held.ts
    body["event"]["previous_message"]["ts"] = held.ts
    body["event"]["channel"] = PIZZA_CHANNEL
    ok(post_event(harness, body))
    harness.drain()
    assert thread_texts(harness, parent)[-1] == (
        ":pencil2: <@USAM> edited a reply that was already texted. "
        "The customer has the original:\n> original message"
    )
    assert texted(harness) == [(JANE, "original message")]


def test_deleting_a_texted_reply_is_noted_in_the_thread(harness: Harness) -> None:
    parent = open_thread(harness)
    held = sent_reply(harness, parent, "Delete this message")
    body = load("message__message_deleted")
    body["event"]["deleted_ts"] = held.ts
    body["event"]["previous_message"]["ts"] = held.ts
    ok(post_event(harness, body))
    harness.drain()
    assert thread_texts(harness, parent)[-1] == (
        ":wastebasket: A reply that was already texted was deleted in Slack. "
        "The customer still has it:\n> Delete this message"
    )
    assert texted(harness) == [(JANE, "Delete this message")]


def test_a_thread_reply_notice_is_not_texted(harness: Harness) -> None:
    parent = open_thread(harness)
    body = load("message__message_replied")
    body["event"]["message"].update(ts=parent.ts, thread_ts=parent.ts)
    nothing_changes(harness, lambda: post_event(harness, body))


@pytest.mark.parametrize(
    "name",
    [
        "message__channel_join",
        "message__channel_leave",
        "message__channel_topic",
        "message__channel_purpose",
        "message__channel_name",
        "message__channel_archive",
        "message__me_message",
    ],
)
def test_channel_notices_and_me_messages_change_nothing(harness: Harness, name: str) -> None:
    open_thread(harness)
    nothing_changes(harness, lambda: post_event(harness, load(name)))


def test_unarchiving_the_store_channel_resumes_its_parked_texts_without_a_restart(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "archived")
    harness.text("PIZZA", JANE, "one")
    harness.text("PIZZA", JANE, "two")
    harness.drain()
    assert thread_texts(harness, parent) == []
    harness.slack.set_channel_state(PIZZA_CHANNEL, "ok")  # unarchived, the bot still a member
    ok(post_event(harness, load("message__channel_unarchive")))
    harness.drain()
    assert "\n".join(thread_texts(harness, parent)) == "one\ntwo"  # in order (maybe one post)
    assert harness.services.storage.jobs.rows("parked") == []
    assert httpx.get(f"{harness.server.url}/healthz").status_code == 200
    assert texted(harness) == []


# -- reactions and other events ----------------------------------------------------------------


RESOLVED = ":white_check_mark: Resolved by <@USAM>. The customer's next text opens a new thread."


def test_a_check_mark_on_the_thread_resolves_it(harness: Harness) -> None:
    parent = open_thread(harness)
    body = load("reaction_added__check_mark")
    body["event"]["item"]["ts"] = parent.ts
    ok(post_event(harness, body))
    harness.drain()
    assert thread_texts(harness, parent) == [RESOLVED]
    assert texted(harness) == []


@pytest.mark.parametrize("name", ["reaction_added__other_emoji", "reaction_removed"])
def test_other_reactions_change_nothing(harness: Harness, name: str) -> None:
    parent = open_thread(harness)
    body = load(name)
    body["event"]["item"]["ts"] = parent.ts
    nothing_changes(harness, lambda: post_event(harness, body))


@pytest.mark.parametrize("name", ["app_mention", "app_rate_limited"])
def test_events_smsbridge_does_not_act_on_change_nothing(harness: Harness, name: str) -> None:
    open_thread(harness)
    nothing_changes(harness, lambda: post_event(harness, load(name)))


@pytest.mark.parametrize("name", ["member_joined_channel", "tokens_revoked", "app_uninstalled"])
def test_membership_and_token_events_are_acknowledged_and_text_nobody(
    harness: Harness, name: str
) -> None:
    """Slack health (bot/slack_health.py) acts on these; here: a 2xx and no text."""
    open_thread(harness)
    ok(post_event(harness, load(name)))
    harness.drain()
    assert texted(harness) == []


def test_url_verification_echoes_the_challenge(harness: Harness) -> None:
    body = load("url_verification")
    response = ok(post_event(harness, body))
    assert response.json() == {"challenge": body["challenge"]}


# -- interactivity -----------------------------------------------------------------------------


def test_the_resolve_button_on_the_thread_resolves_it(harness: Harness) -> None:
    parent = open_thread(harness)
    payload = load("block_actions__from_message")
    payload["container"]["message_ts"] = parent.ts
    ok(post_interaction(harness, payload))
    harness.drain()
    assert thread_texts(harness, parent) == [RESOLVED]


def open_compose(harness: Harness, text: str) -> dict[str, Any]:
    ok(post_command(harness, load("slash_command__sms_blast") | {"text": text}))
    harness.drain()
    [view] = [v for v in harness.slack.views.values() if v.get("callback_id") == COMPOSE]
    return view


def as_recorded(recorded: dict[str, Any], live: dict[str, Any], values: dict[str, Any]) -> dict:
    """The recorded view object carrying the live modal's id, hash, blocks and state."""
    keep = ("id", "hash", "callback_id", "private_metadata", "blocks", "title", "submit", "close")
    return {**recorded, **{k: live[k] for k in keep}, "state": {"values": values}}


def typed(text: str) -> dict[str, Any]:
    return {
        "message": {"blast_text": {"type": "plain_text_input", "value": text}},
        "options": {"blast_options": {"type": "checkboxes", "selected_options": []}},
    }


def test_typing_in_the_blast_form_updates_its_preview(harness: Harness) -> None:
    view = open_compose(harness, "Pizza night")
    payload = load("block_actions__from_modal")
    payload["container"]["view_id"] = view["id"]
    payload["view"] = as_recorded(payload["view"], view, typed("Pizza night: 2 for 1!"))
    payload["actions"] = [
        dict(
            payload["actions"][0],
            block_id="message",
            action_id="blast_text",
            value="Pizza night: 2 for 1!",
        )
    ]
    updates = len(harness.slack.calls_to("views.update"))
    ok(post_interaction(harness, payload))
    harness.drain()  # the preview is computed after the ack
    [update] = harness.slack.calls_to("views.update")[updates:]
    assert update.args["view_id"] == view["id"]
    shown = harness.slack.views[view["id"]]
    assert shown["blocks"][0]["element"]["initial_value"] == "Pizza night: 2 for 1!"


def test_submitting_the_blast_form_shows_the_confirmation(harness: Harness) -> None:
    for phone in ("4155550201", "4155550202"):
        harness.sim.add_customer("PIZZA", phone, status=3)
    view = open_compose(harness, "Pizza night: 2 for 1! Reply STOP to opt out")
    payload = load("view_submission")
    payload["view"] = as_recorded(
        payload["view"], view, typed("Pizza night: 2 for 1! Reply STOP to opt out")
    )
    answer = ok(post_interaction(harness, payload)).json()
    assert answer["response_action"] == "update", answer  # "checking…", then the checks run
    harness.drain()
    assert harness.slack.views[view["id"]]["callback_id"] == CONFIRM
    assert texted(harness) == []


def test_closing_a_modal_changes_nothing(harness: Harness) -> None:
    nothing_changes(harness, lambda: post_interaction(harness, load("view_closed")))


def test_the_sms_command_texts_the_message(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", "4155550100", status=3)
    response = ok(post_command(harness, load("slash_command__sms")))
    harness.drain()
    assert response.text == "Checking with CRM Text that (415) 555-0100 has opted in…"
    assert texted(harness) == [("4155550100", "Hi there")]


def test_the_sms_blast_command_opens_the_form(harness: Harness) -> None:
    response = ok(post_command(harness, load("slash_command__sms_blast")))
    assert response.text == ""
    [opened] = harness.slack.calls_to("views.open")
    assert opened.args["view"]["callback_id"] == COMPOSE
    assert opened.args["view"]["blocks"][0]["element"]["initial_value"] == "Pizza night: 2 for 1!"


# -- the folder itself -------------------------------------------------------------------------


REQUIRED = {
    "message__top_level",
    "message__thread_reply",
    "message__bot_message",
    "message__thread_broadcast",
    "message__file_share",
    "message__message_changed",
    "message__message_deleted",
    "message__message_replied",
    "message__channel_join",
    "message__channel_leave",
    "message__channel_topic",
    "message__channel_purpose",
    "message__channel_name",
    "message__channel_archive",
    "message__me_message",
    "reaction_added__check_mark",
    "reaction_removed",
    "member_joined_channel",
    "app_mention",
    "app_rate_limited",
    "tokens_revoked",
    "app_uninstalled",
    "url_verification",
    "block_actions__from_message",
    "block_actions__from_modal",
    "view_submission",
    "view_closed",
    "slash_command__sms",
    "slash_command__sms_blast",
}


def test_every_recorded_payload_is_listed_in_sources_and_used_here() -> None:
    names = {p.stem for p in FIXTURES.glob("*.json")}
    assert REQUIRED <= names
    sources = (FIXTURES / "SOURCES.md").read_text()
    here = Path(__file__).read_text()
    for name in names:
        assert f"`{name}.json`" in sources, name
        assert f'"{name}"' in here, name


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_no_recorded_payload_gets_a_404_or_5xx(harness: Harness, name: str) -> None:
    body = load(name)
    if "command" in body:
        response = post_command(harness, body)
    elif body.get("type") in ("block_actions", "view_submission", "view_closed"):
        response = post_interaction(harness, body)
    else:
        response = post_event(harness, body)
    ok(response)
