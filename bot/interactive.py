"""Slack calls made while a person waits (slash commands, buttons, modals).

Slack gives these requests 3 s. The client used here never sleeps on ``Retry-After`` (unlike the
job client, which waits out one 429): a refusal comes back at once, and the person is told, in
plain words, when to try again.
"""

from __future__ import annotations

import math

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

# Seconds a call made inside Slack's 3 s window may take; the answer still has to travel back.
INTERACTIVE_TIMEOUT = 2
DEFAULT_WAIT = 30  # when Slack gives no Retry-After


def interactive_client(token: str, base_url: str) -> WebClient:
    """A WebClient with no retry handlers: no sleeping on 429, no silent re-send."""
    return WebClient(token=token, base_url=base_url, timeout=INTERACTIVE_TIMEOUT, retry_handlers=[])


def retry_after(exc: SlackApiError) -> float | None:
    """Slack's ``Retry-After`` (seconds) for a 429, else ``None``."""
    response = exc.response
    if response is None or response.status_code != 429:
        return None
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else float(DEFAULT_WAIT)
    except ValueError:
        return float(DEFAULT_WAIT)


def whole_seconds(seconds: float) -> int:
    """What to tell a person: at least 1 second, rounded up."""
    return max(1, math.ceil(seconds))


def busy_text(what_failed: str, again: str, seconds: int) -> str:
    """``Slack is rate-limiting smsbridge right now, so <what failed>. <Again> in N seconds.``"""
    unit = "second" if seconds == 1 else "seconds"
    return (
        f"Slack is rate-limiting smsbridge right now, so {what_failed}. "
        f"{again} in {seconds} {unit}."
    )


def form_refused(exc: SlackApiError) -> str:
    """What to tell an admin whose ``/sms-blast`` form Slack did not open."""
    wait = retry_after(exc)
    if wait is not None:
        return busy_text(
            "the blast form did not open", "Please run /sms-blast again", whole_seconds(wait)
        )
    error = exc.response.get("error", "an error") if exc.response is not None else str(exc)
    return f"Slack did not open the blast form ({error}). Please run /sms-blast again."
