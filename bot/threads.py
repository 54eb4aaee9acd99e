"""Jobs that put customer texts (and ``/sms`` texts) into their Slack threads, exactly once.

Every post carries Slack message metadata naming store, number and a random key (the
thread's or the message's). When an attempt got no answer (a dropped connection, a crash),
the next attempt first pages through conversations.history/replies for a post with that key,
from a Slack ts known to be older than the first attempt, within a call budget shared by every
process (kept in the database: Slack's allowance is per workspace, not per process).
A staff reply in a thread with no row here is recovered from the parent's metadata.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blast_blocks import blast_label
from bot.replies import deleted_before_send, store_reply
from bot.slackcalls import slack_job
from bot.slacktext import to_plain
from bridge.held import HELD
from bridge.jobs import GiveUp, Retry
from bridge.keywords import Intent
from bridge.medialinks import (
    DEFAULT_INBOUND_MEDIA_HOSTS,
    MAX_PICTURES,
    MediaFailed,
    MediaHost,
    MediaRefused,
    Resolver,
    fetch,
    media_hosts,
    resolve,
)
from bridge.store import NEW, PENDING, ClaimedJob, Row, Store, iso, parse_iso

log = logging.getLogger(__name__)

MEDIA_DEADLINE = 30.0  # seconds for a whole picture download, redirects included

# Reconciliation reads conversations.history / conversations.replies, Tier 3 methods (about 50
# calls a minute per workspace; 1 a minute with at most 15 messages for non-Marketplace apps).
# smsbridge allows itself HISTORY_CALLS_PER_MINUTE of them, however many processes run (one
# budget in the database, shared by both methods and every process), reads
# at most MAX_PAGES pages per look-up, and only looks when a post attempt ended without an
# answer from Slack (a dropped connection or a crash): an answered error means nothing posted.
HISTORY_CALLS_PER_MINUTE = 20
PAGE_SIZE = 100  # Slack may hand back fewer (15 for non-Marketplace apps): we follow cursors
MAX_PAGES = 10


def thread_metadata(customer: Row, thread: Row) -> dict[str, Any]:
    """Slack message metadata on every parent: whose thread it is, and its random key."""
    return {
        "event_type": blocks.THREAD_EVENT,
        "event_payload": {
            "store": customer["store"],
            "phone": customer["phone"],
            "thread_key": thread["thread_key"],
        },
    }


def message_metadata(customer: Row, message: Row) -> dict[str, Any]:
    """Metadata on each text posted into a thread, so a retry can tell that it landed."""
    return {
        "event_type": blocks.MESSAGE_EVENT,
        "event_payload": {
            "store": customer["store"],
            "phone": customer["phone"],
            "message_key": message["message_key"],
        },
    }


# Texts that waited this long behind Slack (an outage, rate limits) are posted together.
COMBINE_AFTER = timedelta(seconds=30)
COMBINE_MAX = 10
COMBINE_CHARS = 2_400


def _combinable(message: Row) -> bool:
    """A plain customer text: no pictures, no consent meaning, not a blast reply."""
    return (
        message["direction"] == "in"
        and not json.loads(message["media"] or "[]")
        and not message["intent"]
        and not message["blast_id"]
    )


def combined_post(group: list[Row]) -> tuple[str, list[blocks.Block]]:
    """Several queued texts in one post, in order, each under the time it arrived (shown in
    each reader's own time zone by Slack)."""
    body: list[blocks.Block] = [
        blocks.context(f"{len(group)} texts that arrived while Slack was catching up:")
    ]
    fallback = []
    for message in group:
        at = parse_iso(message["provider_time"] or message["created_at"])
        stamp = f"<!date^{int(at.timestamp())}^{{time}}|{at.strftime('%H:%M')} UTC>"
        text, blocks_of_text = blocks.inbound_reply(message["text"], 0, Intent.NONE, message["id"])
        body.append(blocks.context(stamp))
        body.extend(blocks_of_text)
        fallback.append(text)
    return "\n".join(fallback), body


def not_recoverable() -> str:
    return (
        ":x: Not sent: smsbridge has no record of this thread and its first post does not say "
        "which customer it belongs to. Text them with `/sms` instead."
    )


class HistoryBudget:
    """The conversations.history/replies call budget, a token bucket in the database: every
    process draws on the same allowance (:meth:`bridge.store.slack.SlackState.take_budget`)."""

    NAME = "slack history"

    def __init__(
        self,
        storage: Store,
        per_minute: int = HISTORY_CALLS_PER_MINUTE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.per_minute = per_minute
        self.clock = clock  # wall-clock seconds: processes share it

    def take(self) -> float:
        """Use one call; 0.0 when allowed, else the seconds to wait before trying again."""
        return self.storage.slack.take_budget(self.NAME, self.clock(), self.per_minute)


@dataclass
class ThreadPoster:
    """Posts inbound texts: a parent for a new thread, replies in order after it."""

    storage: Store
    client: WebClient
    http: httpx.Client
    clock: Callable[[], datetime]
    budget: HistoryBudget = field(init=False)
    page_size: int = PAGE_SIZE
    media_deadline: float = MEDIA_DEADLINE
    media_hosts: tuple[MediaHost, ...] = media_hosts(DEFAULT_INBOUND_MEDIA_HOSTS)
    resolver: Resolver = resolve
    # Who the bot is (auth.test), asked once: the same answer in every process, so a copy per
    # process is harmless.
    _bot_user: str | None = None

    def __post_init__(self) -> None:
        self.budget = HistoryBudget(self.storage)

    # -- jobs -----------------------------------------------------------------------------

    def post_inbound(self, payload: dict[str, Any]) -> None:
        """Post the text (a new parent or a reply), then its pictures; resumable after a crash."""
        message = self.storage.conversations.message(payload["message_id"])
        thread = self.storage.conversations.thread(message["thread_id"])
        customer = self.storage.customers.get(message["customer_id"])
        media = json.loads(message["media"] or "[]")
        blast = self.storage.blasts.get(message["blast_id"]) if message["blast_id"] else None
        if not message["slack_ts"]:
            intent = Intent(message["intent"] or "")
            if thread["ts"] is None:
                ts = self._open_thread(thread, customer, message)
            else:
                group = self._backlog(thread, message)
                if len(group) > 1:
                    text, body = combined_post(group)
                else:
                    text, body = blocks.inbound_reply(
                        message["text"],
                        len(media),
                        intent,
                        message["id"],
                        label=blast_label(blast["name"]) if blast is not None else None,
                        decision=blocks.decision_of(message),
                    )
                ts = self._post_in_thread(thread, customer, message, text, body, as_customer=True)
                with self.storage.transaction():
                    for other in group[1:]:
                        self.storage.conversations.update_message(
                            other["id"], slack_ts=ts, status="posted"
                        )
            self.storage.conversations.update_message(message["id"], slack_ts=ts, status="posted")
            thread = self.storage.conversations.thread(thread["id"])
        done = message["media_posted"] or 0
        now = self.clock()
        with self.storage.transaction():  # pictures download in their own lane (slow senders)
            for n in range(done + 1, min(len(media), MAX_PICTURES) + 1):
                self.storage.jobs.enqueue(
                    "share_picture",
                    {"message_id": message["id"], "n": n},
                    customer_id=customer["id"],
                    dedupe_key=f"share_picture:{message['id']}:{n}",
                    now=now,
                )
            if len(media) > MAX_PICTURES:
                self.storage.jobs.enqueue(
                    "post_notice",
                    {
                        "thread_id": thread["id"],
                        "text": blocks.pictures_over_cap(len(media), MAX_PICTURES),
                    },
                    customer_id=customer["id"],
                    dedupe_key=f"pictures_over_cap:{message['id']}",
                    now=now,
                )

    def share_picture(self, payload: dict[str, Any]) -> None:
        """Job ``share_picture`` (media lane): download picture ``n`` of an inbound MMS within
        :attr:`media_deadline` and upload it into the thread, else post its link; once."""
        message = self.storage.conversations.message(payload["message_id"])
        n = int(payload["n"])
        if (message["media_posted"] or 0) >= n:
            return
        thread = self.storage.conversations.thread(message["thread_id"])
        customer = self.storage.customers.get(message["customer_id"])
        item = json.loads(message["media"] or "[]")[n - 1]
        self._share_picture(thread["channel_id"], thread["ts"], item["url"], n, customer)
        self.storage.conversations.update_message(message["id"], media_posted=n)

    def picture_gave_up(self, job: ClaimedJob, error: str) -> None:
        """A ``share_picture`` job that will not be tried again (it kept killing its worker:
        out of memory?): say so in the thread, with the link, so no picture goes unmentioned."""
        message = self.storage.conversations.message(job.payload["message_id"])
        n = int(job.payload["n"])
        if (message["media_posted"] or 0) >= n:
            return
        url = json.loads(message["media"] or "[]")[n - 1]["url"]
        lost = job.lost
        log.error("gave up on picture %s of message %s: %s", n, message["id"], error)
        why = (
            f"fetching it stopped smsbridge's worker {lost} times, out of memory?"
            if lost
            else error
        )
        self.storage.jobs.enqueue(
            "post_notice",
            {"thread_id": message["thread_id"], "text": blocks.picture_link(url, n, why)},
            customer_id=message["customer_id"],
            dedupe_key=f"picture_gave_up:{message['id']}:{n}",
            now=self.clock(),
        )

    def _backlog(self, thread: Row, message: Row) -> list[Row]:
        """The texts this post carries: just ``message``, or, when the customer's plain texts
        have queued up behind Slack (``message`` waited COMBINE_AFTER or longer), it and the
        ones right after it, in order. The group is fixed while an attempt may have landed
        (no answer from Slack), so a retry posts, and looks for, the same group. Fewer
        chat.postMessage calls under Slack's 1 message/s per channel."""
        if message["post_tried"]:  # the last attempt may have landed: post the same again
            fixed = self.storage.conversations.posted_with(message["id"])
            return fixed if message["posted_with"] == message["id"] else [message]
        if not _combinable(message):
            return [message]
        waited = self.clock() - parse_iso(message["created_at"])
        if waited < COMBINE_AFTER:
            return [message]
        group = [message]
        for other in self.storage.conversations.unposted_after(
            thread["id"], message["id"], COMBINE_MAX - 1
        ):
            if other["slack_ts"] or not _combinable(other):
                break
            if other["posted_with"] not in (None, message["id"]):
                break
            if sum(len(m["text"]) for m in [*group, other]) > COMBINE_CHARS:
                break
            group.append(other)
        with self.storage.transaction():  # nothing landed before: the group may have grown
            for member in self.storage.conversations.posted_with(message["id"]):
                self.storage.conversations.update_message(member["id"], posted_with=None)
            for member in group if len(group) > 1 else []:
                self.storage.conversations.update_message(member["id"], posted_with=message["id"])
        if len(group) > 1:
            log.info("posting %s queued texts of thread %s as one", len(group), thread["id"])
        return group

    def post_outbound(self, payload: dict[str, Any]) -> None:
        """Job ``post_outbound``: show a ``/sms`` text in its thread (opening it if needed), once.
        It runs in the Slack lane, so a stuck Slack never holds the text itself back."""
        message = self.storage.conversations.message(payload["message_id"])
        if message["slack_ts"]:
            return
        thread = self.storage.conversations.thread(message["thread_id"])
        customer = self.storage.customers.get(message["customer_id"])
        if thread["ts"] is None:
            ts = self._open_thread(thread, customer, message)
        else:
            who = f"<@{message['staff_user']}>" if message["staff_user"] else "Staff"
            if message["status"] == HELD:
                text = blocks.held_outbound_post(who, customer, message["text"])
            else:
                text = blocks.outbound_post(who, customer, message["text"])
            ts = self._post_in_thread(thread, customer, message, text, None, as_customer=False)
        self.storage.conversations.update_message(message["id"], slack_ts=ts)

    def offer_opt_in(self, payload: dict[str, Any]) -> None:
        """Job ``offer_opt_in``: a customer who is not opted in texted; say so in their thread,
        with the opt-in request button for a new guest (unless they opted in meanwhile)."""
        thread = self.storage.conversations.thread(payload["thread_id"])
        customer = self.storage.customers.get(thread["customer_id"])
        if customer["status"] not in (NEW, PENDING):
            return
        if thread["ts"] is None:
            raise GiveUp("the thread was never posted")
        text, body = blocks.first_texter_notice(customer, customer["status"])
        with slack_job("offer the opt-in request"):
            self.client.chat_postMessage(
                channel=thread["channel_id"], thread_ts=thread["ts"], text=text, blocks=body
            )

    def post_notice(self, payload: dict[str, Any]) -> None:
        thread = self.storage.conversations.thread(payload["thread_id"])
        if thread["ts"] is None:
            raise GiveUp("the thread was never posted")
        self._reply(thread["channel_id"], thread["ts"], payload["text"])
        if payload.get("refresh"):
            self.refresh_parent(thread)

    # -- helpers --------------------------------------------------------------------------

    def _open_thread(self, thread: Row, customer: Row, message: Row) -> str:
        """Post the parent once: after an attempt that got no answer, look for it first."""
        channel = thread["channel_id"]
        if thread["post_tried"]:
            found = self._find_parent(thread, customer)
            if found:
                self.storage.conversations.set_thread_ts(thread["id"], found)
                self.storage.conversations.update_thread(thread["id"], post_tried=0)
                return found
        else:  # posts older than this one: where a later look-up may stop
            anchor = self.storage.conversations.newest_parent_ts(channel)
            self.storage.conversations.update_thread(thread["id"], post_tried=1, post_after=anchor)
        text, body = self._parent(thread, customer, message)
        with slack_job("open thread"), self._answered(lambda: self._untried("threads", thread)):
            response = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=body,
                metadata=thread_metadata(customer, thread),
                unfurl_links=False,
            )
        ts = str(response["ts"])
        self.storage.conversations.set_thread_ts(thread["id"], ts)
        self.storage.conversations.update_thread(thread["id"], post_tried=0)
        return ts

    def _post_in_thread(
        self,
        thread: Row,
        customer: Row,
        message: Row,
        text: str,
        body: list[blocks.Block] | None,
        *,
        as_customer: bool,
    ) -> str:
        """Post one of our texts into its thread once, tagged with the message's key."""
        if message["post_tried"]:
            found = self._find_in_thread(thread, customer, message)
            if found:
                self.storage.conversations.update_message(message["id"], post_tried=0)
                return found
        else:
            anchor = self.storage.conversations.newest_thread_ts(thread["id"], but=message["id"])
            self.storage.conversations.update_message(
                message["id"], post_tried=1, post_after=anchor
            )
        extra: dict[str, Any] = {"metadata": message_metadata(customer, message)}
        if as_customer:
            extra.update(username=blocks.customer_label(customer), icon_emoji=":iphone:")
        with (
            slack_job("reply in thread"),
            self._answered(lambda: self._untried("messages", message)),
        ):
            response = self.client.chat_postMessage(
                channel=thread["channel_id"],
                thread_ts=thread["ts"],
                text=text,
                blocks=body,
                **extra,
            )
        self.storage.conversations.update_message(message["id"], post_tried=0)
        return str(response["ts"])

    def _untried(self, table: str, row: Row) -> None:
        if table == "threads":
            self.storage.conversations.update_thread(row["id"], post_tried=0)
        else:
            self.storage.conversations.update_message(row["id"], post_tried=0)

    @staticmethod
    @contextmanager
    def _answered(forget: Callable[[], None]) -> Iterator[None]:
        """Slack answered with an error (``fatal_error`` aside), or the post was held back
        before it was sent (our own pacing raises :class:`Retry`): nothing was posted, so the
        next attempt need not look for it. No answer at all (a dropped connection, a timeout,
        a crash): it may have landed, and the next attempt looks first."""
        try:
            yield
        except SlackApiError as exc:
            if exc.response is not None and exc.response.get("error") != "fatal_error":
                forget()
            raise
        except Retry:
            forget()
            raise

    def _parent(self, thread: Row, customer: Row, first: Row) -> tuple[str, list[blocks.Block]]:
        """The parent card for a thread whose first message is ``first``, as things are now."""
        store = self.storage.stores.get(customer["store"])
        assert store is not None
        media = json.loads(first["media"] or "[]")
        words = first["text"] if first["text"].strip() else f"(sent {len(media)} picture(s))"
        link, resolved_by = self._previous_link(thread), thread["resolved_by"]
        if first["direction"] == "out":
            who = f"<@{first['staff_user']}>" if first["staff_user"] else "Staff"
            return blocks.parent_post(  # staff text is Slack markup: shown as texted
                customer,
                store,
                to_plain(first["text"]),
                link,
                resolved_by,
                outbound_by=who,
                held=first["status"] == HELD,
            )
        intent = Intent(first["intent"] or "")
        notice = blocks.notice_blocks(intent, first["id"], blocks.decision_of(first))
        if first["blast_id"]:
            notice.insert(
                0, blocks.context(blast_label(self.storage.blasts.get(first["blast_id"])["name"]))
            )
        return blocks.parent_post(customer, store, words, link, resolved_by, notice=notice)

    # -- reconciliation: did an unanswered post land? --------------------------------------

    def _find_parent(self, thread: Row, customer: Row) -> str | None:
        """Page back through the channel (newest first, not before the newest parent we knew
        of when the first attempt started) for a parent carrying this thread's key."""
        wanted = thread_metadata(customer, thread)
        args: dict[str, Any] = {"channel": thread["channel_id"]}
        if thread["post_after"]:
            args["oldest"] = thread["post_after"]
        for item in self._pages("conversations_history", args):
            if _same(item.get("metadata"), wanted):
                return str(item["ts"])
        return None

    def _find_in_thread(self, thread: Row, customer: Row, message: Row) -> str | None:
        """Page through the thread's replies (from the newest we knew of before the first
        attempt) for a post carrying this message's key."""
        wanted = message_metadata(customer, message)
        args: dict[str, Any] = {
            "channel": thread["channel_id"],
            "ts": thread["ts"],
            "oldest": message["post_after"] or thread["ts"],
        }
        for item in self._pages("conversations_replies", args):
            if _same(item.get("metadata"), wanted) and item.get("ts") != thread["ts"]:
                return str(item["ts"])
        return None

    def _pages(self, method: str, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Messages from up to MAX_PAGES pages, within the shared call budget."""
        cursor = ""
        for _ in range(MAX_PAGES):
            wait = self.budget.take()
            if wait > 0:
                raise Retry("looking for an earlier post: history call budget used", delay=wait)
            with slack_job("look for an earlier post"):
                response = getattr(self.client, method)(
                    **args,
                    include_all_metadata=True,
                    limit=self.page_size,
                    **({"cursor": cursor} if cursor else {}),
                )
            yield from response.get("messages", [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or ""
            if not response.get("has_more") or not cursor:
                return
        log.warning("looked through %s pages of %s without finding the post", MAX_PAGES, method)

    # -- replies in threads the database does not know -------------------------------------

    def recover_reply(self, payload: dict[str, Any]) -> None:
        """Job ``recover_reply``: a staff reply in a thread we have no row for (lost database,
        another instance). The parent's metadata names store and number: rebuild the customer
        and thread and send the reply; a parent of ours that says nothing usable is explained
        in the thread; anyone else's thread is left alone."""
        event = payload["event"]
        channel, thread_ts = event["channel"], event["thread_ts"]
        thread = self.storage.conversations.thread_by_ts(channel, thread_ts)
        if thread is None:
            if self.storage.blasts.by_progress(channel, thread_ts) is not None:
                log.info("reply %s is in a blast's progress thread", event.get("ts"))
                return
            parent = self._parent_of(channel, thread_ts)
            if parent is None or not self._is_ours(parent, payload.get("bot_user_id")):
                log.info("reply %s is in a thread that is not a customer's", event.get("ts"))
                return
            thread = self._rebuild_thread(channel, thread_ts, parent)
            if thread is None:
                log.warning("reply %s: our parent %s names no customer", event["ts"], thread_ts)
                if self._deleted_meanwhile(channel, event["ts"]):
                    return
                self._explain_unrecoverable(channel, thread_ts, event["ts"])
                return
            log.info("rebuilt thread %s (%s) from its parent's metadata", thread["id"], thread_ts)
        key = f"recover:{channel}:{event['ts']}"
        with self.storage.transaction():  # an edit or deletion may have come in meanwhile
            latest = self.storage.jobs.waiting(key)
            if latest is not None:
                payload = latest["payload"]
            if payload.get("deleted"):
                self.storage.jobs.enqueue(
                    "post_notice",
                    {
                        "thread_id": thread["id"],
                        "text": deleted_before_send(payload["event"].get("text", "")),
                    },
                    customer_id=thread["customer_id"],
                    dedupe_key=f"deleted-before-send:{key}",
                    now=self.clock(),
                )
                return
            store_reply(self.storage, thread, payload["event"], "", self.clock())  # id used

    def _deleted_meanwhile(self, channel: str, ts: str) -> bool:
        latest = self.storage.jobs.waiting(f"recover:{channel}:{ts}")
        return latest is not None and bool(latest["payload"].get("deleted"))

    def _parent_of(self, channel: str, thread_ts: str) -> dict[str, Any] | None:
        wait = self.budget.take()
        if wait > 0:
            raise Retry("reading a thread's parent: history call budget used", delay=wait)
        with slack_job("read the thread's parent"):
            try:
                response = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=1, include_all_metadata=True
                )
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error in ("thread_not_found", "message_not_found"):
                    return None
                raise
        messages: list[dict[str, Any]] = response.get("messages") or []
        return next((dict(m) for m in messages if m.get("ts") == thread_ts), None)

    def _is_ours(self, parent: dict[str, Any], bot_user: str | None) -> bool:
        meta = parent.get("metadata") or {}
        if meta.get("event_type") == blocks.THREAD_EVENT:
            return True
        return bool(parent.get("user")) and parent.get("user") == (bot_user or self._me())

    def _me(self) -> str:
        if self._bot_user is None:
            with slack_job("who am I"):
                self._bot_user = str(self.client.auth_test()["user_id"])
        return self._bot_user

    def _rebuild_thread(self, channel: str, thread_ts: str, parent: dict[str, Any]) -> Row | None:
        meta = parent.get("metadata") or {}
        data = meta.get("event_payload") or {}
        store, phone = str(data.get("store") or ""), str(data.get("phone") or "")
        if meta.get("event_type") != blocks.THREAD_EVENT or not phone.startswith("+"):
            return None
        known = self.storage.stores.get(store)
        if known is None or known["channel_id"] != channel:
            return None
        now = self.clock()
        with self.storage.transaction():
            customer = self.storage.customers.upsert(known["keyword"], phone, now=now)
            key = str(data.get("thread_key") or "") or _new_key()
            thread = self.storage.conversations.add_known_thread(
                customer["id"], channel, thread_ts, key, now
            )
            if customer["status"] == NEW:  # consent lives in CRM Text: ask before sending
                self.storage.jobs.enqueue(
                    "crm_status_check",
                    {"customer_id": customer["id"], "thread_id": thread["id"]},
                    customer_id=customer["id"],
                    now=now,
                )
        return thread

    def _explain_unrecoverable(self, channel: str, thread_ts: str, reply_ts: str) -> None:
        with slack_job("mark the reply not sent"):
            try:
                self.client.reactions_add(
                    channel=channel, timestamp=reply_ts, name=blocks.REACTION_FAILED
                )
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error not in ("already_reacted", "message_not_found"):
                    raise
        self._reply(channel, thread_ts, not_recoverable())

    def _previous_link(self, thread: Row) -> str | None:
        if thread["previous_id"] is None:
            return None
        previous = self.storage.conversations.thread(thread["previous_id"])
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

    def _reply(self, channel: str, thread_ts: str, text: str) -> str:
        """A notice from smsbridge in a thread (not a customer's text: no key, no look-up)."""
        with slack_job("reply in thread"):
            response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        return str(response["ts"])

    def _share_picture(self, channel: str, thread_ts: str, url: str, n: int, customer: Row) -> None:
        """Download an inbound MMS image and upload it into the thread; else post its link."""
        try:
            content, name = self._download(url, n)
        except MediaRefused as exc:  # not fetched at all: its link is not shown either
            log.warning("picture %s of a text in %s not fetched: %s", n, thread_ts, exc)
            self._reply(channel, thread_ts, blocks.picture_refused(n, str(exc)))
            return
        except MediaFailed as exc:
            log.warning("picture %s of a text in %s not downloaded: %s", n, thread_ts, exc)
            self._reply(channel, thread_ts, blocks.picture_link(url, n, str(exc)))
            return
        try:
            with slack_job("upload picture"):
                self.client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread_ts,
                    content=content,
                    filename=name,
                    title=f"Picture from {blocks.customer_label(customer)}",
                )
        except (httpx.HTTPError, ValueError, GiveUp) as exc:
            log.warning("picture %s not uploaded (%s); posting the link", n, exc)
            self._reply(channel, thread_ts, blocks.picture_link(url, n))

    def _download(self, url: str, n: int) -> tuple[bytes, str]:
        """The picture, only from a trusted host (every redirect checked again) and whole
        within ``media_deadline`` seconds (a sender that drips a byte at a time gives up then,
        and its link is posted instead)."""
        got = fetch(
            self.http, url, self.media_hosts, deadline=self.media_deadline, resolver=self.resolver
        )
        extension = got.content_type.split("/")[1].replace("jpeg", "jpg")
        extension = "".join(c for c in extension if c.isalnum())[:8] or "img"
        stamp = iso(self.clock())[:10]
        return got.data, f"mms-{stamp}-{n}.{extension}"

    def thread_resolved(self, payload: dict[str, Any]) -> None:
        """Job ``thread_resolved``: mark the parent resolved and say so in the thread."""
        thread = self.storage.conversations.thread(payload["thread_id"])
        self.refresh_parent(thread)
        self._reply(thread["channel_id"], thread["ts"], blocks.resolved_notice(payload["user"]))

    def refresh_thread(self, payload: dict[str, Any]) -> None:
        """Job ``refresh_thread``: the customer's status changed; update the parent card."""
        self.refresh_parent(self.storage.conversations.thread(payload["thread_id"]))

    def refresh_parent(self, thread: Row) -> None:
        """Re-render the parent card: current opt-in status, resolved or not."""
        messages = self.storage.conversations.thread_messages(thread["id"])
        if thread["ts"] is None or not messages:
            return
        if messages[0]["slack_ts"] != thread["ts"]:
            log.info(
                "thread %s was rebuilt without its first text; card left as it is", thread["id"]
            )
            return
        customer = self.storage.customers.get(thread["customer_id"])
        text, body = self._parent(thread, customer, messages[0])
        with slack_job("refresh parent"):
            self.client.chat_update(
                channel=thread["channel_id"],
                ts=thread["ts"],
                text=text,
                blocks=body,
                metadata=thread_metadata(customer, thread),
            )


def _same(meta: Any, wanted: dict[str, Any]) -> bool:
    """Is ``meta`` (from Slack) the metadata we put on the post we are looking for?"""
    if not isinstance(meta, dict) or meta.get("event_type") != wanted["event_type"]:
        return False
    payload = meta.get("event_payload") or {}
    return all(payload.get(k) == v for k, v in wanted["event_payload"].items())


def _new_key() -> str:
    return uuid.uuid4().hex
