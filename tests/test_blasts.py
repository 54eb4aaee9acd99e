"""/sms-blast: admin gate, live preflight, confirmation, paced exactly-once sending, controls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bridge.store import OPTED_IN, OPTED_OUT
from tests.conftest import CALLBACK_TOKEN, CARS_CHANNEL, PIZZA_CHANNEL, SIGNING_SECRET, Harness

OPTED_IN_NUMBERS = ["4155550201", "4155550202", "3105550203"]


def seed(harness: Harness, numbers: list[str] = OPTED_IN_NUMBERS) -> None:
    """CRM Text's list: opted-in, pending, opted-out and another store's customers."""
    for phone in numbers:
        harness.sim.add_customer("PIZZA", phone, status=3)
    harness.sim.add_customer("PIZZA", "4155550301", status=4)
    harness.sim.add_customer("PIZZA", "4155550302", status=5)
    harness.sim.add_customer("PIZZA", "4155550303", status=1)
    harness.sim.add_customer("CARS", "4155550304", status=3)


def blast_command(harness: Harness, text: str, user: str = "USAM") -> str:
    response = harness.sender.command("/sms-blast", text, user=user, channel=PIZZA_CHANNEL)
    assert response.status_code == 200
    return response.text


def open_view(harness: Harness) -> dict[str, Any]:
    view_id = (
        harness.slack.calls_to("views.open")[-1].args["view"] and list(harness.slack.views)[-1]
    )
    return harness.slack.views[view_id]


def preflight_text(view: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")


def state(text: str, append: bool = False) -> dict[str, Any]:
    options = [{"value": "append_opt_out"}] if append else []
    return {
        "message": {"blast_text": {"type": "plain_text_input", "value": text}},
        "options": {"blast_options": {"type": "checkboxes", "selected_options": options}},
        "image": {"file": {"type": "file_input", "files": []}},
    }


def submit(harness: Harness, view: dict[str, Any], values: dict[str, Any], user: str = "USAM"):
    payload = {
        "type": "view_submission",
        "user": {"id": user},
        "view": {**view, "state": {"values": values}},
    }
    return harness.sender.interaction(payload)


def compose(harness: Harness, text: str, append: bool = True) -> dict[str, Any]:
    """Open the modal, let the sync run, submit it, let the checks run; return the
    confirmation view the modal now shows."""
    blast_command(harness, text)
    harness.drain()
    view = open_view(harness)
    return submitted(harness, view, state(text, append))


def submitted(harness: Harness, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Submit the compose form: acknowledged with the "checking" view, then the checks run and
    the modal becomes the confirmation."""
    response = submit(harness, view, values)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update", answer
    assert preflight_text(answer["view"]) == (
        ":hourglass_flowing_sand: Checking the blast against every customer of the store. "
        "This form changes to the confirmation in a few seconds."
    )
    harness.drain()
    shown = harness.slack.views[view["id"]]
    assert shown["callback_id"] == "blast_confirm", preflight_text(shown)
    return shown


def confirm(
    harness: Harness, view: dict[str, Any], acks: list[str] | None = None, typed: str | None = None
):
    values: dict[str, Any] = {}
    if any(b.get("block_id") == "acks" for b in view["blocks"]):
        codes = (
            acks
            if acks is not None
            else [
                o["value"]
                for b in view["blocks"]
                if b.get("block_id") == "acks"
                for o in b["element"]["options"]
            ]
        )
        values["acks"] = {
            "acks": {"type": "checkboxes", "selected_options": [{"value": c} for c in codes]}
        }
    if typed is not None:
        values["typed_count"] = {"count": {"type": "plain_text_input", "value": typed}}
    return submit(harness, view, values)


def send_all(harness: Harness, steps: int = 50) -> None:
    for _ in range(steps):
        harness.drain()
        harness.clock.advance(seconds=1)


def delivered(harness: Harness) -> list[tuple[str, str]]:
    """What reached the customers' phones from single sends."""
    return sorted((d.phone, d.text) for d in harness.sim.outbox if d.kind == "sms")


def texts_to(harness: Harness) -> list[tuple[str, str]]:
    return sorted(
        (c["params"]["phone_number"], c["params"]["message"])
        for c in harness.sim.calls
        if c["method"] == "sendsmsmsg"
    )


def start_blast(harness: Harness, count: int) -> tuple[list[str], dict[str, Any]]:
    """``count`` opted-in customers, a confirmed blast, and its first text sent."""
    numbers = [f"41555502{n:02d}" for n in range(count)]
    seed(harness, numbers)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    return numbers, harness.services.storage.blasts.rows("PIZZA")[0]


MESSAGE = "Main St Pizza: 2 large pizzas for $20 this Friday! Reply STOP to opt out"


def test_non_admin_is_refused_and_nothing_is_sent(harness: Harness) -> None:
    seed(harness)
    answer = blast_command(harness, MESSAGE, user="UALEX")
    assert answer == "Only blast admins can text every customer: <@USAM>. Ask one of them."
    harness.drain()
    assert harness.slack.calls_to("views.open") == []
    assert texts_to(harness) == []


def test_blast_outside_a_store_channel_explains(harness: Harness) -> None:
    response = harness.sender.command("/sms-blast", "hi", user="USAM", channel="CELSE001")
    assert response.text == "`/sms-blast` works in a store channel: <#CPIZZA01>, <#CCARS001>."


def test_one_text_per_opted_in_customer_and_none_to_anyone_else(harness: Harness) -> None:
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    assert view["callback_id"] == "blast_confirm"
    summary = preflight_text(view)
    assert "*3 recipients* · GSM-7 · 1 segment × 3 = 3 SMS" in summary
    assert f"*As it will arrive:*\n> {MESSAGE}" in summary
    assert "Not included: 1 opted out, 1 opt-in pending." in summary
    response = confirm(harness, view)
    assert response.status_code == 200 and response.text == ""
    send_all(harness)

    assert texts_to(harness) == sorted((p, MESSAGE) for p in OPTED_IN_NUMBERS)
    [blast] = harness.services.storage.blasts.rows("PIZZA")
    assert (blast["status"], blast["confirmed_by"], blast["mode"]) == ("done", "USAM", "individual")
    [progress] = [m for m in harness.slack.top_level(PIZZA_CHANNEL) if m.ts == blast["progress_ts"]]
    assert progress.blocks[0]["text"]["text"].endswith(
        "— done\n`▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓` 3 sent · 0 failed · 0 skipped · 0 to go, of 3"
    )
    assert harness.slack.top_level(CARS_CHANNEL) == []


def test_individual_sends_are_paced_one_per_second(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    assert len(texts_to(harness)) == 1  # the next step waits a second
    harness.clock.advance(seconds=0.5)
    harness.drain()
    assert len(texts_to(harness)) == 1
    harness.clock.advance(seconds=0.6)
    harness.drain()
    assert len(texts_to(harness)) == 2


def test_appending_the_opt_out_line_is_recounted(harness: Harness) -> None:
    seed(harness)
    text = "Main St Pizza: new menu is live"
    view = compose(harness, text, append=True)
    assert f"> {text}\n> Reply STOP to opt out" in preflight_text(view)
    confirm(harness, view)
    send_all(harness)
    assert {m for _, m in texts_to(harness)} == {f"{text}\nReply STOP to opt out"}


def test_double_submission_launches_once(harness: Harness) -> None:
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    first = confirm(harness, view)
    second = confirm(harness, view)
    assert first.text == ""
    assert second.json()["view"]["blocks"][0]["text"]["text"] == (
        ":x: This blast was already confirmed; it is not sent twice."
    )
    send_all(harness)
    assert len(texts_to(harness)) == 3


def test_second_blast_while_one_runs_is_refused(harness: Harness) -> None:
    seed(harness)
    first = compose(harness, MESSAGE, append=False)
    second = compose(harness, "Main St Pizza: another offer. Reply STOP to opt out", append=False)
    confirm(harness, first)
    harness.drain()
    answer = confirm(harness, second).json()
    assert (
        "is still running for this store. A store runs one blast at a time."
        in (answer["view"]["blocks"][0]["text"]["text"])
    )


def test_kill_and_restart_mid_blast_sends_the_rest_exactly_once(harness: Harness) -> None:
    numbers = [f"41555502{n:02d}" for n in range(10)]
    seed(harness, numbers)
    confirm(harness, compose(harness, MESSAGE, append=False))
    for _ in range(4):
        harness.drain()
        harness.clock.advance(seconds=1)
    assert len(texts_to(harness)) == 4
    # The process dies right after CRM Text accepted the 5th text, before it was recorded.
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    nxt = harness.services.storage.blasts.recipients(blast["id"], "pending")[0]
    harness.services.storage.blasts.update_recipient(
        blast["id"], nxt["customer_id"], attempted_at="2026-11-24T18:00:04+00:00"
    )
    harness.services.crm.send_sms("PIZZA", nxt["phone"], MESSAGE)
    harness.restart()
    send_all(harness, 20)
    assert delivered(harness) == sorted((p, MESSAGE) for p in numbers)  # once each, 5th included
    assert harness.services.storage.blasts.recipient_counts(blast["id"]) == {"sent": 10}


def test_cancel_stops_further_sends(harness: Harness) -> None:
    numbers = [f"41555502{n:02d}" for n in range(6)]
    seed(harness, numbers)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    harness.clock.advance(seconds=1)
    harness.drain()
    assert len(texts_to(harness)) == 2
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    [progress] = [m for m in harness.slack.messages if m.ts == blast["progress_ts"]]
    cancel = next(e for e in progress.blocks[-1]["elements"] if e["action_id"] == "blast_cancel")
    harness.press("blast_cancel", cancel["value"])
    send_all(harness, 10)
    assert len(texts_to(harness)) == 2
    [progress] = [m for m in harness.slack.messages if m.ts == blast["progress_ts"]]
    text = progress.blocks[0]["text"]["text"]
    assert "— cancelled" in text and "2 sent · 0 failed · 4 skipped · 0 to go, of 6" in text
    assert progress.blocks[2]["text"]["text"] == "• skipped, cancelled: 4"


def test_non_admin_cannot_press_the_controls(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    harness.press("blast_cancel", str(blast["id"]), user="UALEX")
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "sending"
    harness.drain()  # the answer is a durable Slack job
    [ephemeral] = [m for m in harness.slack.messages if m.ephemeral_for == "UALEX"]
    assert ephemeral.text.startswith("Only blast admins can text every customer")


def test_campaign_mode_above_700_recipients(harness: Harness) -> None:
    numbers = [f"41555{n:05d}" for n in range(10000, 10701)]
    seed(harness, numbers)
    view = compose(harness, MESSAGE, append=False)
    assert "*701 recipients*" in preflight_text(view)
    assert "one CRM Text campaign" in preflight_text(view)
    assert "Type the number of recipients (701) to confirm." in confirm(harness, view).text
    assert confirm(harness, view, typed="701").text == ""
    harness.drain()
    [call] = [c for c in harness.sim.calls if c["method"] == "sendcampaign"]
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert call["params"]["name"] == f"smsbridge-PIZZA-{blast['id']}"
    assert call["params"]["message"] == MESSAGE
    assert texts_to(harness) == []
    assert len([d for d in harness.sim.outbox if d.kind == "campaign"]) == 701
    assert harness.services.storage.blasts.recipient_counts(blast["id"]) == {"sent": 701}


def test_reply_to_a_blast_in_an_open_thread_is_marked(harness: Harness) -> None:
    seed(harness)
    harness.text("PIZZA", "4155550202", "Do you have gluten-free crust?")
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    harness.text("PIZZA", "4155550202", "Count me in")
    harness.drain()
    parent = harness.slack.top_level(PIZZA_CHANNEL)[0]
    [reply] = [m for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert reply.text == "Count me in"
    assert reply.blocks[1]["elements"][0]["text"] == (
        f":loudspeaker: Reply to blast “{blast['name']}”"
    )


def test_replies_to_a_blast_land_in_the_customers_thread_marked(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    harness.text("PIZZA", "4155550201", "Save me two!")
    harness.drain()
    parent = harness.slack.top_level(PIZZA_CHANNEL)[-1]
    assert parent.text == "Text from (415) 555-0201: Save me two!"
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    labels = [b["elements"][0]["text"] for b in parent.blocks if b["type"] == "context"]
    assert f":loudspeaker: Reply to blast “{blast['name']}”" in labels


# -- the preflight shown in the modal -------------------------------------------------------


def modal_for(harness: Harness, text: str) -> str:
    seed(harness)
    blast_command(harness, text)
    harness.drain()
    return preflight_text(open_view(harness))


def test_modal_preflight_gsm7(harness: Harness) -> None:
    shown = modal_for(harness, MESSAGE)
    assert ":mag: *Preflight* — *3 recipients* · GSM-7 · 1 segment × 3 = 3 SMS" in shown
    assert ":no_entry:" not in shown


def test_modal_preflight_ucs2_lists_the_character(harness: Harness) -> None:
    shown = modal_for(harness, "Main St Pizza: we’re open late! Reply STOP to opt out")
    assert "UCS-2" in shown
    assert "’" in shown and "'" in shown


def test_modal_preflight_over_1600_blocks(harness: Harness) -> None:
    shown = modal_for(harness, "Main St Pizza " + "x" * 1600)
    assert ":no_entry:" in shown and "1,600" in shown


def test_modal_preflight_missing_opt_out_wording(harness: Harness) -> None:
    shown = modal_for(harness, "Main St Pizza: pizza party tonight")
    assert ":warning:" in shown and "Reply STOP to opt out" in shown


def test_modal_preflight_shortener_link_blocks(harness: Harness) -> None:
    shown = modal_for(harness, "Main St Pizza menu: https://bit.ly/abc123 Reply STOP to opt out")
    assert ":no_entry:" in shown and "bit.ly" in shown


@pytest.mark.parametrize(
    ("numbers", "blocked"),
    [(["3055550401", "4155550402"], True), (["4155550402"], False)],
    ids=["florida-and-california", "california-only"],
)
def test_modal_preflight_quiet_hours_at_fixed_times(
    harness: Harness, numbers: list[str], blocked: bool
) -> None:
    harness.clock.now = datetime(2026, 11, 25, 1, 15, tzinfo=UTC)  # 8:15 PM Miami, 5:15 PM SF
    seed(harness, numbers)
    blast_command(harness, MESSAGE)
    harness.drain()
    shown = preflight_text(open_view(harness))
    quiet = [line for line in shown.splitlines() if "Florida allows" in line]
    assert bool(quiet) is blocked
    if blocked:
        assert quiet[0].startswith(":no_entry:")
        assert "It is 8:15 PM in Florida (America/New_York)" in quiet[0]


def test_modal_preflight_third_blast_of_the_month_needs_acknowledgement(harness: Harness) -> None:
    seed(harness)
    for n in range(2):
        confirm(harness, compose(harness, f"Main St Pizza deal {n}. Reply STOP to opt out", False))
        send_all(harness, 6)
        harness.clock.advance(hours=24)
    view = compose(harness, "Main St Pizza deal 3. Reply STOP to opt out", append=False)
    acks = [b for b in view["blocks"] if b.get("block_id") == "acks"]
    assert [o["value"] for o in acks[0]["element"]["options"]] == ["frequency"]
    refused = confirm(harness, view, acks=[]).json()
    assert refused["errors"]["acks"] == "Tick every warning to confirm you have read it."
    assert confirm(harness, view).text == ""


def test_modal_preflight_same_text_within_12_hours_blocks(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness, 6)
    harness.clock.advance(hours=2)
    blast_command(harness, MESSAGE)
    harness.drain()
    shown = preflight_text(open_view(harness))
    assert ":no_entry:" in shown and "12 hours" in shown
    view = open_view(harness)
    refused = submit(harness, view, state(MESSAGE)).json()
    assert refused["response_action"] == "errors" and "12 hours" in refused["errors"]["message"]


def test_live_preflight_updates_as_the_admin_types(harness: Harness) -> None:
    seed(harness)
    blast_command(harness, "")
    harness.drain()
    view = open_view(harness)
    harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "view": {
                **view,
                "state": {"values": state("Main St Pizza: hi 👋 Reply STOP to opt out")},
            },
            "actions": [
                {
                    "action_id": "blast_text",
                    "block_id": "message",
                    "type": "plain_text_input",
                    "value": "Main St Pizza: hi 👋 Reply STOP to opt out",
                }
            ],
        }
    )
    harness.drain()
    updated = harness.slack.views[view["id"]]
    assert "UCS-2" in preflight_text(updated)


def test_local_opt_out_blocks_until_pushed_to_crm_text(harness: Harness) -> None:
    seed(harness)
    harness.text("PIZZA", "4155550201", "unsubscribe")  # revocation: smsbridge must opt them out
    harness.sim.fail_next(1, status=503, method="optoutcustomer")  # not passed on yet
    blast_command(harness, MESSAGE)
    harness.drain()
    shown = preflight_text(open_view(harness))
    assert ":no_entry: *1 opt-out request not passed on to CRM Text yet*" in shown
    harness.clock.advance(minutes=5)
    harness.drain()
    customer = harness.services.storage.customers.find("PIZZA", "+14155550201")
    assert customer["status"] == OPTED_OUT
    assert harness.sim.customer_status("PIZZA", "4155550201") == OPTED_OUT


def modal_for_no_seed(harness: Harness, text: str) -> str:
    """The modal's preflight once it has run (it runs after the modal opens)."""
    blast_command(harness, text)
    harness.drain()
    return preflight_text(open_view(harness))


def test_blasts_command_lists_blasts(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CRMTEXT_USER": "u",
        "CRMTEXT_PASSWORD": "p",
        "SMS_STORES": "PIZZA=CPIZZA01",
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": "https://x.example",
        "DATABASE_URL": harness.config.database_url,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["blasts"]) == 0
    out = capsys.readouterr().out
    assert "PIZZA 2026-11-24 18:00 UTC done      by USAM · individual · 3 sent, 0 failed" in out
    assert json.dumps(MESSAGE)[1:-1] in out


def test_individual_blast_stops_at_quiet_hours_and_resumes_next_window(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 25, 4, 59, 57, tzinfo=UTC)  # 8:59:57 PM in California
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    assert "texted when their window opens" in json.dumps(view)
    confirm(harness, view)
    send_all(harness, 5)
    assert len(delivered(harness)) == 2  # 8:59:57 and 8:59:58; 8:59:59 would end at 9 PM
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "sending"
    harness.clock.now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 8:00 AM in California
    send_all(harness, 3)
    assert len(delivered(harness)) == 3
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "done"


def test_pause_and_resume(harness: Harness) -> None:
    numbers, blast = start_blast(harness, 4)

    harness.press("blast_pause", str(blast["id"]))
    send_all(harness, 5)
    assert len(delivered(harness)) == 1
    [progress] = [m for m in harness.slack.messages if m.ts == blast["progress_ts"]]
    assert "— paused" in progress.blocks[0]["text"]["text"]
    assert [e["action_id"] for e in progress.blocks[-1]["elements"]] == [
        "blast_resume",
        "blast_cancel",
    ]
    harness.press("blast_resume", str(blast["id"]))
    send_all(harness, 6)
    assert len(delivered(harness)) == 4


def test_slack_failing_progress_updates_never_stop_the_sends(harness: Harness) -> None:
    numbers = [f"41555502{n:02d}" for n in range(5)]
    seed(harness, numbers)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.slack.fail_next("chat.postMessage", status=200, error="channel_not_found", times=1)
    harness.slack.fail_next("chat.update", status=200, error="msg_too_long", times=20)
    send_all(harness, 10)
    assert delivered(harness) == sorted((p, MESSAGE) for p in numbers)
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "done"


def test_a_stale_copy_of_a_step_never_starts_a_second_chain(harness: Harness) -> None:
    numbers, blast = start_blast(harness, 4)
    # A worker that died after scheduling its successor runs its step again.
    harness.services.storage.jobs.enqueue(
        "blast_step", {"blast_id": blast["id"], "seq": 1}, queue="stale", now=harness.clock()
    )
    harness.drain()
    assert len(texts_to(harness)) == 1  # the stale step did not text the next customer early
    send_all(harness, 8)
    assert texts_to(harness) == sorted((p, MESSAGE) for p in numbers)


def test_one_failing_number_never_stops_the_rest(harness: Harness) -> None:
    seed(harness)
    harness.services.crm.send_sms("PIZZA", "4155550202", MESSAGE)  # CRM Text will call it a dup
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    assert delivered(harness) == sorted((p, MESSAGE) for p in OPTED_IN_NUMBERS)
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert harness.services.storage.blasts.recipient_counts(blast["id"]) == {"sent": 2, "failed": 1}
    [progress] = [m for m in harness.slack.messages if m.ts == blast["progress_ts"]]
    assert progress.blocks[2]["text"]["text"] == ("• failed, CRM Text 12-hour duplicate block: 1")


def test_crm_text_outage_pauses_the_blast_and_resume_finishes_it(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    assert len(delivered(harness)) == 1
    harness.sim.fail_next(40)
    for _ in range(25):
        harness.clock.advance(minutes=6)
        harness.drain()
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "paused"
    [progress] = [m for m in harness.slack.messages if m.ts == blast["progress_ts"]]
    assert "— paused" in progress.blocks[0]["text"]["text"]
    assert "Press Resume to continue where it stopped." in progress.blocks[2]["text"]["text"]
    harness.sim.fail_next(0)
    harness.press("blast_resume", str(blast["id"]), user="USAM")
    send_all(harness, 6)
    assert delivered(harness) == sorted((p, MESSAGE) for p in OPTED_IN_NUMBERS)
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "done"


def test_an_undecided_stop_request_blocks_blasts_until_staff_decide(harness: Harness) -> None:
    seed(harness)
    harness.text("PIZZA", "4155550201", "can you stop texting me so much")
    harness.drain()
    shown = modal_for_no_seed(harness, MESSAGE)
    assert ":no_entry: *1 text may be a request to stop, with no decision yet*" in shown
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    keep = next(e for e in parent.blocks[3]["elements"] if e["action_id"] == "not_a_stop_request")
    harness.press("not_a_stop_request", keep["value"], user="USAM")
    harness.drain()
    assert harness.slack.thread(PIZZA_CHANNEL, parent.ts)[-1].text == (
        ":ok_hand: <@USAM> decided this was not a request to stop texting."
    )
    shown = modal_for_no_seed(harness, MESSAGE)
    assert "may be a request to stop" not in shown
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    assert len(delivered(harness)) == 3


def test_slack_refusing_to_open_the_form_is_explained_not_a_500(harness: Harness) -> None:
    harness.slack.fail_next("views.open", status=200, error="expired_trigger_id")
    assert blast_command(harness, MESSAGE) == (
        "Slack did not open the blast form (expired_trigger_id). Please run /sms-blast again."
    )


def test_a_stop_request_arriving_mid_blast_skips_that_customer(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    first = delivered(harness)[0][0]
    other = next(p for p in OPTED_IN_NUMBERS if p != first)
    harness.text("PIZZA", other, "please stop texting me")
    send_all(harness)
    assert other not in {p for p, _ in delivered(harness)}
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    assert harness.services.storage.blasts.recipient_reasons(blast["id"], "skipped") == {
        "asked to stop; no decision yet": 1
    }


def test_a_campaign_whose_request_may_have_landed_is_never_sent_again(harness: Harness) -> None:
    numbers = [f"41555{n:05d}" for n in range(10000, 10701)]
    seed(harness, numbers)
    view = compose(harness, MESSAGE, append=False)
    harness.sim.fail_next(1, status=504, method="sendcampaign")  # it went out; the answer didn't
    assert confirm(harness, view, typed="701").text == ""
    for _ in range(4):
        harness.drain()
        harness.clock.advance(seconds=30)
    assert len([c for c in harness.sim.calls if c["method"] == "sendcampaign"]) == 1
    assert len([d for d in harness.sim.outbox if d.kind == "campaign"]) == 701  # once each
    assert texts_to(harness) == []
    blast = harness.services.storage.blasts.rows("PIZZA")[0]
    done = harness.services.storage.blasts.get(blast["id"])
    assert done["status"] == "done" and "not sent again" in done["report"]


def test_sending_outside_allowed_hours_needs_its_own_tick(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # 9:30 PM in California
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    ticks = [
        o["value"]
        for b in view["blocks"]
        if b.get("block_id") == "acks"
        for o in b["element"]["options"]
    ]
    assert "quiet_hours" in ticks
    refused = confirm(harness, view, acks=[t for t in ticks if t != "quiet_hours"]).json()
    assert refused["errors"]["acks"] == "Tick every warning to confirm you have read it."
    assert confirm(harness, view).text == ""
    send_all(harness, 3)
    assert delivered(harness) == []  # nobody is texted before 8 AM their time


def test_a_blast_with_a_picture_goes_out_as_mms(harness: Harness) -> None:
    import io

    from PIL import Image

    seed(harness)
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "red").save(buffer, "PNG")
    file = harness.slack.add_file("FBLAST", buffer.getvalue(), "image/png", "sale.png")
    blast_command(harness, MESSAGE)
    harness.drain()
    view = open_view(harness)
    values = state(MESSAGE)
    values["image"]["file"]["files"] = [file]
    confirm(harness, submitted(harness, view, values))
    send_all(harness)
    calls = [c for c in harness.sim.calls if c["method"] == "sendsmsmsg"]
    assert len(calls) == 3
    urls = {c["params"]["mmsurl"] for c in calls}
    assert len(urls) == 1
    [url] = urls
    assert url.startswith("https://bridge.example.com/media/") and url.endswith(".png")
    served = httpx.get(harness.server.url + url.removeprefix("https://bridge.example.com"))
    assert served.status_code == 200 and served.content == buffer.getvalue()


def test_a_failed_opt_out_push_keeps_blocking_after_housekeeping(harness: Harness) -> None:
    """Consent lives on the customer: housekeeping dropping the failed optoutcustomer job a
    month later must not let the next audience sync opt the customer back in and text them."""
    seed(harness)
    harness.sim.fail_next(1, status=401, method="optoutcustomer")  # CRM Text refuses the push
    harness.text("PIZZA", "4155550201", "unsubscribe")
    harness.drain()
    assert [
        j["status"] for j in harness.services.storage.jobs.rows() if j["kind"] == "crm_opt_out"
    ] == ["failed"]
    assert harness.sim.customer_status("PIZZA", "4155550201") == OPTED_IN  # CRM Text: still in
    harness.clock.advance(days=31)
    harness.restart()  # start-up housekeeping deletes jobs finished 30 days ago
    assert not any(j["kind"] == "crm_opt_out" for j in harness.services.storage.jobs.rows())
    confirm(harness, compose(harness, MESSAGE, append=False))
    send_all(harness)
    assert "4155550201" not in {p for p, _ in delivered(harness)}
    assert {p for p, _ in delivered(harness)} == set(OPTED_IN_NUMBERS) - {"4155550201"}
    customer = harness.services.storage.customers.find("PIZZA", "+14155550201")
    assert customer["status"] == OPTED_OUT
    assert harness.sim.customer_status("PIZZA", "4155550201") == OPTED_OUT  # pushed again
