"""Consent from a customer's thread: an opt-out staff record for a request made by phone,
e-mail or in person (also ``smsbridge consent opt-out``), and the customer's consent history.

The parent card carries **Record opt-out** (a modal asks how they asked, and a note) and
**Consent history** (an ephemeral list of every ledger entry, in the thread). A recorded
opt-out is a ledger entry with who and why, blocks texting at once, and is pushed to CRM Text
(``optoutcustomer``) by the durable ``crm_opt_out`` job; the thread says who recorded it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
)
from slack_sdk.models.views import View

from bot import blocks
from bot.commands import queue_answer
from bot.interactive import busy_text, retry_after, whole_seconds
from bridge.optout import not_sent_held, request_opt_out
from bridge.phones import parse_us, pretty
from bridge.store import OPTED_OUT, STATUS_NAMES, Row, Store, parse_iso

log = logging.getLogger(__name__)

OPT_OUT_VIEW = "record_opt_out_form"
NOTE_CHARS = 500

# How the customer asked (the modal's choices and the CLI's --how), as said in a sentence.
HOW = {
    "phone": "by phone",
    "email": "by e-mail",
    "in-person": "in person",
    "other": "in another way",
}

HISTORY_EVENTS = 40  # the newest this many are listed; the export has them all
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def ledger_how(how: str, *, cli: bool = False) -> str:
    """The ledger's ``how`` for a staff-recorded opt-out."""
    where = " (smsbridge consent opt-out)" if cli else ""
    return f"staff recorded an opt-out the customer asked for {HOW[how]}{where}"


def recorded_notice(who: str, customer: Row, how: str, note: str) -> str:
    """The thread's line about a recorded opt-out; ``who`` is mrkdwn (``<@U…>`` or escaped)."""
    text = (
        f":no_entry: {who} recorded that {blocks.escape(blocks.customer_label(customer))} "
        f"asked {HOW[how]} not to be texted. They are opted out here and CRM Text is being told."
    )
    if note.strip():
        text += f"\nNote: “{blocks.fit(note.strip(), NOTE_CHARS + 20)}”"
    return text


def record_opt_out(
    storage: Store,
    customer: Row,
    *,
    how: str,
    note: str,
    actor: str,
    who: str,
    thread_id: int | None,
    now: datetime,
    cli: bool = False,
) -> bool:
    """Opt the customer out as staff recorded it: ledger entry (who: ``actor``; why: ``how``
    and ``note``), the ``crm_opt_out`` push, and the thread's notice, in one transaction.
    False (nothing written) when they already were opted out and CRM Text has it: a retry
    changes nothing. Opted out here but never pushed (the push failed): the push is requested
    again."""
    with storage.transaction():
        current = storage.customers.get(customer["id"])
        unpushed = storage.customers.opt_out_unpushed(customer["id"])
        if current["status"] == OPTED_OUT and not unpushed:
            return False
        request_opt_out(
            storage,
            customer["id"],
            how=ledger_how(how, cli=cli),
            text=note.strip(),
            actor=actor,
            thread_id=thread_id,
            now=now,
            push=unpushed,
        )
        not_sent_held(storage, customer["id"], now)  # every held reply: reported not sent
        if thread_id is not None:
            storage.jobs.enqueue(
                "post_notice",
                {
                    "thread_id": thread_id,
                    "text": recorded_notice(who, current, how, note),
                    "refresh": True,
                },
                customer_id=customer["id"],
                now=now,
            )
    return True


def already_opted_out(customer: Row) -> str:
    label = blocks.escape(blocks.customer_label(customer))
    return f":information_source: {label} was already opted out, so nothing changed."


# -- the modal ------------------------------------------------------------------------------


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def opt_out_view(customer: Row, channel: str, thread_ts: str) -> dict[str, Any]:
    """Record opt-out: how they asked (required) and a note (required for "other")."""
    label = blocks.escape(blocks.customer_label(customer))
    options = [
        Option(value=code, text=_plain(words[0].upper() + words[1:])) for code, words in HOW.items()
    ]
    view: dict[str, Any] = View(
        type="modal",
        callback_id=OPT_OUT_VIEW,
        title=_plain("Record an opt-out"),
        submit=_plain("Opt them out"),
        close=_plain("Cancel"),
        private_metadata=json.dumps(
            {
                "keyword": customer["store"],
                "phone": customer["phone"],
                "channel": channel,
                "thread_ts": thread_ts,
            }
        ),
        blocks=[
            blocks.section(
                f"Record that *{label}* asked not to be texted. smsbridge opts them out at "
                "once, tells CRM Text (which texts them the store's opt-out confirmation), "
                "and records your name with how they asked."
            ),
            InputBlock(
                block_id="how",
                label=_plain("How did they ask?"),
                element=RadioButtonsElement(action_id="how", options=options),
            ).to_dict(),
            InputBlock(
                block_id="note",
                optional=True,
                label=_plain("Note"),
                hint=_plain("What they said, when, and who took it (required for “other”)."),
                element=PlainTextInputElement(
                    action_id="note", multiline=True, max_length=NOTE_CHARS
                ),
            ).to_dict(),
        ],
    ).to_dict()
    return view


def _form_values(view: dict[str, Any]) -> tuple[str, str]:
    values = (view.get("state") or {}).get("values") or {}
    how = ((values.get("how") or {}).get("how") or {}).get("selected_option") or {}
    note = ((values.get("note") or {}).get("note") or {}).get("value") or ""
    return str(how.get("value") or ""), str(note)


# -- the history ----------------------------------------------------------------------------


def _who(actor: str) -> str:
    if not actor:
        return ""
    return f"<@{actor}>" if _SLACK_USER.fullmatch(actor) else blocks.escape(actor)


def history_lines(customer: Row, events: list[Row]) -> list[str]:
    """The consent history as mrkdwn lines (everything a customer or CRM Text wrote escaped)."""
    label = blocks.escape(blocks.customer_label(customer))
    status = STATUS_NAMES.get(customer["status"], "unknown")
    if not events:
        return [f":scroll: *Consent history of {label}*: nothing recorded yet (now {status})."]
    shown = events[-HISTORY_EVENTS:]
    lines = [
        f":scroll: *Consent history of {label}* ({len(events)} event"
        f"{'s' * (len(events) != 1)}, oldest first; now {status}):"
    ]
    if len(events) > len(shown):
        lines.append(
            f"_{len(events) - len(shown)} earlier events are in "
            f"`smsbridge consent export --store {blocks.escape(customer['store'])}`._"
        )
    for event in shown:
        at = parse_iso(event["at"]).strftime("%Y-%m-%d %H:%M UTC")
        moved = (
            f"{STATUS_NAMES.get(event['status_from'], 'unknown')} → "
            f"{STATUS_NAMES.get(event['status_to'], 'unknown')}"
        )
        parts = [at, moved, blocks.fit(blocks.shorten(event["how"] or "", 300), 400)]
        if event["actor"]:
            parts.append(f"by {_who(blocks.shorten(event['actor'], 80))}")
        if (event["text"] or "").strip():
            parts.append(f"“{blocks.fit(blocks.shorten(event['text'], 200), 300)}”")
        lines.append("• " + " · ".join(parts))
    return lines


def history_message(customer: Row, events: list[Row]) -> tuple[str, list[blocks.Block]]:
    """The history as an ephemeral message: sections of whole lines, within Slack's limits."""
    lines = history_lines(customer, events)
    sections: list[str] = []
    for line in lines:
        if sections and len(sections[-1]) + 1 + len(line) <= blocks.SECTION_CHARS:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    return lines[0], [blocks.section(text) for text in sections]


# -- Slack ----------------------------------------------------------------------------------


def register(
    app: App,
    on_action: Callable[[str], Callable[..., Any]],
    storage: Store,
    clock: Callable[[], datetime],
    wake: Callable[[], None],
) -> None:
    """The parent card's Record opt-out and Consent history buttons, and the opt-out form."""

    def channel_of(body: dict[str, Any]) -> str:
        return str(
            (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
            or ""
        )

    def card_ts(body: dict[str, Any]) -> str:
        container = body.get("container") or {}
        message = body.get("message") or {}
        return str(
            container.get("thread_ts")
            or message.get("thread_ts")
            or container.get("message_ts")
            or message.get("ts")
            or ""
        )

    def tell(body: dict[str, Any], text: str, thread_ts: str | None = None) -> None:
        queue_answer(
            storage, clock(), channel_of(body), body["user"]["id"], text, thread_ts=thread_ts
        )
        wake()

    def customer_of(
        body: dict[str, Any], action: dict[str, Any], *, create: bool = True
    ) -> Row | None:
        """The customer a card's button names (store and number), or None (after telling).
        ``create``: a card from before a lost database still names who to opt out."""
        try:
            target = json.loads(action.get("value") or "")
            keyword, phone = str(target["keyword"]), parse_us(str(target["phone"]))
        except (ValueError, KeyError, TypeError):  # InvalidPhone is a ValueError
            log.warning("consent button with a value smsbridge cannot read: %r", action)
            tell(body, blocks.not_sent("That button is out of date, so nothing was done."))
            return None
        store = storage.stores.get(keyword)
        if store is None or store["channel_id"] != channel_of(body) or not phone.startswith("+"):
            tell(body, ":warning: That button does not belong to this channel's store.")
            return None
        if not create:
            known = storage.customers.find(keyword, phone)
            if known is None:
                tell(body, f":scroll: Nothing is recorded about {pretty(phone)}'s consent.")
            return known
        return storage.customers.upsert(keyword, phone, now=clock())

    @on_action(blocks.RECORD_OPT_OUT)
    def on_record(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        customer = customer_of(body, action)
        if customer is None:
            return
        if customer["status"] == OPTED_OUT:
            tell(body, already_opted_out(customer), card_ts(body))
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"],
                view=opt_out_view(customer, channel_of(body), card_ts(body)),
            )
        except SlackApiError as exc:
            wait = retry_after(exc)
            if wait is not None:
                text = busy_text(
                    "the opt-out form did not open",
                    "Please press Record opt-out again",
                    whole_seconds(wait),
                )
            else:
                error = exc.response.get("error") if exc.response is not None else "no answer"
                text = f":warning: Slack did not open the opt-out form ({error}). Press it again."
            tell(body, text)

    @app.view(OPT_OUT_VIEW)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        how, note = _form_values(view)
        if how not in HOW:
            ack(response_action="errors", errors={"how": "Choose how they asked."})
            return
        if how == "other" and not note.strip():
            ack(response_action="errors", errors={"note": "Say how they asked."})
            return
        try:
            meta = json.loads(view.get("private_metadata") or "")
            keyword, phone = str(meta["keyword"]), str(meta["phone"])
            channel, thread_ts = str(meta["channel"]), str(meta["thread_ts"])
        except (ValueError, KeyError, TypeError):
            log.warning("opt-out form with unreadable metadata: %r", view.get("private_metadata"))
            ack(response_action="errors", errors={"how": "This form is out of date; close it."})
            return
        ack()
        user, now = body["user"]["id"], clock()
        if not storage.conversations.first_time(f"opt-out-form:{view.get('id')}", now):
            return  # the same submission delivered again
        customer = storage.customers.upsert(keyword, phone, now=now)
        thread = storage.conversations.thread_by_ts(channel, thread_ts)
        recorded = record_opt_out(
            storage,
            customer,
            how=how,
            note=note,
            actor=user,
            who=f"<@{user}>",
            thread_id=thread["id"] if thread else None,
            now=now,
        )
        if not recorded:
            queue_answer(
                storage, now, channel, user, already_opted_out(customer), thread_ts=thread_ts
            )
        log.info("%s recorded an opt-out of %s (%s)", user, pretty(phone), how)
        wake()

    @on_action(blocks.CONSENT_HISTORY)
    def on_history(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        customer = customer_of(body, action, create=False)
        if customer is None:
            return
        text, body_blocks = history_message(
            customer, storage.customers.consent_history(customer["id"])
        )
        queue_answer(
            storage,
            clock(),
            channel_of(body),
            body["user"]["id"],
            text,
            body_blocks,
            thread_ts=card_ts(body) or None,
        )
        wake()
