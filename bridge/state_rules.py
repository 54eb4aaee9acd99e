"""State rules for marketing texts, as data (sms-compliance.md §3.1, §3.2, §3.7).

One row per jurisdiction: the allowed local hours on weekdays, Saturdays and Sundays (None: no
marketing texts that day), whether listed holidays are banned, the rolling 24-hour
per-recipient cap, and the source the reference gives. ``verified`` marks the reference's ★
rows (statute or several legal sources); the others come from vendor compilations that
disagree in places and are for counsel to confirm. Counsel-maintained: edit rows here.

Where the reference gives two readings the narrower is used (Connecticut 9:00–20:00). Holiday
bans use the federal legal holidays (5 U.S.C. 6103), the widest list the compilations name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

FEDERAL = "FED"

Hours = tuple[int, int]  # [open, close) in whole local hours


@dataclass(frozen=True)
class StateRule:
    state: str  # two-letter code, or FEDERAL
    weekdays: Hours
    saturday: Hours | None
    sunday: Hours | None
    holidays_banned: bool
    cap_24h: int | None  # marketing texts per recipient per rolling 24 hours
    verified: bool  # ★ in sms-compliance.md §3.2
    source: str


def _row(
    state: str,
    hours: Hours,
    source: str,
    *,
    saturday: Hours | None | str = "same",
    sunday: Hours | None | str = "same",
    holidays: bool = False,
    cap: int | None = None,
    verified: bool = False,
) -> StateRule:
    sat = hours if saturday == "same" else saturday
    sun = hours if sunday == "same" else sunday
    assert not isinstance(sat, str) and not isinstance(sun, str)
    return StateRule(state, hours, sat, sun, holidays, cap, verified, source)


_VENDORS = "Drop Cowboy (Nov 2025), ClickPoint (Jul 2025), Referrizer (sms-compliance.md §3.2)"

ROWS: tuple[StateRule, ...] = (
    _row(FEDERAL, (8, 21), "47 CFR 64.1200(c)(1), (e) (sms-compliance.md §3.1)", verified=True),
    _row(
        "FL", (8, 20), "Fla. Stat. 501.059 and 501.616(6) (FTSA)", cap=3, verified=True,
    ),
    _row("OK", (8, 20), "OTSA, HB 3168, 15 O.S. 775C", cap=3, verified=True),
    _row("MD", (8, 20), "Maryland Stop the Spam Calls Act 2023", cap=3, verified=True),
    _row("TX", (9, 21), "Texas SB 140", sunday=(12, 21), verified=True),
    _row("CT", (9, 20), "Connecticut SB 1058 (2023); one compilation says 9–21"),
    _row("NJ", (8, 20), "one vendor; Klaviyo glossary, mini-TCPA (unverified)", cap=3),
    _row("AL", (8, 20), "vendor compilations (sms-compliance.md §3.2)", sunday=None, holidays=True),
    _row(
        "LA", (8, 20), "Louisiana PSC order, per vendor compilations", sunday=None, holidays=True
    ),
    _row("MS", (8, 20), "vendor compilations; EBR exemption", sunday=None),
    _row("KY", (10, 21), _VENDORS),
    _row("MI", (9, 21), _VENDORS),
    _row("MN", (9, 21), _VENDORS),
    _row("NM", (9, 21), _VENDORS),
    _row("NV", (9, 20), _VENDORS),
    _row("MA", (8, 20), _VENDORS),
    _row("RI", (9, 18), _VENDORS, saturday=(10, 17), sunday=None, holidays=True),
    _row("PA", (8, 21), _VENDORS + "; holiday ban", holidays=True),
    _row("UT", (8, 21), _VENDORS + "; holiday ban", holidays=True),
)  # fmt: skip

RULES: dict[str, StateRule] = {row.state: row for row in ROWS}


def cap_for(state: str | None) -> int | None:
    """The state's rolling 24-hour per-recipient cap on marketing texts, if it has one."""
    rule = RULES.get(state or "")
    return rule.cap_24h if rule else None


def _nth(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (0 = Monday) of a month; n = -1: the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A fixed-date holiday on a weekend is observed on the nearest weekday."""
    return day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


def federal_holidays(year: int) -> frozenset[date]:
    """The federal legal holidays of ``year`` (5 U.S.C. 6103), both the date and the day
    observed when it falls on a weekend."""
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11),
             date(year, 12, 25)]  # fmt: skip
    moving = [
        _nth(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth(year, 2, 0, 3),  # Washington's Birthday
        _nth(year, 5, 0, -1),  # Memorial Day
        _nth(year, 9, 0, 1),  # Labor Day
        _nth(year, 10, 0, 2),  # Columbus Day
        _nth(year, 11, 3, 4),  # Thanksgiving Day
    ]
    return frozenset([*fixed, *map(_observed, fixed), *moving])


def is_holiday(day: date) -> bool:
    return day in federal_holidays(day.year)
