"""Slack's Block Kit limits, written down by hand for the fake Slack.

The product builds its blocks with ``slack_sdk.models``; the fake checks them against this
separate table, taken from Slack's Block Kit reference (blocks, block elements, composition
objects, view objects, chat.postMessage / chat.update), so a mistake in how the product uses
slack_sdk (or in slack_sdk itself) is caught by an independent oracle instead of being repeated.

Each problem reads like Slack's own ``response_metadata.messages`` entries, e.g.
``[ERROR] must be less than 76 characters [json-pointer:/blocks/3/element/options/0/text/text]``.
Lengths are counted in characters (code points). Only limits Slack documents are enforced; a
rule that is merely recommended ("should") is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonDict = dict[str, Any]

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MESSAGE_MAX_TEXT = 40_000  # chat.postMessage / chat.postEphemeral: msg_too_long beyond it
UPDATE_MAX_TEXT = 4_000  # chat.update: msg_too_long beyond it
VIEW_MAX_BYTES = 250_000  # views.*: view_too_large beyond it

ID_MAX = 255  # block_id, action_id, callback_id, external_id
SECTION_TEXT_MAX = 3_000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2_000
URL_MAX = 3_000
OPTION_TEXT_MAX = 75
OPTION_DESCRIPTION_MAX = 75
OPTION_VALUE_MAX = 150
CHOICE_OPTIONS_MAX = 10  # checkboxes, radio_buttons
SELECT_OPTIONS_MAX = 100  # static selects: options or option_groups
OVERFLOW_OPTIONS_MAX = 5
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
PLACEHOLDER_MAX = 150
LABEL_MAX = 2_000  # input label and hint
IMAGE_ALT_TEXT_MAX = 2_000
IMAGE_TITLE_MAX = 2_000
MARKDOWN_BLOCK_MAX = 12_000
MODAL_TEXT_MAX = 24  # modal title, submit, close
PRIVATE_METADATA_MAX = 3_000
TEXT_INPUT_LENGTH_MAX = 3_000
FILE_INPUT_MAX_FILES = 10
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
VIDEO_TITLE_MAX = 200

_PLAIN = ("plain_text",)
_ANY_TEXT = ("plain_text", "mrkdwn")

_SELECTS = {
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
}
_SECTION_ACCESSORIES = _SELECTS | {
    "button",
    "checkboxes",
    "datepicker",
    "image",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
}
_ACTIONS_ELEMENTS = _SELECTS | {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
}
_INPUT_ELEMENTS = _SELECTS | {
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
}
_VIEW_BLOCKS = {
    "actions",
    "context",
    "divider",
    "header",
    "image",
    "input",
    "rich_text",
    "section",
    "video",
}
# Blocks only messages take; the newest (plan, task_card) are accepted unchecked.
_MESSAGE_BLOCKS = _VIEW_BLOCKS | {
    "context_actions",
    "file",
    "markdown",
    "plan",
    "table",
    "task_card",
}
# Elements that only work in modals (and, for rich_text_input, Home tabs), never in messages;
# workflow buttons only in messages.
_NOT_IN_MESSAGES = {
    "email_text_input",
    "file_input",
    "number_input",
    "rich_text_input",
    "url_text_input",
}
_ONLY_IN_MESSAGES = {"workflow_button"}
TABLE_ROWS_MAX = 100
TABLE_COLUMNS_MAX = 20


class _Checker:
    def __init__(self, surface: str) -> None:
        self.surface = surface  # "message", "modal" or "home"
        self.problems: list[str] = []
        self.block_ids: set[str] = set()

    def add(self, pointer: str, message: str) -> None:
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    # -- primitives ------------------------------------------------------------------------

    def obj(self, value: Any, ptr: str) -> JsonDict | None:
        if not isinstance(value, dict):
            self.add(ptr, "must provide an object")
            return None
        return value

    def string(
        self, parent: JsonDict, key: str, ptr: str, max_len: int, *, required: bool = False
    ) -> None:
        value = parent.get(key)
        if value is None:
            if required:
                self.add(ptr, f"missing required field: {key}")
            return
        if not isinstance(value, str):
            self.add(f"{ptr}/{key}", "must be a string")
        elif len(value) > max_len:
            self.add(f"{ptr}/{key}", f"must be less than {max_len + 1} characters")
        elif required and not value:
            self.add(f"{ptr}/{key}", "must be more than 0 characters")

    def array(
        self,
        parent: JsonDict,
        key: str,
        ptr: str,
        max_items: int,
        *,
        required: bool = False,
        min_items: int = 0,
    ) -> list[Any]:
        value = parent.get(key)
        if value is None:
            if required:
                self.add(ptr, f"missing required field: {key}")
            return []
        if not isinstance(value, list):
            self.add(f"{ptr}/{key}", "must provide an array")
            return []
        if len(value) > max_items:
            self.add(f"{ptr}/{key}", f"no more than {max_items} items allowed")
        fewest = max(min_items, 1 if required else 0)
        if len(value) < fewest:
            self.add(f"{ptr}/{key}", f"must provide at least {fewest} item{'s' * (fewest > 1)}")
        return value

    def text(
        self,
        parent: JsonDict,
        key: str,
        ptr: str,
        max_len: int,
        *,
        types: tuple[str, ...] = _ANY_TEXT,
        required: bool = False,
    ) -> None:
        if parent.get(key) is None:
            if required:
                self.add(ptr, f"missing required field: {key}")
            return
        self.text_object(parent[key], f"{ptr}/{key}", max_len, types)

    def text_object(self, value: Any, ptr: str, max_len: int, types: tuple[str, ...]) -> None:
        obj = self.obj(value, ptr)
        if obj is None:
            return
        if obj.get("type") not in types:
            self.add(f"{ptr}/type", f"must be one of [{', '.join(types)}]")
        self.string(obj, "text", ptr, max_len, required=True)

    def action_id(self, element: JsonDict, ptr: str) -> None:
        self.string(element, "action_id", ptr, ID_MAX)

    # -- composition objects ---------------------------------------------------------------

    def option(self, value: Any, ptr: str, *, text_types: tuple[str, ...], url: bool) -> None:
        option = self.obj(value, ptr)
        if option is None:
            return
        self.text(option, "text", ptr, OPTION_TEXT_MAX, types=text_types, required=True)
        self.string(option, "value", ptr, OPTION_VALUE_MAX, required=True)
        # checkbox and radio button options may use mrkdwn in text and description
        self.text(option, "description", ptr, OPTION_DESCRIPTION_MAX, types=text_types)
        if url:
            self.string(option, "url", ptr, URL_MAX)

    def options(
        self,
        element: JsonDict,
        ptr: str,
        max_items: int,
        *,
        text_types: tuple[str, ...],
        required: bool = True,
        url: bool = False,
    ) -> None:
        for i, option in enumerate(
            self.array(element, "options", ptr, max_items, required=required)
        ):
            self.option(option, f"{ptr}/options/{i}", text_types=text_types, url=url)
        for key in ("initial_options", "initial_option"):
            initial = element.get(key)
            for i, option in enumerate(initial if isinstance(initial, list) else [initial]):
                if option is not None:
                    where = f"{ptr}/{key}" + (f"/{i}" if isinstance(initial, list) else "")
                    self.option(option, where, text_types=text_types, url=False)

    def confirm(self, element: JsonDict, ptr: str) -> None:
        if element.get("confirm") is None:
            return
        ptr = f"{ptr}/confirm"
        confirm = self.obj(element["confirm"], ptr)
        if confirm is None:
            return
        self.text(confirm, "title", ptr, CONFIRM_TITLE_MAX, types=_PLAIN, required=True)
        self.text(confirm, "text", ptr, CONFIRM_TEXT_MAX, required=True)
        self.text(confirm, "confirm", ptr, CONFIRM_BUTTON_MAX, types=_PLAIN, required=True)
        self.text(confirm, "deny", ptr, CONFIRM_BUTTON_MAX, types=_PLAIN, required=True)
        self.style(confirm, ptr)

    def style(self, parent: JsonDict, ptr: str) -> None:
        if parent.get("style") is not None and parent["style"] not in ("primary", "danger"):
            self.add(f"{ptr}/style", "must be one of [primary, danger]")

    def placeholder(self, element: JsonDict, ptr: str) -> None:
        self.text(element, "placeholder", ptr, PLACEHOLDER_MAX, types=_PLAIN)

    def image_source(self, parent: JsonDict, ptr: str) -> None:
        if parent.get("image_url") is None and parent.get("slack_file") is None:
            self.add(ptr, "missing required field: image_url")
        self.string(parent, "image_url", ptr, URL_MAX)

    # -- elements --------------------------------------------------------------------------

    def element(self, value: Any, ptr: str, allowed: set[str]) -> None:
        element = self.obj(value, ptr)
        if element is None:
            return
        kind = element.get("type")
        wrong_surface = (self.surface == "message" and kind in _NOT_IN_MESSAGES) or (
            self.surface != "message" and kind in _ONLY_IN_MESSAGES
        )
        if kind not in allowed or kind not in _ELEMENTS or wrong_surface:
            self.add(ptr, f"unsupported type: {kind}")
            return
        if kind != "image":
            self.action_id(element, ptr)
        _ELEMENTS[kind](self, element, ptr)

    def button(self, element: JsonDict, ptr: str) -> None:
        self.text(element, "text", ptr, BUTTON_TEXT_MAX, types=_PLAIN, required=True)
        self.string(element, "value", ptr, BUTTON_VALUE_MAX)
        self.string(element, "url", ptr, URL_MAX)
        self.string(element, "accessibility_label", ptr, BUTTON_TEXT_MAX)
        self.style(element, ptr)
        self.confirm(element, ptr)

    def workflow_button(self, element: JsonDict, ptr: str) -> None:
        self.text(element, "text", ptr, BUTTON_TEXT_MAX, types=_PLAIN, required=True)
        if element.get("workflow") is None:
            self.add(ptr, "missing required field: workflow")
        self.style(element, ptr)

    def choices(self, element: JsonDict, ptr: str) -> None:  # checkboxes, radio_buttons
        self.options(element, ptr, CHOICE_OPTIONS_MAX, text_types=_ANY_TEXT)
        self.confirm(element, ptr)

    def select(self, element: JsonDict, ptr: str) -> None:
        self.placeholder(element, ptr)
        self.confirm(element, ptr)
        if element.get("type") in ("static_select", "multi_static_select"):
            groups = element.get("option_groups")
            self.options(
                element, ptr, SELECT_OPTIONS_MAX, text_types=_PLAIN, required=groups is None
            )
            for i, group in enumerate(
                self.array(element, "option_groups", ptr, SELECT_OPTIONS_MAX)
            ):
                group_ptr = f"{ptr}/option_groups/{i}"
                found = self.obj(group, group_ptr)
                if found is not None:
                    self.text(
                        found, "label", group_ptr, OPTION_TEXT_MAX, types=_PLAIN, required=True
                    )
                    self.options(found, group_ptr, SELECT_OPTIONS_MAX, text_types=_PLAIN)
        if str(element.get("type")).startswith("multi_"):
            most = element.get("max_selected_items")
            if most is not None and (not isinstance(most, int) or most < 1):
                self.add(f"{ptr}/max_selected_items", "must be 1 or more")

    def overflow(self, element: JsonDict, ptr: str) -> None:
        self.options(element, ptr, OVERFLOW_OPTIONS_MAX, text_types=_PLAIN, url=True)
        self.confirm(element, ptr)

    def picker(self, element: JsonDict, ptr: str) -> None:  # date/time pickers, rich text input
        self.placeholder(element, ptr)
        self.confirm(element, ptr)

    def text_input(self, element: JsonDict, ptr: str) -> None:
        self.placeholder(element, ptr)
        for key in ("min_length", "max_length"):
            value = element.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                self.add(f"{ptr}/{key}", "must be an integer")
            elif not (0 if key == "min_length" else 1) <= value <= TEXT_INPUT_LENGTH_MAX:
                self.add(f"{ptr}/{key}", f"must be at most {TEXT_INPUT_LENGTH_MAX}")
        if element.get("type") == "number_input" and element.get("is_decimal_allowed") is None:
            self.add(ptr, "missing required field: is_decimal_allowed")

    def file_input(self, element: JsonDict, ptr: str) -> None:
        most = element.get("max_files")
        if most is not None and (
            not isinstance(most, int) or not 1 <= most <= FILE_INPUT_MAX_FILES
        ):
            self.add(f"{ptr}/max_files", f"must be between 1 and {FILE_INPUT_MAX_FILES}")

    def image_element(self, element: JsonDict, ptr: str) -> None:
        self.image_source(element, ptr)
        self.string(element, "alt_text", ptr, IMAGE_ALT_TEXT_MAX, required=True)

    # -- blocks ----------------------------------------------------------------------------

    def blocks(self, value: Any, ptr: str, max_blocks: int, allowed: set[str]) -> None:
        if not isinstance(value, list):
            self.add(ptr, "must provide an array")
            return
        if len(value) > max_blocks:
            self.add(ptr, f"no more than {max_blocks} items allowed")
        for i, block in enumerate(value):
            self.block(block, f"{ptr}/{i}", allowed)

    def block(self, value: Any, ptr: str, allowed: set[str]) -> None:
        block = self.obj(value, ptr)
        if block is None:
            return
        kind = block.get("type")
        if kind not in allowed:
            self.add(ptr, f"unsupported type: {kind}")
            return
        self.string(block, "block_id", ptr, ID_MAX)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in self.block_ids:
                self.add(f"{ptr}/block_id", f"duplicate block_id: {block_id}")
            self.block_ids.add(block_id)
        _BLOCKS[str(kind)](self, block, ptr)

    def section(self, block: JsonDict, ptr: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.add(ptr, "missing required field: text")
        self.text(block, "text", ptr, SECTION_TEXT_MAX)
        for i, field in enumerate(self.array(block, "fields", ptr, SECTION_FIELDS_MAX)):
            self.text_object(field, f"{ptr}/fields/{i}", SECTION_FIELD_TEXT_MAX, _ANY_TEXT)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{ptr}/accessory", _SECTION_ACCESSORIES)

    def header(self, block: JsonDict, ptr: str) -> None:
        self.text(block, "text", ptr, HEADER_TEXT_MAX, types=_PLAIN, required=True)

    def divider(self, block: JsonDict, ptr: str) -> None:
        pass

    def image_block(self, block: JsonDict, ptr: str) -> None:
        self.image_source(block, ptr)
        self.string(block, "alt_text", ptr, IMAGE_ALT_TEXT_MAX, required=True)
        self.text(block, "title", ptr, IMAGE_TITLE_MAX, types=_PLAIN)

    def actions(self, block: JsonDict, ptr: str) -> None:
        seen: set[str] = set()
        elements = self.array(block, "elements", ptr, ACTIONS_ELEMENTS_MAX, required=True)
        for i, element in enumerate(elements):
            self.element(element, f"{ptr}/elements/{i}", _ACTIONS_ELEMENTS)
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    self.add(f"{ptr}/elements/{i}/action_id", f"duplicate action_id: {action_id}")
                seen.add(action_id)

    def context(self, block: JsonDict, ptr: str) -> None:
        elements = self.array(block, "elements", ptr, CONTEXT_ELEMENTS_MAX, required=True)
        for i, value in enumerate(elements):
            where = f"{ptr}/elements/{i}"
            element = self.obj(value, where)
            if element is None:
                continue
            if element.get("type") == "image":
                self.image_element(element, where)
            else:
                self.text_object(element, where, SECTION_TEXT_MAX, _ANY_TEXT)

    def input(self, block: JsonDict, ptr: str) -> None:
        self.text(block, "label", ptr, LABEL_MAX, types=_PLAIN, required=True)
        self.text(block, "hint", ptr, LABEL_MAX, types=_PLAIN)
        if block.get("element") is None:
            self.add(ptr, "missing required field: element")
        else:
            self.element(block["element"], f"{ptr}/element", _INPUT_ELEMENTS)

    def markdown(self, block: JsonDict, ptr: str) -> None:
        self.string(block, "text", ptr, MARKDOWN_BLOCK_MAX, required=True)

    def rich_text(self, block: JsonDict, ptr: str) -> None:
        self.array(block, "elements", ptr, 10_000, required=True)

    def video(self, block: JsonDict, ptr: str) -> None:
        self.string(block, "alt_text", ptr, IMAGE_ALT_TEXT_MAX, required=True)
        self.text(block, "title", ptr, VIDEO_TITLE_MAX, types=_PLAIN, required=True)
        self.text(block, "description", ptr, VIDEO_TITLE_MAX, types=_PLAIN)
        self.string(block, "thumbnail_url", ptr, URL_MAX, required=True)
        self.string(block, "video_url", ptr, URL_MAX, required=True)

    def table(self, block: JsonDict, ptr: str) -> None:
        for i, row in enumerate(self.array(block, "rows", ptr, TABLE_ROWS_MAX, required=True)):
            if isinstance(row, list) and len(row) > TABLE_COLUMNS_MAX:
                self.add(f"{ptr}/rows/{i}", f"no more than {TABLE_COLUMNS_MAX} items allowed")

    def context_actions(self, block: JsonDict, ptr: str) -> None:
        self.array(block, "elements", ptr, 5, required=True)

    def unchecked(self, block: JsonDict, ptr: str) -> None:
        pass

    def file(self, block: JsonDict, ptr: str) -> None:
        self.string(block, "external_id", ptr, ID_MAX, required=True)
        self.string(block, "source", ptr, ID_MAX, required=True)


_Check = Callable[[_Checker, JsonDict, str], None]

_ELEMENTS: dict[str, _Check] = {
    "button": _Checker.button,
    "workflow_button": _Checker.workflow_button,
    "checkboxes": _Checker.choices,
    "radio_buttons": _Checker.choices,
    "overflow": _Checker.overflow,
    "datepicker": _Checker.picker,
    "timepicker": _Checker.picker,
    "datetimepicker": _Checker.picker,
    "rich_text_input": _Checker.picker,
    "plain_text_input": _Checker.text_input,
    "email_text_input": _Checker.text_input,
    "url_text_input": _Checker.text_input,
    "number_input": _Checker.text_input,
    "file_input": _Checker.file_input,
    "image": _Checker.image_element,
    **{kind: _Checker.select for kind in _SELECTS},
}

_BLOCKS: dict[str, _Check] = {
    "section": _Checker.section,
    "header": _Checker.header,
    "divider": _Checker.divider,
    "image": _Checker.image_block,
    "actions": _Checker.actions,
    "context": _Checker.context,
    "input": _Checker.input,
    "markdown": _Checker.markdown,
    "rich_text": _Checker.rich_text,
    "video": _Checker.video,
    "file": _Checker.file,
    "table": _Checker.table,
    "context_actions": _Checker.context_actions,
    "plan": _Checker.unchecked,
    "task_card": _Checker.unchecked,
}


def check_blocks(blocks: Any) -> list[str]:
    """Problems with a message's ``blocks`` (chat.postMessage / update / postEphemeral)."""
    checker = _Checker("message")
    checker.blocks(blocks, "/blocks", MESSAGE_MAX_BLOCKS, _MESSAGE_BLOCKS)
    tables = [b for b in blocks or [] if isinstance(b, dict) and b.get("type") == "table"]
    if isinstance(blocks, list) and len(tables) > 1:
        checker.add("/blocks", "only one table block is allowed in a message")
    return checker.problems


def check_view(view: Any, prefix: str = "") -> list[str]:
    """Problems with a modal or Home tab view; pointers start at ``prefix`` (e.g. "/view")."""
    kind = view.get("type") if isinstance(view, dict) else None
    checker = _Checker(str(kind))
    found = checker.obj(view, prefix or "/")
    if found is None:
        return checker.problems
    if kind not in ("modal", "home"):
        checker.add(f"{prefix}/type", "must be one of [modal, home]")
    if kind == "modal":
        checker.text(found, "title", prefix, MODAL_TEXT_MAX, types=_PLAIN, required=True)
        checker.text(found, "close", prefix, MODAL_TEXT_MAX, types=_PLAIN)
        checker.text(found, "submit", prefix, MODAL_TEXT_MAX, types=_PLAIN)
        blocks = found.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and found.get("submit") is None:
            checker.add(prefix or "/", "missing required field: submit (the view has input blocks)")
    if found.get("blocks") is None:
        checker.add(prefix or "/", "missing required field: blocks")
    else:
        checker.blocks(found["blocks"], f"{prefix}/blocks", VIEW_MAX_BLOCKS, _VIEW_BLOCKS)
    checker.string(found, "private_metadata", prefix, PRIVATE_METADATA_MAX)
    checker.string(found, "callback_id", prefix, ID_MAX)
    checker.string(found, "external_id", prefix, ID_MAX)
    return checker.problems


def check_errors(errors: Any, submitted: Any) -> list[str]:
    """Problems with a view_submission's ``response_action: errors``: each key must be the
    block_id of an input block in the submitted view."""
    if not isinstance(errors, dict) or not errors:
        return ["[ERROR] errors must be an object of block_id: message [json-pointer:/errors]"]
    blocks = submitted.get("blocks") if isinstance(submitted, dict) else None
    inputs = {
        b.get("block_id") for b in blocks or [] if isinstance(b, dict) and b.get("type") == "input"
    }
    return [
        f"[ERROR] {key} is not the block_id of an input block in the view "
        f"[json-pointer:/errors/{key}]"
        for key in errors
        if key not in inputs
    ]
