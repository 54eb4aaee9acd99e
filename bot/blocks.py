"""What staff read in Slack: every text and Block Kit layout, as small pure functions.

Layouts are built with slack_sdk's Block Kit models, so a limit slack_sdk knows (section text
3,000 characters, button text 75, ...) fails here, at build time, not at Slack. Anything a
customer, CRM Text or a file name supplies is escaped (``&``, ``<``, ``>``) before it reaches
mrkdwn or a fallback text, so ``<!channel>`` shows literally and pings nobody; long texts are
split over several sections, and cut (saying so) only past Slack's 50 blocks per message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slacktext import to_plain
from bridge.keywords import Intent
from bridge.phones import pretty
from bridge.store import STATUS_NAMES, Row

Block = dict[str, Any]

NOTE_PREFIX = "note:"
THREAD_EVENT = "smsbridge_thread"
MESSAGE_EVENT = "smsbridge_message"

SECTION_CHARS = 3000  # Slack: section text
MESSAGE_BLOCKS = 50  # Slack: blocks in one message
FALLBACK_CHARS = 4000  # Slack: chat.update answers msg_too_long past 4,000 characters
NAME_CHARS = 50  # a customer's name in labels (the username of a post is at most 80)
STORE_NAME_CHARS = 100

OPT_OUT, NOT_STOP = "opt_out", "not_stop"
Decision = tuple[str, str]  # (OPT_OUT or NOT_STOP, the Slack user who decided)

INTENT_NOTICES = {
    Intent.STOP: ":no_entry: *Opted out.* They texted STOP; CRM Text opted them out and sent "
    "the store's opt-out message. Replies to this number are blocked.",
    Intent.REVOKE: ":no_entry: *Opt-out request.* This word revokes consent, so smsbridge is "
    "opting them out in CRM Text. Replies to this number are blocked.",
    Intent.SOFT_STOP: ":warning: *This may be a request to stop texting.* If it is, opt them out.",
    Intent.HELP: ":information_source: They texted HELP; CRM Text sent the store's help message.",
    Intent.START: ":white_check_mark: They texted START/YES and are opted in.",
}

_SAFE_URL = re.compile(r"https?://[^\s<>|]+")


# -- text ---------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters as entities, so the text shows exactly as written
    (``<!channel>`` stays words, ``&lt;`` stays ``&lt;``). Only these three: Slack decodes
    nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters; a cut ends in an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def fit(text: str, limit: int) -> str:
    """``text`` escaped, in at most ``limit`` characters; a cut ends in an ellipsis."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out, size = [], 0
    for char in text:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def _width(text: str) -> int:
    """Characters as Slack may count them (UTF-16 units: an emoji can count twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def text_sections(text: str, *, quote: bool, room: int, head: str = "") -> list[str]:
    """``text`` escaped (and ``> `` quoted line by line) as section texts of at most 3,000
    characters each, at most ``room`` of them; ``head`` (mrkdwn, already escaped) goes first.

    A line longer than a section is continued in the next one. Past ``room`` sections the
    rest is left out and the last section says how many characters are not shown.
    """
    prefix = "> " if quote else ""
    pieces: list[tuple[str, int]] = [(head, 0)] if head else []  # (rendered line, raw chars)
    for line in text.splitlines(keepends=True) or [""]:
        body = line.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        ending = len(line) - len(body)
        rendered, width, raw = [prefix], _width(prefix), 0
        for char in body:
            entity = escape(char)
            if width + _width(entity) > SECTION_CHARS:
                pieces.append(("".join(rendered), raw))
                rendered, width, raw = [prefix], _width(prefix), 0
            rendered.append(entity)
            width += _width(entity)
            raw += 1
        pieces.append(("".join(rendered), raw + ending))
    sections: list[list[tuple[str, int]]] = []
    width = 0
    for piece in pieces:
        if sections and width + 1 + _width(piece[0]) <= SECTION_CHARS:
            sections[-1].append(piece)
            width += 1 + _width(piece[0])
        else:
            sections.append([piece])
            width = _width(piece[0])
    if not quote:  # Slack refuses a section of blank lines; dropping them hides nothing
        sections = [s for s in sections if "".join(p[0] for p in s).strip()] or [[("…", 0)]]
    room = max(room, 1)
    if len(sections) <= room:
        return ["\n".join(p[0] for p in s) for s in sections]
    kept = sections[:room]
    shown = sum(p[1] for s in kept for p in s)
    hidden = len(text) - shown
    while True:
        note = (
            f"_… {hidden:,} more characters are not shown: Slack holds {MESSAGE_BLOCKS} "
            "blocks per message._"
        )
        last = "\n".join([p[0] for p in kept[-1]] + [note])
        if _width(last) <= SECTION_CHARS or len(kept[-1]) == 0:
            break
        hidden += kept[-1].pop()[1]
    return ["\n".join(p[0] for p in s) for s in kept[:-1]] + [last]


def quote(text: str) -> str:
    """``text`` escaped and quoted line by line, for a plain message text (no blocks)."""
    return "\n".join(text_sections(text, quote=True, room=MESSAGE_BLOCKS))


# -- blocks -------------------------------------------------------------------------------


def section(text: str, block_id: str | None = None, *, verbatim: bool = False) -> Block:
    """A mrkdwn section; ``verbatim`` for customer text: no automatic @channel/#channel
    parsing. ``text`` must already be escaped."""
    mrkdwn = MarkdownTextObject(text=text, verbatim=True if verbatim else None)
    block: Block = SectionBlock(text=mrkdwn, block_id=block_id).to_dict()
    return block


def context(text: str) -> Block:
    block: Block = ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict()
    return block


def customer_label(customer: Row) -> str:
    """``Jane Doe · (415) 555-0100`` or just the number, as plain text (escape it for mrkdwn)."""
    number = pretty(customer["phone"])
    name = shorten(customer["name"] or "", NAME_CHARS)
    return f"{name} · {number}" if name else number


def parent_post(
    customer: Row,
    store: Row,
    first_text: str,
    previous_link: str | None,
    resolved_by: str | None,
    *,
    notice: Sequence[Block] = (),
    outbound_by: str | None = None,
) -> tuple[str, list[Block]]:
    """The thread's parent: who, which store, consent, the first text (a customer's, or the
    one ``outbound_by`` texted them), any ``notice`` about it, and how to work the thread."""
    store_name = shorten(store["name"] or store["keyword"], STORE_NAME_CHARS)
    status = STATUS_NAMES.get(customer["status"], "unknown")
    label = customer_label(customer)
    headline = (
        f":speech_balloon: *{escape(label)}*\n"
        f"{escape(store_name)} · keyword {escape(store['keyword'])} · {status}"
    )
    hint = (
        "Reply in this thread to text them (:outbox_tray: sent, :x: not sent). "
        f"Start with `{NOTE_PREFIX}` to keep a reply in Slack. "
        "React :white_check_mark: or press Resolve when done."
    )
    if previous_link:
        hint += f" <{escape(previous_link)}|Previous conversation>"
    tail = [context(hint)]
    if resolved_by:
        tail.append(context(f":white_check_mark: Resolved by <@{resolved_by}>."))
    else:
        tail.append(_actions("thread_actions", [_button("resolve_thread", "Resolve", "resolve")]))
    room = MESSAGE_BLOCKS - 1 - len(notice) - len(tail)
    head = f":outbox_tray: *{outbound_by}* texted {escape(label)}:" if outbound_by else ""
    texts = text_sections(first_text, quote=True, room=room, head=head)
    body = [section(headline)] + [section(t, verbatim=True) for t in texts]
    fallback = f"Text {'to' if outbound_by else 'from'} {escape(label)}: "
    return fallback + fit(first_text, FALLBACK_CHARS - len(fallback)), body + [*notice] + tail


def inbound_reply(
    text: str,
    media_count: int,
    intent: Intent,
    message_id: int,
    *,
    label: str | None = None,
    decision: Decision | None = None,
) -> tuple[str, list[Block]]:
    """A later customer text inside the thread, then ``label`` (mrkdwn, e.g. which blast it
    answers) and any consent notice (with the staff ``decision`` once made) under it."""
    body = text if text.strip() else f"(sent {media_count} picture{'s' * (media_count != 1)})"
    extra = ([context(label)] if label else []) + notice_blocks(intent, message_id, decision)
    texts = text_sections(body, quote=False, room=MESSAGE_BLOCKS - len(extra))
    return fit(body, FALLBACK_CHARS), [section(t, verbatim=True) for t in texts] + extra


def notice_blocks(intent: Intent, message_id: int, decision: Decision | None = None) -> list[Block]:
    """The consent notice for an intent. A possible stop request carries the Opt out and Not
    a stop request buttons until staff decide; then the decision and who made it."""
    notice = INTENT_NOTICES.get(intent)
    if notice is None:
        return []
    blocks = [context(notice)]
    if intent is Intent.SOFT_STOP:
        blocks.append(context(decision_text(decision)) if decision else opt_out_actions(message_id))
    return blocks


def decision_of(message: Row) -> Decision | None:
    """What staff decided about a text that may be a stop request, and who, if anyone has."""
    if not message["decided_by"]:
        return None
    return (message["decision"] or NOT_STOP, message["decided_by"])


def decision_text(decision: Decision) -> str:
    kind, user = decision
    if kind == OPT_OUT:
        return f":no_entry: <@{user}> pressed Opt out: this customer is opted out."
    return decided_not_stop(user)


def _button(
    action_id: str,
    text: str,
    value: str,
    *,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(text=text, action_id=action_id, value=value, style=style, confirm=confirm)


def _actions(block_id: str, buttons: list[ButtonElement]) -> Block:
    block: Block = ActionsBlock(block_id=block_id, elements=buttons).to_dict()
    return block


def opt_out_actions(message_id: int) -> Block:
    confirm = ConfirmObject(
        title="Opt this customer out?",
        text=MarkdownTextObject(
            text="CRM Text will send the store's opt-out message and block every future text "
            "to this number."
        ),
        confirm="Opt out",
        deny="Cancel",
    )
    return _actions(
        f"opt_out_{message_id}",
        [
            _button(
                "opt_out_customer", "Opt out", str(message_id), style="danger", confirm=confirm
            ),
            _button("not_a_stop_request", "Not a stop request", str(message_id)),
        ],
    )


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


def picture_link(url: str, n: int, why: str = "") -> str:
    """A picture Slack could not take (and ``why``, if known): a link when the address is a
    plain web address, else the address itself as text (a ``|`` or ``>`` in it could disguise
    where a link goes)."""
    because = f" ({fit(why, 500)})" if why else ""
    if _SAFE_URL.fullmatch(url):
        return (
            f":frame_with_picture: Picture {n} could not be uploaded to Slack{because}: "
            f"<{escape(url)}|open it>"
        )
    return (
        f":frame_with_picture: Picture {n} could not be uploaded to Slack{because}. "
        f"Its address: {fit(url, 3000)}"
    )


def picture_refused(n: int, why: str) -> str:
    """A customer's picture smsbridge would not fetch (its link is not shown either)."""
    return (
        f":warning: Picture {n} was not shown: smsbridge did not fetch it because {fit(why, 500)}."
    )


def pictures_over_cap(total: int, shown: int) -> str:
    return (
        f":frame_with_picture: The customer sent {total} pictures in one text; smsbridge shows "
        f"the first {shown}, so the last {total - shown} were not fetched. Ask them to send "
        "those again if they matter."
    )


HELD_FOR_DECISION = (
    ":hourglass_flowing_sand: Not sent yet: this customer may have asked to stop texting. "
    "Press *Opt out* or *Not a stop request* on their text; this reply goes out if it was not "
    "a stop request."
)


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
    return f":x: {fit(reason, 3000)}"


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
    return f":x: {fit(shorten(name, 255), 1500)} was not sent: {fit(reason, 1500)}"


def edited_after_send(user: str, original: str, *, sent: bool = True) -> str:
    """``original`` is the reply as staff typed it (Slack markup); shown as the customer got it."""
    if sent:
        return (
            f":pencil2: <@{user}> edited a reply that was already texted. "
            f"The customer has the original:\n{quote(to_plain(original))}"
        )
    return (
        f":pencil2: <@{user}> edited a reply that smsbridge had already started to text. "
        f"The customer gets the original:\n{quote(to_plain(original))}"
    )


def deleted_after_send(original: str, *, sent: bool = True) -> str:
    if sent:
        return (
            ":wastebasket: A reply that was already texted was deleted in Slack. "
            f"The customer still has it:\n{quote(to_plain(original))}"
        )
    return (
        ":wastebasket: A reply that smsbridge had already started to text was deleted in "
        f"Slack. The customer still gets it:\n{quote(to_plain(original))}"
    )


def outbound_post(staff_name: str, customer: Row, text: str) -> str:
    """A ``/sms`` text in its thread (a plain message text); ``staff_name`` is mrkdwn and
    ``text`` is Slack markup as staff typed it, shown as the customer got it."""
    label = escape(customer_label(customer))
    return f":outbox_tray: *{staff_name}* texted {label}:\n{quote(to_plain(text))}"


def opt_in_offer(value: str) -> Block:
    """The button that sends CRM Text's opt-in request, behind an explicit consent check."""
    confirm = ConfirmObject(
        title="Did they agree to texts?",
        text=MarkdownTextObject(
            text="Only send this if the customer told you they want texts from this store (in "
            "person, by phone or in writing). CRM Text will text them the store's opt-in "
            "request. Your name is recorded with their consent."
        ),
        confirm="They agreed, send it",
        deny="Cancel",
    )
    button = _button("send_opt_in", "Send opt-in request", value, confirm=confirm)
    return _actions("opt_in_offer", [button])
