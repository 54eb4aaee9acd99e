"""What staff read in Slack: every text and Block Kit layout, as small pure functions."""

from __future__ import annotations

from typing import Any

from bridge.keywords import Intent
from bridge.phones import pretty
from bridge.storage import STATUS_NAMES, Row

Block = dict[str, Any]

NOTE_PREFIX = "note:"
THREAD_EVENT = "smsbridge_thread"
MESSAGE_EVENT = "smsbridge_message"

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


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
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
        section(f"{headline}\n{store_name} · keyword {store['keyword']} · {status}"),
        section(quote(first_text)),
    ]
    hint = (
        "Reply in this thread to text them (:outbox_tray: sent, :x: not sent). "
        f"Start with `{NOTE_PREFIX}` to keep a reply in Slack. "
        "React :white_check_mark: or press Resolve when done."
    )
    if previous_link:
        hint += f" <{previous_link}|Previous conversation>"
    blocks.append(context(hint))
    if resolved_by:
        blocks.append(context(f":white_check_mark: Resolved by <@{resolved_by}>."))
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
    blocks = [section(body)]
    notice = notice_blocks(intent, message_id)
    return body, blocks + notice if notice else blocks


def notice_blocks(intent: Intent, message_id: int) -> list[Block]:
    """The consent notice for an intent (the soft request carries an Opt out button)."""
    notice = INTENT_NOTICES.get(intent)
    if notice is None:
        return []
    blocks = [context(notice)]
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
            },
            {
                "type": "button",
                "action_id": "not_a_stop_request",
                "text": {"type": "plain_text", "text": "Not a stop request"},
                "value": str(message_id),
            },
        ],
    }


def thread_metadata(customer: Row, thread_id: int) -> dict[str, Any]:
    """Slack message metadata on every parent, so the thread mapping can be rebuilt."""
    return {
        "event_type": THREAD_EVENT,
        "event_payload": {
            "store": customer["store"],
            "phone": customer["phone"],
            "thread_id": thread_id,
        },
    }


def message_metadata(message_id: int) -> dict[str, Any]:
    """Metadata on each customer text posted as a reply, so a retry can tell it landed."""
    return {"event_type": MESSAGE_EVENT, "event_payload": {"message_id": message_id}}


def picture_link(url: str, n: int) -> str:
    return f":frame_with_picture: Picture {n} could not be uploaded to Slack: <{url}|open it>"


def decided_not_stop(user: str) -> str:
    return f":ok_hand: <@{user}> decided this was not a request to stop texting."


def resolved_notice(user: str) -> str:
    return f":white_check_mark: Resolved by <@{user}>. The customer's next text opens a new thread."


# -- staff replies ------------------------------------------------------------------------

REACTION_SENT = "outbox_tray"
REACTION_FAILED = "x"
REACTION_NOTE = "memo"


def segments_note(encoding: str, segments: int, billing_units: int, characters: int) -> str:
    return (
        f":straight_ruler: Texted as {encoding}: {characters} characters, {segments} SMS "
        f"segments, {billing_units} CRM Text billing unit{'s' * (billing_units != 1)}."
    )


def not_sent(reason: str) -> str:
    return f":x: {reason}"


def unreachable(attempts: int) -> str:
    return (
        f":x: Not sent: CRM Text could not be reached after {attempts} tries. "
        "Check CRM Text's status, then send the reply again."
    )


def maybe_sent(parts_done: int) -> str:
    done = f"{parts_done} part{'s' * (parts_done != 1)} went out and the" if parts_done else "The"
    return (
        f":warning: CRM Text stopped answering while this was being sent. {done} last attempt "
        "may have reached the customer. Check with them before sending it again."
    )


def refused_file(name: str, reason: str) -> str:
    return f":x: {name} was not sent: {reason}"


def edited_after_send(user: str, original: str) -> str:
    return (
        f":pencil2: <@{user}> edited a reply that was already texted. "
        f"The customer has the original:\n{quote(original)}"
    )


def deleted_after_send(original: str) -> str:
    return (
        ":wastebasket: A reply that was already texted was deleted in Slack. "
        f"The customer still has it:\n{quote(original)}"
    )


def outbound_post(staff_name: str, customer: Row, text: str) -> str:
    return f":outbox_tray: *{staff_name}* texted {customer_label(customer)}:\n{quote(text)}"


def opt_in_offer(value: str) -> Block:
    """The button that sends CRM Text's opt-in request, behind an explicit consent check."""
    return {
        "type": "actions",
        "block_id": "opt_in_offer",
        "elements": [
            {
                "type": "button",
                "action_id": "send_opt_in",
                "text": {"type": "plain_text", "text": "Send opt-in request"},
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Did they agree to texts?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": "Only send this if the customer told you they want texts from "
                        "this store (in person, by phone or in writing). CRM Text will text them "
                        "the store's opt-in request. Your name is recorded with their consent.",
                    },
                    "confirm": {"type": "plain_text", "text": "They agreed, send it"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        ],
    }
