"""Check a message or view the way Slack would: slack_sdk's own validators, the Block Kit
limits slack_sdk does not check (option descriptions, checkbox counts, blocks per message),
and the fake Slack's independent hand-written limit table."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.dev.fake_slack_limits import check_blocks, check_view

SECTION_TEXT = 3000
MESSAGE_BLOCKS = 50
MESSAGE_TEXT = 40_000
OPTION_TEXT = 75
CHECKBOX_OPTIONS = 10
PLACEHOLDER = 150


def _walk(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += _walk(item)
    elif isinstance(value, list):
        for item in value:
            found += _walk(item)
    return found


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _extra_problems(blocks: list[dict[str, Any]]) -> list[str]:
    problems = []
    for obj in _walk(blocks):
        if obj.get("type") == "section":
            if not _text(obj.get("text")).strip() and not obj.get("fields"):
                problems.append("section text is empty")
            if len(_text(obj.get("text"))) > SECTION_TEXT:
                problems.append(f"section text is {len(_text(obj.get('text')))} characters")
        if obj.get("type") in ("checkboxes", "radio_buttons"):
            if len(obj.get("options", [])) > CHECKBOX_OPTIONS:
                problems.append(f"{len(obj['options'])} options")
        if "value" in obj and "text" in obj and obj.get("type") is None:  # an option object
            for key in ("text", "description"):
                if len(_text(obj.get(key))) > OPTION_TEXT:
                    problems.append(f"option {key} is {len(_text(obj.get(key)))} characters")
        if obj.get("type") == "plain_text_input":
            if len(_text(obj.get("placeholder"))) > PLACEHOLDER:
                problems.append("placeholder too long")
        if obj.get("type") == "mrkdwn" and not _text(obj).strip():
            problems.append("empty mrkdwn text")
    return problems


def _sdk_problems(blocks: list[dict[str, Any]]) -> list[str]:
    problems = []
    for block in blocks:
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"slack_sdk does not know {block.get('type')}")
            else:
                parsed.to_dict()
        except SlackObjectFormationError as exc:
            problems.append(str(exc))
    return problems


def message_problems(text: str, blocks: list[dict[str, Any]] | None) -> list[str]:
    """Why Slack would refuse (or cut) a chat.postMessage with this text and these blocks."""
    problems = []
    if not text.strip():
        problems.append("empty text")
    if len(text) > MESSAGE_TEXT:
        problems.append(f"text is {len(text)} characters")
    if blocks is not None:
        if not 1 <= len(blocks) <= MESSAGE_BLOCKS:
            problems.append(f"{len(blocks)} blocks")
        problems += _sdk_problems(blocks) + _extra_problems(blocks) + check_blocks(blocks)
    return problems


def view_problems(view: dict[str, Any]) -> list[str]:
    """Why Slack would refuse this view in views.open/update or a response_action."""
    problems = []
    try:
        View(**view).to_dict()
    except SlackObjectFormationError as exc:
        problems.append(str(exc))
    problems += _sdk_problems(view["blocks"]) + _extra_problems(view["blocks"])
    return problems + check_view(view)
