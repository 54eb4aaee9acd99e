"""Is Slack working for us? Problems a person must fix, recorded, reported and resolved.

* A job that hits a permanent Slack error is parked (``bot.slackcalls``); :meth:`SlackHealth.
  on_park` records the problem (what, since when, the fix in plain words), logs it and alerts.
* :meth:`SlackHealth.check` runs at start-up: the token (``auth.test``), its scopes against the
  manifest, and the bot's membership of every store channel. Each problem is logged with its
  fix; whatever is fine now is resolved and its parked work resumes in order (a new token and a
  restart fix a revoked token).
* Slack's ``tokens_revoked`` / ``app_uninstalled`` events record the problem and park Slack
  work; ``member_joined_channel`` for the bot itself resumes that channel's work.
* Alerts go to ``OPS_CHANNEL``, or by DM to each ``BLAST_ADMINS`` user when it is unset, once
  per problem and once when it is resolved. With a dead token the log line and ``/healthz``
  are the alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.identity import BotIdentity
from bot.listeners import Registered
from bot.manifest import BOT_SCOPES
from bot.slackcalls import (
    CHANNEL_ERRORS,
    REINSTALL,
    TOKEN_ERRORS,
    TOKEN_KEY,
    Problem,
    SlackPark,
    channel_key,
    describe,
    slack_job,
)
from bridge.config import Config
from bridge.jobs import LANES, SLACK, JobRunner, Park, Retry
from bridge.store import ClaimedJob, Row, Store, parse_iso

log = logging.getLogger(__name__)

SCOPES_KEY = "slack:scopes"  # scopes missing at start-up (work parks under slack:token if hit)
# With these nothing can be posted, not even an alert: the log and /healthz must say it.
DEAD_TOKEN = TOKEN_ERRORS - {"missing_scope"}
EVENTS = ("tokens_revoked", "app_uninstalled", "member_joined_channel")
RECHECK_AFTER = 30  # seconds before a check Slack would not answer runs again


@dataclass(frozen=True)
class AuthTest:
    """What ``auth.test`` said: the bot user and the token's scopes, or the error."""

    user_id: str = ""
    scopes: frozenset[str] = frozenset()
    error: str = ""  # e.g. "token_revoked", "ratelimited"; empty when it answered ok
    needed: str = ""  # for missing_scope


def auth_answer(identity: BotIdentity) -> AuthTest:
    """The start-up ``auth.test`` that Bolt's identity already made, as the check reads it."""
    known = identity.known
    if known is None:
        return AuthTest(error=identity.error or "Slack unreachable")
    return AuthTest(user_id=known.bot_user_id or "", scopes=frozenset(known.bot_scopes or []))


class SlackHealth:
    """Records Slack problems, tells people, and resumes parked work when they are fixed."""

    def __init__(
        self,
        config: Config,
        storage: Store,
        client: WebClient,
        runner: JobRunner,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.storage = storage
        self.client = client
        self.runner = runner
        self.clock = clock
        self.bot_user_id: str | None = None

    # -- problems -------------------------------------------------------------------------

    def report(self, problem: Problem, *, slack_works: bool = True) -> bool:
        """Record ``problem`` unless it is already open; log and alert when it is new."""
        if not self.storage.slack.open_problem(
            problem.key, problem.problem, problem.fix, self.clock()
        ):
            return False
        log.error("Slack problem: %s Fix: %s", problem.problem, problem.fix)
        if slack_works:
            self._alert(
                f":rotating_light: *smsbridge needs a person:* {problem.problem}\n"
                f"*Fix:* {problem.fix}"
            )
        return True

    def resolve(self, key: str, why: str) -> int:
        """Close the problem under ``key`` and resume its parked work; return jobs resumed."""
        row = self.storage.slack.resolve_problem(key, self.clock())
        resumed = self.runner.unpark(key)
        if row is not None:
            log.warning(
                "Slack problem resolved (%s): %s %d waiting job(s) resume in order.",
                why,
                row["problem"],
                resumed,
            )
            self._alert(
                f":white_check_mark: *smsbridge is back to normal* ({why}): {row['problem']} "
                f"(since {_when(row['since'])}). {resumed} waiting job(s) resume in order."
            )
        return resumed

    def problems(self) -> list[Row]:
        return self.storage.slack.open_problems()

    def on_park(self, job: ClaimedJob, park: Park) -> None:
        """A job was parked: record what is wrong (once) and tell people."""
        if isinstance(park, SlackPark):
            self.report(park.problem, slack_works=park.error not in DEAD_TOKEN)
        else:
            self.report(Problem(park.key, park.reason, park.fix))

    # -- the start-up check ---------------------------------------------------------------

    def ask_slack(self) -> AuthTest:
        """``auth.test``: who the bot is and what its token may do, or why Slack would not say."""
        return ask_slack(self.client)

    def check(self, auth: AuthTest | None = None) -> list[Problem]:
        """Token, scopes and channels; log each problem with its fix; resolve the rest.

        ``auth``: an ``auth.test`` answer the caller already has (one call at start-up).
        """
        auth = auth or self.ask_slack()
        if auth.error:
            if auth.error not in TOKEN_ERRORS:
                log.warning(
                    "Slack start-up check skipped: auth.test answered %s; it runs again in %d s",
                    auth.error,
                    RECHECK_AFTER,
                )
                self.recheck_later()
                return []
            problem = describe(auth.error, needed=auth.needed)
            if auth.error in DEAD_TOKEN:
                self.token_gone(problem)  # no doomed calls for the Slack work waiting
            else:
                self.report(problem)
            return [problem]
        self.bot_user_id = auth.user_id or None
        problems: list[Problem] = []
        unknown: set[str] = set()
        scopes = missing_scopes(auth)
        if scopes is not None:
            problems.append(scopes)
        for label, channel in self._channels():
            known, found = self._check_channel(label, channel)
            if not known:
                unknown.add(channel_key(channel))
            elif found is not None:
                problems.append(found)
        for problem in problems:
            self.report(problem)
        if not problems:
            log.info(
                "Slack start-up check: token, scopes and %d channel(s) fine", len(self._channels())
            )
        current = {p.key for p in problems} | unknown
        waiting = {row["key"] for row in self.storage.slack.open_problems()} | set(
            self.storage.jobs.park_keys()
        )
        for key in sorted(waiting - current):
            self.resolve(key, "start-up check passed")
        return problems

    def recheck_later(self, channel: str | None = None) -> None:
        """Queue a ``slack_recheck`` job: the whole check (``channel`` None) or one channel's,
        so parked work resumes once Slack answers, without a restart."""
        scope = channel or "all"
        if self.storage.jobs.has_pending("slack_recheck", "scope", scope):
            return
        self.storage.jobs.enqueue(
            "slack_recheck",
            {"scope": scope},
            queue=f"slack-recheck:{scope}",
            now=self.clock(),
            delay=0 if channel else RECHECK_AFTER,
        )
        self.runner.wake()

    def recheck(self, payload: dict[str, Any]) -> None:
        """Job ``slack_recheck``: run the check again (after Slack would not answer at
        start-up, or a store channel was unarchived); retried until Slack answers."""
        scope = payload.get("scope", "all")
        if scope != "all":
            self._recheck_channel(str(scope))
            return
        auth = self.ask_slack()
        if auth.error and auth.error not in TOKEN_ERRORS:
            raise Retry(f"Slack check: auth.test answered {auth.error}", RECHECK_AFTER, free=True)
        self.check(auth)

    def _recheck_channel(self, channel: str) -> None:
        label = next((name for name, c in self._channels() if c == channel), None)
        if label is None:
            return  # not a channel smsbridge posts in
        known, problem = self._check_channel(label, channel)
        if not known:
            raise Retry(f"Slack check of {channel}: no answer", RECHECK_AFTER, free=True)
        if problem is None:
            self.resolve(channel_key(channel), "the channel was unarchived")
        else:
            log.warning(
                "channel %s was unarchived but: %s %s", channel, problem.problem, problem.fix
            )

    def _channels(self) -> list[tuple[str, str]]:
        return store_channels(self.config)

    def _check_channel(self, label: str, channel: str) -> tuple[bool, Problem | None]:
        """(whether Slack said, the channel's problem or None when it is fine)."""
        problem, unknown = check_channel(self.client, label, channel)
        if unknown:
            log.warning("could not check channel %s: %s", channel, unknown)
            return False, None
        return True, problem

    # -- Slack events ---------------------------------------------------------------------

    def register(self, app: App, registered: Registered) -> None:
        """Listen for token revocation, uninstall and the bot joining a channel."""
        registered.events.update(EVENTS)

        @app.event("tokens_revoked")
        def on_tokens_revoked(event: dict[str, Any]) -> None:
            if event.get("tokens", {}).get("bot"):
                self.token_gone(describe("token_revoked"))

        @app.event("app_uninstalled")
        def on_app_uninstalled() -> None:
            self.token_gone(
                Problem(
                    TOKEN_KEY,
                    "smsbridge was uninstalled from the Slack workspace (app_uninstalled). "
                    "Nothing can be posted to Slack.",
                    REINSTALL,
                )
            )

        @app.event("member_joined_channel")
        def on_member_joined(event: dict[str, Any], context: dict[str, Any]) -> None:
            bot = context.get("bot_user_id") or self.bot_user_id
            if bot and event.get("user") == bot:
                self.resolve(channel_key(str(event.get("channel", ""))), "the bot was invited")

    def token_gone(self, problem: Problem) -> None:
        """The token no longer works: record it and park waiting Slack work under it."""
        self.report(problem, slack_works=False)
        kinds = sorted(kind for kind, lane in LANES.items() if lane == SLACK)
        parked = self.storage.jobs.park_pending(kinds, TOKEN_KEY, problem.problem, self.clock())
        log.warning("parked %d waiting Slack job(s) until the token is fixed", parked)

    # -- alerts ---------------------------------------------------------------------------

    def alert(self, text: str) -> None:
        """Tell the people who run smsbridge (OPS_CHANNEL, else the blast admins)."""
        self._alert(text)

    def _alert(self, text: str) -> None:
        """Queue the alert for OPS_CHANNEL, or a DM to each blast admin (durable jobs)."""
        targets = (
            [self.config.ops_channel]
            if self.config.ops_channel
            else sorted(self.config.blast_admins)
        )
        if not targets:
            log.warning("no OPS_CHANNEL or BLAST_ADMINS to alert; the log and /healthz say it")
        now = self.clock()
        for target in targets:
            self.storage.jobs.enqueue(
                "ops_alert", {"channel": target, "text": text}, queue=f"ops:{target}", now=now
            )
        self.runner.wake()

    def post_alert(self, payload: dict[str, Any]) -> None:
        """Job ``ops_alert``."""
        with slack_job("ops alert", payload["channel"]):
            self.client.chat_postMessage(
                channel=payload["channel"], text=payload["text"], unfurl_links=False
            )

    def status(self) -> tuple[bool, dict[str, Any]]:
        """What ``/healthz`` answers: ok, and the open problems with since and fix."""
        problems = self.storage.slack.open_problems()
        return not problems, {
            "ok": not problems,
            "problems": [
                {"problem": p["problem"], "since": p["since"], "fix": p["fix"]} for p in problems
            ],
            "parked_jobs": sum(self.storage.jobs.park_keys().values()),
        }


# -- the pieces of the start-up check (also used by ``smsbridge doctor``) -------------------


def ask_slack(client: WebClient) -> AuthTest:
    """``auth.test``: who the bot is and what its token may do, or why Slack would not say."""
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) or str(exc)
        if exc.response.status_code == 429:
            error = "ratelimited"
        return AuthTest(error=error, needed=str(exc.response.get("needed", "")))
    except OSError as exc:  # connection refused, timeouts
        return AuthTest(error=f"Slack unreachable ({exc})")
    return AuthTest(
        user_id=str(response.get("user_id") or ""),
        scopes=frozenset(_scopes_header(response.headers)),
    )


def missing_scopes(auth: AuthTest) -> Problem | None:
    """The problem when the token lacks scopes manifest.yml asks for."""
    missing = sorted(set(BOT_SCOPES) - auth.scopes)
    if not missing:
        return None
    return Problem(
        SCOPES_KEY,
        f"smsbridge's Slack token lacks the scope(s) {', '.join(missing)} that "
        "manifest.yml asks for.",
        "Update the app from manifest.yml (api.slack.com/apps → smsbridge → App "
        "Manifest), reinstall it, put the new token in SLACK_BOT_TOKEN and restart "
        "smsbridge.",
    )


def store_channels(config: Config) -> list[tuple[str, str]]:
    """(label, channel ID) of every channel the bot must be in: each store's and OPS_CHANNEL."""
    channels = [(f"the {k} store channel", c) for k, c in config.stores.items()]
    if config.ops_channel and config.ops_channel not in config.stores.values():
        channels.append(("the ops channel (OPS_CHANNEL)", config.ops_channel))
    return channels


def check_channel(client: WebClient, label: str, channel: str) -> tuple[Problem | None, str]:
    """(the channel's problem or None when it is fine, why Slack would not say or "")."""
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error == "missing_scope":  # channels:read / groups:read: the scope check says so
            return None, "missing_scope"
        if error in CHANNEL_ERRORS or error in TOKEN_ERRORS:
            needed = str(exc.response.get("needed", ""))
            return describe(error, channel, needed=needed, where=f"{label} ({channel})"), ""
        return None, error or str(exc)
    except OSError as exc:
        return None, str(exc)
    where = f"{label} #{info.get('name') or channel} ({channel})"
    if info.get("is_archived"):
        return describe("is_archived", channel, where=where), ""
    if not info.get("is_member"):
        return describe("not_in_channel", channel, where=where), ""
    return None, ""


def _scopes_header(headers: Any) -> set[str]:
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "x-oauth-scopes":
            return {s.strip() for s in str(value).split(",") if s.strip()}
    return set()


def _when(since: str) -> str:
    return parse_iso(since).strftime("%Y-%m-%d %H:%M UTC")
