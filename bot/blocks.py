"""What staff read in Slack: every text and Block Kit layout, as small pure functions."""

from __future__ import annotations

from typing import Any

from bridge.keywords import Intent
from bridge.phones import pretty
from bridge.storage import STATUS_NAMES, Row

Block = dict[str, Any]

NOTE_PREFIX = "note:"
THREAD_EVENT = "smsbridge_thread"

INTENT_NOTICES = {
    Intent.STOP: ":no_entry: *Opted out.* They texted STOP; CRM Text opted them out and sent "
    "the store's opt-out message. Replies to this number are blocked.",
    Intent.REVOKE: ":no_entry: *Opt-out request.* This word revokes consent, so smsbridge is "
    "opting them out in CRM Text. Replies to this number are blocked.",
    Intent.SOFT_STOP: ":warning: *This may be a request to stop texting.* If it is, opt them out.",
    Intent.HELP: ":information_source: They texted HELP; CRM Text sent the store's help message.",
    Intent.START: ":white_check_mark: They texted START/YES and are opted in.",
}


def customer_label(customer: Row) -> str:
    """``Jane Doe · (415) 555-0100`` or just the number."""
    number = pretty(customer["phone"])
    return f"{customer['name']} · {number}" if customer["name"] else number


def _text(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines()) or "> "


def parent_post(
    customer: Row, store: Row, first_text: str, previous_link: str | None, resolved_by: str | None
) -> tuple[str, list[Block]]:
    """The thread's parent: who, which store, consent, the first text, and how to work it."""
    store_name = store["name"] or store["keyword"]
    status = STATUS_NAMES.get(customer["status"], "unknown")
    headline = f":speech_balloon: *{customer_label(customer)}*"
    blocks = [
        _text(f"{headline}\n{store_name} · keyword {store['keyword']} · {status}"),
        _text(quote(first_text)),
    ]
    hint = (
        f"Reply in this thread to text them. Start with `{NOTE_PREFIX}` to keep a reply in Slack. "
        "React :white_check_mark: or press Resolve when done."
    )
    if previous_link:
        hint += f" <{previous_link}|Previous conversation>"
    blocks.append(_context(hint))
    if resolved_by:
        blocks.append(_context(f":white_check_mark: Resolved by <@{resolved_by}>."))
    else:
        blocks.append(
            {
                "type": "actions",
                "block_id": "thread_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "resolve_thread",
                        "text": {"type": "plain_text", "text": "Resolve"},
                        "value": "resolve",
                    }
                ],
            }
        )
    fallback = f"Text from {customer_label(customer)}: {first_text}"
    return fallback, blocks


def inbound_reply(
    text: str, media_count: int, intent: Intent, message_id: int
) -> tuple[str, list[Block]]:
    """A later customer text inside the thread, with any consent notice under it."""
    body = text if text.strip() else f"(sent {media_count} picture{'s' * (media_count != 1)})"
    blocks = [_text(body)]
    notice = notice_blocks(intent, message_id)
    return body, blocks + notice if notice else blocks


def notice_blocks(intent: Intent, message_id: int) -> list[Block]:
    """The consent notice for an intent (the soft request carries an Opt out button)."""
    notice = INTENT_NOTICES.get(intent)
    if notice is None:
        return []
    blocks = [_context(notice)]
    if intent is Intent.SOFT_STOP:
        blocks.append(opt_out_actions(message_id))
    return blocks


def opt_out_actions(message_id: int) -> Block:
    return {
        "type": "actions",
        "block_id": f"opt_out_{message_id}",
        "elements": [
            {
                "type": "button",
                "action_id": "opt_out_customer",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Opt out"},
                "value": str(message_id),
                "confirm": {
                    "title": {"type": "plain_text", "text": "Opt this customer out?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": "CRM Text will send the store's opt-out message and block "
                        "every future text to this number.",
                    },
                    "confirm": {"type": "plain_text", "text": "Opt out"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        ],
    }


def picture_link(url: str, n: int) -> str:
    return f":frame_with_picture: Picture {n} could not be uploaded to Slack: <{url}|open it>"


def resolved_notice(user: str) -> str:
    return f":white_check_mark: Resolved by <@{user}>. The customer's next text opens a new thread."
