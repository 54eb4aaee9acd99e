"""Staff messages in customer threads: stored before Slack gets its 200, then sent by a job.

A reply is keyed by its Slack message (channel + ts) and by the delivery's ``event_id``, so a
Slack retry or a redelivery with a new event_id never texts twice. A reply in a thread this
database does not know (a lost disk, another instance) is stored as a ``recover_reply`` job,
which reads the thread's parent from Slack. An edit of a reply that is still queued changes
what is sent; a deletion stops it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot import blocks
from bot.slacktext import to_plain
from bridge import outbound
from bridge.store import Row, Store, iso

log = logging.getLogger(__name__)

STAFF_SUBTYPES = {None, "file_share", "thread_broadcast"}
FILE_FIELDS = (
    "id",
    "name",
    "mimetype",
    "size",
    "url_private",
    "url_private_download",
    "is_external",
    "file_access",
)
EVENT_FIELDS = ("channel", "ts", "thread_ts", "user", "text", "files", "user_profile")
HELD_OR_PENDING = ("pending", "held")  # not handed to CRM Text yet: an edit or delete applies


def may_have_reached(message: Row) -> bool:
    """Could an attempt to send this reply have reached CRM Text (a part went out, or an
    attempt ended without a clear "not done")?"""
    return bool(message["media_posted"] or message["maybe_sent"])


def too_late_to_change(message: Row) -> bool:
    """Is the reply's text no longer ours to change: an attempt is under way or may have
    reached CRM Text (``send_started`` is cleared when an attempt certainly reached nobody)."""
    return bool(message["send_started"]) or may_have_reached(message)


def deleted_before_send(original: str) -> str:
    return (
        ":wastebasket: A reply was deleted before it was texted, so it was not sent:\n"
        f"{blocks.quote(to_plain(original))}"
    )


def store_reply(
    storage: Store, thread: Row, event: dict[str, Any], event_id: str, now: datetime
) -> None:
    """Store a staff message in a customer thread and queue its job (send or mark as note);
    nothing happens twice for one Slack message or one delivery."""
    channel, ts = event.get("channel", ""), event.get("ts", "")
    text = event.get("text", "")
    note = text.lstrip().lower().startswith(blocks.NOTE_PREFIX)
    files = [{k: f.get(k) for k in FILE_FIELDS if k in f} for f in event.get("files") or []]
    profile = event.get("user_profile") or {}
    name = profile.get("display_name") or profile.get("real_name") or None
    with storage.transaction():
        if event_id and not storage.conversations.first_time(f"slack-event:{event_id}", now):
            return
        source = f"slack:{channel}:{ts}"
        if storage.conversations.message_by_source(source) is not None:
            return
        customer = storage.customers.get(thread["customer_id"])
        message_id = storage.conversations.add_message(
            {
                "store": customer["store"],
                "customer_id": customer["id"],
                "thread_id": thread["id"],
                "direction": "note" if note else "out",
                "kind": "mms" if files else "sms",
                "text": text,
                "media": files,
                "slack_ts": ts,
                "status": "note" if note else "pending",
                "staff_user": event.get("user"),
                "staff_name": name,
                "source_key": source,
                "created_at": iso(now),
            }
        )
        storage.jobs.enqueue(
            "mark_note" if note else "send_reply",
            {"message_id": message_id},
            customer_id=customer["id"],
            dedupe_key=f"send:{message_id}",
            now=now,
        )


class Replies:
    """Turns Slack message events into stored outbound messages (or notes) and jobs."""

    def __init__(
        self, storage: Store, clock: Callable[[], datetime], wake: Callable[[], None]
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.wake = wake

    def on_message(
        self, event: dict[str, Any], event_id: str, bot_user_id: str | None = None
    ) -> None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            self._edited(event)
        elif subtype == "message_deleted":
            self._deleted(event)
        elif subtype in STAFF_SUBTYPES and event.get("user") and not event.get("bot_id"):
            self._staff_message(event, event_id, bot_user_id)

    def _staff_message(self, event: dict[str, Any], event_id: str, bot_user_id: str | None) -> None:
        channel, ts, thread_ts = (
            event.get("channel", ""),
            event.get("ts", ""),
            event.get("thread_ts"),
        )
        if not thread_ts or thread_ts == ts:
            return  # top-level channel chatter
        thread = self.storage.conversations.thread_by_ts(channel, thread_ts)
        if thread is not None:
            store_reply(self.storage, thread, event, event_id, self.clock())
        else:
            parent_user = event.get("parent_user_id")
            if parent_user and bot_user_id and parent_user != bot_user_id:
                return  # a reply under a person's (or another app's) post: not a customer thread
            self._recover_later(event, event_id, bot_user_id)
        self.wake()

    def _recover_later(self, event: dict[str, Any], event_id: str, bot_user_id: str | None) -> None:
        """Store the reply as a ``recover_reply`` job: it reads the parent from Slack."""
        now = self.clock()
        channel, ts = event.get("channel", ""), event.get("ts", "")
        with self.storage.transaction():
            if event_id and not self.storage.conversations.first_time(
                f"slack-event:{event_id}", now
            ):
                return
            if self.storage.conversations.message_by_source(f"slack:{channel}:{ts}") is not None:
                return
            self.storage.jobs.enqueue(
                "recover_reply",
                {
                    "event": {k: event[k] for k in EVENT_FIELDS if k in event},
                    "event_id": event_id,
                    "bot_user_id": bot_user_id,
                },
                queue=f"thread:{channel}:{event.get('thread_ts')}",
                dedupe_key=f"recover:{channel}:{ts}",
                now=now,
            )
        log.info("reply %s in unknown thread %s queued for recovery", ts, event.get("thread_ts"))

    def _edited(self, event: dict[str, Any]) -> None:
        changed = event.get("message", {})
        previous = event.get("previous_message", {})
        if changed.get("text") == previous.get("text"):
            return  # unfurls and reactions also arrive as message_changed
        channel, ts, text = event.get("channel", ""), changed.get("ts", ""), changed.get("text", "")
        if self._edit_queued(channel, ts, text) or self._change_recovering(channel, ts, text):
            return
        key = f"edited:{channel}:{ts}:{event.get('event_ts')}"
        self._after_send_notice(channel, ts, key, "edited", changed.get("user", ""))

    def _deleted(self, event: dict[str, Any]) -> None:
        channel = event.get("channel", "")
        ts = event.get("deleted_ts") or event.get("previous_message", {}).get("ts", "")
        if not ts:
            return
        if self._delete_queued(channel, ts) or self._change_recovering(channel, ts, None):
            return
        key = f"deleted:{channel}:{ts}"
        self._after_send_notice(channel, ts, key, "deleted", "")

    def _change_recovering(self, channel: str, ts: str, text: str | None) -> bool:
        """A reply still waiting as a ``recover_reply`` job (its thread unknown here): the
        job sends the edited ``text``, or nothing when ``text`` is None (deleted)."""
        with self.storage.transaction():
            job = self.storage.jobs.waiting(f"recover:{channel}:{ts}")
            if job is None:
                return False
            payload = dict(job["payload"])
            if text is None:
                payload["deleted"] = True
            else:
                payload["event"] = {**payload["event"], "text": text}
            self.storage.jobs.set_payload(job["id"], payload)
        what = "deleted" if text is None else "edited"
        log.info("reply %s, waiting for its thread to be recovered, was %s", ts, what)
        return True

    def _edit_queued(self, channel: str, ts: str, text: str) -> bool:
        """A reply not yet handed to CRM Text: send the edited words instead, or nothing if
        the edit made it a ``note:`` (True if the edit was taken)."""
        now = self.clock()
        with self.storage.transaction():
            message = self.storage.conversations.message_by_source(f"slack:{channel}:{ts}")
            if (
                message is None
                or message["status"] not in HELD_OR_PENDING
                or too_late_to_change(message)
            ):
                return False
            if text.lstrip().lower().startswith(blocks.NOTE_PREFIX):
                self.storage.conversations.update_message(
                    message["id"], text=text, direction="note", status="note"
                )
                self.storage.jobs.enqueue(
                    "mark_note",
                    {"message_id": message["id"]},
                    customer_id=message["customer_id"],
                    dedupe_key=f"note:{message['id']}",
                    now=now,
                )
                self.wake()
                return True
            final = None
            if message["signature"] is not None:
                final = outbound.with_signature(to_plain(text), message["signature"])
            self.storage.conversations.update_message(message["id"], text=text, final_text=final)
        log.info("queued reply %s edited before it was sent", message["id"])
        return True

    def _delete_queued(self, channel: str, ts: str) -> bool:
        """A reply deleted before it was handed to CRM Text: it is not sent; say so."""
        now = self.clock()
        with self.storage.transaction():
            message = self.storage.conversations.message_by_source(f"slack:{channel}:{ts}")
            if (
                message is None
                or message["status"] not in HELD_OR_PENDING
                or too_late_to_change(message)
            ):
                return False
            self.storage.conversations.update_message(message["id"], status="deleted")
            self.storage.jobs.enqueue(
                "post_notice",
                {"thread_id": message["thread_id"], "text": deleted_before_send(message["text"])},
                customer_id=message["customer_id"],
                dedupe_key=f"deleted-before-send:{message['id']}",
                now=now,
            )
        self.wake()
        return True

    def _after_send_notice(self, channel: str, ts: str, key: str, what: str, user: str) -> None:
        """Too late to change what the customer gets: say so in the thread, once."""
        message = self.storage.conversations.message_by_source(f"slack:{channel}:{ts}")
        if message is None:
            return
        if message["status"] == "sent":
            sent = True
        elif message["status"] in ("pending", "unknown") and too_late_to_change(message):
            sent = False  # under way, or an attempt may have reached the customer
        else:
            return  # never texted (failed, blocked, deleted) or a note
        text = (
            blocks.edited_after_send(user or message["staff_user"], message["text"], sent=sent)
            if what == "edited"
            else blocks.deleted_after_send(message["text"], sent=sent)
        )
        now = self.clock()
        with self.storage.transaction():
            if self.storage.conversations.first_time(key, now):
                self.storage.jobs.enqueue(
                    "post_notice",
                    {"thread_id": message["thread_id"], "text": text},
                    customer_id=message["customer_id"],
                    now=now,
                )
        self.wake()
