"""Where a recipient is (issue 9 part 4): area codes spanning zones, area codes phonenumbers
gets wrong or does not know (bridge/area_codes.py), toll-free and non-geographic numbers, and
the state rules table (bridge/state_rules.py) held to sms-compliance.md §3.2."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone

from bridge import area_codes, preflight, quiet_hours, state_rules
from bridge.phones import InvalidPhone, Location, locate, parse_us
from bridge.store import OPTED_IN, open_store
from bridge.store.schema import migrate
from tests import pg_server

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
LA = ZoneInfo("America/Los_Angeles")


def wed(hour: int, minute: int, zone: ZoneInfo) -> datetime:
    return datetime(2025, 12, 3, hour, minute, tzinfo=zone)


def tue(hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """Tuesday 2 December 2025 (standard time everywhere), at a fixed local clock time."""
    return datetime(2025, 12, 2, hour, minute, tzinfo=zone)


# Each number at a clock time the old code allowed (it knew only one zone, the wrong one, or
# no valid number), with exactly what staff are told now.
QUIET_CASES = [
    # split area codes and overlays: every zone the area code may be in must be inside hours
    ("+14482345678", tue(8, 0, NY), "It is 7:00 AM in Florida (America/Chicago); "
     "Florida allows marketing texts 8:00 AM–8:00 PM.", tue(9, 0, NY)),
    ("+18502345678", tue(19, 30, CHI), "It is 8:30 PM in Florida (America/New_York); "
     "Florida allows marketing texts 8:00 AM–8:00 PM.", wed(8, 0, CHI)),
    ("+13642345678", tue(10, 0, NY), "It is 9:00 AM in Kentucky (America/Chicago); "
     "Kentucky allows marketing texts 10:00 AM–9:00 PM.", tue(11, 0, NY)),
    ("+19302345678", tue(8, 0, NY), "It is 7:00 AM in Indiana (America/Chicago); "
     "federal rules allow marketing texts 8:00 AM–9:00 PM.", tue(9, 0, NY)),
    ("+18122345678", tue(8, 0, NY), "It is 7:00 AM in Indiana (America/Chicago); "
     "federal rules allow marketing texts 8:00 AM–9:00 PM.", tue(9, 0, NY)),
    ("+14582345678", tue(20, 30, LA), "It is 9:30 PM in Oregon (America/Boise); "
     "federal rules allow marketing texts 8:00 AM–9:00 PM.", wed(8, 0, LA)),
    ("+13342345678", tue(19, 30, CHI), "It is 8:30 PM in Alabama (America/New_York); "
     "Alabama allows marketing texts 8:00 AM–8:00 PM.", wed(8, 0, CHI)),
    # 689 is Orlando (Eastern); phonenumbers says Central
    ("+16892345678", tue(19, 30, CHI), "It is 8:30 PM in Florida (America/New_York); "
     "Florida allows marketing texts 8:00 AM–8:00 PM.", wed(8, 0, NY)),
    # 436 (Ohio) and 624 (New York): valid numbers, Eastern; the old code rejected them
    ("+14362345678", tue(21, 30, NY), "It is 9:30 PM in Ohio (America/New_York); "
     "federal rules allow marketing texts 8:00 AM–9:00 PM.", wed(8, 0, NY)),
    ("+16242345678", tue(21, 30, NY), "It is 9:30 PM in New York (America/New_York); "
     "federal rules allow marketing texts 8:00 AM–9:00 PM.", wed(8, 0, NY)),
]  # fmt: skip


@pytest.mark.parametrize(("number", "start", "reason", "next_allowed"), QUIET_CASES)
def test_quiet_hours_at_fixed_clock_times(
    number: str, start: datetime, reason: str, next_allowed: datetime
) -> None:
    result = quiet_hours.check(number, start, timedelta(0))
    assert (result.ok, result.reason, result.next_allowed) == (False, reason, next_allowed)
    # and at the next allowed time it goes, in every zone
    assert quiet_hours.check(number, next_allowed, timedelta(0)).ok


@pytest.mark.parametrize(
    ("number", "zones", "state"),
    [
        ("+16892345678", ("America/New_York",), "FL"),
        ("+14362345678", ("America/New_York",), "OH"),
        ("+16242345678", ("America/New_York",), "NY"),
        ("+14482345678", ("America/Chicago", "America/New_York"), "FL"),
        ("+18502345678", ("America/Chicago", "America/New_York"), "FL"),
        ("+13642345678", ("America/Chicago", "America/New_York"), "KY"),
        ("+12702345678", ("America/Chicago", "America/New_York"), "KY"),
        ("+19302345678", ("America/Chicago", "America/New_York"), "IN"),
        ("+18122345678", ("America/Chicago", "America/New_York"), "IN"),
        ("+14582345678", ("America/Boise", "America/Los_Angeles"), "OR"),
        ("+15412345678", ("America/Boise", "America/Los_Angeles"), "OR"),
        ("+13342345678", ("America/Chicago", "America/New_York"), "AL"),
    ],
)
def test_locate_gives_every_zone_the_area_code_may_be_in(
    number: str, zones: tuple[str, ...], state: str
) -> None:
    assert locate(number) == Location(number, number[2:5], state, zones)
    assert parse_us(number[2:]) == number


@pytest.mark.parametrize("number", ["(436) 555-0123", "624.555.0123", "+1 624 555 0123"])
def test_436_and_624_numbers_are_valid(number: str) -> None:
    assert parse_us(number) == "+1" + re.sub(r"\D", "", number)[-10:]


@pytest.mark.parametrize("number", ["(436) 055-0123", "624 911 0123", "+1 436 555 012"])
def test_436_and_624_still_need_a_valid_exchange(number: str) -> None:
    with pytest.raises(InvalidPhone):
        parse_us(number)
    assert locate(number).e164 is None


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+18005550100", "toll-free"),
        ("+18335550100", "toll-free"),
        ("+18445550100", "toll-free"),
        ("+18555550100", "toll-free"),
        ("+18665550100", "toll-free"),
        ("+18775550100", "toll-free"),
        ("+18885550100", "toll-free"),
        ("+15002345678", "non-geographic"),
        ("+15332345678", "non-geographic"),
        ("+19002345678", "non-geographic"),
    ],
)
def test_toll_free_and_non_geographic_numbers_are_never_checked_in_an_assumed_zone(
    number: str, kind: str
) -> None:
    location = locate(number)
    assert (location.e164, location.kind, location.state, location.zones) == (
        number,
        kind,
        None,
        (),
    )
    # Noon in Los Angeles on a Tuesday: the old code checked it there and let it through.
    result = quiet_hours.check(number, tue(12, 0, LA), timedelta(0))
    assert (result.ok, result.reason, result.next_allowed) == (
        False,
        f"{kind[0].upper()}{kind[1:]} number: no time zone, not texted in blasts.",
        None,
    )


def test_a_toll_free_number_is_not_a_blast_recipient() -> None:
    audience = [
        preflight.Audience("+18005550100", OPTED_IN),
        preflight.Audience("+19002345678", OPTED_IN),
        preflight.Audience("+16892345678", OPTED_IN),
    ]
    result = preflight.run(
        preflight.Draft("Main St Pizza", "Main St Pizza: 2 for 1 today. Reply STOP to opt out"),
        audience,
        preflight.History(),
        tue(12, 0, NY),
    )
    assert result.recipients == ("+16892345678",)
    [line] = [f for f in result.findings if f.code == "recipients"]
    assert line.detail == (
        "Not included: 1 toll-free number, 1 non-geographic number. "
        "Sending one by one takes 1 second."
    )


# --- the area-code table ---


def test_every_correction_has_a_source_and_says_what_the_library_answers() -> None:
    """Each row records phonenumbers' answer; when the library changes, this says which row to
    look at again."""
    assert len(area_codes.OVERRIDES) >= 12
    for npa, row in area_codes.OVERRIDES.items():
        assert row.npa == npa and row.source and row.state in quiet_hours.STATE_NAMES
        assert quiet_hours.NPA_STATE[npa] == row.state
        number = phonenumbers.parse(f"+1{npa}2345678")
        if row.library == "not a valid number":
            assert not phonenumbers.is_valid_number(number), npa
        elif row.library.startswith("America/"):
            assert pn_timezone.time_zones_for_number(number) == (row.library,), npa
        else:  # by exchange: the library splits it, and the exchange-level answer is one zone
            assert len(area_codes._library_zones()[npa]) > 1, npa
        assert set(locate(f"+1{npa}2345678").zones) == set(row.zones)


def test_every_us_area_code_is_located() -> None:
    """Every area code the state table lists is either a place with zones or (territories)
    not a US number; none is left to an assumed zone."""
    unlocated = []
    for npa, state in quiet_hours.NPA_STATE.items():
        location = locate(f"+1{npa}2345678")
        if location.e164 is None:
            assert state in {"PR", "VI", "GU", "AS", "MP"}, npa  # not "US" to phonenumbers
        elif not location.zones:
            unlocated.append(npa)
    assert unlocated == []


# --- the state rules table ---

FIXTURE = Path(__file__).parent / "fixtures" / "state_laws.md"
NAMES = {name: code for code, name in quiet_hours.STATE_NAMES.items()}


def _hours(text: str) -> tuple[int, int]:
    start, end = re.search(r"(\d{1,2}):00–(\d{1,2}):00", text).groups()  # type: ignore[union-attr]
    return int(start), int(end)


def _reference_rows() -> dict[str, str]:
    """State code -> the text of its row (or its part of a shared row) in §3.2."""
    rows: dict[str, str] = {}
    for line in FIXTURE.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| State") or "---" in line:
            continue
        first = line.split("|")[1]
        if first.strip() == "Federal baseline":
            rows[state_rules.FEDERAL] = line
            continue
        # "Kentucky 10:00–21:00; Michigan, Minnesota, New Mexico 9:00–21:00; …"
        for part in first.split(";") if ";" in first else [line]:
            for name in re.findall(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?", part):
                if name in NAMES:
                    rows[NAMES[name]] = part if ";" in first else line
    return rows


def test_the_state_rules_table_covers_every_state_in_the_reference_with_a_source() -> None:
    rows = _reference_rows()
    expected = {"FED", "FL", "OK", "MD", "TX", "CT", "NJ", "AL", "LA", "MS", "KY", "MI", "MN",
                "NM", "NV", "MA", "RI", "PA", "UT"}  # fmt: skip
    assert set(rows) == expected
    assert set(state_rules.RULES) == expected
    for state, text in rows.items():
        rule = state_rules.RULES[state]
        assert rule.source.strip(), state
        assert rule.verified == ("★" in text or state == state_rules.FEDERAL), state
        if re.search(r"\d:00–", text):
            assert rule.weekdays == _hours(text), state
        else:  # a holiday ban alone: federal hours
            assert rule.weekdays == (8, 21), state
        capped = re.search(r"\b3\b[^|]*?per[- ]24", text) is not None
        assert (rule.cap_24h == 3) == capped, state
        if rule.verified and state != state_rules.FEDERAL:  # cites what the reference cites
            cited = re.findall(r"[\w.]*\d[\w.()]*", rule.source)
            assert cited and all(c in text for c in cited), (state, cited)
        assert (rule.sunday is None) == bool(re.search(r"no Sundays|none Sun", text)), state
        assert rule.holidays_banned == ("holiday" in text.lower()), state
    assert state_rules.RULES["TX"].sunday == (12, 21)
    assert state_rules.RULES["RI"].saturday == (10, 17)


@pytest.mark.parametrize(
    ("number", "start", "reason"),
    [
        ("+12055550100", datetime(2025, 12, 7, 12, 30, tzinfo=CHI),
         "It is 12:30 PM on Sunday in Alabama (America/Chicago); "
         "Alabama allows no marketing texts on Sundays."),
        ("+12255550100", datetime(2025, 12, 25, 12, 30, tzinfo=CHI),
         "It is 12:30 PM on Thursday in Louisiana (America/Chicago); "
         "Louisiana allows no marketing texts on holidays."),
        ("+14015550100", datetime(2025, 12, 6, 17, 30, tzinfo=NY),
         "It is 5:30 PM on Saturday in Rhode Island (America/New_York); "
         "Rhode Island allows marketing texts 10:00 AM–5:00 PM on Saturdays."),
        ("+12155550100", datetime(2025, 9, 1, 12, 0, tzinfo=NY),
         "It is 12:00 PM on Monday in Pennsylvania (America/New_York); "
         "Pennsylvania allows no marketing texts on holidays."),
    ],
)  # fmt: skip
def test_sunday_and_holiday_rules(number: str, start: datetime, reason: str) -> None:
    result = quiet_hours.check(number, start, timedelta(0))
    assert (result.ok, result.reason) == (False, reason)


def test_federal_holidays() -> None:
    assert sorted(state_rules.federal_holidays(2026)) == [
        datetime(2026, m, d).date()
        for m, d in [(1, 1), (1, 19), (2, 16), (5, 25), (6, 19), (7, 3), (7, 4), (9, 7),
                     (10, 12), (11, 11), (11, 26), (12, 25)]
    ]  # fmt: skip


# --- m012: existing customers located again ---


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_m012_locates_existing_customers_again(backend: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else pg_server.empty_database()
    store = open_store(url)
    try:
        migrate(store.db, stop_before="m012_recipient_caps")
        store.db.execute(
            "INSERT INTO stores (keyword, channel_id, name) VALUES ('PIZZA', 'C1', '')"
        )
        for phone, e164, zones in [  # as m009 located them with phonenumbers alone
            ("+16892345678", "+16892345678", "America/Chicago"),
            ("(436) 555-0123", None, ""),
            ("+18005550100", "+18005550100", ""),
        ]:
            store.db.execute(
                "INSERT INTO customers (store, phone, status, e164, area_code, state, zones)"
                " VALUES ('PIZZA', ?, ?, ?, ?, NULL, ?)",
                [phone, OPTED_IN, e164, (e164 or "")[2:5], zones],
            )
        assert "m012_recipient_caps" in store.migrate()
        rows = store.db.all("SELECT e164, area_code, state, zones FROM customers ORDER BY id")
        assert rows == [
            {
                "e164": "+16892345678",
                "area_code": "689",
                "state": "FL",
                "zones": "America/New_York",
            },
            {
                "e164": "+14365550123",
                "area_code": "436",
                "state": "OH",
                "zones": "America/New_York",
            },
            {"e164": "+18005550100", "area_code": "800", "state": None, "zones": ""},
        ]
        recipients, counts, _ = store.customers.audience_counts("PIZZA")
        assert (recipients, counts["toll_free"]) == (["+16892345678", "+14365550123"], 1)
    finally:
        store.close()


def test_the_cap_is_counted_from_one_index(tmp_path: Path) -> None:
    """The per-recipient count reads the m012 index, not a scan of the blasts' history."""
    store = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        store.migrate()
        plan = store.db.all(
            "EXPLAIN QUERY PLAN SELECT count(*) AS n FROM blast_recipients"
            " WHERE phone = ? AND status = 'sent' AND finished_at > ?",
            ["+13055550100", "2026-01-01"],
        )
        assert any("blast_recipients_sent_phone" in str(row["detail"]) for row in plan), plan
    finally:
        store.close()
