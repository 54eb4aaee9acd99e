"""Posts are matched to Slack by what their metadata says (store, number, our random key), and a
staff reply in a thread the database does not know is recovered from the parent's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.dev.fake_slack import Message
from tests import pg_server
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_reply_outcomes import delete, edit

JANE = "4155550101"
BOB = "4155550102"


def parents(harness: Harness) -> list[Message]:
    return harness.slack.top_level(PIZZA_CHANNEL)


def replies(harness: Harness, parent: Message) -> list[str]:
    return [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]


def texted(harness: Harness) -> list[tuple[str, str]]:
    return [(d.phone, d.text) for d in harness.sim.outbox if d.kind != "template"]


def lose_the_database(harness: Harness) -> None:
    harness.stop()
    if harness.config.database_url.startswith("postgresql://"):
        pg_server.reset_database(harness.config.database_url)
    else:
        path = Path(harness.config.sqlite_path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    harness.start()


def staff_types(
    harness: Harness, parent: Message, text: str, *, user: str = "USAM", **extra: Any
) -> Message:
    message = harness.slack.add_message(PIZZA_CHANNEL, text, user=user, thread_ts=parent.ts)
    event = {
        "type": "message",
        "channel": PIZZA_CHANNEL,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": message.ts,
        "thread_ts": parent.ts,
        "parent_user_id": parent.user,
        "event_ts": message.ts,
        **extra,
    }
    assert harness.sender.event(event).status_code == 200
    return message


def test_parent_metadata_carries_store_number_and_a_random_thread_key(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hello")
    harness.text("PIZZA", JANE, "again")
    harness.drain()
    [parent] = parents(harness)
    thread = harness.services.storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)
    assert parent.metadata == {
        "event_type": "smsbridge_thread",
        "event_payload": {
            "store": "PIZZA",
            "phone": "+14155550101",
            "thread_key": thread["thread_key"],
        },
    }
    assert len(thread["thread_key"]) == 32
    [reply] = harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]
    [message] = [
        m
        for m in harness.services.storage.conversations.thread_messages(thread["id"])
        if m["text"] == "again"
    ]
    assert reply.metadata == {
        "event_type": "smsbridge_message",
        "event_payload": {
            "store": "PIZZA",
            "phone": "+14155550101",
            "message_key": message["message_key"],
        },
    }


def test_after_a_lost_database_a_retried_first_post_is_not_matched_to_an_old_parent(
    harness: Harness,
) -> None:
    """Bob's first post fails (Slack 503, nothing posted); the retry must not take Jane's old
    parent (same local thread id 1 in the new database) for Bob's."""
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.sim.add_customer("PIZZA", BOB, status=3)
    harness.text("PIZZA", JANE, "Jane before the disk died")
    harness.drain()
    [jane] = parents(harness)
    lose_the_database(harness)

    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable")
    harness.text("PIZZA", BOB, "Bob after the disk died")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    harness.text("PIZZA", BOB, "Bob's second text")
    harness.drain()

    assert [m.text for m in parents(harness)] == [
        "Text from (415) 555-0101: Jane before the disk died",
        "Text from (415) 555-0102: Bob after the disk died",
    ]
    bob = parents(harness)[1]
    assert replies(harness, jane) == []
    assert replies(harness, bob) == ["Bob's second text"]

    staff_types(harness, bob, "Hi Bob")
    harness.drain()
    assert texted(harness) == [("4155550102", "Hi Bob")]


def test_a_landed_parent_is_found_behind_twenty_parents_opened_meanwhile(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.drop_next("chat.postMessage")  # Slack posts it, the answer never arrives
    harness.text("PIZZA", JANE, "posted once")
    harness.drain()
    for n in range(20):  # other customers' threads open before Jane's job is retried
        harness.text("PIZZA", f"41555502{n:02d}", f"customer {n}")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    mine = [m for m in parents(harness) if "posted once" in m.text]
    assert len(mine) == 1
    assert len(parents(harness)) == 21
    assert all(j["status"] == "done" for j in harness.services.storage.jobs.rows())


def test_a_landed_reply_is_found_in_a_thread_of_250_replies(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first")
    harness.drain()
    [parent] = parents(harness)
    for n in range(250):
        harness.slack.add_message(PIZZA_CHANNEL, f"chatter {n}", user="UALEX", thread_ts=parent.ts)
    harness.slack.drop_next("chat.postMessage")
    harness.text("PIZZA", JANE, "posted once in a long thread")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    assert replies(harness, parent).count("posted once in a long thread") == 1


def test_a_failed_post_that_slack_answered_is_not_looked_up(harness: Harness) -> None:
    """Slack said no (429/5xx with an answer): nothing was posted, so no history read."""
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable")
    harness.text("PIZZA", JANE, "hello")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    assert [m.text for m in parents(harness)] == ["Text from (415) 555-0101: hello"]
    assert harness.slack.calls_to("conversations.history") == []


def test_a_reply_in_a_thread_the_database_lost_is_recovered_and_texted(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()
    [parent] = parents(harness)
    lose_the_database(harness)

    reply = staff_types(harness, parent, "Yes, 10 minutes")
    harness.drain()
    assert texted(harness) == [(JANE, "Yes, 10 minutes")]
    [held] = [m for m in harness.slack.messages if m.ts == reply.ts]
    assert held.reactions == ["outbox_tray"]

    staff_types(harness, parent, "See you soon")  # the thread is known again
    harness.drain()
    assert texted(harness) == [(JANE, "Yes, 10 minutes"), (JANE, "See you soon")]
    harness.text("PIZZA", JANE, "Thanks!")
    harness.drain()
    assert replies(harness, parent)[-1] == "Thanks!"
    assert len(parents(harness)) == 1


def test_a_reply_under_our_post_without_usable_metadata_is_explained(harness: Harness) -> None:
    parent = harness.slack.add_message(PIZZA_CHANNEL, "Text from someone", user="UBOT")
    reply = staff_types(harness, parent, "Hello?")
    harness.drain()
    assert texted(harness) == []
    assert replies(harness, parent) == [
        "Hello?",
        ":x: Not sent: smsbridge has no record of this thread and its first post does not say "
        "which customer it belongs to. Text them with `/sms` instead.",
    ]
    [held] = [m for m in harness.slack.messages if m.ts == reply.ts]
    assert held.reactions == ["x"]


def test_a_reply_in_a_staff_members_own_thread_is_left_alone(harness: Harness) -> None:
    parent = harness.slack.add_message(PIZZA_CHANNEL, "Lunch order?", user="UALEX")
    staff_types(harness, parent, "Pizza!")
    harness.drain()
    assert texted(harness) == []
    assert replies(harness, parent) == ["Pizza!"]
    assert harness.services.storage.jobs.rows() == []


def test_a_landed_parent_is_found_behind_150_channel_posts_on_a_later_page(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.drop_next("chat.postMessage")
    harness.text("PIZZA", JANE, "posted once in a busy channel")
    harness.drain()
    for n in range(150):
        harness.slack.add_message(PIZZA_CHANNEL, f"channel chatter {n}", user="UALEX")
    harness.clock.advance(seconds=5)
    harness.drain()
    mine = [m for m in parents(harness) if "posted once in a busy channel" in m.text]
    assert len(mine) == 1
    history = harness.slack.calls_to("conversations.history")
    assert len(history) == 2 and history[1].args["cursor"]


def test_reconciliation_stays_within_its_call_budget(harness: Harness) -> None:
    from bot.threads import HistoryBudget

    now = [0.0]
    budget = HistoryBudget(harness.services.storage, per_minute=20, clock=lambda: now[0])
    assert [budget.take() for _ in range(20)] == [0.0] * 20
    assert budget.take() == 3.0  # one call every 3 s once the allowance is used
    now[0] += 3.0
    assert budget.take() == 0.0
    assert budget.take() > 0


def test_a_reconciliation_over_budget_waits_and_still_posts_once(harness: Harness) -> None:
    from bot.threads import HistoryBudget, ThreadPoster

    poster = harness.services.runner.handlers["post_inbound"].__self__  # type: ignore[attr-defined]
    assert isinstance(poster, ThreadPoster)
    seconds = [0.0]
    poster.budget = HistoryBudget(harness.services.storage, per_minute=1, clock=lambda: seconds[0])
    assert poster.budget.take() == 0.0  # the minute's allowance is used
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.drop_next("chat.postMessage")
    harness.text("PIZZA", JANE, "posted once under a tight budget")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    assert harness.slack.calls_to("conversations.history") == []  # not yet: over budget
    [job] = harness.services.storage.jobs.rows("pending")
    assert "budget" in job["last_error"]
    seconds[0] += 60
    harness.clock.advance(seconds=60)
    harness.drain()
    assert len(harness.slack.calls_to("conversations.history")) == 1
    assert len([m for m in parents(harness) if "tight budget" in m.text]) == 1


def test_texts_queued_behind_slack_are_posted_together_in_order_with_their_times(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first")
    harness.drain()
    [parent] = parents(harness)
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable", times=5)
    texts = ["Running late", "Maybe 10 min", "Can you hold it?", "Thanks", "See you"]
    for text in texts:
        harness.text("PIZZA", JANE, text)
        harness.drain()  # the first waiting text is retried later; the rest queue behind it
        harness.clock.advance(seconds=10)
    harness.clock.advance(seconds=30)
    harness.drain()

    [combined] = harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]
    assert combined.username == "(415) 555-0101"
    body = combined.blocks or []
    assert body[0]["elements"][0]["text"] == "5 texts that arrived while Slack was catching up:"
    times = [b["elements"][0]["text"] for b in body[1:] if b["type"] == "context"]
    assert times == [f"<!date^{1795543200 + 10 * n}^{{time}}|18:00 UTC>" for n in range(5)]
    shown = [b["text"]["text"] for b in body if b["type"] == "section"]
    assert shown == texts
    assert combined.text == "\n".join(texts)
    assert len(harness.slack.calls_to("chat.postMessage")) == 7  # parent, 5 refused, combined
    harness.text("PIZZA", JANE, "one more")
    harness.drain()
    assert replies(harness, parent)[-1] == "one more"


def test_a_combined_post_that_landed_unanswered_is_not_posted_again(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first")
    harness.drain()
    [parent] = parents(harness)
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable")
    harness.text("PIZZA", JANE, "one")
    harness.drain()
    harness.text("PIZZA", JANE, "two")
    harness.clock.advance(seconds=31)
    harness.slack.drop_next("chat.postMessage")  # the combined post lands, unanswered
    harness.drain()
    harness.clock.advance(seconds=10)
    harness.drain()
    [combined] = harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]
    assert combined.text == "one\ntwo"
    assert all(j["status"] == "done" for j in harness.services.storage.jobs.rows())


def test_a_reply_under_a_blast_progress_message_is_not_explained_as_a_lost_thread(
    harness: Harness,
) -> None:
    progress = harness.slack.add_message(PIZZA_CHANNEL, "Blast: 40 of 120 sent", user="UBOT")
    harness.services.storage.blasts.add(
        {
            "store": "PIZZA",
            "name": "Friday special",
            "status": "sending",
            "progress_channel": PIZZA_CHANNEL,
            "progress_ts": progress.ts,
        }
    )
    staff_types(harness, progress, "Looking good!")
    harness.drain()
    assert texted(harness) == []
    assert replies(harness, progress) == ["Looking good!"]
    assert harness.slack.calls_to("conversations.replies") == []


def test_a_reply_edited_while_its_thread_is_being_recovered_sends_the_edit(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()
    [parent] = parents(harness)
    lose_the_database(harness)
    reply = staff_types(harness, parent, "Pickup at 6")  # waits as a recover_reply job
    edit(harness, parent.ts, reply.ts, "Pickup at 6", "Pickup at 7")
    harness.drain()
    assert texted(harness) == [(JANE, "Pickup at 7")]
    assert replies(harness, parent) == ["Pickup at 6"]  # Slack's copy; no notes
    [held] = [m for m in harness.slack.messages if m.ts == reply.ts]
    assert held.reactions == ["outbox_tray"]


def test_a_reply_deleted_while_its_thread_is_being_recovered_is_not_texted(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()
    [parent] = parents(harness)
    lose_the_database(harness)
    reply = staff_types(harness, parent, "Wrong customer")
    delete(harness, reply)
    harness.drain()
    assert texted(harness) == []
    assert replies(harness, parent) == [
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        "> Wrong customer"
    ]
