"""Consent gaps a review found after issue 9: an opt-out that never reached CRM Text blocks a
campaign and is pushed again when staff record it; nothing a job read from CRM Text before a
revocation undoes it; "Stop please" from a customer not opted in reaches CRM Text; every kind
of held reply is reported when the customer opts out; the opt-in button asks CRM Text first;
a text another blast is sending counts toward the 24-hour cap."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from bot.consent import record_opt_out
from bot.dev.fake_slack import Message
from bridge.optout import status_check_handler
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_blast_caps import FLORIDA, blast, campaigns, report  # noqa: F401 (fixture)
from tests.test_blasts import (
    blast_command,
    open_view,
    preflight_text,
    seed,
    send_all,
    state,
    submit,
)
from tests.test_consent_rules import JANE, flagged_thread, opt_out_calls
from tests.test_first_texter import NEW_GUEST, first_text, press_in_thread
from tests.test_replies import staff_reply, thread_texts

NOT_SENT_OPTED_OUT = (
    ":x: Not sent: this customer opted out, so texting them is blocked. They can opt back in by "
    "texting START."
)


def test_a_campaign_is_blocked_while_an_opt_out_push_has_given_up(
    campaigns: Harness,  # noqa: F811 (the fixture)
) -> None:
    harness = campaigns
    seed(harness, [JANE, "4155550202"])
    harness.sim.fail_next(1000, status=503, method="optoutcustomer")  # CRM Text keeps failing
    harness.text("PIZZA", JANE, "Stop.")
    harness.drain()
    storage = harness.services.storage
    jane = storage.customers.find("PIZZA", "+1" + JANE)
    storage.customers.crm_push_failed(jane["id"], "gave up after retries")  # as the job does

    text = "Main St Pizza deal. Reply STOP to opt out"
    blast_command(harness, text)
    harness.drain()
    view = open_view(harness)
    assert submit(harness, view, state(text)).status_code == 200
    send_all(harness, 6)
    shown = preflight_text(harness.slack.views[view["id"]]).splitlines()
    assert shown[0] == ":x: Fix what is marked :no_entry: below, then press Review again."
    assert shown[2] == (
        ":no_entry: *1 opt-out request not passed on to CRM Text yet* Some customers asked to "
        "stop getting texts and CRM Text does not know yet. Wait a minute for the bot to pass "
        "the requests on, then try again."
    )
    assert [c for c in harness.sim.calls if c["method"] == "sendcampaign"] == []
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_IN
    assert [d.phone for d in harness.sim.outbox if d.kind != "template"] == []


def test_recording_an_opt_out_again_pushes_one_that_crm_text_refused(harness: Harness) -> None:
    seed(harness, [JANE])
    harness.sim.fail_next(1, status=401, method="optoutcustomer")  # refused: the job gives up
    harness.text("PIZZA", JANE, "Stop.")
    harness.drain()
    storage = harness.services.storage
    jane = storage.customers.find("PIZZA", "+1" + JANE)
    assert jane["crm_push_error"] and harness.sim.customer_status("PIZZA", JANE) == OPTED_IN

    recorded = record_opt_out(
        storage, jane, how="phone", note="called the store", actor="USAM", who="<@USAM>",
        thread_id=None, now=harness.clock(),
    )  # fmt: skip
    harness.drain()
    assert recorded is True
    assert opt_out_calls(harness) == [("PIZZA", JANE)]  # the refused call never got through
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    assert storage.customers.get(jane["id"])["crm_synced"] == 1


def test_a_status_check_never_undoes_an_opt_out_that_arrived_while_it_ran(
    harness: Harness,
) -> None:
    storage = harness.services.storage
    now = datetime(2026, 12, 1, 18, tzinfo=UTC)
    customer = storage.customers.upsert("PIZZA", "+14155550101", now=now)
    storage.customers.set_status(customer["id"], PENDING, how="test", now=now)

    class CrmTextMidRevocation:
        def customer_info(self, store: str, phone: str) -> SimpleNamespace:
            # the customer's "Stop." is stored while getcustomerinfo is on its way back
            storage.customers.set_status(
                customer["id"], OPTED_OUT, how="texted STOP", now=now, crm_synced=False
            )
            return SimpleNamespace(status=OPTED_IN)

    check = status_check_handler(storage, CrmTextMidRevocation(), lambda: now)  # type: ignore[arg-type]
    check({"customer_id": customer["id"], "thread_id": None})
    assert storage.customers.get(customer["id"])["status"] == OPTED_OUT
    assert [
        (e["status_from"], e["status_to"], e["how"])
        for e in storage.customers.consent_history(customer["id"])
    ] == [(NEW, PENDING, "test"), (PENDING, OPTED_OUT, "texted STOP")]


def test_stop_please_from_a_pending_customer_is_pushed_to_crm_text(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", "4155550301", status=PENDING)
    harness.text("PIZZA", "4155550301", "Stop please")
    assert harness.sim.callback_log[-1]["fields"]["optInStatus"] == "Opt-out"  # not opted in
    harness.drain()
    assert opt_out_calls(harness) == [("PIZZA", "4155550301")]
    assert harness.sim.customer_status("PIZZA", "4155550301") == OPTED_OUT
    customer = harness.services.storage.customers.find("PIZZA", "+14155550301")
    assert customer["crm_synced"] == 1
    assert harness.services.storage.customers.consent_history(customer["id"])[-1]["how"] == (
        "texted STOP PLEASE; smsbridge asks CRM Text to opt them out"
    )


def test_stop_please_from_a_customer_crm_text_has_opted_out_is_not_pushed_twice(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", "4155550302", status=OPTED_OUT)
    harness.text("PIZZA", "4155550302", "Stop please")
    harness.drain()
    assert opt_out_calls(harness) == []  # getcustomerinfo said 5: no second confirmation
    customer = harness.services.storage.customers.find("PIZZA", "+14155550302")
    assert (customer["status"], customer["crm_synced"]) == (OPTED_OUT, 1)


def test_a_recorded_opt_out_reports_a_reply_held_for_a_decision_as_not_sent(
    harness: Harness,
) -> None:
    parent, _ = flagged_thread(harness)
    staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    storage = harness.services.storage
    jane = storage.customers.find("PIZZA", "+1" + JANE)
    thread = storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)
    record_opt_out(
        storage, jane, how="phone", note="called", actor="USAM", who="<@USAM>",
        thread_id=thread["id"], now=harness.clock(),
    )  # fmt: skip
    harness.drain()
    assert [
        (m["status"], m["error"])
        for m in storage.conversations.thread_messages(thread["id"])
        if m["direction"] == "out"
    ] == [("blocked", NOT_SENT_OPTED_OUT.removeprefix(":x: "))]
    assert thread_texts(harness, parent)[-1] == NOT_SENT_OPTED_OUT
    assert [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"] == []


def test_the_opt_in_button_asks_crm_text_first_and_never_undoes_its_opt_out(
    harness: Harness,
) -> None:
    parent, offer = first_text(harness)
    harness.sim.add_customer("PIZZA", NEW_GUEST, status=OPTED_OUT)  # opted out at CRM Text
    press_in_thread(harness, parent, offer, offer.blocks[1]["elements"][0])
    harness.drain()
    assert [c for c in harness.sim.calls if c["method"] == "optincustomer"] == []
    assert harness.sim.customer_status("PIZZA", NEW_GUEST) == OPTED_OUT
    [answer] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert answer.text == (
        ":no_entry_sign: No opt-in request was sent: (415) 555-0188 opted out of texts from this "
        "store. Only they can opt back in, by texting START."
    )
    customer = harness.services.storage.customers.find("PIZZA", "+1" + NEW_GUEST)
    assert customer["status"] == OPTED_OUT


def test_a_text_another_stores_blast_is_sending_counts_toward_the_24_hour_cap(
    harness: Harness,
) -> None:
    harness.clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # Tue noon Miami
    seed(harness, [FLORIDA])
    texts = [f"Main St Pizza deal {n}: 2 for 1 today. Reply STOP to opt out" for n in range(3)]
    for text in texts[:2]:
        blast(harness, text)
        harness.clock.advance(hours=1)
    storage = harness.services.storage
    # Bay Cars' blast is texting the same number this moment (attempted, not finished).
    harness.sim.add_customer("CARS", FLORIDA, status=OPTED_IN)
    cars = storage.customers.upsert("CARS", "+1" + FLORIDA, now=harness.clock())
    other = storage.blasts.add(
        {"store": "CARS", "status": "sending", "final_text": "Bay Cars: oil change $19"}
    )
    storage.blasts.add_recipients(other, [(cars["id"], "+1" + FLORIDA)])
    storage.blasts.update_recipient(other, cars["id"], attempted_at=harness.clock().isoformat())

    third = blast(harness, texts[2])
    assert report(harness, third) == (
        "• skipped, Florida allows at most 3 marketing texts per person in 24 hours: 1"
    )
    assert [d.text for d in harness.sim.outbox if d.kind == "sms"] == texts[:2]


def held_for_decision(harness: Harness) -> tuple[Message, int]:
    """Jane's possible stop request with a staff reply held for the decision; CRM Text then
    opts her out by itself (its admin), unknown to smsbridge. Returns the parent, thread id."""
    parent, _ = flagged_thread(harness)
    staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    harness.sim.add_customer("PIZZA", JANE, status=OPTED_OUT)
    thread = harness.services.storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)
    return parent, int(thread["id"])


def out_statuses(harness: Harness, thread_id: int) -> list[str]:
    return [
        m["status"]
        for m in harness.services.storage.conversations.thread_messages(thread_id)
        if m["direction"] == "out"
    ]


def test_a_status_check_that_finds_an_opt_out_reports_a_reply_held_for_a_decision(
    harness: Harness,
) -> None:
    parent, thread_id = held_for_decision(harness)
    harness.text("PIZZA", JANE, "ok")  # the callback says Opt-out: getcustomerinfo says 5
    harness.drain()
    assert out_statuses(harness, thread_id) == ["blocked"]
    assert NOT_SENT_OPTED_OUT in thread_texts(harness, parent)
    assert [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"] == []


def test_an_audience_sync_that_finds_an_opt_out_reports_a_reply_held_for_a_decision(
    harness: Harness,
) -> None:
    parent, thread_id = held_for_decision(harness)
    blast_command(harness, "Main St Pizza deal. Reply STOP to opt out")
    harness.drain()  # the modal's audience sync reads CRM Text's list
    assert out_statuses(harness, thread_id) == ["blocked"]
    assert thread_texts(harness, parent)[-1] == NOT_SENT_OPTED_OUT


def test_opt_out_on_a_stop_request_reports_a_reply_waiting_for_an_opt_in_at_once(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=PENDING)
    harness.text("PIZZA", JANE, "can you stop texting me so much")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    buttons = {e["action_id"]: e["value"] for e in parent.blocks[3]["elements"]}
    staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    thread = harness.services.storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)
    assert out_statuses(harness, int(thread["id"])) == ["awaiting_opt_in"]

    harness.press("opt_out_customer", buttons["opt_out_customer"], user="UKIM")
    harness.drain()  # at once, not when the 24-hour hold runs out
    assert out_statuses(harness, int(thread["id"])) == ["expired"]
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: (415) 555-0201 opted out while this reply was held, so this reply was not "
        "texted:\n> Sorry! Only order updates from now on, OK?"
    )
    assert [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"] == []
