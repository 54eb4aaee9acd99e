"""Staff messages in customer threads: stored before Slack gets its 200, then sent by a job.

A reply is keyed by its Slack message (channel + ts) and by the delivery's ``event_id``, so a
Slack retry or a redelivery with a new event_id never texts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot import blocks
from bridge.storage import Storage

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
)


class Replies:
    """Turns Slack message events into stored outbound messages (or notes) and jobs."""

    def __init__(
        self, storage: Storage, clock: Callable[[], datetime], wake: Callable[[], None]
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.wake = wake

    def on_message(self, event: dict[str, Any], event_id: str) -> None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            self._edited(event)
        elif subtype == "message_deleted":
            self._deleted(event)
        elif subtype in STAFF_SUBTYPES and event.get("user") and not event.get("bot_id"):
            self._staff_message(event, event_id)

    def _staff_message(self, event: dict[str, Any], event_id: str) -> None:
        channel, ts, thread_ts = (
            event.get("channel", ""),
            event.get("ts", ""),
            event.get("thread_ts"),
        )
        if not thread_ts or thread_ts == ts:
            return  # top-level channel chatter
        thread = self.storage.thread_by_ts(channel, thread_ts)
        if thread is None:
            return  # a thread that is not a customer thread
        text = event.get("text", "")
        note = text.lstrip().lower().startswith(blocks.NOTE_PREFIX)
        files = [{k: f.get(k) for k in FILE_FIELDS} for f in event.get("files", [])]
        now = self.clock()
        with self.storage.transaction():
            if not self.storage.first_time(f"slack-event:{event_id}", now):
                return
            source = f"slack:{channel}:{ts}"
            if self.storage.message_by_source(source) is not None:
                return
            customer = self.storage.customer(thread["customer_id"])
            message_id = self.storage.add_message(
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
                    "source_key": source,
                    "created_at": now.isoformat(),
                }
            )
            self.storage.enqueue(
                "mark_note" if note else "send_reply",
                {"message_id": message_id},
                customer_id=customer["id"],
                dedupe_key=f"send:{message_id}",
                now=now,
            )
        self.wake()

    def _edited(self, event: dict[str, Any]) -> None:
        changed = event.get("message", {})
        previous = event.get("previous_message", {})
        if changed.get("text") == previous.get("text"):
            return  # unfurls and reactions also arrive as message_changed
        key = f"edited:{event.get('channel')}:{changed.get('ts')}:{event.get('event_ts')}"
        self._after_send_notice(
            event.get("channel", ""), changed.get("ts", ""), key, "edited", changed.get("user", "")
        )

    def _deleted(self, event: dict[str, Any]) -> None:
        ts = event.get("deleted_ts") or event.get("previous_message", {}).get("ts", "")
        key = f"deleted:{event.get('channel')}:{ts}"
        self._after_send_notice(event.get("channel", ""), ts, key, "deleted", "")

    def _after_send_notice(self, channel: str, ts: str, key: str, what: str, user: str) -> None:
        message = self.storage.message_by_source(f"slack:{channel}:{ts}")
        if message is None or message["status"] != "sent":
            return
        text = (
            blocks.edited_after_send(user or message["staff_user"], message["text"])
            if what == "edited"
            else blocks.deleted_after_send(message["text"])
        )
        now = self.clock()
        with self.storage.transaction():
            if self.storage.first_time(key, now):
                self.storage.enqueue(
                    "post_notice",
                    {"thread_id": message["thread_id"], "text": text},
                    customer_id=message["customer_id"],
                    now=now,
                )
        self.wake()
