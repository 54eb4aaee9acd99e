"""The web application: ``create_app(config)`` puts Flask, Bolt and the routes on top of
:func:`bot.services.build_services`. No side effects: nothing is migrated, deleted or started
here (``smsbridge migrate`` / ``release:``, the worker and the process entry points do that)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.request.internals import parse_body

from bot import listeners
from bot.identity import error_handler
from bot.services import Services, build_services
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.store import utcnow
from bridge.webhook import MAX_CALLBACK_BYTES, inbound_blueprint, media_blueprint

__all__ = ["Services", "create_app", "services_of"]

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    crm: CrmTextClient | None = None,
    services: Services | None = None,
) -> Flask:
    """Flask + Bolt + routes over ``services`` (built from ``config`` when not given)."""
    services = services or build_services(config, clock=clock, crm=crm)
    storage, runner, health, identity = (
        services.storage,
        services.runner,
        services.health,
        services.identity,
    )
    logging.getLogger("slack_bolt.App").addFilter(_quiet_token_notice)
    # Bolt's client serves people who are waiting: it never sleeps on Retry-After. The bot
    # identity comes from one auth.test, not lazily: see bot/identity.py.
    bolt = App(
        signing_secret=config.slack_signing_secret,
        client=identity.client,
        authorize=identity.authorize(),
        before_authorize=listeners.answer_app_rate_limited,
        process_before_response=True,  # store an event before Slack gets its 200
    )
    bolt.error(error_handler())
    registered = listeners.register(
        bolt,
        storage,
        services.clock,
        runner.wake,
        services.sms,
        services.blasts,
        on_unarchive=health.recheck_later,
    )
    health.register(bolt, registered)
    listeners.register_fallbacks(bolt, registered)  # last: Bolt runs the first match only
    services.listeners = registered

    flask_app = Flask("smsbridge")
    # Slack payloads; callbacks are capped lower
    flask_app.config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    flask_app.register_blueprint(
        inbound_blueprint(services.inbound, config.callback_token, services.clock, runner.wake)
    )
    handler = SlackRequestHandler(bolt)

    @flask_app.post("/slack/events")
    def slack_events() -> ResponseReturnValue:
        problem = unreadable_body(request.get_data(as_text=True), request.content_type)
        if problem:  # Bolt would answer 500 (or fail later); this is not Slack's payload
            log.warning("Slack request with a body smsbridge cannot read (%s): 400", problem)
            return "Bad request: the body is not a Slack payload.", 400
        return handler.handle(request)

    flask_app.register_blueprint(media_blueprint(storage, services.sender.secret, services.clock))

    @flask_app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """200 when all is well; 503 naming each open Slack problem, since when, and the fix."""
        ok, body = health.status()
        jobs = storage.jobs.summary()
        body["pending_jobs"] = jobs["pending"]
        body["oldest_pending"] = jobs["oldest_pending"]
        body["failed_jobs"] = jobs["failed"]
        return jsonify(body), 200 if ok else 503

    @flask_app.get("/livez")
    def livez() -> ResponseReturnValue:
        """The process answers (for a platform that restarts or rolls back on a failing check:
        restarting does not fix a revoked token or a missing invite, /healthz says what does)."""
        return jsonify({"ok": True})

    flask_app.extensions["smsbridge"] = services
    log.info(
        "smsbridge web app for stores %s (callback cap %d bytes)",
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
