"""Consent proof: an opt-out staff record for a request made by phone, e-mail or in person
(from the customer's thread and from the CLI), the ledger exported as CSV, and a customer's
consent history one click away in their thread."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.dev.fake_slack import Message
from bridge.store import OPTED_IN, OPTED_OUT, utcnow
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_replies import JANE, open_thread, sends, staff_reply

RECORDED = (
    ":no_entry: <@USAM> recorded that Jane Doe · (415) 555-0101 asked by phone not to be "
    "texted. They are opted out here and CRM Text is being told.\n"
    "Note: “Called at 3pm &amp; said &lt;stop&gt; texting her.”"
)
PUSHED = ":no_entry: Opted out in CRM Text. No more texts will go to this number."


def texts_in_thread(harness: Harness, parent: Message) -> list[str]:
    return [
        m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:] if not m.ephemeral_for
    ]


def card_button(harness: Harness, action_id: str) -> dict[str, Any]:
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    buttons = [e for b in parent.blocks if b["type"] == "actions" for e in b["elements"]]
    return next(e for e in buttons if e["action_id"] == action_id)


def press_on_card(harness: Harness, parent: Message, action_id: str, user: str = "USAM") -> None:
    button = card_button(harness, action_id)
    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {
                "type": "message",
                "message_ts": parent.ts,
                "channel_id": PIZZA_CHANNEL,
                "is_ephemeral": False,
            },
            "message": {"ts": parent.ts, "text": parent.text},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "thread_consent",
                    "value": button["value"],
                    "type": "button",
                }
            ],
        }
    )
    assert response.status_code == 200


def ledger(harness: Harness, phone: str = "+14155550101") -> list[dict[str, Any]]:
    customer = harness.services.storage.customers.find("PIZZA", phone)
    return harness.services.storage.customers.consent_history(customer["id"])


def opt_outs(harness: Harness) -> list[str]:
    return [
        c["params"]["phone_number"] for c in harness.sim.calls if c["method"] == "optoutcustomer"
    ]


# -- staff-recorded opt-out, from the thread --------------------------------------------------


def submit_opt_out(harness: Harness, view: dict[str, Any], how: str | None, note: str) -> Any:
    values: dict[str, Any] = {
        "how": {
            "how": {"type": "radio_buttons", "selected_option": {"value": how} if how else None}
        },
        "note": {"note": {"type": "plain_text_input", "value": note or None}},
    }
    return harness.sender.interaction(
        {
            "type": "view_submission",
            "user": {"id": "USAM"},
            "view": {**view, "state": {"values": values}},
        }
    )


def test_staff_record_an_opt_out_from_the_thread(harness: Harness) -> None:
    parent = open_thread(harness)
    press_on_card(harness, parent, "record_opt_out")
    view = harness.slack.views[list(harness.slack.views)[-1]]
    assert view["callback_id"] == "record_opt_out_form"
    assert [o["value"] for o in view["blocks"][1]["element"]["options"]] == [
        "phone",
        "email",
        "in-person",
        "other",
    ]
    answer = submit_opt_out(harness, view, "other", "")  # "other" needs a note
    assert answer.json() == {"response_action": "errors", "errors": {"note": "Say how they asked."}}
    assert opt_outs(harness) == []

    note = "Called at 3pm & said <stop> texting her."
    answer = submit_opt_out(harness, view, "phone", note)
    assert answer.status_code == 200 and answer.text == ""  # the modal closes
    harness.drain()

    assert opt_outs(harness) == [JANE]
    entry = ledger(harness)[-1]
    assert (entry["status_from"], entry["status_to"]) == (OPTED_IN, OPTED_OUT)
    assert entry["how"] == "staff recorded an opt-out the customer asked for by phone"
    assert (entry["text"], entry["actor"]) == (note, "USAM")
    assert texts_in_thread(harness, parent) == [RECORDED, PUSHED]
    [card] = harness.slack.top_level(PIZZA_CHANNEL)
    assert card.blocks[0]["text"]["text"].endswith("keyword PIZZA · opted out")
    assert [e["action_id"] for e in card.blocks[-1]["elements"]] == ["consent_history"]

    submit_opt_out(harness, view, "phone", note)  # the same submission again: nothing more
    harness.drain()
    assert opt_outs(harness) == [JANE]
    assert len(ledger(harness)) == 2
    reply = staff_reply(harness, parent, "Sorry to see you go")  # and nobody can text her now
    harness.drain()
    assert sends(harness) == [] and reply.ts


# -- staff-recorded opt-out, from the CLI -----------------------------------------------------


def cli_env(monkeypatch: pytest.MonkeyPatch, harness: Harness) -> None:
    config = harness.config
    values = {
        "SLACK_BOT_TOKEN": config.slack_bot_token,
        "SLACK_SIGNING_SECRET": config.slack_signing_secret,
        "SLACK_API_URL": config.slack_api_url,
        "CRMTEXT_USER": config.crmtext_user,
        "CRMTEXT_PASSWORD": config.crmtext_password,
        "CRMTEXT_API_URL": config.crmtext_api_url,
        "SMS_STORES": ",".join(f"{k}={v}" for k, v in config.stores.items()),
        "CALLBACK_TOKEN": config.callback_token,
        "PUBLIC_URL": config.public_url,
        "DATABASE_URL": config.database_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_staff_record_an_opt_out_from_the_cli(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.clock.now = utcnow()  # the CLI records at the real time; the app's jobs follow it
    parent = open_thread(harness)
    cli_env(monkeypatch, harness)
    command = [
        "consent",
        "opt-out",
        "--store",
        "pizza",
        "--phone",
        "(415) 555-0101",
        "--how",
        "in-person",
        "--note",
        "At the counter: no more texts <please>",
        "--by",
        "Dana <Manager>",
    ]
    assert main(command) == 0
    assert capsys.readouterr().out == (
        "(415) 555-0101 is opted out at PIZZA: recorded by Dana <Manager> (in person). CRM Text "
        "is told by the running smsbridge (job crm_opt_out); the customer's thread says so.\n"
    )
    harness.clock.now = utcnow()
    harness.drain()
    assert opt_outs(harness) == [JANE]
    entry = ledger(harness)[-1]
    assert (entry["status_to"], entry["actor"]) == (OPTED_OUT, "Dana <Manager>")
    assert entry["how"] == (
        "staff recorded an opt-out the customer asked for in person (smsbridge consent opt-out)"
    )
    assert entry["text"] == "At the counter: no more texts <please>"
    assert texts_in_thread(harness, parent) == [
        ":no_entry: Dana &lt;Manager&gt; recorded that Jane Doe · (415) 555-0101 asked in person "
        "not to be texted. They are opted out here and CRM Text is being told.\n"
        "Note: “At the counter: no more texts &lt;please&gt;”",
        PUSHED,
    ]

    assert main(command) == 0  # run again: nothing changes, CRM Text is not called again
    assert capsys.readouterr().out == (
        "(415) 555-0101 was already opted out at PIZZA; nothing changed.\n"
    )
    harness.drain()
    assert opt_outs(harness) == [JANE] and len(ledger(harness)) == 2


def test_the_cli_opt_out_of_a_number_smsbridge_never_saw_still_reaches_crm_text(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.clock.now = utcnow()
    harness.sim.add_customer("PIZZA", "4155550122", status=3)
    cli_env(monkeypatch, harness)
    assert main(
        ["consent", "opt-out", "--store", "PIZZA", "--phone", "4155550122", "--how", "email",
         "--by", "Dana"]
    ) == 0  # fmt: skip
    assert capsys.readouterr().out == (
        "(415) 555-0122 is opted out at PIZZA: recorded by Dana (by e-mail). CRM Text is told "
        "by the running smsbridge (job crm_opt_out).\n"
    )
    harness.clock.now = utcnow()
    harness.drain()
    assert opt_outs(harness) == ["4155550122"]
    assert harness.sim.customer_status("PIZZA", "4155550122") == OPTED_OUT


# -- the export -------------------------------------------------------------------------------


def seed_ledger(harness: Harness) -> None:
    """Four consent events at known times: two PIZZA customers and one of CARS."""
    storage, start = harness.services.storage, harness.clock()
    jane = storage.customers.upsert("PIZZA", "+14155550101", name="Jane Doe", now=start)
    bob = storage.customers.upsert("PIZZA", "+14155550102", name="=cmd|' /C calc'!A0", now=start)
    car = storage.customers.upsert("CARS", "+14155550103", name="Carl", now=start)
    storage.customers.set_status(jane["id"], OPTED_IN, how="texted PIZZA", text="pizza", now=start)
    storage.customers.set_status(
        bob["id"],
        OPTED_IN,
        how="staff confirmed consent and sent CRM Text's opt-in request",
        actor="USAM",
        now=start + timedelta(minutes=5),
    )
    storage.customers.set_status(car["id"], OPTED_IN, how="texted CARS", now=start)
    storage.customers.set_status(
        jane["id"],
        OPTED_OUT,
        how="staff recorded an opt-out the customer asked for by phone",
        text='Said "stop, please",\nthen hung up',
        actor="Dana",
        now=start + timedelta(days=1, seconds=30),
    )


HEADER = "when_utc,store,phone,customer,from_status,to_status,how,who,text\r\n"
ROWS = [
    "2026-11-24 18:00:00,PIZZA,+14155550101,Jane Doe,new guest,opted in,texted PIZZA,,pizza\r\n",
    "2026-11-24 18:05:00,PIZZA,+14155550102,'=cmd|' /C calc'!A0,new guest,opted in,staff "
    "confirmed consent and sent CRM Text's opt-in request,USAM,\r\n",
    "2026-11-25 18:00:30,PIZZA,+14155550101,Jane Doe,opted in,opted out,staff recorded an "
    'opt-out the customer asked for by phone,Dana,"Said ""stop, please"",\nthen hung up"\r\n',
]


def test_the_export_has_every_consent_event_of_the_store_as_csv(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_ledger(harness)
    cli_env(monkeypatch, harness)
    assert main(["consent", "export", "--store", "pizza"]) == 0
    printed = capsys.readouterr()
    assert printed.out == HEADER + "".join(ROWS)
    assert printed.err == "3 consent event(s) of PIZZA\n"


def test_the_export_from_a_date_into_a_file(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    seed_ledger(harness)
    cli_env(monkeypatch, harness)
    out = tmp_path / "consent.csv"
    assert (
        main(["consent", "export", "--store", "PIZZA", "--since", "2026-11-25", "--out", str(out)])
        == 0
    )
    assert out.read_bytes().decode() == HEADER + ROWS[2]
    assert main(["consent", "export", "--store", "PIZZA", "--since", "2026-11-24T18:01"]) == 0
    assert capsys.readouterr().out == HEADER + ROWS[1] + ROWS[2]
    assert main(["consent", "export", "--store", "PIZZA", "--since", "last week"]) == 2
    assert main(["consent", "export", "--store", "TACOS"]) == 2
    assert "TACOS is not a store in SMS_STORES" in capsys.readouterr().err


# -- the history in the thread ----------------------------------------------------------------


def test_consent_history_is_one_click_away_in_the_thread(harness: Harness) -> None:
    parent = open_thread(harness)  # CRM Text has Jane opted in: the callback says so
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    harness.services.storage.customers.set_status(
        customer["id"],
        OPTED_OUT,
        how="staff recorded an opt-out the customer asked for by e-mail",
        text="<@UALEX> & <!here> please stop",
        actor="USAM",
        now=harness.clock() + timedelta(minutes=10),
    )
    press_on_card(harness, parent, "consent_history", user="UALEX")
    harness.drain()
    [shown] = [m for m in harness.slack.messages if m.ephemeral_for == "UALEX"]
    assert shown.thread_ts == parent.ts
    assert shown.text == (
        ":scroll: *Consent history of Jane Doe · (415) 555-0101* (2 events, oldest first; "
        "now opted out):"
    )
    assert [b["text"]["text"] for b in shown.blocks] == [
        ":scroll: *Consent history of Jane Doe · (415) 555-0101* (2 events, oldest first; "
        "now opted out):\n"
        "• 2026-11-24 18:00 UTC · new guest → opted in · CRM Text callback says Opt-in · "
        "“Is my pizza on the way?”\n"
        "• 2026-11-24 18:10 UTC · opted in → opted out · staff recorded an opt-out the customer "
        "asked for by e-mail · by <@USAM> · “&lt;@UALEX&gt; &amp; &lt;!here&gt; please stop”"
    ]


def test_a_history_button_from_another_store_shows_nothing(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "message_ts": parent.ts},
            "actions": [
                {
                    "action_id": "consent_history",
                    "value": json.dumps({"keyword": "CARS", "phone": "+14155550101"}),
                    "type": "button",
                }
            ],
        }
    )
    harness.drain()
    [shown] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert shown.text == ":warning: That button does not belong to this channel's store."


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("not json", ":x: That button is out of date, so nothing was done."),
        (
            json.dumps({"keyword": "PIZZA", "phone": "+1555"}),
            ":x: That button is out of date, so nothing was done.",
        ),
        (
            json.dumps({"keyword": "PIZZA", "phone": "+14155550177"}),
            ":scroll: Nothing is recorded about (415) 555-0177's consent.",
        ),
    ],
)
def test_a_history_button_smsbridge_cannot_use_says_why(
    harness: Harness, value: str, answer: str
) -> None:
    harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "message_ts": "1.000001"},
            "actions": [{"action_id": "consent_history", "value": value, "type": "button"}],
        }
    )
    harness.drain()
    [shown] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert shown.text == answer
    assert harness.services.storage.customers.find("PIZZA", "+14155550177") is None
