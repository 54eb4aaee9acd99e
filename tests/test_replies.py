"""Staff replies in customer threads go out as SMS/MMS exactly once (Bolt + simulator)."""

from __future__ import annotations

import io
import random
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from PIL import Image

from bot.dev.fake_slack import Message
from bridge.store import OPTED_OUT
from tests.conftest import PIZZA_CHANNEL, Harness

JANE = "4155550101"


def sends(harness: Harness) -> list[dict[str, Any]]:
    return [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"]


def open_thread(harness: Harness, status: int = 3, phone: str = JANE) -> Message:
    harness.sim.add_customer("PIZZA", phone, status=status, name="Jane Doe")
    harness.text("PIZZA", phone, "Is my pizza on the way?")
    harness.drain()
    return harness.slack.top_level(PIZZA_CHANNEL)[-1]


def staff_reply(
    harness: Harness,
    parent: Message,
    text: str,
    *,
    user: str = "USAM",
    files: list | None = None,
    event_id: str | None = None,
    retry_num: int | None = None,
    message: Message | None = None,
) -> Message:
    """Staff type in the thread: Slack holds the message and delivers the event to the app."""
    message = message or harness.slack.add_message(
        PIZZA_CHANNEL, text, user=user, thread_ts=parent.ts, files=files
    )
    event: dict[str, Any] = {
        "type": "message",
        "channel": PIZZA_CHANNEL,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": message.ts,
        "thread_ts": parent.ts,
        "event_ts": message.ts,
    }
    if files:
        event.update(subtype="file_share", files=files)
    response = harness.sender.event(event, event_id=event_id, retry_num=retry_num)
    assert response.status_code == 200
    return message


def thread_texts(harness: Harness, parent: Message) -> list[str]:
    return [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]


def reactions(harness: Harness, message: Message) -> list[str]:
    [held] = [m for m in harness.slack.messages if m.ts == message.ts]
    return held.reactions


def test_reply_is_texted_once_and_marked_sent(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Yes! It left 5 minutes ago &amp; will be there soon.")
    harness.drain()

    [call] = sends(harness)
    assert call["keyword"] == "PIZZA"
    assert call["params"]["phone_number"] == JANE
    assert call["params"]["message"] == "Yes! It left 5 minutes ago & will be there soon."
    assert [d.text for d in harness.sim.outbox if d.phone == JANE] == [
        "Yes! It left 5 minutes ago & will be there soon."
    ]
    assert reactions(harness, reply) == ["outbox_tray"]
    stored = harness.services.storage.conversations.message_by_source(
        f"slack:{PIZZA_CHANNEL}:{reply.ts}"
    )
    assert stored["status"] == "sent" and stored["staff_user"] == "USAM"


def test_slack_retry_of_the_same_event_texts_once(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "On its way", event_id="Ev111")
    staff_reply(harness, parent, "On its way", event_id="Ev111", retry_num=1, message=reply)
    harness.drain()
    staff_reply(harness, parent, "On its way", event_id="Ev111", retry_num=2, message=reply)
    harness.drain()
    assert [c["params"]["message"] for c in sends(harness)] == ["On its way"]


def test_the_same_event_id_is_acted_on_once_whatever_it_carries(harness: Harness) -> None:
    """The event_id key alone stops a second delivery (here with a different message ts)."""
    parent = open_thread(harness)
    staff_reply(harness, parent, "First delivery", event_id="Ev300")
    staff_reply(harness, parent, "Second delivery", event_id="Ev300", retry_num=1)
    harness.drain()
    assert [c["params"]["message"] for c in sends(harness)] == ["First delivery"]


def test_redelivery_with_a_new_event_id_texts_once(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "On its way", event_id="Ev201")
    staff_reply(harness, parent, "On its way", event_id="Ev202", message=reply)
    harness.drain()
    assert len(sends(harness)) == 1


def test_restart_between_stored_and_sent_texts_once(harness: Harness) -> None:
    parent = open_thread(harness)
    staff_reply(harness, parent, "Sent across a restart")
    assert sends(harness) == []
    harness.restart()
    harness.drain()
    harness.drain()
    assert [c["params"]["message"] for c in sends(harness)] == ["Sent across a restart"]


def test_crash_after_crm_accepted_but_before_it_was_recorded_texts_once(harness: Harness) -> None:
    """A retried part whose first attempt landed gets CRM Text's duplicate answer: that is sent."""
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Exactly once")
    services = harness.services
    message = services.storage.conversations.message_by_source(f"slack:{PIZZA_CHANNEL}:{reply.ts}")
    # The attempt that died: it marked the message, CRM Text took the text, then the worker died.
    services.storage.conversations.update_message(message["id"], maybe_sent=1)
    services.crm.send_sms("PIZZA", JANE, "Exactly once")
    job = services.storage.jobs.claim(harness.clock(), __import__("datetime").timedelta(0))
    assert job is not None and job.kind == "send_reply"  # the crashed attempt: never finished
    services.storage.jobs.retry(job.id, harness.clock(), "worker died")
    harness.drain()
    assert [d.text for d in harness.sim.outbox if d.phone == JANE] == ["Exactly once"]
    assert services.storage.conversations.message(message["id"])["status"] == "sent"
    assert reactions(harness, reply) == ["outbox_tray"]


def test_a_retry_after_a_clean_failure_does_not_count_a_duplicate_as_sent(
    harness: Harness,
) -> None:
    """The first attempt certainly failed (HTTP 503); the same text went out earlier by other
    means, so CRM Text's duplicate answer is a real refusal, not our own earlier attempt."""
    parent = open_thread(harness)
    harness.services.crm.send_sms("PIZZA", JANE, "Thanks!")  # e.g. sent an hour ago
    harness.sim.fail_next(1)
    reply = staff_reply(harness, parent, "Thanks!")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1].startswith(
        ":x: Not sent: CRM Text blocks the same text to the same customer within 12 hours."
    )


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "user": "UBOT", "bot_id": "BBOT", "text": "our own post"},
        {"type": "message", "subtype": "bot_message", "bot_id": "BOTHER", "text": "another bot"},
        {
            "type": "message",
            "subtype": "message_changed",
            "message": {"ts": "1.1", "text": "x"},
            "previous_message": {"ts": "1.1", "text": "y"},
        },
        {"type": "message", "subtype": "message_deleted", "deleted_ts": "1.1"},
        {"type": "message", "subtype": "channel_join", "user": "USAM", "text": "joined"},
        {"type": "message", "user": "USAM", "text": "top-level chatter"},
        {
            "type": "message",
            "user": "USAM",
            "text": "a thread that is not a customer's",
            "thread_ts": "1700000000.000001",
            "parent_user_id": "UALEX",  # a staff member's own post, not ours
        },
    ],
    ids=[
        "own-post",
        "bot_message",
        "message_changed",
        "message_deleted",
        "channel_join",
        "top-level",
        "other-thread",
    ],
)
def test_events_not_acted_on_are_acknowledged_and_do_nothing(
    harness: Harness, event: dict[str, Any]
) -> None:
    parent = open_thread(harness)
    jobs_before = len(harness.services.storage.jobs.rows())
    ts = harness.slack.add_message(PIZZA_CHANNEL, "x", user="USAM").ts
    event = {"channel": PIZZA_CHANNEL, "ts": ts, "event_ts": ts, **event}
    response = harness.sender.event(event)
    assert response.status_code == 200
    harness.drain()
    assert sends(harness) == []
    assert len(harness.services.storage.jobs.rows()) == jobs_before
    assert thread_texts(harness, parent) == []


def test_reply_in_a_non_store_channel_is_ignored(harness: Harness) -> None:
    open_thread(harness)
    response = harness.sender.event(
        {
            "type": "message",
            "channel": "CRANDOM1",
            "user": "USAM",
            "text": "hi",
            "ts": "2.0",
            "thread_ts": "1.0",
        }
    )
    assert response.status_code == 200
    assert sends(harness) == []


def test_note_prefix_stays_in_slack(harness: Harness) -> None:
    parent = open_thread(harness)
    note = staff_reply(harness, parent, "Note: she's a regular, give her the discount")
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, note) == ["memo"]
    hint = parent.blocks[2]["elements"][0]["text"]
    assert hint.startswith(
        "Reply in this thread to text them (:outbox_tray: sent, :x: not sent). "
        "Start with `note:` to keep a reply in Slack."
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (
            OPTED_OUT,
            ":x: Not sent: this customer opted out, so texting them is blocked. They can "
            "opt back in by texting START.",
        ),
    ],
)
def test_reply_to_a_customer_who_cannot_be_texted_is_blocked_before_crm_text(
    harness: Harness, status: int, reason: str
) -> None:
    parent = open_thread(harness)
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    harness.services.storage.customers.set_status(
        customer["id"], status, how="test", now=harness.clock()
    )
    reply = staff_reply(harness, parent, "Your order is ready")
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1] == reason


def test_over_length_reply_is_not_sent(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "a" * 1601)
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: 1,601 characters is over CRM Text's limit of 1,600. "
        "Shorten it or split it into two replies."
    )


def test_crm_text_twelve_hour_duplicate_answer_is_explained(harness: Harness) -> None:
    parent = open_thread(harness)
    staff_reply(harness, parent, "Thanks for your order!")
    harness.drain()
    second = staff_reply(harness, parent, "Thanks for your order!")
    harness.drain()
    assert len(sends(harness)) == 2  # the second reached CRM Text, which refused it
    assert [d.text for d in harness.sim.outbox if d.phone == JANE] == ["Thanks for your order!"]
    assert reactions(harness, second) == ["x"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: CRM Text blocks the same text to the same customer within 12 hours. "
        "Reword it if you need to send it again."
    )


def test_crm_text_outage_is_retried_with_backoff_then_sent(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(2)
    reply = staff_reply(harness, parent, "Retry me")
    harness.drain()
    assert sends(harness) == []
    for _ in range(2):
        harness.clock.advance(seconds=10)
        harness.drain()
    assert [c["params"]["message"] for c in sends(harness)] == ["Retry me"]
    assert reactions(harness, reply) == ["outbox_tray"]


def test_crm_text_outage_that_lasts_is_reported(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(50)
    reply = staff_reply(harness, parent, "Nobody home")
    for _ in range(10):
        harness.drain()
        harness.clock.advance(minutes=6)
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: CRM Text could not be reached after 8 tries. "
        "Check CRM Text's status, then send the reply again."
    )


def test_long_unicode_reply_shows_encoding_segments_and_billing(harness: Harness) -> None:
    parent = open_thread(harness)
    text = "Your order’s ready " + "x" * 60  # 79 chars, the curly apostrophe forces UCS-2
    staff_reply(harness, parent, text)
    harness.drain()
    assert thread_texts(harness, parent)[-1] == (
        ":straight_ruler: Texted as UCS-2: 79 characters, 2 SMS segments, 1 CRM Text billing unit."
    )


def test_signature_is_appended_and_counted(harness: Harness) -> None:
    from dataclasses import replace

    harness.stop()
    harness.config = replace(harness.config, signatures={"PIZZA": "– {name}, Main St Pizza"})
    harness.start()
    parent = open_thread(harness)
    staff_reply(harness, parent, "a" * 140)
    harness.drain()
    [call] = sends(harness)
    assert call["params"]["message"] == "a" * 140 + "\n– Sam, Main St Pizza"
    assert thread_texts(harness, parent)[-1].startswith(
        ":straight_ruler: Texted as UCS-2: 161 characters, 3 SMS segments"
    )


def test_edit_and_delete_after_send_say_the_customer_has_the_original(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "Pickup at 6")
    harness.drain()
    harness.sender.event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": PIZZA_CHANNEL,
            "message": {
                "ts": reply.ts,
                "user": "USAM",
                "text": "Pickup at 7",
                "thread_ts": parent.ts,
            },
            "previous_message": {"ts": reply.ts, "user": "USAM", "text": "Pickup at 6"},
            "event_ts": "9.1",
            "ts": "9.1",
        }
    )
    harness.sender.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": PIZZA_CHANNEL,
            "deleted_ts": reply.ts,
            "previous_message": {"ts": reply.ts, "text": "Pickup at 7"},
            "event_ts": "9.2",
            "ts": "9.2",
        }
    )
    harness.drain()
    assert thread_texts(harness, parent)[-2:] == [
        ":pencil2: <@USAM> edited a reply that was already texted. "
        "The customer has the original:\n> Pickup at 6",
        ":wastebasket: A reply that was already texted was deleted in Slack. "
        "The customer still has it:\n> Pickup at 6",
    ]
    assert len(sends(harness)) == 1


def noisy_png(size: tuple[int, int] = (1000, 700)) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_picture_reply_goes_out_as_mms_under_450_kb(harness: Harness) -> None:
    parent = open_thread(harness)
    original = noisy_png()
    assert len(original) >= 2_000_000
    file = harness.slack.add_file("F1", original, "image/png", "menu.png")
    reply = staff_reply(harness, parent, "Here's the menu", files=[file])
    harness.drain()

    [call] = sends(harness)
    assert call["params"]["message"] == "Here's the menu"
    mms_url = call["params"]["mmsurl"]
    assert mms_url.startswith("https://bridge.example.com/media/") and mms_url.endswith(".jpg")
    served = httpx.get(harness.server.url + urlparse(mms_url).path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert len(served.content) <= 450_000
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"
    assert reactions(harness, reply) == ["outbox_tray"]
    download = harness.slack.calls_to("file.download")[-1]
    assert download.token == harness.slack.bot_token


def test_tampered_or_expired_media_link_answers_404(harness: Harness) -> None:
    parent = open_thread(harness)
    file = harness.slack.add_file("F2", noisy_png((300, 200)), "image/png", "a.png")
    staff_reply(harness, parent, "pic", files=[file])
    harness.drain()
    path = urlparse(sends(harness)[0]["params"]["mmsurl"]).path
    _, _, expires, signature, name = path.split("/")
    tampered = f"/media/{expires}/{signature[:-2]}xx/{name}"
    other = f"/media/{int(expires) + 3600}/{signature}/{name}"
    assert httpx.get(harness.server.url + tampered).status_code == 404
    assert httpx.get(harness.server.url + other).status_code == 404
    assert httpx.get(harness.server.url + path).status_code == 200
    harness.clock.advance(hours=49)
    assert httpx.get(harness.server.url + path).status_code == 404


def test_several_pictures_go_as_several_mms_and_a_pdf_is_refused(harness: Harness) -> None:
    parent = open_thread(harness)
    files = [
        harness.slack.add_file("F3", noisy_png((200, 200)), "image/png", "one.png"),
        harness.slack.add_file("F4", b"%PDF-1.4 not a picture", "application/pdf", "menu.pdf"),
        harness.slack.add_file("F5", noisy_png((100, 100)), "image/png", "two.png"),
    ]
    staff_reply(harness, parent, "Two pictures", files=files)
    harness.drain()
    calls = sends(harness)
    assert [c["params"]["message"] for c in calls] == ["Two pictures", ""]
    assert all(c["params"]["mmsurl"].endswith(".png") for c in calls)
    assert thread_texts(harness, parent)[1] == (
        ":x: menu.pdf was not sent: That file is not a picture we can text. "
        "Please attach a JPEG, PNG or GIF."
    )


def command(harness: Harness, text: str, user: str = "USAM") -> str:
    response = harness.sender.command("/sms", text, user=user, channel=PIZZA_CHANNEL)
    assert response.status_code == 200
    return response.text


def test_sms_command_to_an_opted_in_number_opens_a_thread_and_texts(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", "4155550199", status=3)
    assert command(harness, "(415) 555-0199 Your table is ready") == (
        "Checking with CRM Text that (415) 555-0199 has opted in…"  # not known here yet
    )
    harness.drain()
    [call] = sends(harness)
    assert (call["params"]["phone_number"], call["params"]["message"]) == (
        "4155550199",
        "Your table is ready",
    )
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert parent.blocks[1]["text"]["text"] == (
        ":outbox_tray: *<@USAM>* texted (415) 555-0199:\n> Your table is ready"
    )
    assert parent.reactions == ["outbox_tray"]
    harness.text("PIZZA", "4155550199", "Be right there")
    harness.drain()
    assert thread_texts(harness, parent) == ["Be right there"]


def test_sms_command_continues_an_existing_thread(harness: Harness) -> None:
    parent = open_thread(harness)
    command(harness, f"{JANE} Following up on your order")
    harness.drain()
    assert thread_texts(harness, parent) == [
        ":outbox_tray: *<@USAM>* texted Jane Doe · (415) 555-0101:\n> Following up on your order"
    ]


def test_sms_command_to_a_new_number_offers_the_opt_in_request(harness: Harness) -> None:
    """Not "Texting…" then "Nothing was sent": why, the opt-in request, and the draft kept
    (held in the customer's thread, texted once they opt in)."""
    assert command(harness, "415-555-0177 Hi there") == (
        "Checking with CRM Text that (415) 555-0177 has opted in…"
    )
    harness.drain()
    assert sends(harness) == []
    [ephemeral] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert ephemeral.text == (
        ":hourglass_flowing_sand: Not sent yet: (415) 555-0177 has not opted in to texts from "
        "this store, and stores may only text customers who opted in. Your text waits in their "
        "thread and is texted once they opt in, or reported as not sent after 24 hours. If they "
        "asked to be texted, send CRM Text's opt-in request:"
    )
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert parent.blocks[1]["text"]["text"] == (
        ":hourglass_flowing_sand: *<@USAM>* wrote to (415) 555-0177 (held until they opt in):\n"
        "> Hi there"
    )
    button = ephemeral.blocks[1]["elements"][0]
    assert button["action_id"] == "send_opt_in" and "confirm" in button

    harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "is_ephemeral": True},
            "actions": [
                {
                    "action_id": "send_opt_in",
                    "block_id": "opt_in_offer",
                    "value": button["value"],
                    "type": "button",
                }
            ],
        }
    )
    harness.drain()
    [call] = [c for c in harness.sim.calls if c["method"] == "optincustomer"]
    assert call["params"]["phone_number"] == "4155550177"
    assert harness.sim.customer_status("PIZZA", "4155550177") == 3
    customer = harness.services.storage.customers.find("PIZZA", "+14155550177")
    [entry] = harness.services.storage.customers.consent_history(customer["id"])
    assert (entry["status_to"], entry["actor"]) == (3, "USAM")
    assert "staff confirmed consent" in entry["how"]
    # PIZZA is a single opt-in store: they are opted in at once, and the draft goes out
    assert [(c["params"]["phone_number"], c["params"]["message"]) for c in sends(harness)] == [
        ("4155550177", "Hi there")
    ]
    assert parent.reactions == ["outbox_tray"]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("555-0123 hello", "“555-0123” is not a valid phone number (US numbers have 10 digits)."),
        (
            "+44 20 7946 0958 hi",
            "“+44 20 7946 0958” is a GB number; CRM Text texts US numbers only.",
        ),
        ("pizza time", "“pizza” is not a phone number."),
        ("4155550101", "What should the text say?"),
    ],
)
def test_sms_command_with_a_bad_number_explains(harness: Harness, text: str, answer: str) -> None:
    assert command(harness, text).startswith(answer)
    harness.drain()
    assert sends(harness) == []


def test_sms_command_outside_a_store_channel_names_the_store_channels(harness: Harness) -> None:
    response = harness.sender.command("/sms", "4155550101 hi", user="USAM", channel="COTHER01")
    assert response.text == "`/sms` works in a store channel: <#CPIZZA01>, <#CCARS001>."


def test_a_file_stored_outside_slack_is_refused_without_sending_the_token(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    external = {
        "id": "FEXT",
        "name": "drive.png",
        "mimetype": "image/png",
        "is_external": True,
        "url_private": "https://drive.example.com/file.png",
        "url_private_download": "https://drive.example.com/file.png",
    }
    reply = staff_reply(harness, parent, "From Drive", files=[external])
    harness.drain()
    assert thread_texts(harness, parent)[1] == (
        ":x: drive.png was not sent: it is stored outside Slack."
    )
    [call] = sends(harness)  # the text still goes out, without a picture
    assert call["params"]["message"] == "From Drive" and "mmsurl" not in call["params"]
    assert reactions(harness, reply) == ["outbox_tray"]


def test_a_login_page_instead_of_the_file_is_a_failure(harness: Harness) -> None:
    parent = open_thread(harness)
    file = harness.slack.add_file("F9", noisy_png((40, 40)), "image/png", "x.png")
    harness.slack.remove_scope("files:read")  # Slack then answers a download with its login page
    staff_reply(harness, parent, "", files=[file])
    harness.drain()
    assert thread_texts(harness, parent)[1] == (
        ":x: x.png was not sent: Slack sent a login page instead of the file (files:read scope?)."
    )
    assert sends(harness) == []


def test_picture_only_reply_to_an_opted_out_customer_never_reaches_crm_text(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.text("PIZZA", JANE, "STOP")
    harness.drain()
    file = harness.slack.add_file("F7", noisy_png((60, 60)), "image/png", "p.png")
    reply = staff_reply(harness, parent, "", files=[file])
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]


def test_expired_pictures_are_removed_at_start(harness: Harness) -> None:
    parent = open_thread(harness)
    file = harness.slack.add_file("F8", noisy_png((40, 40)), "image/png", "a.png")
    staff_reply(harness, parent, "pic", files=[file])
    harness.drain()
    path = urlparse(sends(harness)[0]["params"]["mmsurl"]).path
    media_id = path.rsplit("/", 1)[1].split(".")[0]
    assert harness.services.storage.media.get(media_id) is not None
    harness.clock.advance(hours=73)
    harness.restart()
    assert harness.services.storage.media.get(media_id) is None


def test_a_504_after_crm_text_accepted_the_reply_counts_as_sent(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(1, status=504)  # CRM Text sends it; the gateway loses the answer
    reply = staff_reply(harness, parent, "Your order shipped")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    assert [d.text for d in harness.sim.outbox if d.phone == JANE] == ["Your order shipped"]
    assert reactions(harness, reply) == ["outbox_tray"]


def test_a_reply_whose_outcome_is_unknown_says_so_instead_of_not_sent(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.sim.fail_next(50, status=504)  # every answer is lost after CRM Text acted on it
    staff_reply(harness, parent, "Did this arrive?")
    for _ in range(10):
        harness.drain()
        harness.clock.advance(minutes=6)
    assert thread_texts(harness, parent)[-1] == (
        ":warning: CRM Text stopped answering while this was being sent. The last attempt may "
        "have reached the customer. Check with them before sending it again."
    )
