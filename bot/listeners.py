"""Bolt listeners: every event, action and command smsbridge answers, registered in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App

from bridge.optout import request_opt_out
from bridge.storage import Storage

log = logging.getLogger(__name__)

RESOLVE_REACTIONS = {"white_check_mark", "heavy_check_mark", "ballot_box_with_check"}


def register(
    app: App, storage: Storage, clock: Callable[[], datetime], wake: Callable[[], None]
) -> None:
    """Attach the listeners; dependencies travel in this closure, not in globals."""

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
                queue=f"customer:{thread['customer_id']}",
                now=clock(),
                dedupe_key=f"resolved:{thread['id']}",
            )
        wake()
        return True

    @app.event("reaction_added")
    def on_reaction(event: dict[str, Any]) -> None:
        item = event.get("item", {})
        if event.get("reaction") in RESOLVE_REACTIONS and item.get("type") == "message":
            resolve(item.get("channel", ""), item.get("ts", ""), event.get("user", ""))

    @app.action("resolve_thread")
    def on_resolve_button(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        container = body.get("container", {})
        resolve(
            container.get("channel_id", ""), container.get("message_ts", ""), body["user"]["id"]
        )

    @app.action("opt_out_customer")
    def on_opt_out_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        message = storage.message(int(action["value"]))
        user = body["user"]["id"]
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

    @app.event("message")
    def on_message(event: dict[str, Any]) -> None:
        """Every message event is acknowledged (200) so Slack never disables the subscription."""
        log.debug("message event %s/%s ignored", event.get("channel"), event.get("ts"))
