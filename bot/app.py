"""The web application: ``create_app(config)`` puts Flask, Bolt and the routes on top of
:func:`bot.services.build_services`. No side effects: nothing is migrated, deleted or started
here (``smsbridge migrate`` / ``release:``, the worker and the process entry points do that)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from werkzeug.exceptions import HTTPException

from bot import listeners
from bot.edge import MAX_BODY_BYTES, Edge
from bot.identity import error_handler
from bot.services import Services, build_services
from bot.slack_shapes import shape_problem
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.logsafe import escape, masked
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
    logging.getLogger("slack_bolt.App").addFilter(_no_bodies)
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
    flask_app.response_class = PlainResponse
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # bot/edge.py already holds it
    flask_app.wsgi_app = Edge(flask_app.wsgi_app)  # type: ignore[method-assign]

    @flask_app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        """Werkzeug's error pages are HTML that may echo input: a plain line instead."""
        log.info("%s %s: %s", request.method, masked(escape(request.path)), error.code)
        return f"{error.code} {error.name}\n", error.code or 500

    flask_app.register_blueprint(
        inbound_blueprint(services.inbound, config.callback_token, services.clock, runner.wake)
    )
    handler = SlackRequestHandler(bolt)
    verifier = SignatureVerifier(config.slack_signing_secret)

    @flask_app.post("/slack/events")
    def slack_events() -> ResponseReturnValue:
        raw = request.get_data(cache=True)  # at most MAX_BODY_BYTES (bot/edge.py)
        if not verifier.is_valid_request(raw, dict(request.headers)):
            log.warning("Slack request with a missing or wrong signature: 401")
            return "invalid signature\n", 401
        problem = unreadable_body(raw, request.content_type)
        if problem:  # Bolt would answer 500 (or fail later); this is not Slack's payload
            log.warning("Slack request with a body smsbridge cannot read (%s): 400", problem)
            return "Bad request: the body is not a Slack payload.\n", 400
        return handler.handle(request)

    flask_app.register_blueprint(media_blueprint(storage, services.sender.secret, services.clock))

    @flask_app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """Anyone may ask: "ok" (200) or "not ok" (503), nothing more."""
        ok, _ = health.status()
        return ("ok\n", 200) if ok else ("not ok\n", 503)

    @flask_app.get("/healthz/details")
    def healthz_details() -> ResponseReturnValue:
        """With ``Authorization: Bearer <HEALTH_TOKEN>``: 200 when all is well, 503 naming each
        open Slack problem, since when, and the fix, and the job backlog. 404 otherwise."""
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not config.health_token or not hmac.compare_digest(
            given.encode(), config.health_token.encode()
        ):
            return "404 Not Found\n", 404
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
        return "ok\n", 200

    flask_app.extensions["smsbridge"] = services
    log.info(
        "smsbridge web app for stores %s (callback cap %d bytes)",
        ", ".join(config.stores),
        MAX_CALLBACK_BYTES,
    )
    return flask_app


class PlainResponse(Response):
    """A route's string answer is ``text/plain`` (Flask's default is ``text/html``)."""

    default_mimetype = "text/plain"


def unreadable_body(raw: bytes, content_type: str | None) -> str:
    """Why Bolt could not read this request body as a Slack payload ("" when it can): not
    UTF-8, JSON that does not parse or is not an object, a ``payload=`` form field likewise,
    or fields of the wrong shape (bot/slack_shapes.py)."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        parsed = parse_body(body, content_type)
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError
        return f"not JSON: {type(exc).__name__}"
    if not isinstance(parsed, dict):
        return f"a JSON {type(parsed).__name__}, not an object"
    return shape_problem(parsed)


def _no_bodies(record: logging.LogRecord) -> bool:
    """Bolt writes whole request bodies into some messages (an unhandled request, a wrong
    signature); smsbridge never logs a body: those messages are cut to their first words."""
    if (
        isinstance(record.msg, str)
        and "(" in record.msg
        and (
            record.msg.startswith(("Unhandled request", "Invalid request signature"))
            or "without providing a response for the request" in record.msg
        )
    ):
        record.msg = record.msg.split("(", 1)[0].rstrip() + " (body not logged)"
        record.args = None
    return True


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
