"""Bolt listeners: every event, action and command smsbridge answers, registered in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import blocks
from bot.blasts import Blasts
from bot.commands import SmsCommand
from bot.replies import Replies
from bridge.optout import request_opt_out
from bridge.storage import Storage

log = logging.getLogger(__name__)

RESOLVE_REACTIONS = {"white_check_mark", "heavy_check_mark", "ballot_box_with_check"}


@dataclass
class Registered:
    """What was registered, so a test can hold it against manifest.yml."""

    events: set[str] = field(default_factory=set)
    commands: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)


def register(
    app: App,
    storage: Storage,
    clock: Callable[[], datetime],
    wake: Callable[[], None],
    sms: SmsCommand,
    blasts: Blasts,
) -> Registered:
    """Attach the listeners; dependencies travel in this closure, not in globals."""
    registered = Registered()

    def on_event(name: str) -> Callable[..., Any]:
        registered.events.add(name)
        return app.event(name)

    def on_action(action_id: str) -> Callable[..., Any]:
        registered.actions.add(action_id)
        return app.action(action_id)

    def on_command(name: str) -> Callable[..., Any]:
        registered.commands.add(name)
        return app.command(name)

    def on_view(callback_id: str) -> Callable[..., Any]:
        return app.view(callback_id)

    replies = Replies(storage, clock, wake)
    blasts.register(app, on_command, on_action, on_view)

    def resolve(channel: str, ts: str, user: str) -> bool:
        thread = storage.thread_by_ts(channel, ts)
        if thread is None:
            return False
        with storage.transaction():
            if not storage.resolve_thread(thread["id"], user, clock()):
                return False
            storage.enqueue(
                "thread_resolved",
                {"thread_id": thread["id"], "user": user},
                customer_id=thread["customer_id"],
                now=clock(),
                dedupe_key=f"resolved:{thread['id']}",
            )
        wake()
        return True

    @on_event("reaction_added")
    def on_reaction(event: dict[str, Any]) -> None:
        item = event.get("item", {})
        if event.get("reaction") in RESOLVE_REACTIONS and item.get("type") == "message":
            resolve(item.get("channel", ""), item.get("ts", ""), event.get("user", ""))

    @on_action("resolve_thread")
    def on_resolve_button(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        container = body.get("container", {})
        resolve(
            container.get("channel_id", ""), container.get("message_ts", ""), body["user"]["id"]
        )

    @on_action("opt_out_customer")
    def on_opt_out_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        message = storage.message(int(action["value"]))
        user = body["user"]["id"]
        storage.update_message(message["id"], decided_by=user)
        request_opt_out(
            storage,
            message["customer_id"],
            how="staff pressed Opt out on a stop request",
            text=message["text"],
            actor=user,
            thread_id=message["thread_id"],
            now=clock(),
        )
        wake()

    @on_action("not_a_stop_request")
    def on_not_a_stop_request(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        message = storage.message(int(action["value"]))
        user = body["user"]["id"]
        with storage.transaction():
            if message["decided_by"] is not None:
                return
            storage.update_message(message["id"], decided_by=user)
            storage.enqueue(
                "post_notice",
                {"thread_id": message["thread_id"], "text": blocks.decided_not_stop(user)},
                customer_id=message["customer_id"],
                now=clock(),
            )
        wake()

    @on_event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        """Every message event gets a 200; staff replies in customer threads are stored first."""
        replies.on_message(event, str(body.get("event_id", "")), context.bot_user_id)

    @on_command("/sms")
    def on_sms(ack: Ack, command: dict[str, Any]) -> None:
        ack(text=sms.answer(command))

    @on_action("send_opt_in")
    def on_send_opt_in(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        target = json.loads(action["value"])
        payload = {
            **target,
            "user": body["user"]["id"],
            "channel": body["channel"]["id"],
            "basis": "confirmed with the Send opt-in request button",
        }
        storage.enqueue(
            "crm_opt_in",
            payload,
            queue=f"phone:{target['keyword']}:{target['phone']}",
            now=clock(),
            dedupe_key=f"opt-in:{target['keyword']}:{target['phone']}:{clock().date()}",
        )
        wake()

    return registered
