"""``/sms <phone> <message>``: start or continue a conversation from a store channel.

The command is acknowledged at once; the CRM Text look-up and the send run as jobs. For a number
that is not opted in, staff are offered CRM Text's opt-in request behind a consent confirmation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient

from bot import blocks
from bot.slackcalls import slack_job
from bot.slacktext import to_plain
from bridge import held
from bridge.config import Config
from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.jobs import GiveUp, Retry
from bridge.optout import not_sent_held
from bridge.phones import InvalidPhone, pretty, split_leading_number
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING, STATUS_NAMES, Row, Store, iso

log = logging.getLogger(__name__)

USAGE = "Usage: `/sms <phone> <message>`, e.g. `/sms (415) 555-0100 Your order is ready!`"


@dataclass
class SmsCommand:
    """The /sms slash command and the opt-in request it can offer."""

    config: Config
    storage: Store
    client: WebClient
    crm: CrmTextClient
    clock: Callable[[], datetime]
    wake: Callable[[], None]

    def answer(self, command: dict[str, Any]) -> str:
        """Validate, queue the work, and return the ephemeral text for ``ack``."""
        keyword = self.config.keyword_for(command.get("channel_id", ""))
        if keyword is None:
            channels = ", ".join(f"<#{c}>" for c in self.config.stores.values())
            return f"`/sms` works in a store channel: {channels}."
        try:
            phone, text = split_leading_number(command.get("text", ""))
        except InvalidPhone as exc:
            return f"{exc} {USAGE}"
        if not text:
            return f"What should the text say? {USAGE}"
        known = self.storage.customers.find(keyword, phone)
        if known is not None and known["status"] == OPTED_OUT:
            return opted_out_answer(phone, text)
        now = self.clock()
        payload = {
            "keyword": keyword,
            "phone": phone,
            "text": text,
            "user": command["user_id"],
            "channel": command["channel_id"],
            "trigger": command.get("trigger_id", ""),
        }
        self.storage.jobs.enqueue(
            "sms_command",
            payload,
            queue=f"phone:{keyword}:{phone}",
            now=now,
            dedupe_key=f"sms-command:{command.get('trigger_id') or iso(now)}",
        )
        self.wake()
        if known is not None and known["status"] == OPTED_IN:
            return f"Texting {pretty(phone)}…"
        return f"Checking with CRM Text that {pretty(phone)} has opted in…"

    # -- jobs -----------------------------------------------------------------------------

    def run(self, payload: dict[str, Any]) -> None:
        """Job ``sms_command``: check consent, then record the message for ``send_reply``."""
        keyword, phone = payload["keyword"], payload["phone"]
        customer = self._customer(keyword, phone)
        if customer["status"] == OPTED_OUT:
            self._ephemeral(payload, opted_out_answer(phone, payload["text"]))
            return
        now = self.clock()
        channel = self.config.stores[keyword]
        quiet = timedelta(days=self.config.thread_quiet_days)
        with self.storage.transaction():
            source = f"command:{payload['trigger'] or iso(now)}"
            if self.storage.conversations.message_by_source(source) is not None:
                return
            thread = self.storage.conversations.current_thread(customer["id"], channel, now, quiet)
            fields = {
                "store": keyword,
                "customer_id": customer["id"],
                "thread_id": thread["id"],
                "direction": "out",
                "kind": "sms",
                "text": payload["text"],
                "media": [],
                "staff_user": payload["user"],
                "source_key": source,
                "created_at": iso(now),
            }
            if customer["status"] != OPTED_IN:  # a new guest or pending: the draft waits
                message_id = held.add_held(self.storage, fields, now)
                self.storage.jobs.enqueue(
                    "post_outbound",
                    {"message_id": message_id},
                    customer_id=customer["id"],
                    dedupe_key=f"post-out:{message_id}",
                    now=now,
                )
                self._offer_opt_in(payload, customer)
                return
            message_id = self.storage.conversations.add_message({**fields, "status": "pending"})
            self.storage.jobs.enqueue(
                "send_reply",
                {"message_id": message_id},
                customer_id=customer["id"],
                dedupe_key=f"send:{message_id}",
                now=now,
            )

    def opt_in(self, payload: dict[str, Any]) -> None:
        """Job ``crm_opt_in``: staff confirmed consent; ask CRM Text to opt the number in."""
        keyword, phone = payload["keyword"], payload["phone"]
        thread = self._thread_of(payload)
        known = self.storage.customers.find(keyword, phone)
        if known is not None and known["status"] == OPTED_OUT:
            self._ephemeral(payload, OPTED_OUT_NO_REQUEST.format(phone=pretty(phone)))
            return  # a stale button: only the customer can undo their opt-out (START)
        try:
            if self._opted_out_at_crm(keyword, phone):
                self._ephemeral(payload, OPTED_OUT_NO_REQUEST.format(phone=pretty(phone)))
                return  # our record was stale: optincustomer would undo their opt-out
            result = self.crm.opt_in(keyword, phone)
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError as exc:
            reason = blocks.escape(exc.message)
            self._ephemeral(payload, f":x: CRM Text refused the opt-in request: {reason}")
            raise GiveUp(str(exc)) from exc
        customer = self.storage.customers.upsert(keyword, phone, now=self.clock())
        how = f"staff confirmed consent and sent CRM Text's opt-in request ({payload['basis']})"
        now = self.clock()
        with self.storage.transaction():  # the result and the answer to staff, together
            self.storage.customers.set_status(
                customer["id"], result.status, how=how, actor=payload["user"], now=now
            )
            status = self.storage.customers.get(customer["id"])["status"]  # opted out meanwhile?
            waiting = len(self.storage.conversations.held_messages(customer["id"]))
            if status == OPTED_IN:
                held.release(self.storage, customer["id"], now)
            text = opt_in_answer(phone, status, waiting, payload["user"], thread)
            if thread is None:
                self._ephemeral(payload, text)
            else:
                self.storage.jobs.enqueue(
                    "post_notice",
                    {"thread_id": thread["id"], "text": text, "refresh": True},
                    customer_id=customer["id"],
                    now=now,
                )

    def post_answer(self, payload: dict[str, Any]) -> None:
        """Job ``command_answer`` (Slack lane): what the person who used ``/sms`` or its
        buttons should see, retried on its own so the CRM Text work before it never repeats."""
        with slack_job("answer /sms"):
            self.client.chat_postEphemeral(
                channel=payload["channel"],
                user=payload["user"],
                text=payload["text"],
                blocks=payload.get("blocks"),
                **({"thread_ts": payload["thread_ts"]} if payload.get("thread_ts") else {}),
            )

    # -- helpers --------------------------------------------------------------------------

    def _customer(self, keyword: str, phone: str) -> Row:
        """The local record, refreshed from CRM Text when we do not know them as opted in."""
        customer = self.storage.customers.upsert(keyword, phone, now=self.clock())
        if customer["status"] in (OPTED_IN, OPTED_OUT):
            return customer  # a local opt-out is never undone by a look-up
        try:
            info = self.crm.customer_info(keyword, phone)
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError:
            return customer  # CRM Text does not know the number: a new guest
        if info.status != customer["status"]:
            with self.storage.transaction():
                self.storage.customers.set_status(
                    customer["id"], info.status, how="CRM Text getcustomerinfo", now=self.clock()
                )
                if info.status == OPTED_OUT:
                    not_sent_held(self.storage, customer["id"], self.clock())
        return self.storage.customers.get(customer["id"])

    def _opted_out_at_crm(self, keyword: str, phone: str) -> bool:
        """Does getcustomerinfo say opted out? If so, record it here too (every held reply
        reported not sent). False when CRM Text does not know the number."""
        try:
            info = self.crm.customer_info(keyword, phone)
        except CrmTextUnavailable:
            raise
        except CrmTextError:
            return False
        if info.status != OPTED_OUT:
            return False
        customer = self.storage.customers.upsert(keyword, phone, now=self.clock())
        with self.storage.transaction():
            self.storage.customers.set_status(
                customer["id"], OPTED_OUT, how="CRM Text getcustomerinfo", now=self.clock()
            )
            not_sent_held(self.storage, customer["id"], self.clock())
        return True

    def _thread_of(self, payload: dict[str, Any]) -> Row | None:
        """The customer thread an opt-in button was pressed in (None: from /sms's answer)."""
        thread_ts = payload.get("thread_ts")
        if not thread_ts:
            return None
        return self.storage.conversations.thread_by_ts(payload.get("channel", ""), thread_ts)

    def _offer_opt_in(self, payload: dict[str, Any], customer: Row) -> None:
        """The draft is held in the customer's thread: say why, and offer the opt-in request."""
        text = held_draft_answer(customer["phone"], customer["status"])
        body: list[blocks.Block] = [blocks.section(text)]
        if customer["status"] == NEW:
            body.append(
                blocks.opt_in_offer(
                    json.dumps({"keyword": payload["keyword"], "phone": payload["phone"]})
                )
            )
        self._ephemeral(payload, text, body)

    def _ephemeral(
        self, payload: dict[str, Any], text: str, body: list[blocks.Block] | None = None
    ) -> None:
        """Queue the answer as a ``command_answer`` job."""
        queue_answer(self.storage, self.clock(), payload["channel"], payload["user"], text, body)
        self.wake()


def queue_answer(
    storage: Store,
    now: datetime,
    channel: str,
    user: str,
    text: str,
    body: list[blocks.Block] | None = None,
    *,
    thread_ts: str | None = None,
) -> None:
    """What one person should see (an ephemeral message, in a thread when ``thread_ts``), as a
    durable ``command_answer`` job: a listener never waits on Slack, and a job's Slack answer
    never repeats its work."""
    storage.jobs.enqueue(
        "command_answer",
        {"channel": channel, "user": user, "text": text, "blocks": body, "thread_ts": thread_ts},
        queue=f"answer:{channel}:{user}",
        now=now,
    )


OPTED_OUT_NO_REQUEST = (
    ":no_entry_sign: No opt-in request was sent: {phone} opted out of texts from this store. "
    "Only they can opt back in, by texting START."
)


def opted_out_answer(phone: str, text: str) -> str:
    """``/sms`` to a number that opted out: nothing is sent; the draft is shown back."""
    return (
        f":no_entry_sign: Not sent: {pretty(phone)} opted out of texts from this store, so "
        "stores may not text them. They can opt back in by texting START. Your text was:\n"
        f"{blocks.quote(to_plain(text))}"
    )


def held_draft_answer(phone: str, status: int) -> str:
    """``/sms`` to a new guest or a pending number: why nothing went out yet, and that the
    draft waits in their thread."""
    if status == PENDING:
        why = (
            f"{pretty(phone)}'s opt-in is pending (they have not replied YES to CRM Text's "
            "opt-in request yet)"
        )
    else:
        why = f"{pretty(phone)} has not opted in to texts from this store"
    text = (
        f":{blocks.REACTION_HELD}: Not sent yet: {why}, and stores may only text customers who "
        f"opted in. Your text waits in their thread and is texted once they opt in, or reported "
        f"as not sent after {held.hold_hours()} hours."
    )
    if status != PENDING:
        text += " If they asked to be texted, send CRM Text's opt-in request:"
    return text


def opt_in_answer(phone: str, status: int, waiting: int, user: str, thread: Row | None) -> str:
    """What the opt-in request did, for the person who confirmed consent (or their thread)."""
    if thread is None and not waiting:  # from /sms's answer, with no draft waiting
        if status == OPTED_IN:
            return (
                f":white_check_mark: {pretty(phone)} is opted in. Send your text with `/sms` again."
            )
        return (
            f":hourglass: Opt-in request sent to {pretty(phone)}. They are "
            f"{STATUS_NAMES.get(status, 'pending')} until they reply YES."
        )
    who = f"<@{user}> confirmed that {pretty(phone)} agreed to texts"
    if status == OPTED_IN:
        return f":white_check_mark: {who}; CRM Text opted them in."  # held: see release()
    text = (
        f":hourglass: {who} and sent CRM Text's opt-in request. They are "
        f"{STATUS_NAMES.get(status, 'opt-in pending')} until they reply YES"
    )
    replies = "the held reply goes" if waiting == 1 else f"{waiting} held replies go"
    return text + (f"; {replies} out then." if waiting else ".")
