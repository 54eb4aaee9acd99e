"""The application factory: ``create_app(config)`` wires storage, clients, Bolt and Flask."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk import WebClient

from bot import listeners
from bot.blasts import Blasts
from bot.commands import SmsCommand
from bot.decisions import show_decision_handler
from bot.identity import BotIdentity, error_handler
from bot.interactive import interactive_client
from bot.pacing import Pacer
from bot.sending import Sender
from bot.slack_health import SlackHealth, auth_answer
from bot.slackcalls import web_client
from bot.threads import ThreadPoster
from bridge.blasts import BlastEngine
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.inbound import Inbound
from bridge.jobs import JobRunner
from bridge.optout import opt_out_handler, status_check_handler
from bridge.storage import Storage, utcnow
from bridge.webhook import MAX_CALLBACK_BYTES, inbound_blueprint, media_blueprint

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a running app is made of; tests and the CLI reach it via ``app.extensions``."""

    config: Config
    storage: Storage
    crm: CrmTextClient
    slack: WebClient
    bolt: App
    runner: JobRunner
    http: httpx.Client
    listeners: listeners.Registered
    identity: BotIdentity
    health: SlackHealth

    def close(self) -> None:
        self.runner.stop()
        self.crm.close()
        self.http.close()
        self.storage.close()


class Wake:
    """Late-bound ``runner.wake`` for parts built before the runner."""

    runner: JobRunner | None = None

    def __call__(self) -> None:
        if self.runner is not None:
            self.runner.wake()


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    crm: CrmTextClient | None = None,
) -> Flask:
    """Build the Flask app. Starts the job workers unless ``config.run_workers`` is false."""
    storage = Storage(config.sqlite_path)
    storage.migrate()
    storage.sync_stores(dict(config.stores))
    removed = storage.housekeeping(
        clock(), media_age=timedelta(hours=config.media_ttl_hours + 24), keep=timedelta(days=30)
    )
    log.info("housekeeping removed %s", removed)
    crm = crm or CrmTextClient(config.crmtext_api_url, config.crmtext_user, config.crmtext_password)
    pacer = (
        Pacer(storage, config.slack_posts_per_second, config.slack_post_burst)
        if config.slack_posts_per_second > 0
        else None
    )
    slack = web_client(config.slack_bot_token, config.slack_api_url, pacer)
    http = httpx.Client(timeout=15, headers={"User-Agent": "smsbridge"})
    poster = ThreadPoster(storage, slack, http, clock)
    sender = Sender(config, storage, slack, crm, http, clock, poster)
    wake = Wake()
    sms = SmsCommand(config, storage, slack, crm, clock, wake)
    blasts = Blasts(
        config, storage, BlastEngine(config, storage, crm, clock), slack, sender, clock, wake
    )
    runner = JobRunner(
        storage,
        {
            "post_inbound": poster.post_inbound,
            "post_notice": poster.post_notice,
            "thread_resolved": poster.thread_resolved,
            "crm_opt_out": opt_out_handler(storage, crm, clock),
            "crm_status_check": status_check_handler(storage, crm, clock),
            "refresh_thread": poster.refresh_thread,
            "show_decision": show_decision_handler(storage, slack, poster),
            "send_reply": sender.send_reply,
            "reply_feedback": sender.feedback,
            "post_outbound": poster.post_outbound,
            "recover_reply": poster.recover_reply,
            "mark_note": sender.mark_note,
            "sms_command": sms.run,
            "crm_opt_in": sms.opt_in,
            "command_answer": sms.post_answer,
            "blast_sync": blasts.sync,
            "blast_preview": blasts.preview,
            "blast_compose": blasts.compose,
            "blast_confirm": blasts.confirm,
            "blast_start": blasts.start,
            "blast_step": blasts.step,
            "blast_progress": blasts.progress,
        },
        clock=clock,
        max_attempts={"send_reply": 8, "blast_step": 10, "blast_start": 10},
        patient=frozenset(
            {
                "post_inbound",
                "crm_opt_out",
                "reply_feedback",
                "post_outbound",
                "recover_reply",
                "slack_recheck",
            }
        ),
        on_give_up=lambda job, error: gave_up(job, error),
    )
    health = SlackHealth(config, storage, slack, runner, clock)
    runner.handlers["ops_alert"] = health.post_alert
    runner.handlers["slack_recheck"] = health.recheck
    runner.on_park = health.on_park

    def gave_up(job: dict[str, Any], error: str) -> None:
        """A job that will not be retried: tell the people who can act on it."""
        if job["kind"] == "send_reply":
            sender.gave_up(job, error)
        elif job["kind"] in ("blast_step", "blast_start"):
            blasts.gave_up(job, error)
        else:
            log.error(
                "gave up on %s job %s after %s attempts: %s",
                job["kind"],
                job["id"],
                job["attempts"],
                error,
            )

    wake.runner = runner
    logging.getLogger("slack_bolt.App").addFilter(_quiet_token_notice)
    # Bolt's client serves people who are waiting: it never sleeps on Retry-After. The bot
    # identity comes from one auth.test now, not lazily: see bot/identity.py.
    identity = BotIdentity(interactive_client(config.slack_bot_token, config.slack_api_url))
    identity.check()
    bolt = App(
        signing_secret=config.slack_signing_secret,
        client=identity.client,
        authorize=identity.authorize(),
        before_authorize=listeners.answer_app_rate_limited,
        process_before_response=True,  # store an event before Slack gets its 200
    )
    bolt.error(error_handler())
    registered = listeners.register(
        bolt, storage, clock, runner.wake, sms, blasts, on_unarchive=health.recheck_later
    )
    health.register(bolt, registered)
    listeners.register_fallbacks(bolt, registered)  # last: Bolt runs the first match only
    inbound = Inbound(
        storage, config.stores, quiet=timedelta(days=config.thread_quiet_days), clock=clock
    )

    flask_app = Flask("smsbridge")
    flask_app.config["MAX_CONTENT_LENGTH"] = (
        20 * 1024 * 1024
    )  # Slack payloads; callbacks are capped lower
    flask_app.register_blueprint(
        inbound_blueprint(inbound, config.callback_token, clock, runner.wake)
    )
    handler = SlackRequestHandler(bolt)

    @flask_app.post("/slack/events")
    def slack_events() -> ResponseReturnValue:
        problem = unreadable_body(request.get_data(as_text=True), request.content_type)
        if problem:  # Bolt would answer 500 (or fail later); this is not Slack's payload
            log.warning("Slack request with a body smsbridge cannot read (%s): 400", problem)
            return "Bad request: the body is not a Slack payload.", 400
        return handler.handle(request)

    flask_app.register_blueprint(media_blueprint(storage, sender.secret, clock))

    @flask_app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """200 when all is well; 503 naming each open Slack problem, since when, and the fix."""
        ok, body = health.status()
        pending = storage.jobs("pending")
        body["pending_jobs"] = len(pending)
        body["oldest_pending"] = min((j["created_at"] for j in pending), default=None)
        body["failed_jobs"] = len(storage.jobs("failed"))
        return jsonify(body), 200 if ok else 503

    @flask_app.get("/livez")
    def livez() -> ResponseReturnValue:
        """The process answers (for a platform that restarts or rolls back on a failing check:
        restarting does not fix a revoked token or a missing invite, /healthz says what does)."""
        return jsonify({"ok": True})

    services = Services(
        config, storage, crm, slack, bolt, runner, http, registered, identity, health
    )
    flask_app.extensions["smsbridge"] = services
    health.check(
        auth_answer(identity)
    )  # token, scopes, channels: problems logged and alerted, fixed ones resumed
    if config.run_workers:
        runner.start()
    log.info(
        "smsbridge ready for stores %s (callback cap %d bytes)",
        ", ".join(config.stores),
        MAX_CALLBACK_BYTES,
    )
    return flask_app


def unreadable_body(body: str, content_type: str | None) -> str:
    """Why Bolt could not read this request body as a Slack payload ("" when it can): JSON
    that does not parse or is not an object, a ``payload=`` form field likewise."""
    try:
        parsed = parse_body(body, content_type)
    except ValueError as exc:  # json.JSONDecodeError
        return f"not JSON: {exc}"
    if not isinstance(parsed, dict):
        return f"a JSON {type(parsed).__name__}, not an object"
    return ""


def _quiet_token_notice(record: logging.LogRecord) -> bool:
    """Bolt reads SLACK_BOT_TOKEN from the environment itself and then warns that our client's
    token (or our ``authorize``) wins; that is intended (configuration comes from Config, the
    identity from bot/identity.py), so drop the notice."""
    message = record.getMessage()
    return "will be unused" not in message and "will be ignored" not in message


def services_of(app: Flask) -> Services:
    services = app.extensions["smsbridge"]
    assert isinstance(services, Services)
    return services
