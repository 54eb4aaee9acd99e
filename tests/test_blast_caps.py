"""Blasts and where the recipient is (issue 9 parts 4 and 5), end to end through Slack and the
CRM Text simulator: the rolling 24-hour cap while sending, quiet hours for corrected area codes
at fixed clock times, toll-free numbers left out, and the strict 1,600 length."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.dev.fake_slack import FakeSlack
from bridge.crmtext import CrmTextError
from tests.conftest import Clock, Harness, Simulator, make_config
from tests.test_blasts import (
    blast_command,
    compose,
    confirm,
    delivered,
    open_view,
    preflight_text,
    seed,
    send_all,
)
from tests.test_replies import open_thread, reactions, sends, staff_reply, thread_texts

FLORIDA, CALIFORNIA = "3055550401", "4155550402"


def blast(harness: Harness, text: str) -> dict[str, object]:
    confirm(harness, compose(harness, text, append=False))
    send_all(harness, 6)
    return harness.services.storage.blasts.rows("PIZZA")[-1]


def report(harness: Harness, blast_row: dict[str, object]) -> str:
    [progress] = [m for m in harness.slack.messages if m.ts == blast_row["progress_ts"]]
    return str(progress.blocks[2]["text"]["text"])


def test_a_florida_number_gets_at_most_three_blast_texts_in_24_hours(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # Tue noon Miami, 9 AM SF
    seed(harness, [FLORIDA, CALIFORNIA])
    texts = [f"Main St Pizza deal {n}: 2 for 1 today. Reply STOP to opt out" for n in range(5)]
    for text in texts[:3]:
        blast(harness, text)
        harness.clock.advance(hours=1)
    view = compose(harness, texts[3], append=False)  # 3 PM in Miami: the 4th within 24 hours
    assert (
        ":warning: *1 customer already got 3 marketing texts in 24 hours* Florida, Oklahoma and "
        "Maryland allow at most 3 per person in a rolling 24 hours. They are skipped, and the "
        "report says so."
    ) in preflight_text(view).splitlines()
    confirm(harness, view)
    send_all(harness, 6)
    fourth = harness.services.storage.blasts.rows("PIZZA")[-1]
    assert report(harness, fourth) == (
        "• skipped, Florida allows at most 3 marketing texts per person in 24 hours: 1"
    )
    harness.clock.now = datetime(2026, 11, 25, 17, 30, tzinfo=UTC)  # 24.5 h after the first
    fifth = blast(harness, texts[4])
    assert harness.services.storage.blasts.recipient_counts(int(fifth["id"])) == {"sent": 2}
    assert [t for p, t in delivered(harness) if p == FLORIDA] == sorted(
        [texts[0], texts[1], texts[2], texts[4]]
    )
    assert [t for p, t in delivered(harness) if p == CALIFORNIA] == sorted(texts)


@pytest.fixture
def campaigns(tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock) -> Iterator[Harness]:
    """Every blast sent as one CRM Text campaign (``BLAST_MODE=campaign``)."""
    h = Harness(make_config(tmp_path, slack, sim, blast_mode="campaign"), sim, slack, clock)
    yield h
    h.stop()


def test_a_campaign_waits_until_no_recipient_is_over_the_24_hour_cap(campaigns: Harness) -> None:
    """A campaign reaches every opted-in customer at once and cannot leave one out, so it
    waits until the Florida number may get a 4th text; then it goes to everyone."""
    harness = campaigns
    harness.clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # Tue noon Miami, 9 AM SF
    seed(harness, [FLORIDA, CALIFORNIA])
    texts = [f"Main St Pizza deal {n}: 2 for 1 today. Reply STOP to opt out" for n in range(4)]
    for text in texts[:3]:
        blast(harness, text)
        harness.clock.advance(hours=1)
    fourth = blast(harness, texts[3])
    assert harness.services.storage.blasts.get(int(fourth["id"]))["status"] == "scheduled"
    assert harness.services.storage.blasts.get(int(fourth["id"]))["run_at"] == (
        "2026-11-25T17:00:00.000000+00:00"  # 24 h after the first campaign reached them
    )
    assert [c["params"]["message"] for c in harness.sim.calls if c["method"] == "sendcampaign"] == (
        texts[:3]
    )
    harness.clock.now = datetime(2026, 11, 25, 17, 0, 1, tzinfo=UTC)
    send_all(harness, 3)
    assert [c["params"]["message"] for c in harness.sim.calls if c["method"] == "sendcampaign"] == (
        texts
    )


def test_a_689_number_is_checked_in_eastern_time(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # Tue 8:30 PM Orlando
    seed(harness, ["6895550401", CALIFORNIA])
    blast_command(harness, "Main St Pizza: 2 for 1 today. Reply STOP to opt out")
    harness.drain()
    shown = preflight_text(open_view(harness))
    [quiet] = [line for line in shown.splitlines() if "Outside texting hours" in line]
    assert quiet.startswith(":no_entry: *Outside texting hours for 1 of 2 customers*")
    assert "It is 8:30 PM in Florida (America/New_York); Florida allows marketing texts" in quiet


def test_toll_free_customers_are_left_out_of_a_blast(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # Tue noon in Los Angeles
    seed(harness, ["8005550401", CALIFORNIA])
    text = "Main St Pizza: 2 for 1 today. Reply STOP to opt out"
    view = compose(harness, text, append=False)
    assert "Not included: 1 opted out, 1 opt-in pending, 1 toll-free number." in (
        preflight_text(view).splitlines()
    )
    confirm(harness, view)
    # A blast confirmed before m012 may still list one: it is skipped when its turn comes.
    toll_free = harness.services.storage.customers.find("PIZZA", "+18005550401")
    assert toll_free is not None
    row = harness.services.storage.blasts.rows("PIZZA")[-1]
    harness.services.storage.blasts.add_recipients(row["id"], [(toll_free["id"], "+18005550401")])
    send_all(harness, 4)
    assert delivered(harness) == [(CALIFORNIA, text)]
    assert report(harness, harness.services.storage.blasts.get(row["id"])) == (
        "• skipped, toll-free number: no time zone, not texted in blasts: 1"
    )


def test_1600_emoji_are_refused_with_both_counts_shown(harness: Harness) -> None:
    seed(harness)
    blast_command(harness, "🍕" * 1600)
    harness.drain()
    shown = preflight_text(open_view(harness))
    assert (
        ":no_entry: *The text is too long: 1,600 characters (3,200 as carriers count them: "
        "emoji count as 2)* Texts can have at most 1,600 characters; remove at least 1,600."
    ) in shown.splitlines()


def test_the_confirmation_shows_both_counts_when_they_differ(harness: Harness) -> None:
    seed(harness)
    view = compose(harness, "Main St Pizza 🍕🍕 tonight. Reply STOP to opt out", append=False)
    assert (
        preflight_text(view)
        .splitlines()[1]
        .endswith(" · 47 characters (49 as carriers count them: emoji count as 2)")
    )


def test_a_reply_of_800_emoji_is_not_sent_and_says_both_counts(harness: Harness) -> None:
    parent = open_thread(harness)
    reply = staff_reply(harness, parent, "🍕" * 801)
    harness.drain()
    assert sends(harness) == []
    assert reactions(harness, reply) == ["x"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: 801 characters (1,602 as carriers count them: emoji count as 2) is over "
        "CRM Text's limit of 1,600. Shorten it or split it into two replies."
    )


def test_the_crm_text_simulator_counts_emoji_as_the_carrier_path_does(harness: Harness) -> None:
    """The fake is as strict as what stands behind CRM Text: 800 emoji fit, 801 do not."""
    harness.sim.add_customer("PIZZA", CALIFORNIA, status=3)
    harness.services.crm.send_sms("PIZZA", CALIFORNIA, "🍕" * 800)
    with pytest.raises(CrmTextError) as refused:
        harness.services.crm.send_sms("PIZZA", CALIFORNIA, "🍕" * 801)
    assert (refused.value.status, refused.value.message) == (
        400,
        "Message exceeds 1600 characters",
    )
