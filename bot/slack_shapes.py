"""Is a signed Slack payload shaped the way Slack sends it? Checked before Bolt sees it.

Bolt's matchers and smsbridge's listeners read fields such as ``event.user`` or
``actions[0].action_id`` expecting Slack's types; a payload where one of those is a list, a
number or missing would raise deep inside Bolt and be answered 500 (Slack then retries it, and
disables the app's events when more than 5 % fail for an hour). Payloads of a wrong shape are
answered 400 instead. Only the fields that Bolt or smsbridge read are checked, by where they
sit (``user`` is a string in an event and an object in an interaction); unknown fields and
unknown payload types pass (Bolt acks an unknown event).

Slack's shapes: the Events API envelope and event types, the interaction payloads
(block_actions, view_submission, view_closed, shortcuts) and slash commands, as in Slack's
reference and the samples in tests/fixtures/slack/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_STR = (str,)
_OBJ = (dict,)
_LIST = (list,)
_NUM = (int, float)

# field -> accepted types (None is accepted for every optional field)
_ENVELOPE: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "token": _STR,
    "team_id": _STR,
    "api_app_id": _STR,
    "enterprise_id": _STR,
    "event_id": _STR,
    "event_time": _NUM,
    "event": _OBJ,
    "authorizations": _LIST,
    "is_ext_shared_channel": (bool,),
    "context_team_id": _STR,
    "context_enterprise_id": _STR,
    "challenge": _STR,
    "enterprise": _OBJ + _STR,
    "team": _OBJ + _STR,
    "user": _OBJ + _STR,
    "channel": _OBJ + _STR,
    "view": _OBJ,
    "message": _OBJ,
    "container": _OBJ,
    "actions": _LIST,
    "state": _OBJ,
    "callback_id": _STR,
    "trigger_id": _STR,
    "response_url": _STR,
    "action_ts": _STR,
    "action_id": _STR,
    "block_id": _STR,
    "command": _STR,
    "text": _STR,
    "user_id": _STR,
    "channel_id": _STR,
    "is_enterprise_install": (bool, str),
    "assistant_thread": _OBJ,
    "item": _OBJ,
    "thread_ts": _STR,
    "previous_message": _OBJ,
    "submission": _OBJ,
    "function_data": _OBJ,
    "bot_access_token": _STR,
    "workflow_step": _OBJ,
}
# Interactions carry objects where events carry IDs.
_INTERACTION_OBJECTS = ("user", "team", "channel", "enterprise")
_EVENT: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "subtype": _STR,
    "user": _STR + _OBJ,
    "bot_id": _STR,
    "app_id": _STR,
    "team": _STR,
    "user_team": _STR,
    "source_team": _STR,
    "channel": _STR + _OBJ,
    "channel_type": _STR,
    "text": _STR,
    "ts": _STR,
    "thread_ts": _STR,
    "event_ts": _STR,
    "message": _OBJ,
    "previous_message": _OBJ,
    "files": _LIST,
    "blocks": _LIST,
    "item": _OBJ,
    "assistant_thread": _OBJ,
    "tokens": _OBJ,
    "function": _OBJ,
    "inviter": _STR,
    "hidden": (bool,),
    "edited": _OBJ,
    "bot_profile": _OBJ,
    "view": _OBJ,
}
_MESSAGE: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "subtype": _STR,
    "user": _STR,
    "bot_id": _STR,
    "text": _STR,
    "ts": _STR,
    "thread_ts": _STR,
    "files": _LIST,
    "blocks": _LIST,
    "metadata": _OBJ,
}
_ACTION: dict[str, tuple[type, ...]] = {
    "action_id": _STR,
    "block_id": _STR,
    "type": _STR,
    "value": _STR,
    "action_ts": _STR,
    "selected_option": _OBJ,
    "selected_options": _LIST,
    "selected_user": _STR,
    "selected_channel": _STR,
    "selected_conversation": _STR,
    "selected_date": _STR,
    "text": _OBJ,
}
_VIEW: dict[str, tuple[type, ...]] = {
    "id": _STR,
    "team_id": _STR,
    "app_installed_team_id": _STR,
    "type": _STR,
    "callback_id": _STR,
    "private_metadata": _STR,
    "external_id": _STR,
    "hash": _STR,
    "root_view_id": _STR,
    "previous_view_id": _STR,
    "state": _OBJ,
    "blocks": _LIST,
    "title": _OBJ,
    "submit": _OBJ,
    "close": _OBJ,
}
_CONTAINER: dict[str, tuple[type, ...]] = {
    "type": _STR,
    "message_ts": _STR,
    "thread_ts": _STR,
    "channel_id": _STR,
    "view_id": _STR,
    "is_ephemeral": (bool,),
}
_AUTHORIZATION: dict[str, tuple[type, ...]] = {
    "enterprise_id": _STR,
    "team_id": _STR,
    "user_id": _STR,
    "is_bot": (bool,),
    "is_enterprise_install": (bool,),
}
_ID_FIELDS: dict[str, tuple[type, ...]] = {
    "enterprise": _OBJ + _STR,
    "team": _OBJ + _STR,
    "user": _OBJ + _STR,
    "channel": _OBJ + _STR,
    "enterprise_id": _STR,
    "team_id": _STR,
    "user_id": _STR,
    "channel_id": _STR,
    "user_team": _STR,
    "is_enterprise_install": (bool,),
    "thread_ts": _STR,
}
_ID_OBJECT: dict[str, tuple[type, ...]] = {
    "id": _STR,
    "name": _STR,
    "username": _STR,
    "team_id": _STR,
    "domain": _STR,
    "enterprise_id": _STR,
}


def shape_problem(payload: Mapping[str, Any]) -> str:
    """Why ``payload`` is not shaped like Slack's ("" when it is)."""
    problem = _fields(payload, _ENVELOPE, "") or _ids(payload, "")
    for key in ("event", "message", "previous_message", "item", "assistant_thread"):
        inner = payload.get(key)  # Bolt looks for IDs in these whatever the payload type
        if not problem and isinstance(inner, dict):
            problem = _ids(inner, f"{key}.")
            for deeper in ("message", "previous_message", "item", "assistant_thread"):
                nested = inner.get(deeper)
                if not problem and isinstance(nested, dict):
                    problem = _ids(nested, f"{key}.{deeper}.")
    if problem:
        return problem
    for entry in payload.get("authorizations") or []:
        if not isinstance(entry, dict):
            return "authorizations: entries must be objects"
        problem = _fields(entry, _AUTHORIZATION, "authorizations.") or _ids(
            entry, "authorizations."
        )
        if problem:
            return problem
    kind = payload.get("type")
    if kind == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event_callback without an event type"
        return _event(event)
    if "command" in payload and "type" not in payload:  # a slash command (form fields)
        return "" if isinstance(payload.get("command"), str) else "command is not a string"
    if isinstance(kind, str) and kind != "url_verification" and kind != "app_rate_limited":
        return _interaction(payload)
    return ""


def _event(event: Mapping[str, Any]) -> str:
    problem = _fields(event, _EVENT, "event.") or _ids(event, "event.")
    for key in ("message", "previous_message"):
        inner = event.get(key)
        if not problem and isinstance(inner, dict):
            problem = _fields(inner, _MESSAGE, f"event.{key}.") or _ids(inner, f"event.{key}.")
    for key in ("item", "assistant_thread"):
        inner = event.get(key)
        if not problem and isinstance(inner, dict):
            problem = _ids(inner, f"event.{key}.")
    for key in ("channel", "user"):
        inner = event.get(key)
        if not problem and isinstance(inner, dict):
            problem = _fields(inner, _ID_OBJECT, f"event.{key}.")
    files = event.get("files")
    if not problem and isinstance(files, list) and not all(isinstance(f, dict) for f in files):
        problem = "event.files: entries must be objects"
    return problem


def _interaction(payload: Mapping[str, Any]) -> str:
    for key in _INTERACTION_OBJECTS:
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            return f"{key} is not an object"
        if isinstance(value, dict):
            problem = _fields(value, _ID_OBJECT, f"{key}.")
            if problem:
                return problem
    if payload.get("type") in ("block_actions", "view_submission", "view_closed") and not (
        isinstance(payload.get("user"), dict) and isinstance(payload["user"].get("id"), str)
    ):
        return "user.id is missing"
    actions = payload.get("actions")
    if payload.get("type") in ("block_actions", "interactive_message"):
        if not isinstance(actions, list) or not actions:
            return f"{payload.get('type')} without actions"
    for index, action in enumerate(actions or []):
        if not isinstance(action, dict):
            return f"actions[{index}] is not an object"
        problem = _fields(action, _ACTION, f"actions[{index}].")
        if problem:
            return problem
    view = payload.get("view")
    if payload.get("type") in ("view_submission", "view_closed") and not isinstance(view, dict):
        return "view is missing"
    if isinstance(view, dict):
        problem = _fields(view, _VIEW, "view.") or _state(view.get("state"), "view.state")
        if problem:
            return problem
    for key, spec in (("container", _CONTAINER), ("message", _MESSAGE)):
        inner = payload.get(key)
        if isinstance(inner, dict):
            problem = _fields(inner, spec, f"{key}.")
            if problem:
                return problem
    return _state(payload.get("state"), "state")


def _ids(obj: Mapping[str, Any], where: str) -> str:
    """The ID fields Bolt looks for at any level (``enterprise``, ``team``, ``user``,
    ``channel`` as an ID or an object with an ``id``; ``*_id`` as strings)."""
    problem = _fields(obj, _ID_FIELDS, where)
    for key in ("enterprise", "team", "user", "channel"):
        inner = obj.get(key)
        if not problem and isinstance(inner, dict):
            problem = _fields(inner, _ID_OBJECT, f"{where}{key}.")
    return problem


def _state(state: Any, where: str) -> str:
    """``{"values": {block_id: {action_id: {...}}}}``."""
    if state is None:
        return ""
    if not isinstance(state, dict):
        return f"{where} is not an object"
    values = state.get("values")
    if values is None:
        return ""
    if not isinstance(values, dict):
        return f"{where}.values is not an object"
    for block in values.values():
        if not isinstance(block, dict) or not all(isinstance(a, dict) for a in block.values()):
            return f"{where}.values must map blocks to objects of objects"
    return ""


# Bolt reads these as ``body.get(key, {}).get(...)``: a JSON null there would raise.
_NOT_NULL = frozenset({"event", "view", "tokens", "function", "state", "actions"})


def _fields(obj: Mapping[str, Any], spec: Mapping[str, tuple[type, ...]], where: str) -> str:
    for key, kinds in spec.items():
        value = obj.get(key)
        if value is None:
            if key in _NOT_NULL and key in obj:
                return f"{where}{key} is null"
            continue
        if isinstance(value, bool) and bool not in kinds:  # bool is an int to isinstance
            return f"{where}{key} has the wrong type"
        if not isinstance(value, kinds):
            return f"{where}{key} has the wrong type"
    return ""
