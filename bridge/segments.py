"""SMS segment counting (GSM-7 / UCS-2) and GSM look-alike replacements.

Mirrors Twilio's message-segment-calculator (what CRM Text's carrier path uses): the text is
split into grapheme clusters, one non-GSM cluster switches the whole message to UCS-2, and
clusters are packed greedily into parts without ever being split (160/153 septets for GSM-7,
70/67 UTF-16 code units for UCS-2).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 127 printable characters of the GSM 03.38 default alphabet (1 septet each)."""
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
"""Extension-table characters: ESC + code, 2 septets each in GSM-7 (1 unit in UCS-2)."""
GSM_CHARS = GSM_BASIC | GSM_EXTENSION

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}
BILLING_CHARS = 160  # CRM Text bills "in 160-character increments"
MAX_LENGTH = 1600  # CRM Text / Twilio body limit, counted strictly (:func:`strict_length`)


def utf16_units(text: str) -> int:
    """UTF-16 code units: 2 for each character outside the BMP (most emoji)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def strict_length(text: str) -> int:
    """The length the 1,600 limit is checked against: the larger of code points and UTF-16
    code units (the carrier path counts an emoji as two or more characters)."""
    return max(len(text), utf16_units(text))


def describe_length(text: str) -> str:
    """``1,200 characters``, or both counts when they differ:
    ``1,600 characters (3,200 as carriers count them: emoji count as 2)``."""
    points, strict = len(text), strict_length(text)
    said = f"{points:,} character{'s' * (points != 1)}"
    if strict == points:
        return said
    return f"{said} ({strict:,} as carriers count them: emoji count as 2)"


@dataclass(frozen=True)
class SegmentInfo:
    """Encoding, size and cost of one SMS body."""

    encoding: str  # "GSM-7" or "UCS-2"
    characters: int  # code points (len(str))
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int  # SMS parts on the wire
    billing_units: int  # CRM Text rule: ceil(characters / 160), min 1
    non_gsm: tuple[tuple[int, str], ...]  # (code-point index, grapheme cluster) forcing UCS-2
    length: int = 0  # strict length for the 1,600 limit (:func:`strict_length`)


# --- grapheme clusters (compact UAX #29 subset: enough for emoji, flags, marks, Hangul) ---

_ZWJ = "\u200d"
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049),
    (0x2122, 0x2122), (0x2139, 0x2139), (0x2194, 0x21AA), (0x231A, 0x23FF),
    (0x24C2, 0x24C2), (0x25AA, 0x25FE), (0x2600, 0x27BF), (0x2934, 0x2935),
    (0x2B05, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3299),
    (0x1F000, 0x1F1E5), (0x1F200, 0x1F3FA), (0x1F400, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip


def _pictographic(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _PICTOGRAPHIC)


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _control(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Zl", "Zp"):
        return True
    return cat == "Cf" and ch not in "\u200c\u200d" and not 0xE0020 <= ord(ch) <= 0xE007F


def _extend(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")  # Extend + SpacingMark
        or ch in "\u200c\u200d"
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or 0xFF9E <= cp <= 0xFF9F
    )


def _hangul(ch: str) -> str:
    cp = ord(ch)
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _joins(cluster: str, ch: str) -> bool:
    prev = cluster[-1]
    if _control(prev) or _control(ch):  # also keeps CR and LF apart, as Twilio does
        return False
    hp, hc = _hangul(prev), _hangul(ch)
    if hp and hc:
        return (
            (hp == "L" and hc in ("L", "V", "LV", "LVT"))
            or (hp in ("LV", "V") and hc in ("V", "T"))
            or (hp in ("LVT", "T") and hc == "T")
        )
    if _extend(ch):
        return True
    if prev == _ZWJ and _pictographic(ch) and _pictographic(cluster[0]):
        return True
    if _regional(ch) and _regional(prev):
        run = 0
        for c in reversed(cluster):
            if not _regional(c):
                break
            run += 1
        return run % 2 == 1
    return False


def clusters(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (extended grapheme clusters)."""
    out: list[str] = []
    for ch in text:
        if out and _joins(out[-1], ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


# --- counting ---


def _utf16(s: str) -> int:
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _cost(cluster: str, encoding: str) -> int:
    if encoding == "UCS-2":
        return _utf16(cluster)
    return sum(2 if ch in GSM_EXTENSION else 1 for ch in cluster)


def _pack(costs: list[int], encoding: str) -> list[int]:
    """Part index of each cluster (greedy, clusters never split)."""
    if sum(costs) <= SINGLE[encoding]:
        return [0] * len(costs)
    cap, part, used, where = MULTI[encoding], 0, 0, []
    for cost in costs:
        if used and used + cost > cap:
            part, used = part + 1, 0
        used += cost
        where.append(part)
    return where


def _analyse(text: str) -> tuple[str, list[str], list[int], tuple[tuple[int, str], ...]]:
    parts = clusters(text)
    non_gsm: list[tuple[int, str]] = []
    pos = 0
    for cl in parts:
        if any(ch not in GSM_CHARS for ch in cl):
            non_gsm.append((pos, cl))
        pos += len(cl)
    encoding = "UCS-2" if non_gsm else "GSM-7"
    return encoding, parts, _pack([_cost(cl, encoding) for cl in parts], encoding), tuple(non_gsm)


def count(text: str) -> SegmentInfo:
    """Encoding, units, SMS parts and CRM Text billing units for ``text``."""
    encoding, parts, where, non_gsm = _analyse(text)
    return SegmentInfo(
        encoding=encoding,
        characters=len(text),
        units=sum(_cost(cl, encoding) for cl in parts),
        segments=(where[-1] + 1) if where else 1,
        billing_units=max(1, math.ceil(len(text) / BILLING_CHARS)),
        non_gsm=non_gsm,
        length=strict_length(text),
    )


def split_parts(text: str) -> list[str]:
    """The text of each SMS part as ``count`` packs it (``[""]`` for an empty text)."""
    _, parts, where, _ = _analyse(text)
    out = [""] * ((where[-1] + 1) if where else 1)
    for cl, part in zip(parts, where, strict=True):
        out[part] += cl
    return out


# --- smart replacements ---

_FULLWIDTH = {chr(cp): chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH["\uff40"] = "'"  # full-width grave accent; ASCII ` is not GSM either

SMART_REPLACEMENTS: dict[str, str] = {
    **_FULLWIDTH,
    # double quotes
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2033": '"', "\u301d": '"', "\u301e": '"', "\u02ba": '"',
    # single quotes, apostrophes, primes, accents used as apostrophes
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u2035": "'",
    "\u02b9": "'", "\u02bb": "'", "\u02bc": "'", "\u02bd": "'", "\u00b4": "'", "`": "'",
    "\u2039": "<", "\u203a": ">",
    # dashes and minus
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\ufe63": "-",
    # punctuation
    "\u2026": "...", "\u203c": "!!", "\u2044": "/", "\u2215": "/", "\u00f7": "/", "\u00d7": "x",
    "\u02c6": "^", "\u02dc": "~", "\u2223": "|", "\u3001": ",", "\u3002": ".",
    # bullets
    "\u2022": "-", "\u2023": "-", "\u2043": "-", "\u2219": "-", "\u25e6": "-",
    # fractions
    "\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3",
    "\u215b": "1/8",
    # symbols
    "\u00a9": "(C)", "\u00ae": "(R)", "\u2122": "TM",
    # spaces (including tab) -> one space; line/paragraph separators -> newline
    "\t": " ", "\u00a0": " ", "\u1680": " ", "\u2000": " ", "\u2001": " ", "\u2002": " ",
    "\u2003": " ", "\u2004": " ", "\u2005": " ", "\u2006": " ", "\u2007": " ", "\u2008": " ",
    "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u205f": " ", "\u3000": " ",
    "\u2028": "\n", "\u2029": "\n",
    # invisible characters -> removed
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
}  # fmt: skip
"""Curated non-GSM characters with a GSM look-alike (values contain GSM characters only)."""


def _is_gsm(s: str) -> bool:
    return all(ch in GSM_CHARS for ch in s)


def _replacement(cluster: str) -> str | None:
    if cluster in SMART_REPLACEMENTS:
        return SMART_REPLACEMENTS[cluster]
    composed = unicodedata.normalize("NFC", cluster)  # e + U+0301 -> é
    if _is_gsm(composed):
        return composed
    mapped = "".join(SMART_REPLACEMENTS.get(ch, ch) for ch in composed)
    return mapped if _is_gsm(mapped) else None


def suggest_replacements(text: str) -> dict[str, str]:
    """``{non-GSM character: GSM replacement}`` for the replaceable characters in ``text``."""
    out: dict[str, str] = {}
    for _, cluster in count(text).non_gsm:
        rep = _replacement(cluster)
        if rep is not None:
            out[cluster] = rep
    return out


def apply_replacements(text: str) -> str:
    """``text`` with every replaceable non-GSM character swapped for its GSM look-alike."""
    out = []
    for cluster in clusters(text):
        rep = None if _is_gsm(cluster) else _replacement(cluster)
        out.append(cluster if rep is None else rep)
    return "".join(out)
