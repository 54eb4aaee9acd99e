"""Pacing ``chat.postMessage`` per channel on our side, so Slack's 429 is rare, not routine.

Slack allows about one message per second per channel, with short bursts. :class:`Pacer` hands
out posting slots per channel from the database (one atomic statement, see
:meth:`bridge.store.Store.reserve_slot`), so several processes sharing the database share
one allowance. A job whose slot is near sleeps until it; a ``slack``-lane job whose slot is
further away is run again at its slot (:class:`~bridge.jobs.Retry`, not counted as an attempt),
which frees the worker for other channels and for texting. Outside a job (interactive paths)
nothing sleeps.

When Slack still answers 429, the channel is held for its ``Retry-After`` for everyone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bridge.jobs import SLACK, Retry, current_job, current_lane
from bridge.store import Store

log = logging.getLogger(__name__)

PACED_METHODS = frozenset({"chat.postMessage"})


class Pacer:
    """Per-channel posting slots: ``per_second`` on average after a burst of ``burst``."""

    def __init__(
        self,
        storage: Store,
        per_second: float,
        burst: int,
        *,
        max_sleep: float = 1.5,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.storage = storage
        self.interval = 1.0 / per_second
        self.burst = max(1, burst)
        self.max_sleep = max_sleep
        self.now = now
        self.sleep = sleep

    def wait_turn(self, channel: str) -> None:
        """Return when a post to ``channel`` may go; in a job, raise a free :class:`Retry`
        when the turn is more than ``max_sleep`` away (the job keeps its slot)."""
        job = current_job()
        now = self.now()
        at = self.storage.slack.reserve_slot(channel, job, now, self.interval, self.burst)
        wait = at - now
        if wait <= 0:
            return
        if job is None:
            return  # interactive: never keep a person waiting; the slot is still accounted
        if wait > self.max_sleep and current_lane() == SLACK:
            raise Retry(f"paced: next post to {channel} in {wait:.1f}s", delay=wait, free=True)
        # Near, or in a job that does more than post (a text already sent must not be sent
        # again to show its note): wait here.
        self.sleep(wait)

    def posted(self, channel: str) -> None:
        """The post went out (or was answered): its slot is used."""
        job = current_job()
        if job is not None:
            self.storage.slack.release_slot(channel, job)

    def hold(self, channel: str, seconds: float) -> None:
        """Slack answered 429 for ``channel``: nobody posts there for ``seconds``."""
        log.info("Slack rate-limited channel %s for %.0fs", channel, seconds)
        self.storage.slack.hold_channel(channel, self.now() + seconds, self.interval, self.burst)


def retry_after(error: SlackApiError, default: float = 5.0) -> float:
    """The ``Retry-After`` of a 429 answer, in seconds."""
    headers = error.response.headers or {}
    value = headers.get("Retry-After", headers.get("retry-after", default))
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


class PacedWebClient(WebClient):
    """A WebClient whose ``chat.postMessage`` waits for the channel's slot (see :class:`Pacer`).

    Every call path goes through ``api_call``, so ``chat_postMessage`` and anything built on it
    are paced. ``pacer=None`` posts unpaced (tests on a frozen clock, the demo).
    """

    def __init__(self, *args: Any, pacer: Pacer | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pacer = pacer

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        channel = _channel_arg(kwargs) if api_method in PACED_METHODS else None
        if self.pacer is None or channel is None:
            return super().api_call(api_method, **kwargs)
        self.pacer.wait_turn(channel)
        try:
            response = super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                self.pacer.hold(channel, retry_after(exc))
            self.pacer.posted(channel)
            raise
        self.pacer.posted(channel)
        return response


def _channel_arg(kwargs: dict[str, Any]) -> str | None:
    for part in ("json", "data", "params"):
        values = kwargs.get(part) or {}
        if values.get("channel"):
            return str(values["channel"])
    return None
