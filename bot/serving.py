"""gunicorn pieces named in gunicorn.conf.py: a worker slow clients cannot hold, and logs that
never show the callback token or a forged line.

:class:`DeadlineWorker` is gunicorn's threaded worker with read deadlines. gunicorn waits up
to 5 s for a connection's first byte without a thread, but once a byte has come a thread reads
the rest of the request head and then the body, blocking, for as long as the client takes: 8
clients dripping one byte a second held all 8 threads and ``/healthz`` timed out (issue 10).
Here a request's head must arrive within :data:`HEAD_SECONDS` and its body within
:data:`BODY_SECONDS` of that; a client that is slower loses its connection (no answer: it
sent no request). With the thread count of gunicorn.conf.py a few slow clients leave threads
free, and a flood of them holds each thread for at most those few seconds.

:class:`SafeLogger` is gunicorn's logger with :class:`bridge.logsafe.SafeFormatter` on its
error and access logs: the callback path is written ``/sms/inbound/***`` and control
characters escaped.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from bridge.logsafe import SafeFormatter

HEAD_SECONDS = 5.0  # the request line and headers: one packet from Slack or CRM Text
BODY_SECONDS = 15.0  # the body after the head (at most 1 MB, see bot/edge.py)
WRITE_SECONDS = 30.0  # one answer (a picture for CRM Text is the largest: a few MB)


class DeadlineSocket:
    """A client socket whose blocking reads end at a deadline (``TimeoutError``); everything
    else is the socket's own."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._deadline: float | None = None
        self._in_head = False

    def read_within(self, seconds: float, *, head: bool) -> None:
        self._deadline = time.monotonic() + seconds
        self._in_head = head

    def no_deadline(self) -> None:
        self._deadline = None

    def recv(self, size: int, *flags: int) -> bytes:
        if self._deadline is not None and self._sock.gettimeout() != 0.0:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return self._late()
            self._sock.settimeout(remaining)
            try:
                return self._sock.recv(size, *flags)
            except TimeoutError:
                return self._late()
        return self._sock.recv(size, *flags)

    def _late(self) -> bytes:
        """Too slow: during the head, as if the client had hung up (gunicorn closes quietly);
        during the body, an error (bot/edge.py answers 400 and nothing is stored)."""
        if self._in_head:
            return b""
        raise TimeoutError("the client did not send its request body in time")

    def sendall(self, data: bytes, *flags: int) -> None:
        """An answer is written within :data:`WRITE_SECONDS` (a client that does not read
        cannot hold a thread either)."""
        if self._sock.gettimeout() != 0.0:
            self._sock.settimeout(WRITE_SECONDS)
        self._sock.sendall(data, *flags)

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker with :class:`DeadlineSocket` client sockets."""

    def handle(self, conn: Any) -> Any:
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.read_within(HEAD_SECONDS, head=True)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if isinstance(conn.sock, DeadlineSocket):  # the head is in; bot/edge.py reads the body
            conn.sock.read_within(BODY_SECONDS, head=False)
        try:
            return super().handle_request(req, conn)
        finally:
            if isinstance(conn.sock, DeadlineSocket):
                conn.sock.no_deadline()


class SafeLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger; its lines are escaped and mask the callback token."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                current = handler.formatter or logging.Formatter()
                handler.setFormatter(SafeFormatter(current._fmt, current.datefmt))
