"""What a reply sends is fixed when it is stored; what staff see about it survives Slack errors;
edits and deletions while it is queued are honoured; Slack Connect files are fetched."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.dev.fake_slack import Message
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_replies import (
    JANE,
    noisy_png,
    open_thread,
    reactions,
    sends,
    staff_reply,
    thread_texts,
)


def texted(harness: Harness) -> list[tuple[str, str]]:
    return [(d.phone, d.text) for d in harness.sim.outbox if d.kind != "template"]


def with_signature(harness: Harness) -> None:
    harness.stop()
    harness.config = replace(harness.config, signatures={"PIZZA": "– {name}, Main St Pizza"})
    harness.start()


def retry_until_idle(harness: Harness, rounds: int = 12, minutes: float = 6) -> None:
    """Let time pass and run what is due until no job waits (or ``rounds`` are used up)."""
    for _ in range(rounds):
        harness.drain()
        if not harness.services.storage.jobs.rows("pending"):
            return
        harness.clock.advance(minutes=minutes)


def test_a_retry_after_a_crash_sends_the_same_signed_text_when_users_info_fails(
    harness: Harness,
) -> None:
    """CRM Text took the first attempt but its answer was lost; after a restart users.info
    fails. The retry must send the same bytes, so CRM Text's duplicate guard sees it was ours."""
    with_signature(harness)
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=504)  # CRM Text sends it; the gateway loses the answer
    reply = staff_reply(harness, parent, "Your order shipped")
    harness.drain()
    harness.restart()  # a new process: nothing cached
    harness.slack.fail_next("users.info", status=500, error="internal_error", times=5)
    harness.clock.advance(seconds=5)
    harness.drain()
    assert texted(harness) == [(JANE, "Your order shipped\n– Sam, Main St Pizza")]
    assert reactions(harness, reply) == ["outbox_tray"]


def test_a_failing_users_info_signs_with_the_fallback_name_never_the_user_id(
    harness: Harness,
) -> None:
    with_signature(harness)
    parent = open_thread(harness)
    harness.slack.fail_next("users.info", status=200, error="user_not_found")
    staff_reply(harness, parent, "Ready at 6")
    harness.drain()
    assert texted(harness) == [(JANE, "Ready at 6\n– the team, Main St Pizza")]


def test_users_info_unreachable_never_blocks_a_reply_or_blames_crm_text(harness: Harness) -> None:
    with_signature(harness)
    parent = open_thread(harness)
    harness.slack.drop_next("users.info", times=50)  # Slack never answers users.info
    reply = staff_reply(harness, parent, "Ready at 7")
    retry_until_idle(harness)
    assert texted(harness) == [(JANE, "Ready at 7\n– the team, Main St Pizza")]
    assert reactions(harness, reply) == ["outbox_tray"]
    assert "could not be reached" not in harness.slack.transcript()


def test_the_name_in_the_event_signs_without_asking_slack(harness: Harness) -> None:
    with_signature(harness)
    parent = open_thread(harness)
    message = harness.slack.add_message(PIZZA_CHANNEL, "Hi", user="UALEX", thread_ts=parent.ts)
    harness.sender.event(
        {
            "type": "message",
            "channel": PIZZA_CHANNEL,
            "user": "UALEX",
            "text": "Hi",
            "ts": message.ts,
            "thread_ts": parent.ts,
            "user_profile": {"display_name": "Alex C", "real_name": "Alex Chen"},
        }
    )
    harness.drain()
    assert texted(harness) == [(JANE, "Hi\n– Alex C, Main St Pizza")]
    assert harness.slack.calls_to("users.info") == []


def test_not_sent_to_an_opted_out_customer_is_shown_even_when_slack_failed_at_first(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.text("PIZZA", JANE, "STOP")
    harness.drain()
    harness.slack.fail_next("reactions.add", status=500, error="internal_error")
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable")
    reply = staff_reply(harness, parent, "Your order is ready")
    retry_until_idle(harness, rounds=4, minutes=1)
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: this customer opted out, so texting them is blocked. They can "
        "opt back in by texting START."
    )


def test_the_sent_reaction_and_segments_note_survive_rate_limits(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.slack.fail_next("reactions.add", status=429, retry_after=1, times=3)
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=1, times=3)
    text = "Your order’s ready " + "x" * 60
    reply = staff_reply(harness, parent, text)
    retry_until_idle(harness, minutes=1)
    assert texted(harness) == [(JANE, text)]
    assert reactions(harness, reply) == ["outbox_tray"]
    assert thread_texts(harness, parent)[-1] == (
        ":straight_ruler: Texted as UCS-2: 79 characters, 2 SMS segments, 1 CRM Text billing unit."
    )


def edit(harness: Harness, parent_ts: str, ts: str, before: str, after: str) -> None:
    response = harness.sender.event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": PIZZA_CHANNEL,
            "message": {"ts": ts, "user": "USAM", "text": after, "thread_ts": parent_ts},
            "previous_message": {"ts": ts, "user": "USAM", "text": before},
            "event_ts": "9.1",
            "ts": "9.1",
        }
    )
    assert response.status_code == 200


def test_a_reply_edited_while_queued_sends_the_edit_once(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Pickup at 6")
    edit(harness, parent.ts, reply.ts, "Pickup at 6", "Pickup at 7")
    harness.drain()
    assert texted(harness) == [(JANE, "Pickup at 7")]
    assert reactions(harness, reply) == ["outbox_tray"]
    assert thread_texts(harness, parent) == ["Pickup at 6"]  # no "edited after send" note


def test_a_reply_deleted_while_queued_sends_nothing_and_says_so(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Wrong customer, sorry")
    harness.slack.messages.remove(reply)  # staff delete it in Slack
    response = harness.sender.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": PIZZA_CHANNEL,
            "deleted_ts": reply.ts,
            "previous_message": {"ts": reply.ts, "text": "Wrong customer, sorry"},
            "event_ts": "9.2",
            "ts": "9.2",
        }
    )
    assert response.status_code == 200
    harness.drain()
    assert texted(harness) == []
    assert thread_texts(harness, parent) == [
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        "> Wrong customer, sorry"
    ]


def test_a_slack_connect_file_is_fetched_through_files_info(harness: Harness) -> None:
    parent = open_thread(harness)
    connect_file = harness.slack.add_file(
        "FCONNECT", noisy_png((120, 80)), "image/png", "shared.png", connect=True
    )
    assert "url_private" not in connect_file  # Slack Connect: only the id and file_access
    reply = staff_reply(harness, parent, "From our partner", files=[connect_file])
    harness.drain()
    [call] = sends(harness)
    assert call["params"]["message"] == "From our partner"
    assert call["params"]["mmsurl"].startswith("https://bridge.example.com/media/")
    assert [c.args["file"] for c in harness.slack.calls_to("files.info")] == ["FCONNECT"]
    assert harness.slack.calls_to("file.download")[-1].token == harness.slack.bot_token
    assert reactions(harness, reply) == ["outbox_tray"]


def test_sms_command_texts_at_once_while_slack_is_failing_and_shows_it_later(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", "4155550199", status=3)
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable", times=4)
    response = harness.sender.command(
        "/sms", "4155550199 Your table is ready", user="USAM", channel=PIZZA_CHANNEL
    )
    assert response.status_code == 200
    harness.drain()
    assert texted(harness) == [("4155550199", "Your table is ready")]
    retry_until_idle(harness, rounds=8, minutes=1)
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert parent.blocks[1]["text"]["text"] == (
        ":outbox_tray: *<@USAM>* texted (415) 555-0199:\n> Your table is ready"
    )
    assert parent.reactions == ["outbox_tray"]
    assert "could not be reached" not in harness.slack.transcript()
    assert texted(harness) == [("4155550199", "Your table is ready")]


def test_a_queued_reply_edited_into_a_note_is_not_texted(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Your refund is approved")
    edit(harness, parent.ts, reply.ts, "Your refund is approved", "note: check with Sam first")
    harness.drain()
    assert texted(harness) == []
    assert reactions(harness, reply) == ["memo"]
    assert thread_texts(harness, parent) == ["Your refund is approved"]


def delete(harness: Harness, reply: Message) -> None:
    """Staff delete their reply in Slack: Slack drops it and sends message_deleted."""
    harness.slack.messages.remove(reply)
    response = harness.sender.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": PIZZA_CHANNEL,
            "deleted_ts": reply.ts,
            "previous_message": {"ts": reply.ts, "text": reply.text},
            "event_ts": "9.2",
            "ts": "9.2",
        }
    )
    assert response.status_code == 200


def test_a_reply_edited_after_crm_text_turned_the_first_attempt_away_sends_the_edit_once(
    harness: Harness,
) -> None:
    """A 503 comes from a front that never passed the request on: nothing reached CRM Text,
    so the edit is still in time."""
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=503)
    reply = staff_reply(harness, parent, "Pickup at 6")
    harness.drain()
    assert texted(harness) == []
    edit(harness, parent.ts, reply.ts, "Pickup at 6", "Pickup at 7")
    retry_until_idle(harness, minutes=1)
    assert texted(harness) == [(JANE, "Pickup at 7")]
    assert reactions(harness, reply) == ["outbox_tray"]
    assert thread_texts(harness, parent) == ["Pickup at 6"]  # no "edited after send" note


def test_a_reply_deleted_after_crm_text_turned_the_first_attempt_away_sends_nothing(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=503)
    reply = staff_reply(harness, parent, "Wrong customer, sorry")
    harness.drain()
    delete(harness, reply)
    retry_until_idle(harness, minutes=1)
    assert texted(harness) == []
    assert thread_texts(harness, parent) == [
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        "> Wrong customer, sorry"
    ]


def test_a_reply_edited_after_an_attempt_that_may_have_landed_says_the_customer_gets_the_original(
    harness: Harness,
) -> None:
    """A 504 can come after CRM Text texted it: too late for the edit, and staff are told."""
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=504)  # CRM Text sends it; the gateway loses the answer
    reply = staff_reply(harness, parent, "Pickup at 6")
    harness.drain()
    edit(harness, parent.ts, reply.ts, "Pickup at 6", "Pickup at 7")
    retry_until_idle(harness, minutes=1)
    assert texted(harness) == [(JANE, "Pickup at 6")]
    assert reactions(harness, reply) == ["outbox_tray"]
    assert thread_texts(harness, parent) == [
        "Pickup at 6",
        ":pencil2: <@USAM> edited a reply that smsbridge had already started to text. "
        "The customer gets the original:\n> Pickup at 6",
    ]


def test_a_reply_deleted_after_an_attempt_that_may_have_landed_says_the_customer_gets_it(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=504)
    reply = staff_reply(harness, parent, "Wrong customer, sorry")
    harness.drain()
    delete(harness, reply)
    retry_until_idle(harness, minutes=1)
    assert texted(harness) == [(JANE, "Wrong customer, sorry")]
    assert thread_texts(harness, parent) == [
        ":wastebasket: A reply that smsbridge had already started to text was deleted in "
        "Slack. The customer still gets it:\n> Wrong customer, sorry"
    ]


def test_notices_about_a_deleted_reply_show_its_text_as_the_customer_reads_it(
    harness: Harness,
) -> None:
    """Slack delivers "Fish & chips <3" as ``Fish &amp; chips &lt;3``: shown escaped once."""
    parent = open_thread(harness)
    queued = staff_reply(harness, parent, "Fish &amp; chips &lt;3")
    delete(harness, queued)
    harness.drain()
    sent = staff_reply(harness, parent, "Fish &amp; chips &lt;3 tonight")
    harness.drain()
    delete(harness, sent)
    harness.drain()
    assert texted(harness) == [(JANE, "Fish & chips <3 tonight")]
    assert thread_texts(harness, parent) == [
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        "> Fish &amp; chips &lt;3",
        ":wastebasket: A reply that was already texted was deleted in Slack. "
        "The customer still has it:\n> Fish &amp; chips &lt;3 tonight",
    ]


def test_a_rate_limited_answer_never_sends_the_opt_in_request_twice(harness: Harness) -> None:
    """CRM Text's optincustomer texts the customer: it runs once, whatever Slack answers to
    the confirmation staff should see."""
    harness.slack.fail_next("chat.postEphemeral", status=429, retry_after=1)
    harness.press("send_opt_in", json.dumps({"keyword": "PIZZA", "phone": "+14155550109"}))
    for _ in range(4):
        harness.drain()
        harness.clock.advance(seconds=5)
    assert [c["method"] for c in harness.sim.calls if "optin" in c["method"]] == ["optincustomer"]
    assert [d.phone for d in harness.sim.outbox] == ["4155550109"]
    assert [m.text for m in harness.slack.messages if m.ephemeral_for == "USAM"] == [
        ":white_check_mark: (415) 555-0109 is opted in. Send your text with `/sms` again."
    ]
