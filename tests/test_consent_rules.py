"""Issue 9 parts 1 and 3: a revocation however decorated opts the customer out and nothing
undoes it but the customer: not the next audience sync, not a blast, not a callback that says
"Opt-in" while CRM Text has not confirmed the opt-out. Through the real callback, the real CRM
Text client against the simulator and Bolt against the fake Slack."""

from __future__ import annotations

import pytest

from bot.dev.fake_slack import Message
from bridge.store import OPTED_IN, OPTED_OUT
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_blasts import MESSAGE, compose, confirm, delivered, send_all, start_blast
from tests.test_replies import staff_reply, thread_texts

JANE = "4155550201"
OTHERS = ["4155550202", "3105550203"]
OPTED_OUT_IN_CRM_TEXT = ":no_entry: Opted out in CRM Text. No more texts will go to this number."
REVOKE_NOTICE = (
    ":no_entry: *Opt-out request.* This word revokes consent, so smsbridge is opting them out "
    "in CRM Text. Replies to this number are blocked."
)


def seed(harness: Harness) -> None:
    for phone in [JANE, *OTHERS]:
        harness.sim.add_customer("PIZZA", phone, status=OPTED_IN)


def opt_out_calls(harness: Harness) -> list[tuple[str, str]]:
    return [
        (c["keyword"], c["params"]["phone_number"])
        for c in harness.sim.calls
        if c["method"] == "optoutcustomer"
    ]


def status_here(harness: Harness, phone: str) -> int:
    customer = harness.services.storage.customers.find("PIZZA", "+1" + phone)
    assert customer is not None
    return int(customer["status"])


def blast_everyone(harness: Harness) -> None:
    """/sms-blast: the modal's audience sync, the confirmation, every send."""
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)


@pytest.mark.parametrize("word", ["Stop.", "STOP!!", "🛑STOP🛑", "Ｓｔｏｐ", " s t o p "])
def test_a_decorated_stop_opts_out_and_survives_the_audience_sync_and_the_blast(
    harness: Harness, word: str
) -> None:
    seed(harness)
    harness.text("PIZZA", JANE, word)
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_IN  # CRM Text ignored it
    harness.drain()

    assert opt_out_calls(harness) == [("PIZZA", JANE)]
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert parent.blocks[1]["text"]["text"] == f"> {word}"  # the card quotes the text
    assert parent.blocks[2]["elements"][0]["text"] == REVOKE_NOTICE
    assert [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]] == [
        OPTED_OUT_IN_CRM_TEXT
    ]
    customer = harness.services.storage.customers.find("PIZZA", "+1" + JANE)
    assert harness.services.storage.customers.consent_history(customer["id"])[-1]["how"] == (
        "texted STOP; smsbridge asks CRM Text to opt them out"
    )

    blast_everyone(harness)
    assert status_here(harness, JANE) == OPTED_OUT
    assert delivered(harness) == sorted((p, MESSAGE) for p in OTHERS)


def test_the_simulator_automates_only_the_bare_words(harness: Harness) -> None:
    """Like CRM Text (crmtext-api.md §4): STOP and QUIT alone, in any case; nothing else."""
    seed(harness)
    for text in ["Stop.", "STOP!!", "🛑STOP🛑", "Ｓｔｏｐ", " s t o p ", "stop please", "END"]:
        harness.sim.customer_texts("PIZZA", JANE, text)
        assert harness.sim.customer_status("PIZZA", JANE) == OPTED_IN, text
        assert harness.sim.callback_log[-1]["fields"]["optInStatus"] == "Opt-in"
    harness.sim.customer_texts("PIZZA", OTHERS[0], " quit ")
    assert harness.sim.customer_status("PIZZA", OTHERS[0]) == OPTED_OUT
    assert harness.sim.callback_log[-1]["fields"]["optInStatus"] == "Opt-out"


def test_a_bare_stop_crm_text_handled_is_not_pushed_again(harness: Harness) -> None:
    seed(harness)
    harness.text("PIZZA", JANE, "STOP")
    harness.text("PIZZA", JANE, "Stop.")  # CRM Text's callback already says Opt-out
    harness.drain()
    assert opt_out_calls(harness) == []
    stop_templates = [d for d in harness.sim.outbox if d.kind == "template" and d.phone == JANE]
    assert len(stop_templates) == 1  # one confirmation, as the rule allows


def test_end_mid_blast_gets_no_further_text_while_the_push_keeps_failing(
    harness: Harness,
) -> None:
    numbers, blast = start_blast(harness, 3)
    first = delivered(harness)[0][0]
    later = next(p for p in numbers if p != first)
    harness.sim.fail_next(1000, status=503, method="optoutcustomer")  # CRM Text keeps failing
    harness.text("PIZZA", later, "Ｅｎｄ")
    send_all(harness)

    assert later not in {p for p, _ in delivered(harness)}
    assert len(delivered(harness)) == 2
    assert status_here(harness, later) == OPTED_OUT
    assert harness.sim.customer_status("PIZZA", later) == OPTED_IN  # never reached CRM Text
    [push] = [j for j in harness.services.storage.jobs.rows() if j["kind"] == "crm_opt_out"]
    assert push["status"] == "pending" and push["attempts"] >= 2  # retried, still failing
    assert harness.services.storage.blasts.recipient_reasons(blast["id"], "skipped") == {
        "opted out during the blast": 1
    }
    [report] = [m for m in harness.slack.messages if m.text.startswith("Blast ")]
    assert report.text.endswith(": 2 sent, 0 failed, 1 skipped")
    assert "• skipped, opted out during the blast: 1" in [
        b["text"]["text"] for b in report.blocks if b["type"] == "section"
    ]


def test_an_unconfirmed_local_opt_out_survives_a_later_opt_in_callback(harness: Harness) -> None:
    seed(harness)
    harness.sim.fail_next(1000, status=503, method="optoutcustomer")
    harness.text("PIZZA", JANE, "Stop.")
    harness.drain()
    for text in ["ok thanks", "Yes"]:  # CRM Text still lists them: each callback says Opt-in
        harness.text("PIZZA", JANE, text)
        assert harness.sim.callback_log[-1]["fields"]["optInStatus"] == "Opt-in"
        harness.drain()
        assert status_here(harness, JANE) == OPTED_OUT, text
    customer = harness.services.storage.customers.find("PIZZA", "+1" + JANE)
    [event] = harness.services.storage.customers.consent_history(customer["id"])
    assert (event["status_to"], event["text"]) == (OPTED_OUT, "Stop.")

    harness.sim.fail_next(0)  # CRM Text is back: the push lands, the blast skips them
    for _ in range(4):
        harness.clock.advance(minutes=10)
        harness.drain()
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    blast_everyone(harness)
    assert JANE not in {p for p, _ in delivered(harness)}


def test_the_audience_sync_never_undoes_a_confirmed_opt_out(harness: Harness) -> None:
    seed(harness)
    harness.text("PIZZA", JANE, "unsubscribe")
    harness.drain()
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    harness.sim.add_customer("PIZZA", JANE, status=OPTED_IN)  # CRM Text's list says opted in
    blast_everyone(harness)
    assert status_here(harness, JANE) == OPTED_OUT
    assert JANE not in {p for p, _ in delivered(harness)}


def test_start_after_an_unpushed_opt_out_rejoins_and_the_push_is_dropped(
    harness: Harness,
) -> None:
    seed(harness)
    harness.sim.fail_next(2, status=503, method="optoutcustomer")
    harness.text("PIZZA", JANE, "unsubscribe")
    harness.drain()
    harness.text("PIZZA", JANE, "START")  # the customer's own opt-in
    harness.drain()
    assert status_here(harness, JANE) == OPTED_IN
    for _ in range(4):  # CRM Text is back: the queued push runs out its retries
        harness.clock.advance(minutes=10)
        harness.drain()
    customer = harness.services.storage.customers.find("PIZZA", "+1" + JANE)
    assert not harness.services.storage.jobs.has_pending(
        "crm_opt_out", "customer_id", customer["id"]
    )
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_IN  # not opted out behind them
    blast_everyone(harness)
    assert JANE in {p for p, _ in delivered(harness)}


HELD = (
    ":hourglass_flowing_sand: Not sent yet: this customer may have asked to stop texting. "
    "Press *Opt out* or *Not a stop request* on their text; this reply goes out if it was not "
    "a stop request."
)


def flagged_thread(harness: Harness) -> tuple[Message, dict[str, str]]:
    """Jane's text that may be a stop request, and its buttons by action id."""
    seed(harness)
    harness.text("PIZZA", JANE, "can you stop texting me so much")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    buttons = {e["action_id"]: e["value"] for e in parent.blocks[3]["elements"]}
    return parent, buttons


def sent_texts(harness: Harness) -> list[tuple[str, str]]:
    return [
        (c["params"]["phone_number"], c["params"]["message"])
        for c in harness.sim.calls
        if c["method"] == "sendsmsmsg"
    ]


def test_a_reply_to_a_flagged_customer_waits_for_not_a_stop_request(harness: Harness) -> None:
    parent, buttons = flagged_thread(harness)
    reply = staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    assert sent_texts(harness) == []
    assert thread_texts(harness, parent) == [reply.text, HELD]

    harness.press("not_a_stop_request", buttons["not_a_stop_request"], user="UKIM")
    harness.drain()
    assert sent_texts(harness) == [(JANE, "Sorry! Only order updates from now on, OK?")]
    assert thread_texts(harness, parent)[-1] == (
        ":ok_hand: <@UKIM> decided this was not a request to stop texting."
    )
    [flagged] = [
        m
        for m in harness.services.storage.conversations.thread_messages(
            harness.services.storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)["id"]
        )
        if m["intent"] == "soft_stop"
    ]
    assert (flagged["decision"], flagged["decided_by"]) == ("not_stop", "UKIM")


def test_a_reply_held_for_a_flagged_customer_is_not_sent_once_staff_opt_them_out(
    harness: Harness,
) -> None:
    parent, buttons = flagged_thread(harness)
    staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    assert sent_texts(harness) == []
    harness.press("opt_out_customer", buttons["opt_out_customer"], user="UKIM")
    harness.drain()
    assert sent_texts(harness) == []
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    assert thread_texts(harness, parent) == [
        "Sorry! Only order updates from now on, OK?",
        HELD,
        OPTED_OUT_IN_CRM_TEXT,
        ":x: Not sent: this customer opted out, so texting them is blocked. They can opt back "
        "in by texting START.",
    ]
    customer = harness.services.storage.customers.find("PIZZA", "+1" + JANE)
    event = harness.services.storage.customers.consent_history(customer["id"])[-1]
    assert (event["status_to"], event["actor"]) == (OPTED_OUT, "UKIM")


def test_a_held_reply_is_reported_not_sent_when_the_customer_then_texts_stop(
    harness: Harness,
) -> None:
    parent, _ = flagged_thread(harness)
    staff_reply(harness, parent, "Sorry! Only order updates from now on, OK?")
    harness.drain()
    harness.text("PIZZA", JANE, "STOP")
    harness.drain()
    assert sent_texts(harness) == []
    assert thread_texts(harness, parent)[-1] == (
        ":x: Not sent: this customer opted out, so texting them is blocked. They can opt back "
        "in by texting START."
    )
