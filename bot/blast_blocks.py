"""Block Kit for blasts: the compose modal with its live preflight, the confirmation, progress.

Built with slack_sdk's models (limits fail here, not at Slack); every text the admin typed, every
name and every reason from CRM Text is escaped, so the preview shows what customers receive.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.blocks.basic_components import DispatchActionConfig
from slack_sdk.models.blocks.block_elements import FileInputElement
from slack_sdk.models.views import View

from bot.blocks import SECTION_CHARS, Block, fit, section, shorten, text_sections
from bridge import preflight, segments
from bridge.preflight import BLOCK, INFO, WARN

LEVEL_ICONS = {BLOCK: ":no_entry:", WARN: ":warning:", INFO: ":information_source:"}
COMPOSE, CONFIRM = "blast_compose", "blast_confirm"
VIEW_BLOCKS = 100  # Slack: blocks in a modal
MESSAGE_BLOCKS = 50
MAX_OPTIONS = 10  # Slack: options in a checkboxes element
OPTION_CHARS = 75  # Slack: option text and description
NAME_CHARS = 150


def _section(text: str, block_id: str | None = None) -> Block:
    return section(text, block_id)


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text)


def _sections(lines: list[str], room: int) -> list[Block]:
    """Lines of mrkdwn (each under 3,000 characters) packed into at most ``room`` sections."""
    chunks: list[list[str]] = []
    size = 0
    for line in lines:
        if chunks and size + 1 + len(line) <= SECTION_CHARS:
            chunks[-1].append(line)
            size += 1 + len(line)
        else:
            chunks.append([line])
            size = len(line)
    if len(chunks) > room:
        hidden = sum(len(c) for c in chunks[room - 1 :])
        chunks = chunks[: room - 1] + [[f"_… and {hidden} more lines._"]]
    return [_section("\n".join(chunk)) for chunk in chunks]


def duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _finding_line(finding: preflight.Finding) -> str:
    return f"{LEVEL_ICONS[finding.level]} *{fit(finding.title, 300)}* {fit(finding.detail, 2500)}"


def findings(result: preflight.Preflight, room: int = VIEW_BLOCKS - 5) -> list[Block]:
    """Every check as one line: icon, title, then what to do."""
    return _sections([_finding_line(f) for f in result.findings], room)


def summary_line(result: preflight.Preflight) -> str:
    seg = result.segments
    recipients = len(result.recipients)
    return (
        f"*{recipients:,} recipient{'s' * (recipients != 1)}* · {seg.encoding} · "
        f"{seg.segments} segment{'s' * (seg.segments != 1)} × {recipients:,} = "
        f"{seg.segments * recipients:,} SMS · {seg.billing_units} billing unit"
        f"{'s' * (seg.billing_units != 1)} each · est. ${result.cost:,.2f} · "
        f"{'one CRM Text campaign' if result.mode == 'campaign' else 'one text each, 1 per second'}"
        f" · about {duration_text(result.duration)}{_length_note(result)}"
    )


def _length_note(result: preflight.Preflight) -> str:
    """Both counts of the text's length when they differ (the 1,600 limit uses the larger)."""
    seg = result.segments
    if seg.length == seg.characters:
        return ""
    return f" · {segments.describe_length(result.final_text)}"


CHECKING = ":hourglass_flowing_sand: *Preflight* — checking the text against the store's customers…"
WORKING = (
    ":hourglass_flowing_sand: Checking the blast against every customer of the store. "
    "This form changes to the confirmation in a few seconds."
)
FIX_BELOW = ":x: Fix what is marked :no_entry: below, then press Review again."


def compose_view(
    store: str,
    channel: str,
    text: str,
    append_opt_out: bool,
    result: preflight.Preflight | None,
    problem: str | None = None,
) -> dict[str, Any]:
    """The modal: message, options, optional picture, and the preflight under them.

    ``result`` None: the preflight is still running (the modal opens at once, then updates).
    ``problem`` (mrkdwn written by smsbridge) is shown above the form when a submission failed.
    """
    option = Option(value="append_opt_out", text=_plain(f"Append “{preflight.OPT_OUT_LINE}”"))
    message = PlainTextInputElement(
        action_id="blast_text",
        multiline=True,
        initial_value=text[:3000] or None,
        max_length=3000,
        dispatch_action_config=DispatchActionConfig(trigger_actions_on=["on_character_entered"]),
    )
    cut = (
        f"Only the first 3,000 of the {len(text):,} characters you typed fit in this box."
        if len(text) > 3000
        else None
    )
    blocks = [_section(fit(problem, SECTION_CHARS))] if problem else []
    blocks += [
        InputBlock(
            block_id="message",
            dispatch_action=True,
            label=_plain(f"Message to {store}'s opted-in customers"),
            element=message,
            hint=_plain(cut) if cut else None,
        ).to_dict(),
        InputBlock(
            block_id="options",
            optional=True,
            dispatch_action=True,
            label=_plain("Opt-out wording"),
            element=CheckboxesElement(
                action_id="blast_options",
                options=[option],
                initial_options=[option] if append_opt_out else None,
            ),
        ).to_dict(),
        InputBlock(
            block_id="image",
            optional=True,
            label=_plain("Picture (optional, sent as MMS)"),
            element=FileInputElement(
                action_id="file", max_files=1, filetypes=["jpg", "jpeg", "png", "gif"]
            ),
        ).to_dict(),
        DividerBlock().to_dict(),
    ]
    if result is None:
        blocks.append(_section(CHECKING, "preflight_summary"))
    else:
        blocks.append(_section(f":mag: *Preflight* — {summary_line(result)}", "preflight_summary"))
        blocks += findings(result, VIEW_BLOCKS - len(blocks))
    return _modal(
        COMPOSE,
        "Text every customer",
        "Review",
        "Cancel",
        json.dumps({"store": store, "channel": channel}),
        blocks,
    )


def _modal(
    callback_id: str, title: str, submit: str, close: str, metadata: str, blocks: list[Block]
) -> dict[str, Any]:
    view: dict[str, Any] = View(
        type="modal",
        callback_id=callback_id,
        title=_plain(title),
        submit=_plain(submit),
        close=_plain(close),
        private_metadata=metadata,
        blocks=blocks,
    ).to_dict()
    return view


def _option(code: str, title: str) -> Option:
    """A checkbox: a short title only (Slack refuses option text or descriptions over 75
    characters); what to do about it is in the section above the checkboxes."""
    return Option(value=code, text=MarkdownTextObject(text=f"*{fit(title, OPTION_CHARS - 2)}*"))


def confirm_view(
    blast_id: int, name: str, result: preflight.Preflight, typed_over: int, scheduled: str | None
) -> dict[str, Any]:
    """Recipients, the message as it will arrive, count × segments, cost, duration, acks."""
    recipients = len(result.recipients)
    excluded = ", ".join(f"{n} {reason}" for reason, n in result.excluded.items() if n)
    blocks: list[Block] = [
        _section(
            f":loudspeaker: *{fit(shorten(name, NAME_CHARS), NAME_CHARS)}*\n{summary_line(result)}"
        ),
    ]
    arrive = text_sections(result.final_text, quote=True, room=20, head="*As it will arrive:*")
    blocks += [section(t, verbatim=True) for t in arrive]
    if excluded:
        blocks.append(_section(f"Not included: {fit(excluded, 2900)}."))
    if scheduled:
        blocks.append(_section(f":alarm_clock: *Quiet hours:* {fit(scheduled, 2900)}"))
    warnings = result.warnings[: MAX_OPTIONS - 1]
    options = [_option(w.code, w.title) for w in warnings]
    if scheduled:  # quiet hours: sending only goes ahead as the admin chooses here
        options.append(_option("quiet_hours", "Outside allowed hours: send as described"))
    if warnings:
        lines = ["*Read each warning, then tick it below:*"] + [_finding_line(w) for w in warnings]
        blocks += _sections(lines, 10)
    if options:
        blocks.append(
            InputBlock(
                block_id="acks",
                label=_plain("I have read each of these"),
                element=CheckboxesElement(action_id="acks", options=options),
            ).to_dict()
        )
    if recipients > typed_over:
        blocks.append(
            InputBlock(
                block_id="typed_count",
                label=_plain(f"Type {recipients} to confirm texting {recipients:,} people"),
                element=PlainTextInputElement(action_id="count"),
            ).to_dict()
        )
    return _modal(
        CONFIRM,
        "Confirm the blast",
        f"Send to {recipients:,}"[:24],
        "Back out",
        json.dumps({"blast_id": blast_id, "total": recipients}),
        blocks,
    )


def working_view() -> dict[str, Any]:
    """What a submitted compose form shows while the checks run in the background."""
    view: dict[str, Any] = View(
        type="modal",
        title=_plain("Text every customer"),
        close=_plain("Cancel"),
        blocks=[_section(WORKING)],
    ).to_dict()
    return view


def notice_view(message: str) -> dict[str, Any]:
    """A modal that only says why (``message`` is mrkdwn written by smsbridge)."""
    view: dict[str, Any] = View(
        type="modal",
        title=_plain("Blast not sent"),
        close=_plain("Close"),
        blocks=[_section(f":x: {message}"[:SECTION_CHARS])],
    ).to_dict()
    return view


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return "▓" * filled + "░" * (width - filled)


def progress(
    blast: dict[str, Any],
    counts: dict[str, int],
    now: datetime,
    failures: dict[str, int],
    skips: dict[str, int],
) -> tuple[str, list[Block]]:
    """The one progress message: bar, counts, ETA and the admin buttons; the report when done."""
    total = blast["total"] or 0
    sent, failed, skipped = counts.get("sent", 0), counts.get("failed", 0), counts.get("skipped", 0)
    left = counts.get("pending", 0)
    status = blast["status"]
    name = fit(shorten(blast["name"], NAME_CHARS), NAME_CHARS)
    head = f":loudspeaker: *Blast “{name}”* — {STATUS_WORDS.get(status, status)}"
    line = (
        f"`{_bar(sent + failed + skipped, total)}` {sent} sent · {failed} failed · "
        f"{skipped} skipped · {left} to go, of {total}"
    )
    blocks: list[Block] = [_section(f"{head}\n{line}")]
    context = f"Started by <@{blast['confirmed_by']}>"
    if status == "sending" and left and blast["mode"] != "campaign":
        context += f" · ETA about {duration_text(timedelta(seconds=left))}"
    if blast.get("run_at") and status in ("scheduled", "sending") and left:
        context += (
            f" · waiting for quiet hours to end ({blast['run_at'][:16].replace('T', ' ')} UTC)"
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context)]).to_dict())
    buttons = _controls(blast["id"], status)
    report = _report(failures, skips, blast.get("report") or "")
    if report:
        room = MESSAGE_BLOCKS - len(blocks) - (1 if buttons else 0)
        blocks += [_section(t) for t in text_sections(report, quote=False, room=room)]
    if buttons:
        blocks.append(ActionsBlock(block_id="blast_controls", elements=buttons).to_dict())
    fallback = f"Blast “{name}”: {sent} sent, {failed} failed, {skipped} skipped"
    return fallback, blocks


STATUS_WORDS = {
    "confirmed": "starting",
    "scheduled": "scheduled",
    "sending": "sending",
    "paused": "paused",
    "cancelled": "cancelled",
    "done": "done",
    "blocked": "stopped before sending",
}


def _report(failures: dict[str, int], skips: dict[str, int], note: str) -> str:
    """Plain text (escaped when shown): reasons can come from CRM Text."""
    lines = [f"• failed, {reason}: {n}" for reason, n in failures.items()]
    lines += [f"• skipped, {reason}: {n}" for reason, n in skips.items()]
    if note:
        lines.append(note)
    return "\n".join(lines)


def _controls(blast_id: int, status: str) -> list[ButtonElement]:
    def button(action: str, text: str, style: str | None = None) -> ButtonElement:
        return ButtonElement(text=text, action_id=action, value=str(blast_id), style=style)

    cancel = ButtonElement(
        text="Cancel",
        action_id="blast_cancel",
        value=str(blast_id),
        style="danger",
        confirm=ConfirmObject(
            title="Cancel this blast?",
            text=MarkdownTextObject(text="Nobody else gets it. Texts already sent stay sent."),
            confirm="Cancel blast",
            deny="Keep sending",
        ),
    )
    if status == "sending":
        return [button("blast_pause", "Pause"), cancel]
    if status == "paused":
        return [button("blast_resume", "Resume", "primary"), cancel]
    if status in ("confirmed", "scheduled"):
        return [cancel]
    return []


def blast_label(name: str) -> str:
    """mrkdwn: which blast a customer's text answers."""
    return f":loudspeaker: Reply to blast “{fit(shorten(name, NAME_CHARS), NAME_CHARS)}”"
