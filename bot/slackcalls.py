"""Calling the Slack Web API from jobs: one place that maps Slack errors to retry or give up."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bridge.jobs import GiveUp, Retry

log = logging.getLogger(__name__)

# Errors that another attempt cannot fix.
PERMANENT = {
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "not_authed",
    "missing_scope",
    "msg_too_long",
    "invalid_blocks",
    "no_text",
    "message_not_found",
    "cant_update_message",
    "thread_not_found",
}


def web_client(token: str, base_url: str) -> WebClient:
    """A WebClient that waits out one 429 itself (Retry-After) before the job queue takes over.

    No ConnectionErrorRetryHandler: retrying a dropped chat.postMessage can post twice.
    """
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )


@contextmanager
def slack_job(action: str) -> Iterator[None]:
    """Turn Slack failures into :class:`Retry` (with Retry-After) or :class:`GiveUp`."""
    try:
        yield
    except SlackApiError as exc:
        response = exc.response
        error = str(response.get("error", "")) if response is not None else ""
        if response is not None and response.status_code == 429:
            delay = float(
                response.headers.get("Retry-After", response.headers.get("retry-after", 5))
            )
            raise Retry(f"{action}: Slack rate limit", delay=delay) from exc
        if error in PERMANENT:
            raise GiveUp(f"{action}: {error}") from exc
        raise Retry(f"{action}: {error or exc}") from exc
    except OSError as exc:  # connection refused, timeouts (urllib errors are OSErrors)
        raise Retry(f"{action}: {exc}") from exc
