"""Texting a customer on staff's behalf: the checks before CRM Text, and what its answers mean.

Replies are blocked here before they reach CRM Text when the customer is not opted in or the
text is too long; CRM Text's own refusals are translated into plain words for the thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.segments import MAX_LENGTH, SegmentInfo, count, describe_length, strict_length
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING

MAX_CHARS = MAX_LENGTH  # counted strictly: the larger of code points and UTF-16 code units


@dataclass(frozen=True)
class NotSent(Exception):
    """The text was not (and will not be) sent; ``reason`` tells staff what to do."""

    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


STATUS_REFUSALS = {
    OPTED_OUT: NotSent(
        "opted_out",
        "Not sent: this customer opted out, so texting them is blocked. They can opt back in "
        "by texting START.",
    ),
    PENDING: NotSent(
        "pending",
        "Not sent: this customer's opt-in is pending. They must reply YES to the opt-in request "
        "before the store can text them.",
    ),
    NEW: NotSent(
        "not_opted_in",
        "Not sent: this number has not opted in. Use `/sms` to send them an opt-in request once "
        "they have agreed to get texts.",
    ),
}


def with_signature(text: str, signature: str) -> str:
    """Append the store's signature (``{name}`` becomes the staff member's name)."""
    return f"{text.rstrip()}\n{signature}" if signature else text


def check(status: int, text: str) -> SegmentInfo:
    """Raise :class:`NotSent` for a text (or picture) that must not reach CRM Text; else the
    text's segments. The customer's status is checked even when there is no text."""
    if status != OPTED_IN:
        raise STATUS_REFUSALS.get(status, STATUS_REFUSALS[NEW])
    if strict_length(text) > MAX_CHARS:
        raise NotSent(
            "too_long",
            f"Not sent: {describe_length(text)} is over CRM Text's limit of {MAX_CHARS:,}. "
            "Shorten it or split it into two replies.",
        )
    return count(text)


def send(
    crm: CrmTextClient,
    keyword: str,
    phone: str,
    text: str,
    mms_url: str | None,
    maybe_sent_before: bool,
) -> str:
    """Send one SMS/MMS and return its msgID.

    ``maybe_sent_before``: an earlier attempt ended in a way that may have reached CRM Text
    (a crash or timeout mid-call); then CRM Text's 12-hour duplicate answer means that attempt
    got through, and it counts as sent. Server errors raise :class:`CrmTextUnavailable` so the
    caller retries with backoff.
    """
    try:
        return crm.send_sms(keyword, phone, text, mms_url).msg_id
    except CrmTextError as error:
        if maybe_sent_before and _is_duplicate(error):
            return ""  # our own earlier attempt got through before the crash or timeout
        if error.status >= 500:  # CRM Text failed while handling it: it may have gone out
            raise CrmTextUnavailable(str(error), maybe_sent=True) from error
        raise explain(error) from error


def _is_duplicate(error: CrmTextError) -> bool:
    return "duplicate" in error.message.lower()


def explain(error: CrmTextError) -> NotSent:
    """CRM Text's refusal in words staff can act on."""
    text = error.message.lower()
    if _is_duplicate(error):
        return NotSent(
            "duplicate",
            "Not sent: CRM Text blocks the same text to the same customer within 12 hours. "
            "Reword it if you need to send it again.",
        )
    if "opted-out" in text or "opted out" in text:
        return STATUS_REFUSALS[OPTED_OUT]
    if "pending" in text:
        return STATUS_REFUSALS[PENDING]
    if "opted-in" in text or "opted in" in text:
        return STATUS_REFUSALS[NEW]
    return NotSent("crmtext_error", f"Not sent: CRM Text said “{error.message}” ({error.status}).")
