"""Where a US number's area code is: the time zones it may be in, and whether it is a place at
all (sms-compliance.md §3.9, §5).

The zones come from phonenumbers' time-zone data, taken at the area-code level: an area code
whose exchanges lie in several zones gets every one of them, because a number keeps its
exchange when it is ported or its owner moves and the exchange-level data has been wrong
(850, 812). :data:`OVERRIDES` corrects the library where it is wrong or does not know a new
overlay yet; each row says what the library (9.0.43) answers and where the fix comes from.

Toll-free and non-geographic area codes are not places: no time zone can be derived from them,
so they are never blast recipients (and never checked in an assumed zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from phonenumbers.tzdata import TIMEZONE_DATA

GEOGRAPHIC = "geographic"
TOLL_FREE = "toll-free"
NON_GEOGRAPHIC = "non-geographic"

EASTERN, CENTRAL = "America/New_York", "America/Chicago"
MOUNTAIN_OR, PACIFIC = "America/Boise", "America/Los_Angeles"  # Malheur County, OR: Boise

TOLL_FREE_CODES = frozenset("800 833 844 855 866 877 888".split())
"""NANP toll-free area codes in service (NANPA toll-free NPAs; sms-compliance.md §5)."""

NON_GEOGRAPHIC_CODES = frozenset(
    "456 500 521 522 523 524 525 526 527 528 529 533 544 566 577 588 600 622 700 710 900".split()
)
"""NANP non-geographic area codes (NANPA "Non-geographic NPAs"): 456 inter-network services,
5XX personal communications services, 600/622 Canadian non-geographic, 700 carrier services,
710 US government, 900 premium-rate."""


@dataclass(frozen=True)
class AreaCode:
    """A correction to phonenumbers: the area code's state and every zone it may be in."""

    npa: str
    state: str
    zones: tuple[str, ...]
    library: str  # what phonenumbers 9.0.43 answers for it
    source: str


OVERRIDES: dict[str, AreaCode] = {
    row.npa: row
    for row in (
        AreaCode(
            "689", "FL", (EASTERN,), "America/Chicago",
            "NANPA: overlay of 407 (Orlando, Eastern)",
        ),
        AreaCode(
            "436", "OH", (EASTERN,), "not a valid number",
            "PUCO order (Dec 2022): overlay of 440 (Greater Cleveland), in service March 2024",
        ),
        AreaCode(
            "624", "NY", (EASTERN,), "not a valid number",
            "NY Department of Public Service: overlay of 716 (Buffalo), numbers assigned from "
            "11 Sep 2023",
        ),
        AreaCode(
            "448", "FL", (CENTRAL, EASTERN), "America/New_York",
            "NANPA: overlay of 850 (Florida panhandle: Central west of the Apalachicola River, "
            "Eastern around Tallahassee)",
        ),
        AreaCode(
            "850", "FL", (CENTRAL, EASTERN), "Central or Eastern by exchange",
            "49 CFR part 71: the zone boundary crosses the panhandle; numbers keep their exchange "
            "when ported, so the whole area code is both",
        ),
        AreaCode(
            "364", "KY", (CENTRAL, EASTERN), "America/New_York",
            "NANPA: overlay of 270 (western Kentucky, mostly Central)",
        ),
        AreaCode(
            "270", "KY", (CENTRAL, EASTERN), "Central or Eastern by exchange",
            "49 CFR part 71: the zone boundary crosses Kentucky; area-code level (numbers port)",
        ),
        AreaCode(
            "930", "IN", (CENTRAL, EASTERN), "America/New_York",
            "NANPA: overlay of 812 (southern Indiana; its south-west counties are Central)",
        ),
        AreaCode(
            "812", "IN", (CENTRAL, EASTERN), "Central or Eastern by exchange",
            "49 CFR part 71 (Indiana counties on Central time); area-code level",
        ),
        AreaCode(
            "458", "OR", (PACIFIC, MOUNTAIN_OR), "America/Los_Angeles",
            "NANPA: overlay of 541, which includes Malheur County (Mountain time, 49 CFR "
            "part 71)",
        ),
        AreaCode(
            "541", "OR", (PACIFIC, MOUNTAIN_OR), "Pacific or Mountain by exchange",
            "49 CFR part 71 (Malheur County on Mountain time); area-code level",
        ),
        AreaCode(
            "334", "AL", (CENTRAL, EASTERN), "America/Chicago",
            "Phenix City, Smiths Station, Valley and Lanett keep Eastern time (al.com, Feb "
            "2017; Columbus Ledger-Enquirer via AP)",
        ),
    )
}  # fmt: skip


def _library_zones() -> dict[str, tuple[str, ...]]:
    """Every zone phonenumbers knows for each +1 area code, over all its exchanges."""
    found: dict[str, set[str]] = {}
    for prefix, zones in TIMEZONE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 4:
            found.setdefault(prefix[1:4], set()).update(z for z in zones if z != "Etc/Unknown")
    return {npa: tuple(sorted(zones)) for npa, zones in found.items() if zones}


@cache
def _zones_by_npa() -> dict[str, tuple[str, ...]]:
    table = _library_zones()
    table.update({npa: tuple(sorted(row.zones)) for npa, row in OVERRIDES.items()})
    return table


def kind_of(npa: str) -> str:
    """:data:`GEOGRAPHIC`, :data:`TOLL_FREE` or :data:`NON_GEOGRAPHIC` for an area code."""
    if npa in TOLL_FREE_CODES:
        return TOLL_FREE
    if npa in NON_GEOGRAPHIC_CODES:
        return NON_GEOGRAPHIC
    return GEOGRAPHIC


def zones_for(npa: str) -> tuple[str, ...]:
    """Every IANA zone a geographic area code may be in; () if unknown or not a place."""
    if kind_of(npa) != GEOGRAPHIC:
        return ()
    return _zones_by_npa().get(npa, ())


def new_us_code(national: str) -> bool:
    """A 10-digit national number in an area code phonenumbers does not know yet (a row of
    :data:`OVERRIDES` the library calls invalid), with a valid exchange (NXX: 2-9, not N11)."""
    if len(national) != 10 or not national.isdigit():
        return False
    row = OVERRIDES.get(national[:3])
    exchange = national[3:6]
    return (
        row is not None
        and row.library == "not a valid number"
        and exchange[0] not in "01"
        and exchange[1:] != "11"
    )
