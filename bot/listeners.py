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

from bot import blocks, consent
from bot.blasts import Blasts
from bot.commands import SmsCommand, queue_answer
from bot.replies import Replies
from bridge.optout import not_sent_held, release_held_replies, request_opt_out
from bridge.phones import pretty
from bridge.store import Store

log = logging.getLogger(__name__)

RESOLVE_REACTIONS = {"white_check_mark", "heavy_check_mark", "ballot_box_with_check"}

# Events the manifest subscribes to for other parts of the app (Slack health: membership, token
# revocation). Until a real handler is registered for one of them, register_fallbacks() answers
# it with a log line, so a subscribed event never gets a 404.
LIFECYCLE_EVENTS = ("member_joined_channel", "tokens_revoked", "app_uninstalled")
ANY = re.compile(".*")

OUT_OF_DATE = (
    ":warning: That button is out of date, so nothing was done. Use `/sms` or `/sms-blast` again."
)
NO_CUSTOMER = (
    ":warning: Nobody was opted out: smsbridge has no record of this text and its card does not "
    "say which customer sent it. Opt them out in the CRM Text admin."
)
NOTHING_TO_RECORD = (
    ":information_source: smsbridge has no record of this text any more, so there was nothing "
    "to record. Nobody was opted out."
)


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
    on_unarchive: Callable[[str], None] | None = None,
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
    consent.register(app, on_action, storage, clock, wake)

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

    def channel_of(body: dict[str, Any]) -> str:
        return str(
            (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
            or ""
        )

    def tell(body: dict[str, Any], text: str) -> None:
        """An ephemeral answer to the person who pressed (a durable Slack job)."""
        queue_answer(storage, clock(), channel_of(body), body["user"]["id"], text)
        wake()

    def unreadable(body: dict[str, Any], action: dict[str, Any]) -> None:
        log.warning(
            "button %s with a value smsbridge cannot read: %r",
            action.get("action_id"),
            action.get("value"),
        )
        tell(body, OUT_OF_DATE)

    def flagged_id(body: dict[str, Any], action: dict[str, Any]) -> int | None:
        """The id of the text a stop-request button is about; None (after telling the person)
        when the button's value cannot be read."""
        try:
            return int(action.get("value") or "")
        except ValueError:
            unreadable(body, action)
            return None

    def known_message(message_id: int) -> dict[str, Any] | None:
        try:
            return storage.conversations.message(message_id)
        except KeyError:  # a card from before a lost database
            log.warning("a button for message %s, which this database does not know", message_id)
            return None

    @on_action("opt_out_customer")
    def on_opt_out_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user = body["user"]["id"]
        message_id = flagged_id(body, action)
        if message_id is None:
            return
        message = known_message(message_id)
        if message is None:
            tell(body, opt_out_by_card(body, user))
            return
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
            not_sent_held(storage, message["customer_id"], clock())  # every held reply
        wake()

    def opt_out_by_card(body: dict[str, Any], user: str) -> str:
        """Opt out on a card from before smsbridge lost its record (a lost database): the
        card's Slack metadata names store and number. Returns what to tell the person."""
        card = body.get("message") or {}
        meta = card.get("metadata") or {}
        data = meta.get("event_payload") or {}
        store, phone = str(data.get("store") or ""), str(data.get("phone") or "")
        channel = channel_of(body)
        known = storage.stores.get(store) if store else None
        if (
            meta.get("event_type") not in (blocks.THREAD_EVENT, blocks.MESSAGE_EVENT)
            or known is None
            or known["channel_id"] != channel
            or not phone.startswith("+")
        ):
            log.warning("Opt out pressed on a card that names no customer (%s)", card.get("ts"))
            return NO_CUSTOMER
        now = clock()
        thread_ts = str(card.get("thread_ts") or card.get("ts") or "")
        with storage.transaction():
            customer = storage.customers.upsert(known["keyword"], phone, now=now)
            thread = storage.conversations.thread_by_ts(channel, thread_ts) if thread_ts else None
            request_opt_out(
                storage,
                customer["id"],
                how="staff pressed Opt out on a stop request (a card smsbridge had lost)",
                text=str(card.get("text") or ""),
                actor=user,
                thread_id=thread["id"] if thread else None,
                now=now,
            )
            not_sent_held(storage, customer["id"], now)
        log.info("opted out %s by the metadata of card %s", phone, card.get("ts"))
        return (
            f":no_entry: {pretty(phone)} is opted out: CRM Text is being told. smsbridge had "
            "lost its record of this text, so the buttons stay on the card."
        )

    @on_action("not_a_stop_request")
    def on_not_a_stop_request(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        message_id = flagged_id(body, action)
        if message_id is None:
            return
        message = known_message(message_id)
        if message is None:
            tell(body, NOTHING_TO_RECORD)
            return
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
            release_held_replies(storage, message["customer_id"], clock())
        wake()

    @on_event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        """Every message event gets a 200; staff replies in customer threads are stored first.
        A channel unarchived: check it again (``on_unarchive``), its parked work may resume."""
        if event.get("subtype") == "channel_unarchive" and on_unarchive is not None:
            on_unarchive(str(event.get("channel", "")))
            return
        replies.on_message(event, str(body.get("event_id", "")), context.bot_user_id)

    @on_command("/sms")
    def on_sms(ack: Ack, command: dict[str, Any]) -> None:
        ack(text=sms.answer(command))

    @on_action("send_opt_in")
    def on_send_opt_in(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        try:
            target = json.loads(action.get("value") or "")
        except ValueError:
            target = None
        if not (
            isinstance(target, dict)
            and isinstance(target.get("keyword"), str)
            and isinstance(target.get("phone"), str)
        ):
            unreadable(body, action)
            return
        container, card = body.get("container") or {}, body.get("message") or {}
        payload = {
            **target,
            "user": body["user"]["id"],
            "channel": channel_of(body),
            "thread_ts": container.get("thread_ts") or card.get("thread_ts"),
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
    match it; answer it 200 (before the bot identity is needed) and say so in the log.
    ``url_verification`` (Slack checking the Request URL) is answered here too, so it never
    depends on the bot identity (Bolt also skips authorization for it; this makes it ours)."""
    if body.get("type") == "url_verification":
        return BoltResponse(status=200, body={"challenge": body.get("challenge")})
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
