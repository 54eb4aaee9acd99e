"""Parse CRM Text's inbound callback (reference: crmtext-api.md §3) into :class:`InboundSms`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bridge.logsafe import clip
from bridge.phones import InvalidPhone, from_crmtext

PACIFIC = ZoneInfo("America/Los_Angeles")
# The longest text CRM Text carries (crmtext-api.md: 1,600 characters). A longer ``message``
# is not a customer's text: its first 1,600 characters are kept, with a note of what was cut.
MAX_TEXT_CHARS = 1600
MAX_ID_CHARS = 100  # msgID, custID, subacct
MAX_NAME_CHARS = 200  # custName, subacct_name
MAX_KEYWORD_CHARS = 32  # a store's keyword (SMS_STORES); longer is not a keyword
MAX_MMS_KEY_DIGITS = 3  # mms picture numbers ("0", "1", ...); Twilio sends at most 10


class CallbackError(ValueError):
    """The callback body cannot be used; the message says why (sent back with a 400)."""


@dataclass(frozen=True)
class Media:
    content_type: str
    url: str


@dataclass(frozen=True)
class InboundSms:
    keyword: str
    phone: str  # E.164
    text: str
    msg_id: str
    cust_id: str
    opted_in: bool | None  # from optInStatus; None when absent or unknown
    received_at: datetime  # UTC
    store_id: str
    store_name: str
    customer_name: str
    media: tuple[Media, ...]


def parse_callback(form: Mapping[str, str], now: datetime) -> InboundSms:
    """Read the fields case-insensitively; raise :class:`CallbackError` for unusable input."""
    fields = {key.lower(): value for key, value in form.items()}
    missing = [
        n for n in ("keyword", "mobileNum", "msgID") if not fields.get(n.lower(), "").strip()
    ]
    if missing:
        raise CallbackError(f"missing field{'s' * (len(missing) > 1)} {', '.join(missing)}")

    def required(name: str) -> str:
        value = fields.get(name.lower(), "").strip()
        if not value:
            raise CallbackError(f"missing field {name}")
        return value

    keyword = required("keyword").upper()
    if len(keyword) > MAX_KEYWORD_CHARS:
        raise CallbackError(f"keyword is longer than {MAX_KEYWORD_CHARS} characters")
    msg_id = required("msgID")
    if len(msg_id) > MAX_ID_CHARS:
        raise CallbackError(f"msgID is longer than {MAX_ID_CHARS} characters")
    try:
        phone = from_crmtext(required("mobileNum"))
    except InvalidPhone as exc:
        raise CallbackError(str(exc)) from exc
    media = _parse_mms(fields.get("mms", ""))
    text = capped_text(fields.get("message", ""))
    if not text.strip() and not media:
        raise CallbackError("empty message and no mms")
    return InboundSms(
        keyword=keyword,
        phone=phone,
        text=text,
        msg_id=msg_id,
        cust_id=fields.get("custid", "").strip()[:MAX_ID_CHARS],
        opted_in=_opt_in(fields.get("optinstatus", "")),
        received_at=_timestamp(fields.get("timestamp", ""), now),
        store_id=fields.get("subacct", "").strip()[:MAX_ID_CHARS],
        store_name=fields.get("subacct_name", "").strip()[:MAX_NAME_CHARS],
        customer_name=fields.get("custname", "").strip()[:MAX_NAME_CHARS],
        media=media,
    )


def capped_text(text: str) -> str:
    """``text`` when it is at most :data:`MAX_TEXT_CHARS` long; else its first
    :data:`MAX_TEXT_CHARS` characters and a note saying how many were not kept."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    note = f"[smsbridge kept the first {MAX_TEXT_CHARS:,} of {len(text):,} characters]"
    return f"{text[:MAX_TEXT_CHARS]} {note}"


def _opt_in(value: str) -> bool | None:
    normalised = value.strip().lower().replace("_", "-")
    return {"opt-in": True, "optin": True, "opt-out": False, "optout": False}.get(normalised)


def _timestamp(value: str, now: datetime) -> datetime:
    """CRM Text stamps are Pacific wall time, ``YYYY-MM-DD H:M:S``."""
    if not value.strip():
        return now.astimezone(UTC)
    try:
        local = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise CallbackError(f"timeStamp {clip(value)!r} is not YYYY-MM-DD HH:MM:SS") from exc
    try:
        return local.replace(tzinfo=PACIFIC).astimezone(UTC)
    except OverflowError as exc:
        raise CallbackError(f"timeStamp {clip(value)!r} is out of range") from exc


def _parse_mms(raw: str) -> tuple[Media, ...]:
    """``{"0": {"ContentType": ..., "URL": ...}, "count": 1}`` as a JSON string."""
    if not raw.strip():
        return ()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CallbackError("mms is not valid JSON") from exc
    if not isinstance(data, dict):
        raise CallbackError("mms is not a JSON object")
    keys = [k for k in data if k.isascii() and k.isdigit()]
    for key in keys:  # int() of a long key is slow, and past 4,300 digits a ValueError
        if len(key) > MAX_MMS_KEY_DIGITS:
            raise CallbackError(
                f"mms key {clip(key)!r} is not a picture number "
                f"(at most {MAX_MMS_KEY_DIGITS} digits)"
            )
    media = []
    for key in sorted(keys, key=int):
        item = data[key]
        if not isinstance(item, dict):
            raise CallbackError("mms entries must be objects")
        url = str(item.get("URL") or item.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise CallbackError(f"mms URL {clip(url)!r} is not http(s)")
        media.append(Media(str(item.get("ContentType") or "application/octet-stream"), url))
    return tuple(media)
