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
from bridge.config import Config
from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.jobs import GiveUp, Retry
from bridge.phones import InvalidPhone, pretty, split_leading_number
from bridge.store import NEW, OPTED_IN, OPTED_OUT, STATUS_NAMES, Row, Store, iso

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
        return f"Texting {pretty(phone)}…"

    # -- jobs -----------------------------------------------------------------------------

    def run(self, payload: dict[str, Any]) -> None:
        """Job ``sms_command``: check consent, then record the message for ``send_reply``."""
        keyword, phone = payload["keyword"], payload["phone"]
        customer = self._customer(keyword, phone)
        if customer["status"] != OPTED_IN:
            self._offer_opt_in(payload, customer)
            return
        now = self.clock()
        channel = self.config.stores[keyword]
        quiet = timedelta(days=self.config.thread_quiet_days)
        with self.storage.transaction():
            source = f"command:{payload['trigger'] or iso(now)}"
            if self.storage.conversations.message_by_source(source) is not None:
                return
            thread = self.storage.conversations.current_thread(customer["id"], channel, now, quiet)
            message_id = self.storage.conversations.add_message(
                {
                    "store": keyword,
                    "customer_id": customer["id"],
                    "thread_id": thread["id"],
                    "direction": "out",
                    "kind": "sms",
                    "text": payload["text"],
                    "media": [],
                    "status": "pending",
                    "staff_user": payload["user"],
                    "source_key": source,
                    "created_at": iso(now),
                }
            )
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
        try:
            result = self.crm.opt_in(keyword, phone)
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError as exc:
            reason = blocks.escape(exc.message)
            self._ephemeral(payload, f":x: CRM Text refused the opt-in request: {reason}")
            raise GiveUp(str(exc)) from exc
        if result.status == OPTED_IN:
            text = (
                f":white_check_mark: {pretty(phone)} is opted in. Send your text with `/sms` again."
            )
        else:
            text = (
                f":hourglass: Opt-in request sent to {pretty(phone)}. They are "
                f"{STATUS_NAMES.get(result.status, 'pending')} until they reply YES."
            )
        customer = self.storage.customers.upsert(keyword, phone, now=self.clock())
        how = f"staff confirmed consent and sent CRM Text's opt-in request ({payload['basis']})"
        with self.storage.transaction():  # the result and the answer to staff, together
            self.storage.customers.set_status(
                customer["id"], result.status, how=how, actor=payload["user"], now=self.clock()
            )
            self._ephemeral(payload, text)

    def post_answer(self, payload: dict[str, Any]) -> None:
        """Job ``command_answer`` (Slack lane): what the person who used ``/sms`` or its
        buttons should see, retried on its own so the CRM Text work before it never repeats."""
        with slack_job("answer /sms"):
            self.client.chat_postEphemeral(
                channel=payload["channel"],
                user=payload["user"],
                text=payload["text"],
                blocks=payload.get("blocks"),
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
            self.storage.customers.set_status(
                customer["id"], info.status, how="CRM Text getcustomerinfo", now=self.clock()
            )
        return self.storage.customers.get(customer["id"])

    def _offer_opt_in(self, payload: dict[str, Any], customer: Row) -> None:
        status = STATUS_NAMES.get(customer["status"], "not opted in")
        text = (
            f":no_entry_sign: Nothing was sent: {pretty(customer['phone'])} is {status}, and "
            "stores may only text customers who opted in."
        )
        body: list[blocks.Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
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
) -> None:
    """What one person should see (an ephemeral message), as a durable ``command_answer`` job:
    a listener never waits on Slack, and a job's Slack answer never repeats its work."""
    storage.jobs.enqueue(
        "command_answer",
        {"channel": channel, "user": user, "text": text, "blocks": body},
        queue=f"answer:{channel}:{user}",
        now=now,
    )
