"""Block Kit for blasts: the compose modal with its live preflight, the confirmation, progress."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.blocks import Block, quote
from bridge import preflight
from bridge.preflight import BLOCK, INFO, WARN

LEVEL_ICONS = {BLOCK: ":no_entry:", WARN: ":warning:", INFO: ":information_source:"}
COMPOSE, CONFIRM = "blast_compose", "blast_confirm"


def _section(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if block_id:
        block["block_id"] = block_id
    return block


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def duration_text(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def findings(result: preflight.Preflight) -> list[Block]:
    """Every check as one line: icon, title, then what to do."""
    lines = [f"{LEVEL_ICONS[f.level]} *{f.title}* {f.detail}" for f in result.findings]
    blocks: list[Block] = []
    chunk: list[str] = []
    for line in lines:  # a section holds 3000 characters
        if sum(len(x) + 1 for x in chunk) + len(line) > 2900:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return blocks


def summary_line(result: preflight.Preflight) -> str:
    seg = result.segments
    recipients = len(result.recipients)
    return (
        f"*{recipients:,} recipient{'s' * (recipients != 1)}* · {seg.encoding} · "
        f"{seg.segments} segment{'s' * (seg.segments != 1)} × {recipients:,} = "
        f"{seg.segments * recipients:,} SMS · {seg.billing_units} billing unit"
        f"{'s' * (seg.billing_units != 1)} each · est. ${result.cost:,.2f} · "
        f"{'one CRM Text campaign' if result.mode == 'campaign' else 'one text each, 1 per second'}"
        f" · about {duration_text(result.duration)}"
    )


def compose_view(
    store: str, channel: str, text: str, append_opt_out: bool, result: preflight.Preflight
) -> dict[str, Any]:
    """The modal: message, options, optional picture, and the preflight under them."""
    option = {"text": _plain(f"Append “{preflight.OPT_OUT_LINE}”"), "value": "append_opt_out"}
    checkbox: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": "blast_options",
        "options": [option],
    }
    if append_opt_out:
        checkbox["initial_options"] = [option]
    return {
        "type": "modal",
        "callback_id": COMPOSE,
        "title": _plain("Text every customer"),
        "submit": _plain("Review"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"store": store, "channel": channel}),
        "blocks": [
            {
                "type": "input",
                "block_id": "message",
                "dispatch_action": True,
                "label": _plain(f"Message to {store}'s opted-in customers"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "blast_text",
                    "multiline": True,
                    "initial_value": text,
                    "max_length": 3000,
                    "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
                },
            },
            {
                "type": "input",
                "block_id": "options",
                "optional": True,
                "dispatch_action": True,
                "label": _plain("Opt-out wording"),
                "element": checkbox,
            },
            {
                "type": "input",
                "block_id": "image",
                "optional": True,
                "label": _plain("Picture (optional, sent as MMS)"),
                "element": {
                    "type": "file_input",
                    "action_id": "file",
                    "max_files": 1,
                    "filetypes": ["jpg", "jpeg", "png", "gif"],
                },
            },
            {"type": "divider"},
            _section(f":mag: *Preflight* — {summary_line(result)}", "preflight_summary"),
            *findings(result),
        ],
    }


def confirm_view(
    blast_id: int, name: str, result: preflight.Preflight, typed_over: int, scheduled: str | None
) -> dict[str, Any]:
    """Recipients, the message as it will arrive, count × segments, cost, duration, acks."""
    recipients = len(result.recipients)
    excluded = ", ".join(f"{n} {reason}" for reason, n in result.excluded.items() if n)
    blocks: list[Block] = [
        _section(f":loudspeaker: *{name}*\n{summary_line(result)}"),
        _section(f"*As it will arrive:*\n{quote(result.final_text)}"),
    ]
    if excluded:
        blocks.append(_section(f"Not included: {excluded}."))
    if scheduled:
        blocks.append(_section(f":alarm_clock: Quiet hours: {scheduled}"))
    options = [
        {
            "text": {"type": "mrkdwn", "text": f"*{w.title}*"[:75]},
            "description": {"type": "mrkdwn", "text": w.detail[:150]},
            "value": w.code,
        }
        for w in result.warnings[:9]
    ]
    if scheduled:  # quiet hours: sending only goes ahead as the admin chooses here
        options.append(
            {
                "text": {"type": "mrkdwn", "text": "*Outside allowed hours: send as described*"},
                "description": {"type": "mrkdwn", "text": scheduled[:150]},
                "value": "quiet_hours",
            }
        )
    if options:
        blocks.append(
            {
                "type": "input",
                "block_id": "acks",
                "label": _plain("I have read each of these"),
                "element": {"type": "checkboxes", "action_id": "acks", "options": options},
            }
        )
    if recipients > typed_over:
        blocks.append(
            {
                "type": "input",
                "block_id": "typed_count",
                "label": _plain(f"Type {recipients} to confirm texting {recipients:,} people"),
                "element": {"type": "plain_text_input", "action_id": "count"},
            }
        )
    return {
        "type": "modal",
        "callback_id": CONFIRM,
        "title": _plain("Confirm the blast"),
        "submit": _plain(f"Send to {recipients:,}"[:24]),
        "close": _plain("Back out"),
        "private_metadata": json.dumps({"blast_id": blast_id}),
        "blocks": blocks,
    }


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
    head = f":loudspeaker: *Blast “{blast['name']}”* — {STATUS_WORDS.get(status, status)}"
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
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    report = _report(failures, skips, blast.get("report") or "")
    if report:
        blocks.append(_section(report))
    buttons = _controls(blast["id"], status)
    if buttons:
        blocks.append({"type": "actions", "block_id": "blast_controls", "elements": buttons})
    return f"Blast “{blast['name']}”: {sent} sent, {failed} failed, {skipped} skipped", blocks


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
    lines = [f"• failed, {reason}: {n}" for reason, n in failures.items()]
    lines += [f"• skipped, {reason}: {n}" for reason, n in skips.items()]
    if note:
        lines.append(note)
    return "\n".join(lines)


def _controls(blast_id: int, status: str) -> list[dict[str, Any]]:
    def button(action: str, text: str, style: str | None = None) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": action,
            "text": _plain(text),
            "value": str(blast_id),
        }
        if style:
            element["style"] = style
        return element

    cancel = button("blast_cancel", "Cancel", "danger")
    cancel["confirm"] = {
        "title": _plain("Cancel this blast?"),
        "text": {"type": "mrkdwn", "text": "Nobody else gets it. Texts already sent stay sent."},
        "confirm": _plain("Cancel blast"),
        "deny": _plain("Keep sending"),
    }
    if status == "sending":
        return [button("blast_pause", "Pause"), cancel]
    if status == "paused":
        return [button("blast_resume", "Resume", "primary"), cancel]
    if status in ("confirmed", "scheduled"):
        return [cancel]
    return []


def blast_label(name: str) -> str:
    return f":loudspeaker: Reply to blast “{name}”"
