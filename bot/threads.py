"""Jobs that put customer texts into their Slack threads."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blast_blocks import blast_label
from bot.slackcalls import slack_job
from bridge.jobs import GiveUp
from bridge.keywords import Intent
from bridge.storage import Row, Storage, iso

log = logging.getLogger(__name__)

MAX_MEDIA_BYTES = 5 * 1024 * 1024


@dataclass
class ThreadPoster:
    """Posts inbound texts: a parent for a new thread, replies in order after it."""

    storage: Storage
    client: WebClient
    http: httpx.Client
    clock: Callable[[], datetime]

    # -- jobs -----------------------------------------------------------------------------

    def post_inbound(self, payload: dict[str, Any]) -> None:
        """Post the text (a new parent or a reply), then its pictures; resumable after a crash."""
        message = self.storage.message(payload["message_id"])
        thread = self.storage.thread(message["thread_id"])
        customer = self.storage.customer(message["customer_id"])
        media = json.loads(message["media"] or "[]")
        blast = self.storage.blast(message["blast_id"]) if message["blast_id"] else None
        if not message["slack_ts"] and payload["_attempt"] > 1:
            message, thread = self._reconcile(message, thread)
        if not message["slack_ts"]:
            intent = Intent(message["intent"] or "")
            if thread["ts"] is None:
                ts = self._open_thread(thread, customer, message)
            else:
                text, body = blocks.inbound_reply(
                    message["text"],
                    len(media),
                    intent,
                    message["id"],
                    label=blast_label(blast["name"]) if blast is not None else None,
                    decision=blocks.decision_of(message),
                )
                ts = self._reply(
                    thread["channel_id"],
                    thread["ts"],
                    text,
                    body,
                    customer=customer,
                    metadata=blocks.message_metadata(message["id"]),
                )
            self.storage.update_message(message["id"], slack_ts=ts, status="posted")
            thread = self.storage.thread(thread["id"])
        done = message["media_posted"] or 0
        for n, item in enumerate(media[done:], start=done + 1):
            self._share_picture(thread["channel_id"], thread["ts"], item["url"], n, customer)
            self.storage.update_message(message["id"], media_posted=n)

    def post_outbound(self, message: Row, attempt: int) -> Row:
        """Show a ``/sms`` text in its thread (opening the thread if needed), once."""
        thread = self.storage.thread(message["thread_id"])
        if attempt > 1 and not message["slack_ts"]:
            message, thread = self._reconcile(message, thread)
        if message["slack_ts"]:
            return message
        customer = self.storage.customer(message["customer_id"])
        if thread["ts"] is None:
            ts = self._open_thread(thread, customer, message)
        else:
            body = blocks.outbound_post(f"<@{message['staff_user']}>", customer, message["text"])
            ts = self._reply(
                thread["channel_id"],
                thread["ts"],
                body,
                None,
                metadata=blocks.message_metadata(message["id"]),
            )
        self.storage.update_message(message["id"], slack_ts=ts)
        return self.storage.message(message["id"])

    def post_notice(self, payload: dict[str, Any]) -> None:
        thread = self.storage.thread(payload["thread_id"])
        if thread["ts"] is None:
            raise GiveUp("the thread was never posted")
        self._reply(thread["channel_id"], thread["ts"], payload["text"], None)
        if payload.get("refresh"):
            self.refresh_parent(thread)

    # -- helpers --------------------------------------------------------------------------

    def _open_thread(self, thread: Row, customer: Row, message: Row) -> str:
        text, body = self._parent(thread, customer, message)
        metadata = blocks.thread_metadata(customer, thread["id"])
        with slack_job("open thread"):
            response = self.client.chat_postMessage(
                channel=thread["channel_id"],
                text=text,
                blocks=body,
                metadata=metadata,
                unfurl_links=False,
            )
        ts = str(response["ts"])
        self.storage.set_thread_ts(thread["id"], ts)
        return ts

    def _parent(self, thread: Row, customer: Row, first: Row) -> tuple[str, list[blocks.Block]]:
        """The parent card for a thread whose first message is ``first``, as things are now."""
        store = self.storage.store(customer["store"])
        assert store is not None
        media = json.loads(first["media"] or "[]")
        words = first["text"] if first["text"].strip() else f"(sent {len(media)} picture(s))"
        link, resolved_by = self._previous_link(thread), thread["resolved_by"]
        if first["direction"] == "out":
            who = f"<@{first['staff_user']}>" if first["staff_user"] else "Staff"
            return blocks.parent_post(
                customer, store, first["text"], link, resolved_by, outbound_by=who
            )
        intent = Intent(first["intent"] or "")
        notice = blocks.notice_blocks(intent, first["id"], blocks.decision_of(first))
        if first["blast_id"]:
            notice.insert(
                0, blocks.context(blast_label(self.storage.blast(first["blast_id"])["name"]))
            )
        return blocks.parent_post(customer, store, words, link, resolved_by, notice=notice)

    def _reconcile(self, message: Row, thread: Row) -> tuple[Row, Row]:
        """A retry after a failed post: did the post land anyway (dropped connection, crash
        before saving its ts)? Slack message metadata says which of our messages a post is."""
        channel = thread["channel_id"]
        try:
            if thread["ts"] is None:
                found = self._find_posted(
                    self.client.conversations_history(
                        channel=channel, limit=15, include_all_metadata=True
                    ),
                    blocks.THREAD_EVENT,
                    "thread_id",
                    thread["id"],
                )
                if found:
                    self.storage.set_thread_ts(thread["id"], found)
                    self.storage.update_message(message["id"], slack_ts=found, status="posted")
            else:
                found = self._find_posted(
                    self.client.conversations_replies(
                        channel=channel, ts=thread["ts"], include_all_metadata=True, limit=200
                    ),
                    blocks.MESSAGE_EVENT,
                    "message_id",
                    message["id"],
                )
                if found:
                    self.storage.update_message(message["id"], slack_ts=found, status="posted")
        except SlackApiError as exc:
            log.warning("could not check for an earlier post: %s", exc.response.get("error"))
        return self.storage.message(message["id"]), self.storage.thread(thread["id"])

    @staticmethod
    def _find_posted(response: Any, event_type: str, key: str, value: int) -> str | None:
        for item in response.get("messages", []):
            meta = item.get("metadata") or {}
            if (
                meta.get("event_type") == event_type
                and meta.get("event_payload", {}).get(key) == value
            ):
                return str(item["ts"])
        return None

    def _previous_link(self, thread: Row) -> str | None:
        if thread["previous_id"] is None:
            return None
        previous = self.storage.thread(thread["previous_id"])
        if previous["ts"] is None:
            return None
        try:
            link = self.client.chat_getPermalink(
                channel=previous["channel_id"], message_ts=previous["ts"]
            )
            return str(link["permalink"])
        except SlackApiError:
            log.warning("no permalink for thread %s", previous["id"])
            return None

    def _reply(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        body: list[blocks.Block] | None,
        customer: Row | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        extra: dict[str, Any] = {}
        if customer is not None:
            extra = {"username": blocks.customer_label(customer), "icon_emoji": ":iphone:"}
        if metadata is not None:
            extra["metadata"] = metadata
        with slack_job("reply in thread"):
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=body, **extra
            )
        return str(response["ts"])

    def _share_picture(self, channel: str, thread_ts: str, url: str, n: int, customer: Row) -> None:
        """Download an inbound MMS image and upload it into the thread; else post its link."""
        try:
            content, name = self._download(url, n)
            with slack_job("upload picture"):
                self.client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread_ts,
                    content=content,
                    filename=name,
                    title=f"Picture from {blocks.customer_label(customer)}",
                )
        except (httpx.HTTPError, ValueError, GiveUp) as exc:
            log.warning("picture %s not uploaded (%s); posting the link", url, exc)
            self._reply(channel, thread_ts, blocks.picture_link(url, n), None)

    def _download(self, url: str, n: int) -> tuple[bytes, str]:
        with self.http.stream("GET", url, follow_redirects=True, timeout=15) as response:
            response.raise_for_status()
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            if not kind.startswith("image/"):
                raise ValueError(f"not an image: {kind or 'no content type'}")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_MEDIA_BYTES:
                    raise ValueError("picture larger than 5 MB")
        extension = kind.split("/")[1].replace("jpeg", "jpg")
        stamp = iso(self.clock())[:10]
        return data, f"mms-{stamp}-{n}.{extension}"

    def thread_resolved(self, payload: dict[str, Any]) -> None:
        """Job ``thread_resolved``: mark the parent resolved and say so in the thread."""
        thread = self.storage.thread(payload["thread_id"])
        self.refresh_parent(thread)
        self._reply(
            thread["channel_id"], thread["ts"], blocks.resolved_notice(payload["user"]), None
        )

    def refresh_thread(self, payload: dict[str, Any]) -> None:
        """Job ``refresh_thread``: the customer's status changed; update the parent card."""
        self.refresh_parent(self.storage.thread(payload["thread_id"]))

    def refresh_parent(self, thread: Row) -> None:
        """Re-render the parent card: current opt-in status, resolved or not."""
        messages = self.storage.thread_messages(thread["id"])
        if thread["ts"] is None or not messages:
            return
        customer = self.storage.customer(thread["customer_id"])
        text, body = self._parent(thread, customer, messages[0])
        with slack_job("refresh parent"):
            self.client.chat_update(
                channel=thread["channel_id"], ts=thread["ts"], text=text, blocks=body
            )
