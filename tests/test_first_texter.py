"""A customer who is not opted in texts the store first: the thread says so and offers the
opt-in request; a reply typed meanwhile is held, then texted once they opt in (exactly once),
or reported as not sent after 24 hours. Bolt's real request handling, real signatures, the
CRM Text simulator behind our real client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.dev.fake_slack import Message
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_replies import reactions, sends, staff_reply

NEW_GUEST = "4155550188"
FIRST_TEXT = "Hi! Can you text me when my order is ready?"
REPLY = "Sure! It will be ready at 6 & we'll text you."
OFFER = (
    ":wave: (415) 555-0188 has not opted in to texts from this store, so replies here cannot be "
    "texted yet. A reply typed here meanwhile is held and texted once they opt in, or reported "
    "as not sent after 24 hours. If they asked to be texted, send CRM Text's opt-in request."
)
UNTIL = int(datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp())  # the clock's start + 24 h
HELD = (
    ":hourglass_flowing_sand: Held, not sent yet: (415) 555-0188 has not opted in to texts from "
    "this store. It is texted as soon as they opt in; if they have not by "
    f"<!date^{UNTIL}^{{date_short_pretty}} at {{time}}|2026-11-25 18:00 UTC>, it is not sent "
    "and this thread says so."
)
REQUESTED = (
    ":hourglass: <@USAM> confirmed that (415) 555-0188 agreed to texts and sent CRM Text's "
    "opt-in request. They are opt-in pending until they reply YES; the held reply goes out then."
)
RELEASED = ":white_check_mark: (415) 555-0188 opted in, so the held reply is being texted now."
EXPIRED = (
    ":x: Not sent: (415) 555-0188 did not opt in within 24 hours, so this reply was not texted:\n"
    "> Sure! It will be ready at 6 &amp; we'll text you."
)
START_NOTICE = ":white_check_mark: They texted START/YES and are opted in."


def texts_in_thread(harness: Harness, parent: Message) -> list[str]:
    return [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]


def first_text(harness: Harness) -> tuple[Message, Message]:
    """A new guest texts the store (CRM Text has them, not opted in); returns the parent and
    the thread's opt-in offer."""
    harness.text("PIZZA", NEW_GUEST, FIRST_TEXT)
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert texts_in_thread(harness, parent) == [OFFER]
    offer = harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1]
    return parent, offer


def press_in_thread(
    harness: Harness, parent: Message, message: Message, button: dict[str, Any]
) -> None:
    """Staff press a button on a message in the thread (after its confirmation dialog: Slack
    sends block_actions only once staff confirm)."""
    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": PIZZA_CHANNEL,
                "is_ephemeral": False,
                "thread_ts": parent.ts,
            },
            "message": {"ts": message.ts, "thread_ts": parent.ts, "text": message.text},
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": "opt_in_offer",
                    "value": button["value"],
                    "type": "button",
                }
            ],
        }
    )
    assert response.status_code == 200


def test_a_reply_to_a_first_texter_is_held_then_texted_once_when_they_opt_in(
    harness: Harness,
) -> None:
    harness.sim.stores["PIZZA"].double_optin = True  # opt-in request, then their YES
    parent, offer = first_text(harness)
    [button] = offer.blocks[1]["elements"]
    assert button["action_id"] == "send_opt_in"
    assert button["confirm"]["title"]["text"] == "Did they agree to texts?"
    assert button["confirm"]["confirm"]["text"] == "They agreed, send it"

    reply = staff_reply(harness, parent, REPLY.replace("&", "&amp;"))
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["hourglass_flowing_sand"]
    assert texts_in_thread(harness, parent)[-1] == HELD

    press_in_thread(harness, parent, offer, button)
    harness.drain()
    [request] = [c for c in harness.sim.calls if c["method"] == "optincustomer"]
    assert request["params"]["phone_number"] == NEW_GUEST
    assert [(d.phone, d.kind) for d in harness.sim.outbox] == [(NEW_GUEST, "template")]
    assert harness.sim.customer_status("PIZZA", NEW_GUEST) == 4
    assert texts_in_thread(harness, parent)[-1] == REQUESTED
    assert sends(harness) == []

    harness.text("PIZZA", NEW_GUEST, "YES")  # CRM Text opts them in; its callback says so
    harness.drain()
    assert [(c["params"]["phone_number"], c["params"]["message"]) for c in sends(harness)] == [
        (NEW_GUEST, REPLY)
    ]
    assert reactions(harness, reply) == ["hourglass_flowing_sand", "outbox_tray"]
    assert texts_in_thread(harness, parent) == [
        OFFER,
        REPLY.replace("&", "&amp;"),
        HELD,
        REQUESTED,
        "YES",
        RELEASED,
    ]
    assert harness.slack.thread(PIZZA_CHANNEL, parent.ts)[5].blocks[1]["elements"][0]["text"] == (
        START_NOTICE
    )

    harness.text("PIZZA", NEW_GUEST, "YES")  # another opt-in callback, then the hold runs out
    harness.clock.advance(hours=24, seconds=1)
    harness.drain()
    assert len(sends(harness)) == 1
    assert [d.text for d in harness.sim.outbox if d.kind == "sms"] == [REPLY]


def test_a_held_reply_is_reported_not_sent_when_they_never_opt_in(harness: Harness) -> None:
    parent, _ = first_text(harness)
    reply = staff_reply(harness, parent, REPLY.replace("&", "&amp;"))
    harness.drain()
    harness.clock.advance(hours=23, minutes=59)
    harness.drain()
    assert reactions(harness, reply) == ["hourglass_flowing_sand"]

    harness.clock.advance(minutes=1, seconds=1)
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["hourglass_flowing_sand", "x"]
    assert texts_in_thread(harness, parent) == [OFFER, REPLY.replace("&", "&amp;"), HELD, EXPIRED]
    [check] = [c for c in harness.sim.calls if c["method"] == "getcustomerinfo"][-1:]
    assert check["params"]["phone_number"] == NEW_GUEST  # asked CRM Text once more first

    harness.text("PIZZA", NEW_GUEST, "PIZZA")  # opting in later does not send the old reply
    harness.drain()
    assert sends(harness) == []


def test_a_reply_to_a_customer_whose_opt_in_is_pending_is_held_with_the_reason(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", NEW_GUEST, status=4)
    harness.text("PIZZA", NEW_GUEST, "hello?")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    offer = harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1]
    assert offer.text == (
        ":wave: (415) 555-0188's opt-in is pending (they have not replied YES to CRM Text's "
        "opt-in request yet), so replies here cannot be texted yet. A reply typed here meanwhile "
        "is held and texted once they opt in, or reported as not sent after 24 hours."
    )
    assert [b["type"] for b in offer.blocks] == ["section"]  # no second request
    staff_reply(harness, parent, "We open at 9")
    harness.drain()
    assert sends(harness) == []
    assert texts_in_thread(harness, parent)[-1] == HELD.replace(
        "(415) 555-0188 has not opted in to texts from this store",
        "(415) 555-0188's opt-in is pending (they have not replied YES to CRM Text's opt-in "
        "request yet)",
    )


def test_a_held_reply_deleted_in_slack_is_not_sent_when_they_opt_in(harness: Harness) -> None:
    parent, _ = first_text(harness)
    reply = staff_reply(harness, parent, "Wrong thread, sorry")
    harness.drain()
    response = harness.sender.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": PIZZA_CHANNEL,
            "deleted_ts": reply.ts,
            "previous_message": {"ts": reply.ts, "text": "Wrong thread, sorry"},
        }
    )
    assert response.status_code == 200
    harness.text("PIZZA", NEW_GUEST, "PIZZA")
    harness.drain()
    assert sends(harness) == []
    assert (
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        "> Wrong thread, sorry"
    ) in texts_in_thread(harness, parent)


def test_sms_to_a_number_that_opted_out_says_so_at_once_and_shows_the_draft(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", NEW_GUEST, status=3)
    harness.text("PIZZA", NEW_GUEST, "STOP")
    harness.drain()
    response = harness.sender.command(
        "/sms", f"{NEW_GUEST} Your order &amp; drinks are ready", user="USAM", channel=PIZZA_CHANNEL
    )
    assert response.text == (
        ":no_entry_sign: Not sent: (415) 555-0188 opted out of texts from this store, so stores "
        "may not text them. They can opt back in by texting START. Your text was:\n"
        "> Your order &amp; drinks are ready"
    )
    harness.drain()
    assert sends(harness) == []


def test_a_stale_opt_in_button_never_opts_in_a_customer_who_opted_out(harness: Harness) -> None:
    parent, offer = first_text(harness)
    harness.text("PIZZA", NEW_GUEST, "STOP")
    harness.drain()
    press_in_thread(harness, parent, offer, offer.blocks[1]["elements"][0])
    harness.drain()
    assert [c for c in harness.sim.calls if c["method"] == "optincustomer"] == []
    [answer] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert answer.text == (
        ":no_entry_sign: No opt-in request was sent: (415) 555-0188 opted out of texts from this "
        "store. Only they can opt back in, by texting START."
    )


def test_a_reply_waiting_for_an_opt_in_is_reported_at_once_when_they_opt_out(
    harness: Harness,
) -> None:
    parent, _ = first_text(harness)
    reply = staff_reply(harness, parent, REPLY.replace("&", "&amp;"))
    harness.drain()
    harness.text("PIZZA", NEW_GUEST, "STOP")
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["hourglass_flowing_sand", "x"]
    assert texts_in_thread(harness, parent)[-1] == (
        ":x: Not sent: (415) 555-0188 opted out while this reply was held, so this reply was "
        "not texted:\n> Sure! It will be ready at 6 &amp; we'll text you."
    )
    harness.text("PIZZA", NEW_GUEST, "START")  # rejoining later does not send the old reply
    harness.clock.advance(hours=25)
    harness.drain()
    assert sends(harness) == []
    assert (
        texts_in_thread(harness, parent).count(
            ":x: Not sent: (415) 555-0188 opted out while this reply was held, so this reply was "
            "not texted:\n> Sure! It will be ready at 6 &amp; we'll text you."
        )
        == 1
    )
