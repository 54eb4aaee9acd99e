"""US phone numbers: parse staff input, convert between E.164 and CRM Text's 10 digits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberMatcher

from bridge import area_codes, quiet_hours
from bridge.logsafe import clip

# What a typed number may be made of ("(415) 555-0100", "+1 415.555.0100"); anything else ends it.
_PHONE_CHARS = re.compile(r"[\d\s+().\-]+")
_MAX_NUMBER_WORDS = 5  # "+1 415 555 01 00" at most


class InvalidPhone(ValueError):
    """A phone number that is not a valid US number."""


def parse_us(text: str) -> str:
    """Return the E.164 form (``+14155550100``) of a US number typed in any common way.

    Raises :class:`InvalidPhone` with a sentence staff can act on.
    """
    cleaned = text.strip()
    if not cleaned:
        raise InvalidPhone("No phone number given.")
    try:
        number = phonenumbers.parse(cleaned, "US")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"“{cleaned}” is not a phone number.") from exc
    if _new_us_code(number):
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"“{cleaned}” is not a valid phone number (US numbers have 10 digits).")
    region = phonenumbers.region_code_for_number(number)
    if region != "US":
        raise InvalidPhone(
            f"“{cleaned}” is a {region or 'non-US'} number; CRM Text texts US numbers only."
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _new_us_code(number: phonenumbers.PhoneNumber) -> bool:
    """A US number in an area code phonenumbers does not know yet (436, 624: see
    :mod:`bridge.area_codes`)."""
    return number.country_code == 1 and area_codes.new_us_code(str(number.national_number))


def _us_number(number: phonenumbers.PhoneNumber) -> bool:
    """Valid and in the US, as :func:`parse_us` decides."""
    if _new_us_code(number):
        return True
    return (
        phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US"
    )


def split_leading_number(text: str) -> tuple[str, str]:
    """The US number a message starts with (E.164) and the message after it, kept exactly.

    Staff type ``(415) 555-0100 Hi``, ``415.555.0100 Hi``, ``+1 415 555 0100 Hi`` or
    ``1-415-555-0100 Hi``. Only the whitespace around the message is dropped; its line breaks
    and inner spacing are kept. Raises :class:`InvalidPhone` naming what was typed.
    """
    stripped = text.strip()
    if not stripped:
        raise InvalidPhone("No phone number given.")
    for match in PhoneNumberMatcher(stripped, "US", leniency=Leniency.VALID):
        if match.start == 0:
            return parse_us(match.raw_string), stripped[match.end :].strip()
        break
    # The matcher gives up on "415 555 0100 2 pizzas" (it reads the 2 as part of the number):
    # try the longest run of leading words made only of phone characters that is a valid number.
    words = list(re.finditer(r"\S+", stripped))[:_MAX_NUMBER_WORDS]
    for last in reversed(words):
        prefix = stripped[: last.end()]
        if not _PHONE_CHARS.fullmatch(prefix):
            continue
        try:
            return parse_us(prefix), stripped[last.end() :].strip()
        except InvalidPhone:
            continue
    return parse_us(words[0].group()), ""  # raises, naming the first word


def from_crmtext(mobile: str) -> str:
    """E.164 from a CRM Text ``mobileNum``: keep the leading 10 digits (junk may follow)."""
    match = re.match(r"\s*\+?1?(\d{10})", mobile)
    if not match:
        raise InvalidPhone(f"mobileNum {clip(mobile)!r} does not start with 10 digits")
    return "+1" + match.group(1)


def to_crmtext(e164: str) -> str:
    """The 10-digit form CRM Text wants (``4155550100``)."""
    digits = re.sub(r"\D", "", e164)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        raise InvalidPhone(f"{e164!r} is not a 10-digit US number")
    return digits


def pretty(e164: str) -> str:
    """``(415) 555-0100`` for display."""
    number = phonenumbers.parse(e164, "US")
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


@dataclass(frozen=True)
class Location:
    """What a customer's number says about where they are, worked out once and stored.

    ``e164`` is None for a number that is not a valid US number (it can never be texted);
    ``zones`` is empty when the number's time zone is unknown (non-geographic, invalid).
    """

    e164: str | None
    area_code: str
    state: str | None
    zones: tuple[str, ...]

    @property
    def kind(self) -> str:
        """:data:`bridge.area_codes.GEOGRAPHIC`, ``TOLL_FREE`` or ``NON_GEOGRAPHIC``: only a
        geographic number is a blast recipient."""
        return area_codes.kind_of(self.area_code)

    def columns(self) -> tuple[str | None, str, str | None, str]:
        """As stored on ``customers``: (e164, area_code, state, zones joined by spaces)."""
        return self.e164, self.area_code, self.state, " ".join(self.zones)


def locate(phone: str) -> Location:
    """E.164, area code, state and time zones of a stored phone number (pure; no I/O).

    Valid exactly when :func:`parse_us` accepts the number; parsed once. The state comes from
    the area code (:data:`bridge.quiet_hours.NPA_STATE`, counsel-kept), the zones are every
    zone the area code may be in (:mod:`bridge.area_codes`: phonenumbers' data at area-code
    level, corrected); a toll-free or non-geographic number has neither.
    """
    try:
        number = phonenumbers.parse(phone.strip(), "US")
    except phonenumbers.NumberParseException:
        return Location(None, "", None, ())
    if not _us_number(number):
        return Location(None, "", None, ())
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return Location(
        e164,
        e164[2:5],
        quiet_hours.state_for_number(e164),
        quiet_hours.zones_of(number),  # uncached: memory stays flat over a big sync
    )
