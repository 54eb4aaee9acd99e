"""Quiet hours by recipient time zone and state (sms-compliance.md §3.1–3.2, §3.9, §7.3)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import geocoder

from bridge import quiet_hours as qh
from bridge.quiet_hours import (
    NPA_STATE,
    RULES,
    STATE_NAMES,
    Window,
    check,
    check_many,
    next_allowed_start,
    state_for_number,
    zones_for_number,
)

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
DEN = ZoneInfo("America/Denver")
LA = ZoneInfo("America/Los_Angeles")

MIAMI = "+13055550100"  # FL, America/New_York
SF = "+14155550100"  # CA, America/Los_Angeles
AUSTIN = "+15125550100"  # TX, America/Chicago
IDAHO = "+12085550100"  # ID, Boise + Los_Angeles at area-code level
SOUTH_DAKOTA = "+16055550100"  # SD, Denver + North_Dakota/Center at area-code level
PHOENIX = "+16025550100"  # AZ, no DST
TOLL_FREE = "+18005550100"

NOW = timedelta(0)
TUE = (2025, 7, 15)  # a summer Tuesday (DST)
SUN, MON = (2025, 9, 7), (2025, 9, 8)


def at(day: tuple[int, int, int], hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime(*day, hour, minute, tzinfo=zone)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- state and zone lookup ---


@pytest.mark.parametrize(
    ("number", "state"),
    [
        (MIAMI, "FL"),
        (SF, "CA"),
        (AUSTIN, "TX"),
        ("+14055550100", "OK"),
        ("+14105550100", "MD"),
        ("+12025550100", "DC"),
        ("+12125550100", "NY"),
        ("+19075550100", "AK"),
        ("+18085550100", "HI"),
        ("+19155550100", "TX"),
        ("+17875550100", "PR"),
        ("4155550100", "CA"),
        ("(850) 555-0100", "FL"),
        (TOLL_FREE, None),
        ("+15555550100", None),
        ("+442071838750", None),
        ("", None),
    ],
)
def test_state_for_number(number: str, state: str | None) -> None:
    assert state_for_number(number) == state


def test_area_code_table_is_consistent() -> None:
    assert all(len(npa) == 3 and npa.isdigit() for npa in NPA_STATE)
    assert set(NPA_STATE.values()) <= set(STATE_NAMES)
    assert set(RULES) - {qh.FEDERAL} <= set(STATE_NAMES)
    assert len(NPA_STATE) > 350


def test_area_code_table_agrees_with_phonenumbers_geocoder() -> None:
    names = {name: code for code, name in STATE_NAMES.items()}
    names["Washington State"] = "WA"
    names["Washington D.C."] = "DC"
    checked = 0
    for npa, state in NPA_STATE.items():
        number = phonenumbers.parse(f"+1{npa}2345678")
        if phonenumbers.region_code_for_number(number) != "US":
            continue
        where = geocoder.description_for_number(number, "en")
        if not where:
            continue  # overlay newer than the library's metadata
        code = where[-2:] if where[-4:-2] == ", " else names.get(where)
        assert code == state, (npa, where)
        checked += 1
    assert checked > 340


def test_zones_for_number() -> None:
    assert zones_for_number(MIAMI) == ("America/New_York",)
    assert zones_for_number(SF) == ("America/Los_Angeles",)
    # Area-code level: every zone any exchange of 208 is in (numbers keep their exchange when
    # ported or when their owner moves), not phonenumbers' exchange-level answer.
    assert zones_for_number(IDAHO) == ("America/Boise", "America/Denver", "America/Los_Angeles")
    assert zones_for_number("+12083430100") == zones_for_number(IDAHO)
    assert zones_for_number(SOUTH_DAKOTA) == (
        "America/Chicago",
        "America/Denver",
        "America/North_Dakota/Center",
    )
    assert zones_for_number(TOLL_FREE) == ()
    assert zones_for_number("+15555550100") == ()
    assert zones_for_number("not a number") == ()


# --- basic windows ---


def test_florida_closes_at_8pm_but_california_at_9pm() -> None:
    fl = check(MIAMI, at(TUE, 20, 30, NY), NOW)
    ca = check(SF, at(TUE, 20, 30, LA), NOW)
    assert not fl.ok
    assert fl.reason == (
        "It is 8:30 PM in Florida (America/New_York); "
        "Florida allows marketing texts 8:00 AM–8:00 PM."
    )
    assert fl.next_allowed == at((2025, 7, 16), 8, 0, NY)
    assert ca.ok and ca.next_allowed is None
    assert "8:30 PM in California (America/Los_Angeles)" in ca.reason


@pytest.mark.parametrize(("number", "zone"), [(MIAMI, NY), (SF, LA)], ids=["FL", "CA"])
def test_759_am_is_blocked_and_8am_allowed(number: str, zone: ZoneInfo) -> None:
    early = check(number, at(TUE, 7, 59, zone), NOW)
    assert not early.ok
    assert early.next_allowed == at(TUE, 8, 0, zone)
    assert early.next_allowed is not None and early.next_allowed.tzinfo is UTC
    assert check(number, at(TUE, 8, 0, zone), NOW).ok


def test_texas_sunday_starts_at_noon() -> None:
    sunday = check(AUSTIN, at(SUN, 11, 0, CHI), NOW)
    assert not sunday.ok
    assert sunday.reason == (
        "It is 11:00 AM on Sunday in Texas (America/Chicago); "
        "Texas allows marketing texts 12:00 PM–9:00 PM on Sundays."
    )
    assert sunday.next_allowed == at(SUN, 12, 0, CHI) == utc(2025, 9, 7, 17, 0)
    assert check(AUSTIN, at(MON, 11, 0, CHI), NOW).ok


def test_texas_weekdays_start_at_9am() -> None:
    early = check(AUSTIN, at(MON, 8, 30, CHI), NOW)
    assert not early.ok and early.next_allowed == at(MON, 9, 0, CHI)
    assert check(AUSTIN, at((2025, 9, 6), 9, 0, CHI), NOW).ok  # Saturday


def test_texas_saturday_night_waits_for_sunday_noon() -> None:
    result = check(AUSTIN, at((2025, 9, 6), 21, 0, CHI), NOW)
    assert result.next_allowed == at(SUN, 12, 0, CHI)


# --- multi-zone area codes ---


def test_multi_zone_number_must_pass_in_every_zone() -> None:
    # 7:30 AM Pacific is 8:30 AM in Boise: Boise passes, Los Angeles does not.
    early = check(IDAHO, at(TUE, 7, 30, LA), NOW)
    assert not early.ok
    assert "7:30 AM in Idaho (America/Los_Angeles)" in early.reason
    assert early.next_allowed == at(TUE, 8, 0, LA)
    # 8:55 PM in Boise plus a 10-minute send runs past 9 PM there (7:55 PM in LA is fine).
    late = check(IDAHO, at(TUE, 20, 55, DEN), timedelta(minutes=10))
    assert not late.ok
    assert "until 9:05 PM in Idaho (America/Boise)" in late.reason
    assert late.next_allowed == at((2025, 7, 16), 8, 0, LA)
    ok = check(IDAHO, at(TUE, 9, 0, LA), timedelta(hours=1))
    assert ok.ok and "America/Boise" in ok.reason and "America/Los_Angeles" in ok.reason


def test_south_dakota_mountain_and_central() -> None:
    result = check(SOUTH_DAKOTA, at(TUE, 8, 30, CHI), NOW)  # 7:30 AM Mountain
    assert not result.ok
    assert result.next_allowed == at(TUE, 8, 0, DEN) == utc(2025, 7, 15, 14, 0)
    assert check(SOUTH_DAKOTA, at(TUE, 20, 30, DEN), timedelta(minutes=20)).ok is False
    assert check(SOUTH_DAKOTA, at(TUE, 19, 30, DEN), timedelta(minutes=20)).ok


# --- send windows that cross the closing time ---


def test_send_window_straddling_9pm_is_blocked() -> None:
    result = check(SF, at(TUE, 20, 45, LA), timedelta(minutes=30))
    assert not result.ok
    assert result.reason == (
        "The send would run until 9:15 PM in California (America/Los_Angeles); "
        "federal rules allow marketing texts 8:00 AM–9:00 PM."
    )
    assert result.next_allowed == at((2025, 7, 16), 8, 0, LA)


def test_window_end_is_exclusive() -> None:
    assert not check(SF, at(TUE, 20, 30, LA), timedelta(minutes=30)).ok  # ends at 9:00 PM
    assert check(SF, at(TUE, 20, 29, LA), timedelta(minutes=30)).ok
    assert not check(SF, at(TUE, 21, 0, LA), NOW).ok


def test_send_longer_than_any_window_has_no_next_allowed() -> None:
    result = check(MIAMI, at(TUE, 9, 0, NY), timedelta(hours=12))  # FL window is 12 h, exclusive
    assert not result.ok and result.next_allowed is None
    assert "No allowed start" in result.reason
    assert check(SF, at(TUE, 8, 0, LA), timedelta(hours=12, minutes=59)).ok


# --- fallback zone ---


def test_unknown_zone_uses_fallback_zone_and_federal_rule() -> None:
    unknown = qh.profile_of((), None, "America/Los_Angeles")
    result = qh.check_profiles([unknown], at(TUE, 7, 30, LA), NOW)[unknown]
    assert not result.ok
    assert "America/Los_Angeles, assumed" in result.reason
    assert result.next_allowed == at(TUE, 8, 0, LA)
    east = qh.profile_of((), None, "America/New_York")
    assert qh.check_profiles([east], at(TUE, 7, 30, LA), NOW)[east].ok


def test_the_state_rule_applies_in_the_numbers_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULES, "OH", {"default": Window(time(10), time(20))})
    number = "+14362345678"  # Ohio overlay not yet in phonenumbers' data: bridge.area_codes
    assert (zones_for_number(number), state_for_number(number)) == (("America/New_York",), "OH")
    result = check(number, at(TUE, 9, 30, NY), NOW, fallback_zone="America/New_York")
    assert not result.ok
    assert result.next_allowed == at(TUE, 10, 0, NY)
    assert "Ohio allows marketing texts 10:00 AM–8:00 PM" in result.reason


def test_rules_are_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULES, "CT", {"default": Window(time(9), time(20))})
    assert not check("+12035550100", at(TUE, 8, 30, NY), NOW).ok
    monkeypatch.setitem(RULES, "CT", {"default": Window(time(7), time(23))})
    assert not check("+12035550100", at(TUE, 7, 30, NY), NOW).ok  # never wider than federal


# --- DST ---


def test_dst_summer_and_winter_in_los_angeles() -> None:
    summer = utc(2025, 7, 15, 15, 0)  # 8:00 AM PDT (UTC-7)
    winter = utc(2025, 1, 15, 15, 0)  # 7:00 AM PST (UTC-8)
    assert check(SF, summer, NOW).ok
    blocked = check(SF, winter, NOW)
    assert not blocked.ok and "7:00 AM" in blocked.reason
    assert blocked.next_allowed == utc(2025, 1, 15, 16, 0)


def test_dst_transition_nights() -> None:
    spring = check(SF, at((2025, 3, 8), 21, 30, LA), NOW)  # clocks go forward overnight
    assert spring.next_allowed == utc(2025, 3, 9, 15, 0)  # 8:00 AM PDT
    autumn = check(SF, at((2025, 11, 1), 21, 30, LA), NOW)  # clocks go back overnight
    assert autumn.next_allowed == utc(2025, 11, 2, 16, 0)  # 8:00 AM PST


def test_arizona_has_no_dst() -> None:
    assert check(PHOENIX, utc(2025, 7, 15, 15, 0), NOW).ok  # 8:00 AM MST
    assert check(PHOENIX, utc(2025, 1, 15, 15, 0), NOW).ok  # 8:00 AM MST
    assert not check(PHOENIX, utc(2025, 7, 15, 14, 59), NOW).ok


# --- many numbers ---


def test_next_allowed_start_for_a_mixed_audience() -> None:
    numbers = [MIAMI, SF, AUSTIN]
    # Sunday: FL opens 8 AM ET, CA 8 AM PT (11 ET), TX noon CT (1 PM ET).
    assert next_allowed_start(numbers, at(SUN, 10, 0, NY), timedelta(hours=1)) == at(SUN, 13, 0, NY)
    # Sunday 7:30 PM ET + 1 h runs past Florida's 8 PM; Monday: CA opens last, 11 AM ET.
    assert next_allowed_start(numbers, at(SUN, 19, 30, NY), timedelta(hours=1)) == at(
        MON, 11, 0, NY
    )
    start = at(MON, 12, 0, NY)
    assert next_allowed_start(numbers, start, timedelta(hours=1)) == start


def test_next_allowed_start_agrees_with_check() -> None:
    numbers = [MIAMI, SF, AUSTIN, IDAHO, SOUTH_DAKOTA, "+19075550100", PHOENIX]
    duration = timedelta(minutes=40)
    assert next_allowed_start([*numbers, TOLL_FREE], at(SUN, 9, 7, NY), duration) == (
        next_allowed_start(numbers, at(SUN, 9, 7, NY), duration)
    )  # a toll-free number is never texted in a blast, so it never holds one back
    for hour in range(0, 24, 3):
        start = at(SUN, hour, 7, NY)
        found = next_allowed_start(numbers, start, duration)
        assert found >= start
        assert all(r.ok for r in check_many(numbers, found, duration).values())
        probe = start
        while probe < found:  # nothing earlier passes (15-minute probe)
            assert not all(r.ok for r in check_many(numbers, probe, duration).values())
            probe += timedelta(minutes=15)


def test_next_allowed_start_impossible() -> None:
    with pytest.raises(ValueError):
        next_allowed_start([MIAMI], at(TUE, 9, 0, NY), timedelta(hours=13))


def test_check_many_groups_and_matches_check() -> None:
    numbers = [MIAMI, "+13055550101", SF, AUSTIN, IDAHO, TOLL_FREE]
    start = at(TUE, 20, 30, NY)
    results = check_many(numbers, start, NOW)
    assert list(results) == numbers
    for number, result in results.items():
        assert result == check(number, start, NOW)
    assert results[MIAMI] is results["+13055550101"]


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError):
        check(SF, datetime(2025, 7, 15, 12, 0), NOW)
