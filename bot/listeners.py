"""Bolt listeners: every event, action and command smsbridge answers, registered in one place."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse

from bot import blocks
from bot.blasts import Blasts
from bot.commands import SmsCommand
from bot.replies import Replies
from bridge.optout import request_opt_out
from bridge.store import Store

log = logging.getLogger(__name__)

RESOLVE_REACTIONS = {"white_check_mark", "heavy_check_mark", "ballot_box_with_check"}

# Events the manifest subscribes to for other parts of the app (Slack health: membership, token
# revocation). Until a real handler is registered for one of them, register_fallbacks() answers
# it with a log line, so a subscribed event never gets a 404.
LIFECYCLE_EVENTS = ("member_joined_channel", "tokens_revoked", "app_uninstalled")
ANY = re.compile(".*")


@dataclass
class Registered:
    """What was registered, so a test can hold it against manifest.yml."""

    events: set[str] = field(default_factory=set)
    commands: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)


def register(
    app: App,
    storage: Store,
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
        thread = storage.conversations.thread_by_ts(channel, ts)
        if thread is None:
            return False
        with storage.transaction():
            if not storage.conversations.resolve_thread(thread["id"], user, clock()):
                return False
            storage.jobs.enqueue(
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

    def show_decision(message: dict[str, Any]) -> None:
        """The flagged text's buttons give way to the decision (a durable Slack job)."""
        storage.jobs.enqueue(
            "show_decision",
            {"message_id": message["id"]},
            customer_id=message["customer_id"],
            now=clock(),
        )

    @on_action("opt_out_customer")
    def on_opt_out_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        message = storage.conversations.message(int(action["value"]))
        user = body["user"]["id"]
        with storage.transaction():
            storage.conversations.update_message(
                message["id"], decided_by=user, decision=blocks.OPT_OUT
            )
            show_decision(message)
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
        message = storage.conversations.message(int(action["value"]))
        user = body["user"]["id"]
        with storage.transaction():
            if message["decided_by"] is not None:
                return
            storage.conversations.update_message(
                message["id"], decided_by=user, decision=blocks.NOT_STOP
            )
            show_decision(message)
            storage.jobs.enqueue(
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
        storage.jobs.enqueue(
            "crm_opt_in",
            payload,
            queue=f"phone:{target['keyword']}:{target['phone']}",
            now=clock(),
            dedupe_key=f"opt-in:{target['keyword']}:{target['phone']}:{clock().date()}",
        )
        wake()

    return registered


def answer_app_rate_limited(
    body: dict[str, Any], next_: Callable[[], BoltResponse]
) -> BoltResponse:
    """Bolt ``before_authorize``: ``app_rate_limited`` has no inner event, so no listener can
    match it; answer it 200 (before the bot identity is needed) and say so in the log."""
    if body.get("type") == "app_rate_limited":
        minute = body.get("minute_rate_limited")
        since = (
            datetime.fromtimestamp(minute, UTC).strftime("%Y-%m-%d %H:%M UTC")
            if isinstance(minute, int)
            else "an unknown minute"
        )
        log.warning(
            "Slack is rate-limiting event deliveries to this app for team %s since %s (more "
            "than 30,000 events an hour): Slack events from then may be late or missing",
            body.get("team_id"),
            since,
        )
        return BoltResponse(status=200, body="")
    return next_()


def register_fallbacks(app: App, registered: Registered) -> None:
    """Registered LAST (Bolt runs the first matching listener): whatever nothing above handles
    still gets a 2xx, so Slack neither retries it nor counts it against the app."""

    def lifecycle(name: str) -> Callable[[dict[str, Any]], None]:
        def on_lifecycle(event: dict[str, Any]) -> None:
            log.warning("Slack event %s: %s (no handler acts on it yet)", name, event)

        return on_lifecycle

    for name in LIFECYCLE_EVENTS:
        if name not in registered.events:
            registered.events.add(name)
            app.event(name)(lifecycle(name))

    @app.event(ANY)
    def on_other_event(event: dict[str, Any]) -> None:
        log.info("ignored Slack event %s", event.get("type"))

    @app.action(ANY)
    def on_other_action(ack: Ack, action: dict[str, Any]) -> None:
        ack()  # e.g. a link button: Slack sends block_actions for those too
        log.info("ignored action %s", action.get("action_id"))

    @app.view(ANY)
    def on_other_view(ack: Ack, view: dict[str, Any]) -> None:
        ack()
        log.warning("closed a view nothing handles: %s", view.get("callback_id"))

    @app.view_closed(ANY)
    def on_view_closed(ack: Ack, view: dict[str, Any]) -> None:
        ack()
        log.info("view closed: %s", view.get("callback_id"))

    @app.command(ANY)
    def on_other_command(ack: Ack, command: dict[str, Any]) -> None:
        ack(text=f"smsbridge does not know {command.get('command')}; try /sms or /sms-blast.")
