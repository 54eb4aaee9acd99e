"""``smsbridge consent export``: a store's consent ledger as CSV, for an audit or a TCPA claim.

One row per ledger entry, oldest first: when (UTC), the number, the customer's name, the status
before and after, how it came about, who (a Slack user ID, a name given to the CLI, or empty for
the customer and CRM Text), and the text involved (the customer's words, or a staff note).
Read a page at a time, so memory stays flat however long the ledger.

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return) in the free-text columns are written with a leading ``'``, as OWASP
advises against CSV injection: a customer's text cannot become a formula on an auditor's
machine. The number column is ours (E.164) and kept as it is.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from typing import TextIO

from bridge.store import STATUS_NAMES, Store, iso, parse_iso

COLUMNS = (
    "when_utc",
    "store",
    "phone",
    "customer",
    "from_status",
    "to_status",
    "how",
    "who",
    "text",
)
PAGE = 1000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` (from midnight UTC) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date like 2026-11-01") from None
    if len(text.strip()) == 10:
        moment = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cell(value: str | None) -> str:
    text = value or ""
    return "'" + text if text.startswith(_FORMULA) else text


def _status(code: int | None) -> str:
    return STATUS_NAMES.get(code, "unknown") if code is not None else ""


def export(storage: Store, keyword: str, out: TextIO, since: datetime | None = None) -> int:
    """Write the store's consent events (from ``since``) to ``out`` as CSV; return how many."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    floor = iso(since) if since is not None else ""
    after, count = 0, 0
    while True:
        rows = storage.customers.consent_log(keyword, floor, after, PAGE)
        for row in rows:
            when = parse_iso(row["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow(
                [
                    when,
                    keyword.upper(),
                    row["phone"],
                    _cell(row["name"]),
                    _status(row["status_from"]),
                    _status(row["status_to"]),
                    _cell(row["how"]),
                    _cell(row["actor"]),
                    _cell(row["text"]),
                ]
            )
        count += len(rows)
        if len(rows) < PAGE:
            return count
        after = rows[-1]["id"]
