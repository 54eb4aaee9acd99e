"""Log lines nobody can forge: values are escaped, the callback token never written.

A value from a request (a path, a field) may hold CR, LF or other control characters; written
as-is it could start a new, fake log line. :class:`SafeFormatter` escapes control characters in
every formatted message (a traceback, added after the message, keeps its lines), and
:func:`masked` replaces the secret part of a callback path.
"""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_CALLBACK = re.compile(r"(/sms/inbound/)[^\s?\"]*")


def escape(value: str) -> str:
    """``value`` with control characters as ``\\n``, ``\\x1b``… (one line, printable)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def clip(value: str, limit: int = 100) -> str:
    """``value`` cut to ``limit`` characters, with "…" when cut: for quoting input back in an
    answer or a log line (a field may be up to the body cap long)."""
    return value if len(value) <= limit else value[:limit] + "…"


def masked(text: str) -> str:
    """``text`` with the callback token in any ``/sms/inbound/<token>`` path replaced."""
    return _CALLBACK.sub(r"\1***", text)


class SafeFormatter(logging.Formatter):
    """A formatter whose messages are single, escaped lines with callback tokens masked."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = masked(escape(record.message))
        return super().formatMessage(record)


def configure(fmt: str, level: int = logging.INFO) -> None:
    """``logging.basicConfig`` with :class:`SafeFormatter` on the root handler."""
    logging.basicConfig(level=level, format=fmt)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt))
