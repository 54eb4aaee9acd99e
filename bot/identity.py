"""Who the bot is, learnt once from ``auth.test`` and handed to Bolt as its ``authorize``.

Bolt left to itself calls ``auth.test`` lazily on the first request and, while that fails (a 429
storm on a fresh process), answers every event, button and command 200 and drops it. Here the
identity is fetched at start-up; if that failed it is tried again on a request (not before the
``Retry-After`` Slack gave), and while it cannot be had the request fails with
:class:`SlackUnavailable`, which :func:`error_handler` turns into a 503 (Slack retries events; a
person pressing a button sees it fail) or, for a slash command, a plain "try again in N seconds".

Each process keeps its own copy, on purpose: ``auth.test`` gives every process the same answer
(the bot user and bot ids of the one token), so nothing is lost or disagreed on when a process
restarts or another starts; each asks once at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.interactive import busy_text, retry_after, whole_seconds

log = logging.getLogger(__name__)

NOT_DONE = "nothing was done"


class SlackUnavailable(Exception):
    """Slack could not tell us who the bot is; the request must not be acknowledged."""

    def __init__(self, error: str, wait: int | None) -> None:
        super().__init__(f"auth.test failed: {error}")
        self.error = error
        self.wait = wait  # seconds until Slack said to try again, for a 429

    def person_text(self) -> str:
        if self.wait is not None:
            return busy_text(NOT_DONE, "Please try again", self.wait)
        return (
            f"smsbridge could not reach Slack just now ({self.error}), so {NOT_DONE}. "
            "Please try again in a minute; if this keeps happening, tell whoever runs smsbridge."
        )


class BotIdentity:
    """One cached ``auth.test`` result, as the :class:`AuthorizeResult` Bolt needs."""

    def __init__(self, client: WebClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._result: AuthorizeResult | None = None
        self._error = ""
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def known(self) -> AuthorizeResult | None:
        return self._result

    @property
    def error(self) -> str:
        """Why the last ``auth.test`` failed (empty when it has not failed)."""
        return self._error

    def check(self) -> bool:
        """Fetch the identity now (at start-up). Logs, never raises: requests try again."""
        try:
            result = self.get()
        except SlackUnavailable as exc:
            wait = f"; Slack asked to wait {exc.wait} s" if exc.wait is not None else ""
            log.error(
                "Slack auth.test failed at start-up (%s%s). Until it succeeds, Slack events are "
                "answered 503 so Slack delivers them again, and commands ask people to retry.",
                exc.error,
                wait,
            )
            return False
        log.info("Slack bot identity: user %s, bot %s", result.bot_user_id, result.bot_id)
        return True

    def get(self) -> AuthorizeResult:
        """The cached identity, fetching it if need be; raises :class:`SlackUnavailable`."""
        if self._result is not None:
            return self._result
        with self._lock:
            if self._result is not None:
                return self._result
            now = self.clock()
            if now < self._retry_at:
                raise SlackUnavailable(self._error, whole_seconds(self._retry_at - now))
            try:
                response = self.client.auth_test()
            except SlackApiError as exc:
                wait = retry_after(exc)
                error = str(exc.response.get("error", "")) or str(exc)
                self._error, self._retry_at = error, now + (wait or 0.0)
                raise SlackUnavailable(
                    error, None if wait is None else whole_seconds(wait)
                ) from exc
            except OSError as exc:  # connection refused, timeout (urllib errors are OSErrors)
                self._error, self._retry_at = str(exc), now
                raise SlackUnavailable(str(exc), None) from exc
            self._result = AuthorizeResult.from_auth_test_response(
                auth_test_response=response,
                bot_token=self.client.token,
                bot_scopes=response.headers.get("x-oauth-scopes"),
            )
            return self._result

    def authorize(self) -> Callable[[], AuthorizeResult]:
        """Bolt's ``authorize=`` (a plain function: Bolt passes arguments by parameter name)."""

        def authorize() -> AuthorizeResult:
            return self.get()

        return authorize


def error_handler() -> Callable[[Exception, BoltRequest, BoltResponse | None], BoltResponse | None]:
    """Bolt's ``@app.error``: answers :class:`SlackUnavailable`; logs everything else."""

    def on_error(
        error: Exception, request: BoltRequest, response: BoltResponse | None
    ) -> BoltResponse | None:
        if isinstance(error, SlackUnavailable):
            if "command" in (request.body or {}):
                return BoltResponse(status=200, body=error.person_text())
            headers: dict[str, str | Sequence[str]] = (
                {"retry-after": str(error.wait)} if error.wait else {}
            )
            log.warning("answered 503 so Slack tries again: %s", error)
            return BoltResponse(status=503, body="", headers=headers)
        log.error("Slack request failed: %s", error, exc_info=error)
        return None  # Bolt's own answer stands (500: Slack retries)

    return on_error
