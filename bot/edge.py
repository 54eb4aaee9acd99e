"""The HTTP edge, in front of Flask: every request body is read here, against a cap, before any
route sees it; every answer says ``X-Content-Type-Options: nosniff``.

* The cap holds on the stream, with or without ``Content-Length``, ``Transfer-Encoding:
  chunked`` included (gunicorn and Werkzeug's server hand a chunked body to the app
  de-chunked, without a length): at most ``cap + 1`` bytes are ever read, then 413.
* The body is handed on as bytes in memory (at most the cap), so Flask, Bolt and the routes
  read it as often as they like and a slow client has already been waited for.
* Nothing here logs a body; a refused request is logged with its method, path (escaped, the
  callback token masked) and size.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bridge.logsafe import masked
from bridge.webhook import MAX_CALLBACK_BYTES

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are far smaller (a modal's state: tens of KB)
_READ_SIZE = 64 * 1024
DRAIN_BYTES = 1024 * 1024  # a streamed body over the cap: read and dropped, no more

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def cap_for(path: str) -> int:
    """The body cap for a request path: tighter on the callback."""
    return MAX_CALLBACK_BYTES if path.startswith("/sms/inbound/") else MAX_BODY_BYTES


class TooLarge(Exception):
    pass


def read_body(environ: dict[str, Any], cap: int) -> bytes:
    """The request body, read from ``wsgi.input`` never past ``cap + 1`` bytes."""
    stream = environ.get("wsgi.input")
    length_header = (environ.get("CONTENT_LENGTH") or "").strip()
    chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if stream is None:
        return b""
    if length_header and not chunked:
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            raise ValueError("Content-Length is not a number")
        if length > cap:
            raise TooLarge
        budget = length
    elif chunked or environ.get("wsgi.input_terminated"):
        budget = cap + 1  # read to the end of the stream, one byte past the cap at most
    else:
        return b""  # no length and no end marker: a body cannot be told apart from the next
    parts: list[bytes] = []
    got = 0
    while got < budget:
        part = stream.read(min(_READ_SIZE, budget - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    if got > cap:
        _discard(stream, DRAIN_BYTES)
        raise TooLarge
    return b"".join(parts)


def _discard(stream: Any, limit: int) -> None:
    """Read and drop up to ``limit`` more bytes of a body being refused, so that a client
    still sending a little over the cap reads the 413 instead of a reset connection."""
    left = limit
    while left > 0:
        part = stream.read(min(_READ_SIZE, left))
        if not part:
            return
        left -= len(part)


class Edge:
    """WSGI middleware: the body cap and ``nosniff`` for every route."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "")
        cap = cap_for(path)
        try:
            body = read_body(environ, cap)
        except TooLarge:
            log.warning(
                "%s %s refused: body over %d bytes",
                environ.get("REQUEST_METHOD"),
                masked(path),
                cap,
            )
            return _plain(start_response, "413 Request Entity Too Large", "body too large\n")
        except ValueError as exc:
            log.warning("%s %s refused: %s", environ.get("REQUEST_METHOD"), masked(path), exc)
            return _plain(start_response, "400 Bad Request", "bad request\n")
        except OSError as exc:  # the client went away or stalled past the server's deadline
            log.warning(
                "%s %s: body not received (%s)", environ.get("REQUEST_METHOD"), masked(path), exc
            )
            return _plain(start_response, "400 Bad Request", "body not received\n")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False

        def nosniff(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-content-type-options"]
            headers.append(("X-Content-Type-Options", "nosniff"))
            return start_response(status, headers, *exc_info)

        return self.app(environ, nosniff)


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
        ],
    )
    return [body]
