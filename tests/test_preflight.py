"""Blast preflight checks (sms-compliance.md §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.preflight import (
    BLOCK,
    INFO,
    OPT_OUT_LINE,
    WARN,
    Audience,
    Draft,
    Finding,
    History,
    Preflight,
    Settings,
    has_opt_out,
    links,
    run,
    shortener_of,
)
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
NOON = datetime(2025, 7, 15, 12, 0, tzinfo=LA)  # a Tuesday; inside every window
MIAMI = "+13055550100"  # FL, America/New_York
SF = "+14155550100"  # CA, America/Los_Angeles
STORE = "Tony's Pizza"
OK_TEXT = f"{STORE}: 2-for-1 slices today only! {OPT_OUT_LINE}"


def opted_in(*phones: str) -> list[Audience]:
    return [Audience(p, OPTED_IN) for p in phones]


def numbers(n: int) -> list[Audience]:
    return opted_in(*(f"+1415200{i:04d}" for i in range(n)))


def check(
    text: str = OK_TEXT,
    audience: list[Audience] | None = None,
    history: History | None = None,
    now: datetime = NOON,
    settings: Settings | None = None,
    append_opt_out: bool = False,
    image_bytes: int | None = None,
    image_type: str | None = None,
) -> Preflight:
    return run(
        Draft(STORE, text, append_opt_out, image_bytes, image_type),
        opted_in(SF) if audience is None else audience,
        history or History(),
        now,
        settings or Settings(),
    )


def codes(pre: Preflight) -> list[str]:
    return [f.code for f in pre.findings]


def only(pre: Preflight, code: str) -> Finding:
    found = [f for f in pre.findings if f.code == code]
    assert len(found) == 1, codes(pre)
    return found[0]


# --- a clean blast ---


def test_clean_blast_has_only_info() -> None:
    pre = check()
    assert codes(pre) == ["recipients", "cost"]
    assert not pre.blocked and pre.warnings == ()
    assert pre.final_text == OK_TEXT
    assert pre.recipients == (SF,)
    assert pre.next_allowed is None
    assert only(pre, "recipients") == Finding(
        "recipients",
        INFO,
        "1 customer will get this text",
        "Nobody on the list is left out. Sending one by one takes 1 second.",
    )


# --- length, encoding, segments ---


def test_gsm_160_characters_is_one_part_without_warnings() -> None:
    text = OK_TEXT + " " + "x" * (159 - len(OK_TEXT))
    assert len(text) == 160
    pre = check(text)
    assert (pre.segments.encoding, pre.segments.segments, pre.segments.billing_units) == (
        "GSM-7",
        1,
        1,
    )
    assert "encoding" not in codes(pre) and "segments" not in codes(pre)
    assert not pre.blocked and pre.warnings == ()


def test_curly_apostrophe_switches_to_ucs2_and_is_listed() -> None:
    text = f"Tony’s Pizza: 2-for-1 slices today only! {OPT_OUT_LINE}"
    pre = check(text)
    assert pre.segments.encoding == "UCS-2"
    assert only(pre, "encoding") == Finding(
        "encoding",
        WARN,
        "Special characters cut each text part from 160 to 70 characters",
        "Found “’” at character 5 (use “'”). Replacing them with standard characters is "
        "safest on all phones.",
    )
    assert "store_name_missing" not in codes(pre)  # ’ and ' count as the same name


def test_encoding_fix_reports_fewer_parts_and_unreplaceable_characters() -> None:
    text = f"{STORE}: pizza\u00a0night 🍕 — " + "a" * 80 + f" {OPT_OUT_LINE}"
    pre = check(text)
    assert pre.segments.segments == 2
    assert only(pre, "encoding").detail == (
        "Found an invisible character (no-break space) at character 20 (use “ ”); "
        "“🍕” at character 27 (no plain replacement); “—” at character 29 (use “-”). "
        "Characters without a plain replacement keep parts at 70 characters."
    )


def test_encoding_fix_that_saves_parts_says_so() -> None:
    text = f"{STORE}’s deal: " + "a" * 70 + f" {OPT_OUT_LINE}"
    pre = check(text)
    assert only(pre, "encoding").detail == (
        "Found “’” at character 13 (use “'”). Replacing them with standard characters makes "
        "the text 1 part instead of 2."
    )


def test_1600_characters_allowed_1601_blocked() -> None:
    base = OK_TEXT + " "
    assert "too_long" not in codes(check(base + "x" * (1600 - len(base))))
    pre = check(base + "x" * (1601 - len(base)))
    assert pre.blocked
    assert only(pre, "too_long") == Finding(
        "too_long",
        BLOCK,
        "The text is too long: 1,601 characters",
        "Texts can have at most 1,600 characters; remove at least 1.",
    )


def test_appended_opt_out_line_counts_towards_the_limit() -> None:
    text = f"{STORE}: " + "x" * (1590 - len(STORE) - 2)
    pre = check(text, append_opt_out=True)
    assert len(pre.final_text) == 1612
    assert only(pre, "too_long").title == (
        "The text is too long: 1,612 characters (including “Reply STOP to opt out”)"
    )


def test_empty_text_blocked_unless_there_is_a_picture() -> None:
    assert only(check("  \n "), "empty").level == BLOCK
    pre = check("", image_bytes=100_000, image_type="image/png")
    assert "empty" not in codes(pre)


def test_two_parts_warned() -> None:
    text = OK_TEXT + " " + "x" * (200 - len(OK_TEXT))
    pre = check(text)
    assert only(pre, "segments") == Finding(
        "segments",
        WARN,
        "Each customer gets this as 2 text parts",
        "Phones receive 2 parts; CRM Text bills 2 units (one per 160 characters).",
    )


def test_parts_and_billing_units_differ_and_cost_uses_the_higher() -> None:
    text = OK_TEXT + " " + "x" * (310 - len(OK_TEXT))
    pre = check(text, audience=opted_in(SF, "+14155550101", "+14155550102"))
    assert (pre.segments.segments, pre.segments.billing_units) == (3, 2)
    assert only(pre, "segments").detail == (
        "Phones receive 3 parts; CRM Text bills 2 units (one per 160 characters). "
        "They differ, so the cost estimate uses the higher number."
    )
    assert pre.cost == 3 * 3 * 0.0075
    assert only(pre, "cost").detail == (
        "3 customers × 3 units × $0.0075 (3 text parts, 2 billing units). "
        "The customer count can change before a scheduled send."
    )


def test_strong_warning_above_320_characters() -> None:
    text = OK_TEXT + " " + "x" * (320 - len(OK_TEXT))
    finding = only(check(text), "segments")
    assert finding.title == "Strong warning: very long text (321 characters, 3 parts per customer)"
    assert finding.detail.endswith("Texts over 320 characters often arrive cut up or late; "
                                   "shorten it if you can.")  # fmt: skip


# --- cost ---


def test_cost_exact() -> None:
    pre = check(audience=numbers(1234), settings=Settings(price_per_unit=0.01))
    assert pre.cost == 1234 * 1 * 0.01
    assert only(pre, "cost") == Finding(
        "cost",
        INFO,
        "Estimated cost: $12.34",
        "1,234 customers × 1 unit × $0.01 (1 text part, 1 billing unit). "
        "The customer count can change before a scheduled send.",
    )


def test_picture_cost_is_estimated_like_text_and_says_so() -> None:
    pre = check(image_bytes=100_000, image_type="image/jpeg")
    assert pre.cost == 0.0075
    assert only(pre, "cost").detail.endswith(
        "Picture messages are estimated at the text price for now; MMS may cost more."
    )


# --- opt-out wording and store name ---


def test_missing_opt_out_warned_and_append_recounts() -> None:
    text = f"{STORE}: " + "y" * (150 - len(STORE) - 2)
    pre = check(text)
    assert pre.segments.segments == 1
    assert only(pre, "opt_out_missing") == Finding(
        "opt_out_missing",
        WARN,
        "No opt-out instructions",
        "Customers must be told how to stop texts. Add “Reply STOP to opt out” at the end "
        "(the text becomes 2 parts instead of 1).",
    )
    appended = check(text + "  \n", append_opt_out=True)
    assert appended.final_text == f"{text}\n{OPT_OUT_LINE}"
    assert (appended.segments.characters, appended.segments.segments) == (172, 2)
    assert "opt_out_missing" not in codes(appended)


def test_opt_out_line_not_appended_twice() -> None:
    assert check(OK_TEXT, append_opt_out=True).final_text == OK_TEXT


def test_short_text_missing_opt_out_still_fits() -> None:
    detail = only(check(f"{STORE}: hi"), "opt_out_missing").detail
    assert detail.endswith("(it still fits in 1 part).")


@pytest.mark.parametrize(
    "text",
    [
        "Reply STOP to opt out",
        "reply stop to opt-out",
        "Txt STOP to end",
        "Reply “STOP” to unsubscribe",
        "Msg&data rates may apply. Reply STOP to cancel, HELP for help.",
        "Text STOP 2 quit",
        "To opt out, reply STOP.",
        "Unsubscribe: text STOP",
        "STOP=end",
    ],
)
def test_opt_out_wording_recognised(text: str) -> None:
    assert has_opt_out(text)


@pytest.mark.parametrize(
    "text",
    [
        "Stop by our store, the sale ends at the end of the month",
        "Don't stop shopping!",
        "Reply HELP for help",
        "Opt out of boring pizza",
    ],
)
def test_other_wording_not_taken_for_opt_out(text: str) -> None:
    assert not has_opt_out(text)


def test_store_name_missing_warned() -> None:
    pre = check(f"Big sale today! {OPT_OUT_LINE}")
    assert only(pre, "store_name_missing") == Finding(
        "store_name_missing",
        WARN,
        "The store name is not in the text",
        "Start the text with “Tony's Pizza:” so customers know who is texting them.",
    )
    assert "store_name_missing" not in codes(check(f"TONY'S  PIZZA sale! {OPT_OUT_LINE}"))


# --- links ---


def test_bitly_link_blocked() -> None:
    pre = check(f"{STORE}: menu at https://bit.ly/3xYz. {OPT_OUT_LINE}")
    assert pre.blocked
    assert only(pre, "shortener") == Finding(
        "shortener",
        BLOCK,
        "Short link https://bit.ly/3xYz will be blocked",
        "Phone carriers block texts with bit.ly links (https://bit.ly/3xYz). "
        "Use the full link to your own website instead.",
    )


def test_each_shortener_link_blocked_once() -> None:
    text = f"{STORE}: see tinyurl.com/abc, TinyURL.com/abc and go.t.co/x {OPT_OUT_LINE}"
    titles = [f.title for f in check(text).findings if f.code == "shortener"]
    assert titles == [
        "Short link tinyurl.com/abc will be blocked",
        "Short link TinyURL.com/abc will be blocked",
        "Short link go.t.co/x will be blocked",
    ]


def test_own_domains_and_lookalikes_allowed() -> None:
    text = f"{STORE}: tonyspizza.com/menu habit.ly/x info@bit.ly {OPT_OUT_LINE}"
    assert "shortener" not in codes(check(text))
    assert links("See www.Tonys.com/menu?x=1).") == [("www.Tonys.com/menu?x=1", "www.tonys.com")]
    assert shortener_of("a.b.bit.ly") == "bit.ly"
    assert shortener_of("notbit.ly") is None


# --- quiet hours ---


def test_florida_at_830_pm_blocked_with_next_allowed() -> None:
    now = datetime(2025, 7, 15, 20, 30, tzinfo=NY)
    pre = check(audience=opted_in(MIAMI), now=now)
    assert pre.blocked
    assert pre.next_allowed == datetime(2025, 7, 16, 12, 0, tzinfo=UTC)  # 8:00 AM in Miami
    assert only(pre, "quiet_hours") == Finding(
        "quiet_hours",
        BLOCK,
        "Outside texting hours for 1 of 1 customer",
        "For example: It is 8:30 PM in Florida (America/New_York); Florida allows marketing "
        "texts 8:00 AM–8:00 PM. The earliest time it can go to everyone is 5:00 AM PDT on "
        "Wednesday, July 16; schedule it for then.",
    )


def test_california_alone_at_530_pm_allowed() -> None:
    pre = check(audience=opted_in(SF), now=datetime(2025, 7, 15, 17, 30, tzinfo=LA))
    assert "quiet_hours" not in codes(pre)
    assert pre.next_allowed is None and not pre.blocked


def test_mixed_audience_waits_for_everyone() -> None:
    now = datetime(2025, 7, 15, 20, 30, tzinfo=NY)
    pre = check(audience=opted_in(SF, MIAMI), now=now)
    assert only(pre, "quiet_hours").title == "Outside texting hours for 1 of 2 customers"
    assert pre.next_allowed == datetime(2025, 7, 16, 15, 0, tzinfo=UTC)  # 8:00 AM Pacific


def test_whole_send_window_must_fit() -> None:
    # 1,000 California numbers one by one take 1,000 s: 8:45 PM + 16 min runs past 9 PM.
    now = datetime(2025, 7, 15, 20, 45, tzinfo=LA)
    pre = check(audience=numbers(1000), now=now, settings=Settings(mode="individual"))
    assert pre.duration == timedelta(seconds=1000)
    assert only(pre, "quiet_hours").title == "Outside texting hours for 1,000 of 1,000 customers"
    assert pre.next_allowed == datetime(2025, 7, 16, 15, 0, tzinfo=UTC)


# --- frequency and duplicates ---


def test_third_blast_of_the_month_warned() -> None:
    pre = check(history=History(blasts_this_month=2), settings=Settings(monthly_limit=2))
    assert not pre.blocked
    assert only(pre, "frequency") == Finding(
        "frequency",
        WARN,
        "Third blast this month",
        "This would be the store's third blast this month; the advice is at most 2 a month. "
        "Customers who get too many texts opt out, so send only if it matters.",
    )
    assert "frequency" not in codes(check(history=History(blasts_this_month=1)))


def test_same_text_within_12_hours_blocked() -> None:
    sent = NOON - timedelta(hours=11)
    history = History(recent_texts=((sent, OK_TEXT.replace(" ", "  \n")),))
    pre = check(history=history)
    assert only(pre, "duplicate_12h") == Finding(
        "duplicate_12h",
        BLOCK,
        "Same text already sent in the last 12 hours",
        "The same text went out at 1:00 AM PDT on Tuesday, July 15, and CRM Text drops a "
        "repeat within 12 hours. Change the wording or send it after 1:00 PM PDT on "
        "Tuesday, July 15.",
    )


def test_same_text_13_hours_later_allowed() -> None:
    history = History(recent_texts=((NOON - timedelta(hours=13), OK_TEXT),))
    assert "duplicate_12h" not in codes(check(history=history))


def test_duplicate_check_is_case_sensitive() -> None:
    history = History(recent_texts=((NOON - timedelta(hours=1), OK_TEXT.upper()),))
    assert "duplicate_12h" not in codes(check(history=history))


# --- audience ---


def test_excluded_counts() -> None:
    audience = [
        Audience(SF, OPTED_IN),
        Audience("(305) 555-0100", OPTED_IN),  # normalised to E.164
        Audience("+14155550101", OPTED_OUT),
        Audience("+14155550102", OPTED_OUT),
        Audience("+14155550103", PENDING),
        Audience("+14155550104", NEW),
        Audience("+14155550105", NEW),
        Audience("+14155550106", NEW),
        Audience("not a number", OPTED_IN),
        Audience("+442071234567", OPTED_IN),  # not US
    ]
    pre = check(audience=audience)
    assert pre.recipients == (SF, MIAMI)
    assert pre.excluded == {
        "opted out": 2,
        "opt-in pending": 1,
        "never opted in": 3,
        "invalid number": 2,
    }
    assert only(pre, "recipients").detail == (
        "Not included: 2 opted out, 1 opt-in pending, 3 never opted in, 2 invalid numbers. "
        "Sending one by one takes 2 seconds."
    )


def test_opt_out_record_wins_and_duplicates_send_once() -> None:
    audience = [
        Audience("+14155550101", OPTED_IN),
        Audience("415-555-0101", OPTED_OUT),
        Audience(SF, OPTED_IN),
        Audience("4155550100", OPTED_IN),
    ]
    pre = check(audience=audience)
    assert pre.recipients == (SF,)
    assert pre.excluded == {
        "opted out": 2,
        "opt-in pending": 0,
        "never opted in": 0,
        "invalid number": 0,
        "duplicate number": 1,
    }


def test_no_recipients_blocked() -> None:
    pre = check(audience=[Audience(SF, OPTED_OUT), Audience("junk", OPTED_IN)])
    assert pre.recipients == () and pre.cost == 0 and pre.duration == timedelta(0)
    assert only(pre, "no_recipients") == Finding(
        "no_recipients",
        BLOCK,
        "Nobody can get this text",
        "No customer with a valid phone number has opted in. "
        "Not included: 1 opted out, 1 invalid number.",
    )


def test_campaign_mode_above_700_recipients() -> None:
    pre = check(audience=numbers(701))
    assert pre.mode == "campaign"
    assert pre.duration == timedelta(seconds=701 / 30)
    assert only(pre, "recipients").detail == (
        "Nobody on the list is left out. Sending as one campaign takes 24 seconds."
    )


def test_individual_mode_up_to_700_recipients() -> None:
    pre = check(audience=numbers(700))
    assert (pre.mode, pre.duration) == ("individual", timedelta(seconds=700))
    assert only(pre, "recipients").detail.endswith("Sending one by one takes about 12 minutes.")


def test_mode_from_settings() -> None:
    pre = check(audience=numbers(3), settings=Settings(mode="campaign"))
    assert (pre.mode, pre.duration) == ("campaign", timedelta(seconds=3 / 30))
    with pytest.raises(ValueError):
        check(settings=Settings(mode="fast"))


def test_ten_thousand_customers() -> None:
    audience = [
        Audience(f"+1{npa}200{i:04d}", (OPTED_IN, OPTED_IN, OPTED_OUT, PENDING)[i % 4])
        for i, npa in zip(range(10_000), [305, 415, 212, 512, 602] * 2000, strict=True)
    ]
    pre = check(audience=audience)
    assert len(pre.recipients) == 5000
    assert pre.excluded["opted out"] == 2500 and pre.excluded["opt-in pending"] == 2500
    assert pre.mode == "campaign" and not pre.blocked


# --- revocations and pictures ---


def test_pending_revocations_blocked() -> None:
    pre = check(history=History(pending_revocations=2))
    assert pre.blocked
    assert only(pre, "revocations_pending") == Finding(
        "revocations_pending",
        BLOCK,
        "2 opt-out requests not passed on to CRM Text yet",
        "Some customers asked to stop getting texts and CRM Text does not know yet. "
        "Wait a minute for the bot to pass the requests on, then try again.",
    )


def test_picture_too_big_blocked() -> None:
    pre = check(image_bytes=450_001, image_type="image/jpeg")
    assert pre.blocked
    assert only(pre, "mms") == Finding(
        "mms",
        BLOCK,
        "The picture is too big (451 KB)",
        "CRM Text cannot deliver pictures over 450 KB. "
        "Make it smaller (for example a smaller JPG) and add it again.",
    )
    assert "mms" not in codes(check(image_bytes=300_000, image_type="image/gif"))


def test_large_picture_warned() -> None:
    finding = only(check(image_bytes=300_001, image_type="image/png"), "mms")
    assert (finding.level, finding.title) == (WARN, "The picture is large (301 KB)")


def test_wrong_picture_type_blocked() -> None:
    pre = check(image_bytes=1000, image_type="image/webp")
    assert only(pre, "mms") == Finding(
        "mms",
        BLOCK,
        "This picture type cannot be sent",
        "Pictures must be JPG, PNG or GIF; this one is image/webp. "
        "Save it as JPG or PNG and add it again.",
    )


# --- general ---


def test_blocks_come_first() -> None:
    pre = check(f"sale bit.ly/x {OPT_OUT_LINE}", history=History(blasts_this_month=5))
    levels = [f.level for f in pre.findings]
    assert levels == sorted(levels, key=[BLOCK, WARN, INFO].index)
    assert [f.code for f in pre.warnings] == ["store_name_missing", "frequency"]
    assert only(pre, "frequency").title == "Sixth blast this month"


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError):
        check(now=datetime(2025, 7, 15, 12, 0))
