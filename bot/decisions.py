"""After staff press Opt out / Not a stop request, the buttons give way to the decision.

Job ``show_decision`` (durable, retried like every Slack post): re-render the message that
carries the buttons with the decision and who made it, and ``chat.update`` it.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk import WebClient

from bot import blocks
from bot.blast_blocks import blast_label
from bot.slackcalls import slack_job
from bot.threads import ThreadPoster
from bridge.jobs import Handler
from bridge.keywords import Intent
from bridge.store import Store


def show_decision_handler(storage: Store, client: WebClient, poster: ThreadPoster) -> Handler:
    def handle(payload: dict[str, Any]) -> None:
        message = storage.conversations.message(payload["message_id"])
        thread = storage.conversations.thread(message["thread_id"])
        if not message["slack_ts"] or thread["ts"] is None:
            return  # not in Slack yet: it is posted with the decision already shown
        if message["slack_ts"] == thread["ts"]:  # the buttons are on the thread's parent card
            poster.refresh_parent(thread)
            return
        blast = storage.blasts.get(message["blast_id"]) if message["blast_id"] else None
        text, body = blocks.inbound_reply(
            message["text"],
            len(json.loads(message["media"] or "[]")),
            Intent(message["intent"] or ""),
            message["id"],
            label=blast_label(blast["name"]) if blast is not None else None,
            decision=blocks.decision_of(message),
        )
        with slack_job("show decision"):
            client.chat_update(
                channel=thread["channel_id"], ts=message["slack_ts"], text=text, blocks=body
            )

    return handle
