"""Segment counting against the Twilio calculator vectors (sms-compliance.md §2.4, §2.6)."""

from __future__ import annotations

import pytest

from bridge.segments import (
    GSM_CHARS,
    SMART_REPLACEMENTS,
    apply_replacements,
    count,
    split_parts,
    suggest_replacements,
)


def digits(n: int) -> str:
    """D(n): the first n characters of "1234567890" repeated."""
    return ("1234567890" * (n // 10 + 1))[:n]


def lead(x: str, n: int) -> str:
    """X+D(n)[1:]: X replaces the leading "1" of D(n)."""
    return x + digits(n)[1:]


EXTENSION = ["|", "^", "€", "{", "}", "[", "]", "~", "\\"]
NON_GSM_LETTERS = ["Á", "Ú", "ú", "ç", "í", "Í", "ó", "Ó"]
FLAG = "\U0001f1ee\U0001f1f9"  # 🇮🇹
RAINBOW = "\U0001f3f3\ufe0f\u200d\U0001f308"  # 🏳️‍🌈
V19 = "|" * 24 + "{" + "|" * 28 + "∞" + "|" * 10 + "^" + "|" * 5

# (id, message, encoding, segments, units or None)
VECTORS: list[tuple[str, str, str, int, int | None]] = [
    ("v01-D160", digits(160), "GSM-7", 1, 160),
    ("v02-D161", digits(161), "GSM-7", 2, 161),
    ("v03-D307", digits(307), "GSM-7", 3, 307),
    ("v04-emoji+D69", lead("😜", 69), "UCS-2", 1, 70),
    ("v05-emoji+D70", lead("😜", 70), "UCS-2", 2, 71),
    ("v06-emoji+D134", lead("😜", 134), "UCS-2", 3, 135),
    ("v07-flag+D67", lead(FLAG, 67), "UCS-2", 1, 70),
    ("v08-flag+D68", lead(FLAG, 68), "UCS-2", 2, 71),
    ("v09-zwj+D65", lead(RAINBOW, 65), "UCS-2", 1, 70),
    ("v10-zwj+D66", lead(RAINBOW, 66), "UCS-2", 2, 71),
    *[(f"v11-ext-{ch}+D158", ch + digits(158), "GSM-7", 1, 160) for ch in EXTENSION],
    *[(f"v12-ext-{ch}+D159", ch + digits(159), "GSM-7", 2, 161) for ch in EXTENSION],
    *[(f"v13-70x{ch}", ch * 70, "UCS-2", 1, 70) for ch in NON_GSM_LETTERS],
    *[(f"v14-71x{ch}", ch * 71, "UCS-2", 2, 71) for ch in NON_GSM_LETTERS],
    ("v15-emoji+68x]", "😀" + "]" * 68, "UCS-2", 1, 70),
    ("v16-emoji+69x]", "😀" + "]" * 69, "UCS-2", 2, 71),
    ("v17-e+3acute+66a", "e" + "\u0301" * 3 + "a" * 66, "UCS-2", 1, 70),
    ("v18-e+3acute+67a", "e" + "\u0301" * 3 + "a" * 67, "UCS-2", 2, 71),
    ("v19-pipes+infinity", V19, "UCS-2", 1, 70),
    ("v20-161xA", "A" * 161, "GSM-7", 2, 161),
    ("v21-at+emoji", "@😀", "UCS-2", 1, 3),
    ("v22-CR-CRLF", "\rabcde\r\n123", "GSM-7", 1, 11),
    ("v23-LF", "\nabcde\n\n123\n", "GSM-7", 1, 12),
]


def test_vector_table_is_complete() -> None:
    assert len(VECTORS) == 10 + 9 + 9 + 8 + 8 + 9
    assert len({v[0] for v in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize(
    ("message", "encoding", "segments", "units"),
    [pytest.param(*v[1:], id=v[0]) for v in VECTORS],
)
def test_twilio_vector(message: str, encoding: str, segments: int, units: int | None) -> None:
    info = count(message)
    assert info.encoding == encoding
    assert info.segments == segments
    assert info.characters == len(message)
    if units is not None:
        assert info.units == units
    assert len(split_parts(message)) == segments
    assert "".join(split_parts(message)) == message


def test_vector_notes_on_part_contents() -> None:
    assert split_parts(digits(307))[-1] == "7"  # v3
    assert split_parts(lead("😜", 134))[-1] == "4"  # v6
    first, second = split_parts("A" * 161)  # v20
    assert (len(first), len(second)) == (153, 8)


def test_vector_code_point_counts() -> None:
    assert count(lead("😜", 69)).characters == 69
    assert count(lead(FLAG, 67)).characters == 68
    assert count(lead(RAINBOW, 65)).characters == 68
    assert len(V19) == 70


@pytest.mark.parametrize("char", NON_GSM_LETTERS)
def test_non_gsm_letters_flagged(char: str) -> None:
    assert count(char * 70).non_gsm == tuple((i, char) for i in range(70))


@pytest.mark.parametrize("char", EXTENSION)
def test_extension_char_costs_one_unit_in_ucs2(char: str) -> None:
    info = count("😀" + char)
    assert (info.encoding, info.units) == ("UCS-2", 3)


# --- derived examples (end of §2.6) ---


def test_reply_stop_is_21_gsm_characters() -> None:
    info = count("Reply STOP to opt out")
    assert (info.encoding, info.characters, info.units, info.segments) == ("GSM-7", 21, 21, 1)


def test_one_curly_apostrophe_doubles_a_98_char_blast() -> None:
    blast = "Weekend sale: 20% off all shoes. Show this text at the register. Reply STOP to opt out"
    blast = blast + "." * (98 - len(blast))
    assert (count(blast).encoding, count(blast).segments) == ("GSM-7", 1)
    curly = blast[:5] + "’" + blast[5:]
    info = count(curly)
    assert (info.encoding, info.segments, info.non_gsm) == ("UCS-2", 2, ((5, "’"),))


def test_extension_char_near_the_end_still_fits() -> None:
    info = count("A" * 152 + "€" + "A")
    assert (info.units, info.segments) == (155, 1)


@pytest.mark.parametrize("body", ["A" * 160 + "€", "A" * 159 + "€"], ids=["162-septets", "161"])
def test_extension_char_over_160_septets(body: str) -> None:
    assert count(body).segments == 2


def test_extension_char_is_never_split() -> None:
    parts = split_parts("A" * 152 + "€" + "A" * 10)
    assert parts == ["A" * 152, "€" + "A" * 10]  # first part holds only 152 septets


def test_surrogate_pair_is_never_split() -> None:
    parts = split_parts("a" * 66 + "😀" + "a" * 10)
    assert parts == ["a" * 66, "😀" + "a" * 10]


def test_flag_is_never_split() -> None:
    parts = split_parts("a" * 65 + FLAG + "a" * 10)
    assert parts == ["a" * 65, FLAG + "a" * 10]


# --- billing units vs segments (§2.4) ---


@pytest.mark.parametrize(
    ("length", "segments", "billing"),
    [
        (0, 1, 1),
        (1, 1, 1),
        (160, 1, 1),
        (161, 2, 2),
        (240, 2, 2),
        (306, 2, 2),
        (307, 3, 2),
        (320, 3, 2),
        (321, 3, 3),
        (459, 3, 3),
        (1530, 10, 10),
        (1600, 11, 10),
    ],
    ids=lambda v: str(v),
)
def test_gsm_segments_vs_billing_units(length: int, segments: int, billing: int) -> None:
    info = count("x" * length)
    assert (info.segments, info.billing_units) == (segments, billing)


@pytest.mark.parametrize("units", [71, 100, 134])
def test_ucs2_71_to_134_units_is_two_parts_one_billing_unit(units: int) -> None:
    info = count("ç" * units)
    assert (info.encoding, info.segments, info.billing_units) == ("UCS-2", 2, 1)


def test_ucs2_150_characters_is_three_parts() -> None:
    assert count("ç" * 150).segments == 3  # §2.3


# --- non-GSM positions ---


def test_non_gsm_positions_are_code_point_indexes() -> None:
    text = "Hi “Ana” 😀 — ok `"
    info = count(text)
    assert info.non_gsm == ((3, "“"), (7, "”"), (9, "😀"), (11, "—"), (16, "`"))
    for pos, char in info.non_gsm:
        assert text[pos : pos + len(char)] == char


def test_non_gsm_reports_whole_clusters() -> None:
    text = "ok 👍🏽 " + FLAG
    assert count(text).non_gsm == ((3, "👍🏽"), (6, FLAG))


def test_only_non_gsm_letters_are_flagged() -> None:
    assert count("Ça coûte").non_gsm == ((5, "û"),)
    assert count("Ñandú € [x]").non_gsm == ((4, "ú"),)
    assert count("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà").encoding == "GSM-7"


# --- replacements ---


def test_replacement_values_are_gsm() -> None:
    for key, value in SMART_REPLACEMENTS.items():
        assert key not in GSM_CHARS, key
        assert all(ch in GSM_CHARS for ch in value), key


def test_angle_quotes_are_not_swapped() -> None:
    assert (SMART_REPLACEMENTS["‹"], SMART_REPLACEMENTS["›"]) == ("<", ">")


def test_replacements_turn_ucs2_into_gsm() -> None:
    text = "It’s “Mom’s Day” — 25% off… 1½\u00a0lb\u200b • ＳＡＬＥ！"
    assert count(text).encoding == "UCS-2"
    fixed = apply_replacements(text)
    assert fixed == "It's \"Mom's Day\" - 25% off... 11/2 lb - SALE!"
    info = count(fixed)
    assert (info.encoding, info.non_gsm, info.segments) == ("GSM-7", (), 1)


def test_suggest_replacements_lists_only_present_replaceable_chars() -> None:
    text = "Café’s menu — 😀 e\u0301"
    assert suggest_replacements(text) == {"’": "'", "—": "-", "e\u0301": "é"}
    assert suggest_replacements("plain text") == {}


def test_emoji_and_real_scripts_are_kept() -> None:
    text = "Hola 😀 こんにちは"
    assert apply_replacements(text) == text
    assert count(apply_replacements(text)).encoding == "UCS-2"


def test_partial_replacement_shrinks_ucs2_message() -> None:
    text = "’" * 80 + "😀"
    fixed = apply_replacements(text)
    assert fixed == "'" * 80 + "😀"
    assert count(fixed).units == 82
