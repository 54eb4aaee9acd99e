"""Blast preflight: the checks a store-wide text runs before sending (sms-compliance.md §7).

Pure: no Slack, database or network. The bot shows the result in the confirmation modal, reruns
it on submit and again right before sending. Every title and detail is written for a store
manager.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bridge import area_codes, quiet_hours
from bridge.phones import Location, locate
from bridge.segments import (
    MAX_LENGTH,
    SegmentInfo,
    apply_replacements,
    count,
    describe_length,
    strict_length,
    suggest_replacements,
)
from bridge.store import OPTED_IN, OPTED_OUT, PENDING

BLOCK, WARN, INFO = "block", "warn", "info"
_LEVEL_ORDER = {BLOCK: 0, WARN: 1, INFO: 2}

OPT_OUT_LINE = "Reply STOP to opt out"
MAX_CHARS = MAX_LENGTH  # CRM Text / Twilio body limit, counted strictly
LONG_CHARS = 320  # Twilio: keep texts at or under 320 characters
DUPLICATE_WINDOW = timedelta(hours=12)  # CRM Text drops identical texts within 12 h
MMS_TYPES = frozenset({"image/jpeg", "image/png", "image/gif"})
MMS_MAX_BYTES = 450_000  # CRM Text: larger pictures are not delivered
MMS_WARN_BYTES = 300_000  # handled reliably everywhere below this
ENCODING_LIST_MAX = 10  # non-GSM characters listed by name before "and N more"

SHORTENERS = frozenset(
    {
        "bit.ly", "bitly.com", "tinyurl.com", "tiny.one", "rotf.lol", "is.gd", "v.gd", "ow.ly",
        "rb.gy", "cutt.ly", "t.ly", "goo.gl", "buff.ly", "shorturl.at", "tiny.cc", "rebrand.ly",
        "t.co", "lnkd.in", "s.id", "bl.ink", "short.gy", "shorte.st", "adf.ly", "bc.vc",
        "x.co", "soo.gd", "clck.ru", "qr.ae", "trib.al", "db.tt", "fb.me", "snip.ly",
        "u.to", "t2m.io", "tny.im", "chilp.it", "shorturl.com",
    }
)  # fmt: skip
"""Public link shorteners carriers filter (T-Mobile Code of Conduct; AT&T)."""

# Excluded-recipient reasons (keys of Preflight.excluded).
EX_OPTED_OUT = "opted out"
EX_PENDING = "opt-in pending"
EX_NEW = "never opted in"
EX_INVALID = "invalid number"
EX_TOLL_FREE = "toll-free number"  # no time zone: never a blast recipient
EX_NON_GEOGRAPHIC = "non-geographic number"  # likewise (5XX, 900, …)
EX_DUPLICATE = "duplicate number"  # only present when a number appears more than once
_REASON_PLURALS = {
    EX_INVALID: "invalid numbers",
    EX_TOLL_FREE: "toll-free numbers",
    EX_NON_GEOGRAPHIC: "non-geographic numbers",
    EX_DUPLICATE: "duplicate numbers",
}
_NOT_A_PLACE = {area_codes.TOLL_FREE: EX_TOLL_FREE, area_codes.NON_GEOGRAPHIC: EX_NON_GEOGRAPHIC}
MODES = ("auto", "individual", "campaign")


@dataclass(frozen=True)
class Finding:
    """One check result: ``title`` is a short line, ``detail`` says what to do."""

    code: str
    level: str  # BLOCK, WARN or INFO
    title: str
    detail: str


@dataclass(frozen=True)
class Audience:
    """One customer of the store: phone as stored (E.164 or junk) and CRM Text status.

    ``location`` is the number as worked out at ingest (stored on the customer); without it the
    number is parsed here, once per distinct phone string.
    """

    phone: str
    status: int
    location: Location | None = None


@dataclass(frozen=True)
class Draft:
    """What staff wrote in the blast modal."""

    store_name: str
    text: str
    append_opt_out: bool = False
    image_bytes: int | None = None
    image_type: str | None = None


@dataclass(frozen=True)
class History:
    """What this store already sent. ``recent_texts`` holds texts as sent (final text)."""

    blasts_this_month: int = 0
    recent_texts: tuple[tuple[datetime, str], ...] = ()
    pending_revocations: int = 0
    undecided_stop_requests: int = 0  # texts that sound like "stop" with no staff decision yet
    at_state_cap: int = 0  # recipients their state's 24-hour cap allows no more texts (FL, OK, MD)


@dataclass(frozen=True)
class Settings:
    """Per-store blast settings. Rates are texts per second."""

    monthly_limit: int = 2
    price_per_unit: float = 0.0075
    mode: str = "auto"  # "auto", "individual" or "campaign"
    campaign_threshold: int = 700
    individual_rate: float = 1.0
    campaign_rate: float = 30.0
    fallback_zone: str = "America/Los_Angeles"


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class Preflight:
    """Outcome of :func:`run`; ``findings`` are ordered blocks, warnings, then info."""

    findings: tuple[Finding, ...]
    final_text: str
    segments: SegmentInfo
    recipients: tuple[str, ...]
    excluded: dict[str, int]
    mode: str  # "individual" or "campaign"
    duration: timedelta
    cost: float
    next_allowed: datetime | None

    @property
    def blocked(self) -> bool:
        """True if any finding forbids sending."""
        return any(f.level == BLOCK for f in self.findings)

    @property
    def blocks(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == BLOCK)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Findings staff must acknowledge."""
        return tuple(f for f in self.findings if f.level == WARN)


# --- small formatting helpers ---


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _at(moment: datetime, zone: str) -> str:
    """``8:00 AM EDT on Wednesday, July 16`` in ``zone``."""
    local = moment.astimezone(ZoneInfo(zone))
    clock = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    return f"{clock} {local.tzname()} on {local:%A, %B} {local.day}"


def _length_of(span: timedelta) -> str:
    seconds = math.ceil(span.total_seconds())
    if seconds < 90:
        return _plural(seconds, "second")
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"about {minutes} minutes"
    hours = _plural(minutes // 60, "hour")
    return f"about {hours} {minutes % 60} minutes" if minutes % 60 else f"about {hours}"


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
             "ninth", "tenth")  # fmt: skip


def _ordinal(n: int) -> str:
    if 1 <= n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _normalise(text: str) -> str:
    return " ".join(text.split())


# --- text ---


def final_text(draft: Draft) -> str:
    """The text as it will arrive: the opt-out line appended on its own line when asked."""
    body = draft.text.rstrip()
    if not draft.append_opt_out or body.endswith(OPT_OUT_LINE):
        return draft.text
    return f"{body}\n{OPT_OUT_LINE}" if body else OPT_OUT_LINE


_OPT_OUT_RE = re.compile(
    r"\bstop\b\W{0,2}\s*(?:to\b|2\b|for\b|=)\s*"
    r"(?:opt[\s-]?out|unsub\w*|end|cancel|quit|stop)\b"  # "Reply STOP to opt out / to end"
    r"|\b(?:opt[\s-]?out|unsubscribe|to\s+end|to\s+stop)\b\W{0,3}\s*"
    r"(?:(?:reply|text|txt|send)\s+)?\W?stop\b",  # "To opt out, reply STOP"
    re.IGNORECASE,
)


def has_opt_out(text: str) -> bool:
    """True if ``text`` tells customers how to stop texts ("Reply STOP to opt out")."""
    return _OPT_OUT_RE.search(text) is not None


_URL_RE = re.compile(
    r"(?<![\w@.-])(?:https?://)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}"
    r"(?::\d+)?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\"”’»"


def links(text: str) -> list[tuple[str, str]]:
    """``(link as written, lower-case host)`` for each web address in ``text``."""
    out = []
    for match in _URL_RE.finditer(text):
        link = match.group(0).rstrip(_TRAILING)
        host = urlsplit(link if "://" in link else "//" + link).hostname
        if host:
            out.append((link, host.rstrip(".")))
    return out


def shortener_of(host: str) -> str | None:
    """The public shortener ``host`` belongs to (itself or a subdomain), else None."""
    parts = host.split(".")
    for i in range(len(parts) - 1):
        candidate = ".".join(parts[i:])
        if candidate in SHORTENERS:
            return candidate
    return None


def _describe(cluster: str) -> str:
    if cluster.isprintable() and not cluster.isspace():
        return f"“{cluster}”"
    names = ", ".join(unicodedata.name(ch, f"U+{ord(ch):04X}").lower() for ch in cluster)
    return f"an invisible character ({names})"


# --- audience ---


# (zones, state) of a recipient -> how many recipients share it, in order of first appearance
Places = dict[tuple[tuple[str, ...], str | None], int]


@dataclass(frozen=True)
class AudienceSummary:
    """What the checks need of an audience, worked out ahead (e.g. by the database):
    recipients (E.164, once each, in audience order), excluded counts, and how many recipients
    share each (zones, state). :func:`summarise` is the reference for how it is worked out."""

    recipients: tuple[str, ...]
    excluded: dict[str, int]
    places: Places


def excluded_counts(
    opted_out: int,
    pending: int,
    new: int,
    invalid: int,
    duplicate: int,
    toll_free: int = 0,
    non_geographic: int = 0,
) -> dict[str, int]:
    """Excluded counts keyed and ordered as the findings list them."""
    counts = {EX_OPTED_OUT: opted_out, EX_PENDING: pending, EX_NEW: new, EX_INVALID: invalid}
    if toll_free:
        counts[EX_TOLL_FREE] = toll_free
    if non_geographic:
        counts[EX_NON_GEOGRAPHIC] = non_geographic
    if duplicate:
        counts[EX_DUPLICATE] = duplicate
    return counts


def summarise(audience: Iterable[Audience]) -> AudienceSummary:
    """The :class:`AudienceSummary` of ``audience`` (the rules, in plain Python)."""
    return AudienceSummary(*_split(audience))


def split_audience(audience: Iterable[Audience]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Opted-in valid US numbers (E.164, audience order, once each) and excluded counts.

    A number with any opted-out record is never a recipient. Each phone string is parsed once.
    """
    recipients, excluded, _ = _split(audience)
    return recipients, excluded


def _split(audience: Iterable[Audience]) -> tuple[tuple[str, ...], dict[str, int], Places]:
    """:func:`split_audience` plus where the recipients are (for quiet hours by group).

    Linear: stored locations are used as they are; a row without one is located once per
    distinct phone string.
    """
    rows = audience if isinstance(audience, list | tuple) else list(audience)
    located: dict[str, Location] = {}

    def where(row: Audience) -> Location:
        if row.location is not None:
            return row.location
        found = located.get(row.phone)
        if found is None:
            found = located[row.phone] = locate(row.phone)
        return found

    opted_out = {where(r).e164 for r in rows if r.status == OPTED_OUT}
    excluded = {EX_OPTED_OUT: 0, EX_PENDING: 0, EX_NEW: 0, EX_INVALID: 0}
    chosen: dict[str, None] = {}
    places: Places = {}
    for row in rows:
        if row.status == OPTED_IN:
            location = where(row)
            number = location.e164
            if number is None:
                reason = EX_INVALID
            elif location.kind in _NOT_A_PLACE:
                reason = _NOT_A_PLACE[location.kind]
            elif number in opted_out:
                reason = EX_OPTED_OUT
            elif number in chosen:
                reason = EX_DUPLICATE
            else:
                chosen[number] = None
                key = (location.zones, location.state)
                places[key] = places.get(key, 0) + 1
                continue
        elif row.status == OPTED_OUT:
            reason = EX_OPTED_OUT
        elif row.status == PENDING:
            reason = EX_PENDING
        else:
            reason = EX_NEW
        excluded[reason] = excluded.get(reason, 0) + 1
    return tuple(chosen), excluded, places


def _exclusions(excluded: dict[str, int]) -> str:
    parts = [
        f"{n:,} {_REASON_PLURALS.get(reason, reason) if n != 1 else reason}"
        for reason, n in excluded.items()
        if n
    ]
    return f"Not included: {', '.join(parts)}." if parts else "Nobody on the list is left out."


def _mode(recipients: int, settings: Settings) -> str:
    if settings.mode not in MODES:
        raise ValueError(f"unknown send mode {settings.mode!r}")
    if settings.mode != "auto":
        return settings.mode
    return "individual" if recipients <= settings.campaign_threshold else "campaign"


# --- checks ---


def _recipient_findings(
    recipients: tuple[str, ...], excluded: dict[str, int], mode: str, duration: timedelta
) -> list[Finding]:
    if not recipients:
        return [
            Finding(
                "no_recipients", BLOCK, "Nobody can get this text",
                f"No customer with a valid phone number has opted in. {_exclusions(excluded)}",
            )
        ]  # fmt: skip
    how = "as one campaign" if mode == "campaign" else "one by one"
    return [
        Finding(
            "recipients", INFO, f"{_plural(len(recipients), 'customer')} will get this text",
            f"{_exclusions(excluded)} Sending {how} takes {_length_of(duration)}.",
        )
    ]  # fmt: skip


def _revocations(history: History) -> list[Finding]:
    n = history.pending_revocations
    title = f"{_plural(n, 'opt-out request')} not passed on to CRM Text yet"
    detail = (
        "Some customers asked to stop getting texts and CRM Text does not know yet. "
        "Wait a minute for the bot to pass the requests on, then try again."
    )
    findings = [Finding("revocations_pending", BLOCK, title, detail)] if n > 0 else []
    undecided = history.undecided_stop_requests
    if undecided > 0:
        findings.append(
            Finding(
                "stop_requests_undecided",
                BLOCK,
                f"{_plural(undecided, 'text')} may be a request to stop, with no decision yet",
                "A reasonable request to stop must be honoured before the next blast. Open each "
                "flagged thread and press Opt out, or Not a stop request.",
            )
        )
    return findings


def _length(draft: Draft, final: str) -> list[Finding]:
    if not final.strip() and draft.image_bytes is None and draft.image_type is None:
        return [Finding("empty", BLOCK, "The text is empty", "Write a message or add a picture.")]
    length = strict_length(final)
    if length <= MAX_CHARS:
        return []
    both = strict_length(final) != len(final)  # describe_length then ends in parentheses
    note = f"{',' if both else ' ('}including “{OPT_OUT_LINE}”{'' if both else ')'}"
    note = note if final != draft.text else ""
    return [
        Finding(
            "too_long", BLOCK, f"The text is too long: {describe_length(final)}{note}",
            f"Texts can have at most {MAX_CHARS:,} characters; "
            f"remove at least {length - MAX_CHARS:,}.",
        )
    ]  # fmt: skip


def _encoding(final: str, info: SegmentInfo) -> list[Finding]:
    if info.encoding != "UCS-2":
        return []
    suggestions = suggest_replacements(final)
    items = []
    for pos, cluster in info.non_gsm[:ENCODING_LIST_MAX]:
        fix = suggestions.get(cluster)
        use = "no plain replacement" if fix is None else f"use “{fix}”" if fix else "remove it"
        items.append(f"{_describe(cluster)} at character {pos + 1} ({use})")
    more = len(info.non_gsm) - ENCODING_LIST_MAX
    listed = "; ".join(items) + (f"; and {more:,} more" if more > 0 else "")
    detail = f"Found {listed}."
    after = count(apply_replacements(final))
    if after.segments != info.segments:
        detail += (
            " Replacing them with standard characters makes the text "
            f"{_plural(after.segments, 'part')} instead of {info.segments}."
        )
    elif suggestions and after.encoding == "GSM-7":
        detail += " Replacing them with standard characters is safest on all phones."
    elif suggestions:
        detail += " Characters without a plain replacement keep parts at 70 characters."
    title = "Special characters cut each text part from 160 to 70 characters"
    return [Finding("encoding", WARN, title, detail)]


def _segments(info: SegmentInfo) -> list[Finding]:
    parts, units = info.segments, info.billing_units
    if parts <= 1 and units == parts:
        return []
    if info.characters > LONG_CHARS:
        title = (
            f"Strong warning: very long text ({info.characters:,} characters, "
            f"{_plural(parts, 'part')} per customer)"
        )
    else:
        title = f"Each customer gets this as {_plural(parts, 'text part')}"
    detail = (
        f"Phones receive {_plural(parts, 'part')}; CRM Text bills {_plural(units, 'unit')} "
        "(one per 160 characters)."
    )
    if parts != units:
        detail += " They differ, so the cost estimate uses the higher number."
    if info.characters > LONG_CHARS:
        detail += " Texts over 320 characters often arrive cut up or late; shorten it if you can."
    return [Finding("segments", WARN, title, detail)]


def _cost(
    recipients: int, info: SegmentInfo, cost: float, settings: Settings, mms: bool
) -> Finding:
    units = max(info.segments, info.billing_units)
    detail = (
        f"{_plural(recipients, 'customer')} × {_plural(units, 'unit')} × "
        f"${settings.price_per_unit:g} ({_plural(info.segments, 'text part')}, "
        f"{_plural(info.billing_units, 'billing unit')}). "
        "The customer count can change before a scheduled send."
    )
    if mms:
        detail += " Picture messages are estimated at the text price for now; MMS may cost more."
    return Finding("cost", INFO, f"Estimated cost: {_money(cost)}", detail)


def _opt_out(draft: Draft) -> list[Finding]:
    if draft.append_opt_out or has_opt_out(draft.text):
        return []
    now, then = count(draft.text), count(final_text(Draft("", draft.text, append_opt_out=True)))
    size = (
        f"it still fits in {_plural(then.segments, 'part')}"
        if then.segments == now.segments
        else f"the text becomes {_plural(then.segments, 'part')} instead of {now.segments}"
    )
    detail = f"Customers must be told how to stop texts. Add “{OPT_OUT_LINE}” at the end ({size})."
    return [Finding("opt_out_missing", WARN, "No opt-out instructions", detail)]


def _store_name(draft: Draft) -> list[Finding]:
    def norm(s: str) -> str:
        return _normalise(apply_replacements(s).casefold())

    name = draft.store_name.strip()
    if not name or norm(name) in norm(draft.text):
        return []
    detail = f"Start the text with “{name}:” so customers know who is texting them."
    return [Finding("store_name_missing", WARN, "The store name is not in the text", detail)]


def _state_caps(history: History, mode: str) -> list[Finding]:
    n = history.at_state_cap
    if n <= 0:
        return []
    title = f"{_plural(n, 'customer')} already got 3 marketing texts in 24 hours"
    detail = "Florida, Oklahoma and Maryland allow at most 3 per person in a rolling 24 hours. " + (
        "A campaign cannot leave anyone out, so it waits until they may get another."
        if mode == "campaign"
        else "They are skipped, and the report says so."
    )
    return [Finding("state_cap", WARN, title, detail)]


def _frequency(history: History, settings: Settings) -> list[Finding]:
    nth = history.blasts_this_month + 1
    if nth <= settings.monthly_limit:
        return []
    limit = settings.monthly_limit
    detail = (
        f"This would be the store's {_ordinal(nth)} blast this month; the advice is at most "
        f"{limit} a month. Customers who get too many texts opt out, so send only if it matters."
    )
    title = f"{_ordinal(nth).capitalize()} blast this month"
    return [Finding("frequency", WARN, title, detail)]


def _duplicate(final: str, history: History, now: datetime, zone: str) -> list[Finding]:
    target = _normalise(final)
    if not target:
        return []
    sent = [
        when
        for when, text in history.recent_texts
        if now - when < DUPLICATE_WINDOW and _normalise(text) == target
    ]
    if not sent:
        return []
    last = max(sent)
    detail = (
        f"The same text went out at {_at(last, zone)}, and CRM Text drops a repeat within 12 "
        f"hours. Change the wording or send it after {_at(last + DUPLICATE_WINDOW, zone)}."
    )
    return [Finding("duplicate_12h", BLOCK, "Same text already sent in the last 12 hours", detail)]


def _shorteners(final: str) -> list[Finding]:
    out: list[Finding] = []
    seen: set[str] = set()
    for link, host in links(final):
        service = shortener_of(host)
        if service is None or link in seen:
            continue
        seen.add(link)
        detail = (
            f"Phone carriers block texts with {service} links ({link}). "
            "Use the full link to your own website instead."
        )
        out.append(Finding("shortener", BLOCK, f"Short link {link} will be blocked", detail))
    return out


def _mms(draft: Draft) -> list[Finding]:
    if draft.image_bytes is None and draft.image_type is None:
        return []
    out = []
    kind = (draft.image_type or "").split(";")[0].strip().lower()
    if kind not in MMS_TYPES:
        detail = (
            "Pictures must be JPG, PNG or GIF; this one is "
            f"{draft.image_type or 'of unknown type'}. Save it as JPG or PNG and add it again."
        )
        out.append(Finding("mms", BLOCK, "This picture type cannot be sent", detail))
    size = draft.image_bytes
    kb = f"{math.ceil((size or 0) / 1000):,} KB"
    if size is not None and size > MMS_MAX_BYTES:
        detail = (
            f"CRM Text cannot deliver pictures over {MMS_MAX_BYTES // 1000} KB. "
            "Make it smaller (for example a smaller JPG) and add it again."
        )
        out.append(Finding("mms", BLOCK, f"The picture is too big ({kb})", detail))
    elif size is not None and size > MMS_WARN_BYTES:
        detail = (
            f"Pictures over {MMS_WARN_BYTES // 1000} KB may arrive late or not at all on some "
            "phones; a smaller picture is safer."
        )
        out.append(Finding("mms", WARN, f"The picture is large ({kb})", detail))
    return out


def _quiet_hours(
    places: Places, recipients: int, now: datetime, duration: timedelta, zone: str
) -> tuple[list[Finding], datetime | None]:
    """Checked once per (zones, state) group, not per recipient."""
    if not recipients:
        return [], None
    groups = [
        (quiet_hours.profile_of(zones, state, zone), n) for (zones, state), n in places.items()
    ]
    checks = quiet_hours.check_profiles([p for p, _ in groups], now, duration)
    bad = [(checks[p], n) for p, n in groups if not checks[p].ok]
    if not bad:
        return [], None
    try:
        nxt: datetime | None = quiet_hours.next_allowed_for(checks, now, duration)
    except ValueError:
        nxt = None
    when = (
        f"The earliest time it can go to everyone is {_at(nxt, zone)}; schedule it for then."
        if nxt is not None
        else f"No start in the next {quiet_hours.SEARCH_DAYS} days fits everyone for a send "
        "this long; send to fewer customers at a time."
    )
    outside = sum(n for _, n in bad)
    title = f"Outside texting hours for {outside:,} of {_plural(recipients, 'customer')}"
    detail = f"For example: {bad[0][0].reason} {when}"
    return [Finding("quiet_hours", BLOCK, title, detail)], nxt


# --- entry point ---


def text_blocks(
    draft: Draft, history: History, now: datetime, settings: Settings = DEFAULT_SETTINGS
) -> tuple[Finding, ...]:
    """The blocking checks of the text alone (empty, too long, sent in the last 12 hours,
    shortened links), in :func:`run`'s order and wording: cheap at any store size, so a
    submission can be refused at once; :func:`run` still runs every check afterwards."""
    final = final_text(draft)
    found = [
        *_length(draft, final),
        *_duplicate(final, history, now, settings.fallback_zone),
        *_shorteners(final),
    ]
    return tuple(f for f in found if f.level == BLOCK)


def run(
    draft: Draft,
    audience: Iterable[Audience] | AudienceSummary,
    history: History,
    now: datetime,
    settings: Settings = DEFAULT_SETTINGS,
) -> Preflight:
    """Every blast check for ``draft`` sent to ``audience`` at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    final = final_text(draft)
    info = count(final)
    summary = audience if isinstance(audience, AudienceSummary) else summarise(audience)
    recipients, excluded, places = summary.recipients, summary.excluded, summary.places
    mode = _mode(len(recipients), settings)
    rate = settings.campaign_rate if mode == "campaign" else settings.individual_rate
    if rate <= 0:
        raise ValueError("send rates must be positive")
    duration = timedelta(seconds=len(recipients) / rate)
    cost = len(recipients) * max(info.segments, info.billing_units) * settings.price_per_unit
    quiet, next_allowed = _quiet_hours(
        places, len(recipients), now, duration, settings.fallback_zone
    )
    mms = draft.image_bytes is not None or draft.image_type is not None
    findings = [
        *_recipient_findings(recipients, excluded, mode, duration),
        *_revocations(history),
        *_length(draft, final),
        *quiet,
        *_duplicate(final, history, now, settings.fallback_zone),
        *_shorteners(final),
        *_mms(draft),
        *_encoding(final, info),
        *_segments(info),
        *_opt_out(draft),
        *_store_name(draft),
        *_state_caps(history, mode),
        *_frequency(history, settings),
        _cost(len(recipients), info, cost, settings, mms),
    ]
    findings.sort(key=lambda f: _LEVEL_ORDER[f.level])
    return Preflight(
        findings=tuple(findings),
        final_text=final,
        segments=info,
        recipients=recipients,
        excluded=excluded,
        mode=mode,
        duration=duration,
        cost=cost,
        next_allowed=next_allowed,
    )
