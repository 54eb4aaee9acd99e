"""Calling the Slack Web API from jobs: one place that maps Slack errors to wait, retry, park or
give up, and says in plain words what a person must fix.

* 429: run the job again after ``Retry-After`` (not counted as an attempt; the worker is free).
* Token-wide errors (revoked, invalid, missing scope…) park the work under ``slack:token``.
* Channel-wide errors (bot not in the channel, archived, missing) park it under
  ``slack:channel:<id>``: other channels and the customer's texting lane carry on.
* A message Slack refuses as built (``invalid_blocks``…) is a bug in smsbridge: it is parked
  under ``slack:message:<error>`` and reported, never dropped.
* The target is gone (message deleted, thread missing): give up, there is nothing to show it on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.pacing import PacedWebClient, Pacer, retry_after
from bridge.jobs import GiveUp, Park, Retry

log = logging.getLogger(__name__)

TOKEN_KEY = "slack:token"

# The token cannot do its job: nothing in Slack works until a person fixes it.
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
    }
)
# The channel cannot take posts: nothing for that store works until a person fixes it.
CHANNEL_ERRORS = frozenset({"not_in_channel", "is_archived", "channel_not_found"})
# Slack refused what we built: a bug, kept and reported.
MESSAGE_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_arguments",
    }
)
# What the job wanted to change is gone; another attempt cannot help and nothing is lost.
GONE = frozenset(
    {"message_not_found", "cant_update_message", "thread_not_found", "edit_window_closed"}
)
PERMANENT = TOKEN_ERRORS | CHANNEL_ERRORS | MESSAGE_ERRORS | GONE

REINSTALL = (
    "Reinstall the Slack app (api.slack.com/apps → smsbridge → Install App), put its Bot User "
    "OAuth Token (xoxb-…) in SLACK_BOT_TOKEN and restart smsbridge; parked work then resumes "
    "in order."
)


@dataclass(frozen=True)
class Problem:
    """A Slack problem a person must fix: under which key work waits, what, and how to fix."""

    key: str
    problem: str
    fix: str


class SlackPark(Park):
    """A job parked by a Slack error: which error, and the problem in plain words."""

    def __init__(self, problem: Problem, error: str) -> None:
        super().__init__(problem.problem, problem.key, fix=problem.fix)
        self.problem = problem
        self.error = error


def channel_key(channel: str) -> str:
    return f"slack:channel:{channel}"


def describe(
    error: str, channel: str | None = None, *, needed: str = "", where: str = ""
) -> Problem:
    """Plain words for a permanent Slack error; ``where`` names the channel (e.g. "#pizza")."""
    place = where or (f"channel {channel}" if channel else "a store channel")
    if error == "token_revoked":
        return Problem(
            TOKEN_KEY,
            "Slack revoked smsbridge's bot token (token_revoked): the app was removed or "
            "reinstalled. Nothing can be posted to Slack.",
            REINSTALL,
        )
    if error in ("invalid_auth", "not_authed"):
        return Problem(
            TOKEN_KEY,
            f"Slack does not accept SLACK_BOT_TOKEN ({error}). Nothing can be posted to Slack.",
            "Copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page "
            "into SLACK_BOT_TOKEN and restart smsbridge; parked work then resumes in order.",
        )
    if error == "account_inactive":
        return Problem(
            TOKEN_KEY,
            "The bot's Slack account or workspace is deactivated (account_inactive). Nothing "
            "can be posted to Slack.",
            REINSTALL,
        )
    if error == "token_expired":
        return Problem(
            TOKEN_KEY,
            "SLACK_BOT_TOKEN has expired (token_expired): token rotation is switched on.",
            "Switch token rotation off (manifest.yml: token_rotation_enabled: false), reinstall "
            "the app, put its new xoxb- token in SLACK_BOT_TOKEN and restart smsbridge.",
        )
    if error == "missing_scope":
        scopes = needed or "a scope it needs"
        return Problem(
            TOKEN_KEY,
            f"smsbridge's Slack token lacks {scopes} (missing_scope).",
            "Update the app from manifest.yml (api.slack.com/apps → smsbridge → App Manifest), "
            "reinstall it, put the new token in SLACK_BOT_TOKEN and restart smsbridge.",
        )
    if error in CHANNEL_ERRORS:
        key = channel_key(channel or "?")
        if error == "not_in_channel":
            return Problem(
                key,
                f"The bot is not in {place} (not_in_channel): that store's texts cannot be posted.",
                f"Invite it: type /invite @smsbridge in {place}. Parked texts are then posted "
                "in order.",
            )
        if error == "is_archived":
            return Problem(
                key,
                f"{place[0].upper()}{place[1:]} is archived (is_archived): that store's texts "
                "cannot be posted.",
                f"Unarchive {place} and invite the bot again (/invite @smsbridge), or point "
                "SMS_STORES at a new channel and restart smsbridge.",
            )
        return Problem(
            key,
            f"Slack cannot find {place} (channel_not_found): it was deleted, or it is private "
            "and the bot is not in it.",
            "Check that SMS_STORES holds the channel's ID (C…, from the channel's About tab); "
            "for a private channel type /invite @smsbridge in it; then restart smsbridge.",
        )
    return Problem(
        f"slack:message:{error}",
        f"Slack refused a message smsbridge built ({error}). This is a bug in smsbridge.",
        "Report it with the log line that names the job. The message is kept: restart "
        "smsbridge after the fix is installed and it is tried again.",
    )


def web_client(token: str, base_url: str, pacer: Pacer | None = None) -> PacedWebClient:
    """The WebClient jobs use: no retry handler of its own (a 429 becomes a job retry after
    ``Retry-After`` instead of a sleep in the worker), ``chat.postMessage`` paced per channel.

    No ConnectionErrorRetryHandler: retrying a dropped chat.postMessage can post twice.
    """
    return PacedWebClient(
        token=token, base_url=base_url, timeout=15, retry_handlers=[], pacer=pacer
    )


def call_channel(exc: SlackApiError) -> str | None:
    """The channel the failed call was about, read from the request Slack answered."""
    request: dict[str, Any] = getattr(exc.response, "req_args", None) or {}
    for part in ("json", "data", "params"):
        values = request.get(part) or {}
        for name in ("channel", "channel_id"):
            if values.get(name):
                return str(values[name])
    return None


@contextmanager
def slack_job(action: str, channel: str | None = None) -> Iterator[None]:
    """Turn Slack failures into :class:`Retry`, :class:`Park` or :class:`GiveUp`."""
    try:
        yield
    except SlackApiError as exc:
        response = exc.response
        error = str(response.get("error", "")) if response is not None else ""
        if response is not None and response.status_code == 429:
            raise Retry(f"{action}: Slack rate limit", delay=retry_after(exc), free=True) from exc
        if error in TOKEN_ERRORS or error in CHANNEL_ERRORS or error in MESSAGE_ERRORS:
            found = describe(
                error, channel or call_channel(exc), needed=str(response.get("needed", ""))
            )
            if error in MESSAGE_ERRORS:
                log.error("%s: Slack refused the message (%s): %s", action, error, response.data)
            else:
                log.warning("%s: %s", action, found.problem)
            raise SlackPark(found, error) from exc
        if error in GONE:
            raise GiveUp(f"{action}: {error}") from exc
        raise Retry(f"{action}: {error or exc}") from exc
    except OSError as exc:  # connection refused, timeouts (urllib errors are OSErrors)
        raise Retry(f"{action}: {exc}") from exc
