"""Recipient-local quiet hours for marketing texts (sms-compliance.md §3.1–3.2, §3.9, §7.3).

A send occupying ``[start, start + duration]`` is allowed for a number only if that whole
interval lies inside the allowed window ``[open, close)`` in every time zone the number maps to.
The state (from the area code) picks the window; state rules only ever narrow the federal one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers

from bridge import area_codes, state_rules

SEARCH_DAYS = 8  # how far next_allowed looks ahead


@dataclass(frozen=True)
class Window:
    """Allowed local send time ``[start, end)``."""

    start: time
    end: time


def _w(start: int, end: int) -> Window:
    return Window(time(start), time(end))


FEDERAL = state_rules.FEDERAL
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY = "holiday"


def _rule(row: state_rules.StateRule) -> dict[str, Window | None]:
    """A row of :data:`bridge.state_rules.ROWS` as windows: ``default`` (weekdays), and
    ``sat``, ``sun``, ``holiday`` where they differ (None: no marketing texts that day)."""

    def win(hours: state_rules.Hours | None) -> Window | None:
        return None if hours is None else _w(*hours)

    out: dict[str, Window | None] = {"default": win(row.weekdays)}
    if row.saturday != row.weekdays:
        out["sat"] = win(row.saturday)
    if row.sunday != row.weekdays:
        out["sun"] = win(row.sunday)
    if row.holidays_banned:
        out[HOLIDAY] = None
    return out


# State code -> {"default" | "mon".."sun" | "holiday": Window or None}, from the counsel-kept
# table in bridge/state_rules.py (tests may patch rows here).
RULES: dict[str, dict[str, Window | None]] = {row.state: _rule(row) for row in state_rules.ROWS}

STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "Washington, D.C.",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming", "PR": "Puerto Rico", "VI": "the U.S. Virgin Islands", "GU": "Guam",
    "AS": "American Samoa", "MP": "the Northern Mariana Islands",
}  # fmt: skip

# US area codes (NANP geographic NPAs) by state; add new overlays here.
_AREA_CODES: dict[str, str] = {
    "AK": "907",
    "AL": "205 251 256 334 659 938",
    "AR": "327 479 501 870",
    "AZ": "480 520 602 623 928",
    "CA": "209 213 279 310 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628 650 "
    "657 661 669 707 714 738 747 760 805 818 820 831 840 858 909 916 925 949 951",
    "CO": "303 719 720 748 970 983",
    "CT": "203 475 860 959",
    "DC": "202 771",
    "DE": "302",
    "FL": "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850 863 "
    "904 941 954",
    "GA": "229 404 470 478 678 706 762 770 912 943",
    "HI": "808",
    "IA": "319 515 563 641 712",
    "ID": "208 986",
    "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
    "IN": "219 260 317 463 574 765 812 930",
    "KS": "316 620 785 913",
    "KY": "270 364 502 606 859",
    "LA": "225 318 337 504 985",
    "MA": "339 351 413 508 617 774 781 857 978",
    "MD": "227 240 301 410 443 667",
    "ME": "207",
    "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
    "MN": "218 320 507 612 651 763 952",
    "MO": "235 314 417 557 573 636 660 816 975",
    "MS": "228 601 662 769",
    "MT": "406",
    "NC": "252 336 472 704 743 828 910 919 980 984",
    "ND": "701",
    "NE": "308 402 531",
    "NH": "603",
    "NJ": "201 551 609 640 732 848 856 862 908 973",
    "NM": "505 575",
    "NV": "702 725 775",
    "NY": "212 315 329 332 347 363 516 518 585 607 624 631 646 680 716 718 838 845 914 917 929 934",
    "OH": "216 220 234 283 326 330 380 419 436 440 513 567 614 740 937",
    "OK": "405 539 572 580 918",
    "OR": "458 503 541 971",
    "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
    "RI": "401",
    "SC": "803 821 839 843 854 864",
    "SD": "605",
    "TN": "423 615 629 731 865 901 931",
    "TX": "210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 "
    "903 915 936 940 945 956 972 979",
    "UT": "385 435 801",
    "VA": "276 434 540 571 686 703 757 804 826 948",
    "VT": "802",
    "WA": "206 253 360 425 509 564",
    "WI": "262 274 353 414 534 608 715 920",
    "WV": "304 681",
    "WY": "307",
    "PR": "787 939",
    "VI": "340",
    "GU": "671",
    "AS": "684",
    "MP": "670",
}
NPA_STATE: dict[str, str] = {
    npa: state for state, npas in _AREA_CODES.items() for npa in npas.split()
}


@dataclass(frozen=True)
class QuietCheck:
    """Outcome of a quiet-hours check; ``next_allowed`` (UTC) is None when ``ok``."""

    ok: bool
    reason: str
    next_allowed: datetime | None


# (time zones, state, zones guessed from fallback_zone): all a check depends on
Profile = tuple[tuple[str, ...], str | None, bool]


def _digits(e164: str) -> str:
    digits = "".join(ch for ch in e164 if ch.isdigit())
    return digits[1:] if len(digits) == 11 and digits[0] == "1" else digits


def state_for_number(e164: str) -> str | None:
    """Two-letter state (or territory) of a US number's area code; None if unknown."""
    digits = _digits(e164)
    return NPA_STATE.get(digits[:3]) if len(digits) == 10 else None


@lru_cache(maxsize=65536)
def zones_for_number(e164: str) -> tuple[str, ...]:
    """IANA zones for a geographic number (exchange-level where known); () if unknown."""
    return time_zones(e164)


def time_zones(e164: str) -> tuple[str, ...]:
    """:func:`zones_for_number` without the cache, for numbers looked at once (at ingest)."""
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return ()
    return zones_of(number)


def zones_of(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """:func:`time_zones` of a number already parsed: every zone its area code may be in
    (:mod:`bridge.area_codes`); () for toll-free, non-geographic and invalid numbers."""
    national = str(number.national_number)
    if number.country_code != 1 or len(national) != 10:
        return ()
    if not (phonenumbers.is_valid_number(number) or area_codes.new_us_code(national)):
        return ()
    return area_codes.zones_for(national[:3])


def not_a_place(e164: str) -> str | None:
    """Why a number is never a blast recipient (toll-free, non-geographic), else None."""
    digits = _digits(e164)
    kind = area_codes.kind_of(digits[:3]) if len(digits) == 10 else area_codes.GEOGRAPHIC
    if kind == area_codes.GEOGRAPHIC:
        return None
    return f"{kind} number: no time zone, not texted in blasts"


def profile(e164: str, fallback_zone: str = "America/Los_Angeles") -> Profile:
    """What decides quiet hours for a number: (zones, state, zones_assumed)."""
    return profile_of(zones_for_number(e164), state_for_number(e164), fallback_zone)


def profile_of(zones: tuple[str, ...], state: str | None, fallback_zone: str) -> Profile:
    """The profile of a number whose zones and state are already known (stored at ingest);
    no zones known: ``fallback_zone``, marked as assumed."""
    return zones or (fallback_zone,), state, not zones


def window_for(state: str | None, day: date) -> Window | None:
    """Allowed window on a local ``day`` (None: no marketing texts that day): the state's
    rule narrowed to the federal one."""
    fed = RULES[FEDERAL]["default"]
    assert fed is not None
    rule = RULES.get(state or FEDERAL, RULES[FEDERAL])
    if HOLIDAY in rule and state_rules.is_holiday(day):
        win = rule[HOLIDAY]
    else:
        win = rule.get(DAYS[day.weekday()], rule["default"])
    if win is None:
        return None
    return Window(max(win.start, fed.start), min(win.end, fed.end))


def _fmt(t: time) -> str:
    return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def _where(prof: Profile, zone: str) -> str:
    _, state, assumed = prof
    tz = f"{zone}, assumed: time zone unknown" if assumed else zone
    return f"{STATE_NAMES.get(state, state)} ({tz})" if state else f"the recipient's area ({tz})"


def _rule_text(state: str | None, day: date) -> str:
    win = window_for(state, day)
    name = STATE_NAMES.get(state or "", state or "")
    if win is None:
        holiday = HOLIDAY in RULES.get(state or "", {}) and state_rules.is_holiday(day)
        return f"{name} allows no marketing texts on {'holidays' if holiday else _days(day)}"
    hours = f"{_fmt(win.start)}–{_fmt(win.end)}"
    if state is None or state not in RULES:
        return f"federal rules allow marketing texts {hours}"
    on = f" on {_days(day)}" if _varies(state) else ""
    return f"{name} allows marketing texts {hours}{on}"


def _days(day: date) -> str:
    return f"{day.strftime('%A')}s"


def _varies(state: str | None) -> bool:
    """Whether the state's hours differ by day of the week (then messages name the day)."""
    rule = RULES.get(state or "", {})
    return any(w is not None for key, w in rule.items() if key not in ("default", HOLIDAY))


def _bounds(zone: ZoneInfo, day: date, state: str | None) -> tuple[datetime, datetime] | None:
    win = window_for(state, day)
    if win is None:
        return None
    return datetime.combine(day, win.start, zone), datetime.combine(day, win.end, zone)


def _fits(prof: Profile, start: datetime, duration: timedelta) -> str | None:
    """None if the send fits in every zone, else a sentence about the first zone that fails."""
    zones, state, _ = prof
    end = start + duration
    for name in zones:
        zone = ZoneInfo(name)
        local = start.astimezone(zone)
        bounds = _bounds(zone, local.date(), state)
        if bounds is not None and bounds[0] <= start and end < bounds[1]:
            continue
        where, rule = _where(prof, name), _rule_text(state, local.date())
        if bounds is not None and bounds[0] <= start < bounds[1]:
            finish = end.astimezone(zone)
            return f"The send would run until {_fmt(finish.time())} in {where}; {rule}."
        closed = window_for(state, local.date()) is None
        day = f" on {local.strftime('%A')}" if _varies(state) or closed else ""
        return f"It is {_fmt(local.time())}{day} in {where}; {rule}."
    return None


def _openings(profiles: Iterable[Profile], start: datetime) -> list[datetime]:
    """``start`` plus every window opening (UTC) in the search horizon, sorted."""
    found = {start}
    for zones, state, _ in profiles:
        for name in zones:
            zone = ZoneInfo(name)
            first = start.astimezone(zone).date()
            for offset in range(SEARCH_DAYS + 1):
                bounds = _bounds(zone, first + timedelta(days=offset), state)
                if bounds is not None and bounds[0] > start:
                    found.add(bounds[0].astimezone(UTC))
    return sorted(found)


def _earliest(profiles: list[Profile], start: datetime, duration: timedelta) -> datetime | None:
    # The allowed set is a union of intervals whose left ends are window openings (or start),
    # so the earliest allowed time is the first candidate that passes every profile.
    for candidate in _openings(profiles, start):
        if all(_fits(p, candidate, duration) is None for p in profiles):
            return candidate
    return None


def _utc(start: datetime, duration: timedelta) -> datetime:
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    return start.astimezone(UTC)


def _check_profile(prof: Profile, start: datetime, duration: timedelta) -> QuietCheck:
    problem = _fits(prof, start, duration)
    if problem is None:
        times = ", ".join(
            f"{_fmt(start.astimezone(ZoneInfo(z)).time())} in {_where(prof, z)}" for z in prof[0]
        )
        return QuietCheck(True, f"Allowed: it is {times}.", None)
    nxt = _earliest([prof], start, duration)
    if nxt is None:
        problem += f" No allowed start in the next {SEARCH_DAYS} days for this send length."
    return QuietCheck(False, problem, nxt)


def check(
    e164: str,
    start: datetime,
    duration: timedelta,
    *,
    fallback_zone: str = "America/Los_Angeles",
) -> QuietCheck:
    """Whether a marketing send to ``e164`` occupying ``[start, start+duration]`` is allowed.

    Never for a toll-free or non-geographic number (no zone to check it in; no later time)."""
    start = _utc(start, duration)
    refusal = not_a_place(e164)
    if refusal is not None:
        return QuietCheck(False, refusal[0].upper() + refusal[1:] + ".", None)
    return _check_profile(profile(e164, fallback_zone), start, duration)


def check_many(
    numbers: Iterable[str],
    start: datetime,
    duration: timedelta,
    *,
    fallback_zone: str = "America/Los_Angeles",
) -> dict[str, QuietCheck]:
    """:func:`check` for many numbers, computed once per distinct (zones, state)."""
    start = _utc(start, duration)
    by_profile: dict[Profile, QuietCheck] = {}
    out: dict[str, QuietCheck] = {}
    for number in numbers:
        if not_a_place(number) is not None:
            out[number] = check(number, start, duration)
            continue
        prof = profile(number, fallback_zone)
        if prof not in by_profile:
            by_profile[prof] = _check_profile(prof, start, duration)
        out[number] = by_profile[prof]
    return out


def next_allowed_start(
    numbers: Iterable[str],
    start: datetime,
    duration: timedelta,
    *,
    fallback_zone: str = "America/Los_Angeles",
) -> datetime:
    """Earliest UTC time >= ``start`` at which the send is allowed for every number.

    Raises ValueError if there is none within :data:`SEARCH_DAYS` days (send too long).
    """
    start = _utc(start, duration)
    places = [n for n in numbers if not_a_place(n) is None]  # the others are never texted
    profiles = list(dict.fromkeys(profile(n, fallback_zone) for n in places))
    found = _earliest(profiles, start, duration)
    if found is None:
        raise ValueError(f"no start within {SEARCH_DAYS} days fits every recipient's window")
    return found


def check_profiles(
    profiles: Iterable[Profile], start: datetime, duration: timedelta
) -> dict[Profile, QuietCheck]:
    """:func:`check` once per distinct profile (numbers already located), in the given order."""
    start = _utc(start, duration)
    return {prof: _check_profile(prof, start, duration) for prof in dict.fromkeys(profiles)}


def next_allowed_for(profiles: Iterable[Profile], start: datetime, duration: timedelta) -> datetime:
    """:func:`next_allowed_start` for numbers already located (one entry per profile).

    Raises ValueError if there is none within :data:`SEARCH_DAYS` days (send too long).
    """
    found = _earliest(list(dict.fromkeys(profiles)), _utc(start, duration), duration)
    if found is None:
        raise ValueError(f"no start within {SEARCH_DAYS} days fits every recipient's window")
    return found
