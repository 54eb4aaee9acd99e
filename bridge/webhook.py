"""The routes CRM Text calls: the inbound callback and the signed MMS picture links."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge.callback import CallbackError, parse_callback
from bridge.inbound import Inbound, UnknownStore
from bridge.logsafe import clip, escape
from bridge.media import verify
from bridge.store import Store

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 256 * 1024


def inbound_blueprint(
    inbound: Inbound, token: str, clock: Callable[[], datetime], on_stored: Callable[[], None]
) -> Blueprint:
    """The callback route. Answers 200 only once the message and its job are stored."""
    blueprint = Blueprint("sms_inbound", __name__)

    @blueprint.post("/sms/inbound/<path:given>")
    def receive(given: str) -> tuple[Response | str, int]:
        if not hmac.compare_digest(given.encode(), token.encode()):
            log.warning("callback with a wrong token from %s", request.remote_addr)
            return "not found\n", 404
        try:
            if (request.content_length or 0) > MAX_CALLBACK_BYTES:
                raise RequestEntityTooLarge()
            form = {**request.args.to_dict(), **request.form.to_dict()}
            try:
                sms = parse_callback(form, clock())
            except CallbackError:
                raise
            except Exception as exc:  # a parser bug: the sender's input, so a 4xx, never a 5xx
                log.warning(
                    "callback rejected: the parser failed: %s: %s",
                    type(exc).__name__,
                    clip(str(exc)),
                )
                return "bad callback: its fields could not be read\n", 400
            _, new = inbound.accept(sms)
        except RequestEntityTooLarge:
            log.warning("callback rejected: body over %d bytes", MAX_CALLBACK_BYTES)
            return "body too large\n", 413
        except CallbackError as exc:
            log.warning("callback rejected: %s", exc)
            return f"bad callback: {exc}\n", 400
        except UnknownStore as exc:
            log.warning("callback rejected: %s", exc)
            return f"{exc}\n", 422
        if new:
            on_stored()
        return "ok\n", 200

    return blueprint


def media_blueprint(storage: Store, secret: bytes, clock: Callable[[], datetime]) -> Blueprint:
    """``GET /media/<expires>/<signature>/<id>.<ext>``: pictures CRM Text fetches for MMS."""
    blueprint = Blueprint("media", __name__)

    @blueprint.get("/media/<expires>/<signature>/<filename>")
    def serve(expires: str, signature: str, filename: str) -> tuple[Response | str, int]:
        media_id = verify(expires, signature, filename, secret, clock())
        row = storage.media.get(media_id) if media_id else None
        if row is None:
            log.info("media link refused: %s", escape(filename))
            return "not found\n", 404
        response = Response(row["data"], mimetype=row["content_type"])
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response, 200

    return blueprint
