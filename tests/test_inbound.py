"""Customer texts land in one Slack thread per customer: through the simulator's real callback."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.dev.fake_slack import FakeSlack
from bridge.store import OPTED_IN, OPTED_OUT
from tests.conftest import CARS_CHANNEL, PIZZA_CHANNEL, Harness

JANE = "4155550101"
BOB = "4155550102"


def parents(slack: FakeSlack, channel: str = PIZZA_CHANNEL) -> list:
    return slack.top_level(channel)


def replies(slack: FakeSlack, parent_ts: str, channel: str = PIZZA_CHANNEL) -> list:
    return slack.thread(channel, parent_ts)[1:]


def test_first_text_opens_a_thread_with_the_customer_card(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.drain()

    [parent] = parents(harness.slack)
    assert parent.text == "Text from Jane Doe · (415) 555-0101: Is my pizza on the way?"
    card = parent.blocks[0]["text"]["text"]
    assert card == (
        ":speech_balloon: *Jane Doe · (415) 555-0101*\nMain St Pizza · keyword PIZZA · opted in"
    )
    assert parent.blocks[1]["text"]["text"] == "> Is my pizza on the way?"
    thread = harness.services.storage.conversations.thread_by_ts(PIZZA_CHANNEL, parent.ts)
    assert parent.metadata == {
        "event_type": "smsbridge_thread",
        "event_payload": {
            "store": "PIZZA",
            "phone": "+14155550101",
            "thread_key": thread["thread_key"],
        },
    }
    assert replies(harness.slack, parent.ts) == []


def test_second_text_lands_in_the_same_thread_as_the_customer(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.text("PIZZA", JANE, "Is my pizza on the way?")
    harness.text("PIZZA", JANE, "Also, extra napkins please")
    harness.text("PIZZA", JANE, "Thanks!")
    harness.drain()

    [parent] = parents(harness.slack)
    texts = [(m.text, m.username) for m in replies(harness.slack, parent.ts)]
    assert texts == [
        ("Also, extra napkins please", "Jane Doe · (415) 555-0101"),
        ("Thanks!", "Jane Doe · (415) 555-0101"),
    ]


def test_another_number_opens_another_thread(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.sim.add_customer("PIZZA", BOB, status=3)
    harness.text("PIZZA", JANE, "Hi from Jane")
    harness.text("PIZZA", BOB, "Hi from Bob")
    harness.text("PIZZA", JANE, "Jane again")
    harness.drain()

    jane, bob = parents(harness.slack)
    assert jane.text == "Text from Jane Doe · (415) 555-0101: Hi from Jane"
    assert bob.text == "Text from (415) 555-0102: Hi from Bob"
    assert [m.text for m in replies(harness.slack, jane.ts)] == ["Jane again"]
    assert replies(harness.slack, bob.ts) == []


def test_another_stores_keyword_lands_in_its_channel(harness: Harness) -> None:
    harness.sim.add_customer("CARS", JANE, status=3, name="Jane Doe")
    harness.text("CARS", JANE, "When can I test drive the sedan?")
    harness.drain()

    assert parents(harness.slack, PIZZA_CHANNEL) == []
    [parent] = parents(harness.slack, CARS_CHANNEL)
    assert parent.text == "Text from Jane Doe · (415) 555-0101: When can I test drive the sedan?"
    assert "Bay Cars · keyword CARS" in parent.blocks[0]["text"]["text"]


def test_duplicate_msgid_is_posted_once(harness: Harness) -> None:
    form = {
        "custID": "7001",
        "message": "hello once",
        "keyword": "PIZZA",
        "mobileNum": JANE,
        "optInStatus": "Opt-in",
        "timeStamp": "2026-11-24 10:00:00",
        "subacct": "1001",
        "custName": "",
        "msgID": "555001",
        "subacct_name": "Main St Pizza",
    }
    first = httpx.post(harness.callback_url(), data=form)
    second = httpx.post(harness.callback_url(), data=form)
    harness.drain()

    assert (first.status_code, second.status_code) == (200, 200)
    assert [m.text for m in parents(harness.slack)] == ["Text from (415) 555-0101: hello once"]
    assert len(harness.slack.calls_to("chat.postMessage")) == 1


def test_urlencoded_callback_with_lowercase_fields_and_trailing_junk(harness: Harness) -> None:
    form = {
        "custid": "7001",
        "message": "lower-case fields",
        "keyword": "pizza",
        "mobilenum": "4155550101\x00junk",
        "optinstatus": "opt-in",
        "timestamp": "2026-07-04 09:30:00",
        "msgid": "555002",
    }
    response = httpx.post(harness.callback_url(), data=form)
    harness.drain()

    assert response.status_code == 200
    [parent] = parents(harness.slack)
    assert parent.text == "Text from (415) 555-0101: lower-case fields"
    stored = harness.services.storage.conversations.message_by_provider_id("PIZZA", "555002")
    assert stored is not None
    assert stored["provider_time"] == "2026-07-04T16:30:00.000000+00:00"  # PDT is UTC-7


def test_multipart_callback_from_the_simulator_is_read(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "multipart please")
    [entry] = harness.sim.callback_log
    assert entry["content_type"].startswith("multipart/form-data")
    harness.drain()
    assert [m.text for m in parents(harness.slack)] == [
        "Text from (415) 555-0101: multipart please"
    ]


def test_mms_picture_is_uploaded_into_the_thread(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    harness.text("PIZZA", JANE, "Is this the right box?")
    picture = f"{harness.sim.url}/_sim/media/box"  # type: ignore[attr-defined]
    harness.text("PIZZA", JANE, "Here it is", media=[("image/png", picture)])
    harness.drain()

    [parent] = parents(harness.slack)
    thread = replies(harness.slack, parent.ts)
    assert [m.text for m in thread if not m.files] == ["Here it is"]
    [upload] = [m for m in thread if m.files]
    assert upload.thread_ts == parent.ts
    [file] = upload.files
    content = harness.slack.uploaded[file["id"]]
    assert content.startswith(b"\x89PNG")


def test_mms_that_cannot_be_downloaded_posts_the_link(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first")
    broken = f"{harness.sim.url}/no-such-picture"  # type: ignore[attr-defined]
    harness.text("PIZZA", JANE, "", media=[("image/jpeg", broken)])
    harness.drain()

    [parent] = parents(harness.slack)
    assert [m.text for m in replies(harness.slack, parent.ts)] == [
        "(sent 1 picture)",
        ":frame_with_picture: Picture 1 could not be uploaded to Slack (the picture host "
        f"answered 404): <{broken}|open it>",
    ]


@pytest.mark.parametrize("word", ["STOP", "quit", " stop "])  # bare: CRM Text acts on these
def test_stop_marks_the_customer_opted_out(harness: Harness, word: str) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hello")
    harness.text("PIZZA", JANE, word)
    harness.drain()

    [parent] = parents(harness.slack)
    [reply] = replies(harness.slack, parent.ts)
    assert reply.text == word
    assert reply.blocks[1]["elements"][0]["text"].startswith(
        ":no_entry: *Opted out.* They texted STOP"
    )
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == OPTED_OUT
    assert parent.blocks[0]["text"]["text"].endswith("Main St Pizza · keyword PIZZA · opted out")
    ledger = harness.services.storage.customers.consent_history(customer["id"])
    assert ledger[-1]["how"] == f"texted {word.strip(' .').upper()}; CRM Text opted them out"
    # CRM Text did it itself: smsbridge made no optoutcustomer call.
    assert [c for c in harness.sim.calls if c["method"] == "optoutcustomer"] == []


@pytest.mark.parametrize(
    "word",
    [
        "END",
        "revoke",
        "Opt Out",
        "OPTOUT",
        "cancel",
        "Unsubscribe",
        "STOPALL",
        "opt-out!",
        "  end  ",
    ],
)
def test_revocation_words_make_smsbridge_opt_the_customer_out(harness: Harness, word: str) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, word)
    harness.drain()

    [parent] = parents(harness.slack)
    notice = parent.blocks[2]["elements"][0]["text"]
    assert notice.startswith(":no_entry: *Opt-out request.*")
    [call] = [c for c in harness.sim.calls if c["method"] == "optoutcustomer"]
    assert (call["keyword"], call["params"]["phone_number"]) == ("PIZZA", JANE)
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    [done] = replies(harness.slack, parent.ts)
    assert done.text == ":no_entry: Opted out in CRM Text. No more texts will go to this number."
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == OPTED_OUT


def test_soft_stop_request_is_flagged_with_an_opt_out_button(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hi")
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.drain()

    [parent] = parents(harness.slack)
    [reply] = replies(harness.slack, parent.ts)
    assert reply.text == "please stop texting me"
    assert reply.blocks[1]["elements"][0]["text"] == (
        ":warning: *This may be a request to stop texting.* If it is, opt them out."
    )
    button = reply.blocks[2]["elements"][0]
    assert (button["action_id"], button["text"]["text"]) == ("opt_out_customer", "Opt out")
    assert harness.services.storage.customers.find("PIZZA", "+14155550101")["status"] == OPTED_IN
    assert [c for c in harness.sim.calls if c["method"] == "optoutcustomer"] == []

    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "container": {"type": "message", "channel_id": PIZZA_CHANNEL, "message_ts": reply.ts},
            "channel": {"id": PIZZA_CHANNEL},
            "message": {"ts": reply.ts},
            "actions": [
                {
                    "action_id": "opt_out_customer",
                    "block_id": "opt_out_2",
                    "value": button["value"],
                    "type": "button",
                }
            ],
        }
    )
    assert response.status_code == 200
    harness.drain()
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert harness.services.storage.customers.consent_history(customer["id"])[-1]["actor"] == "USAM"
    assert replies(harness.slack, parent.ts)[-1].text == (
        ":no_entry: Opted out in CRM Text. No more texts will go to this number."
    )


def test_help_and_start_are_shown_as_such(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hi")
    harness.text("PIZZA", JANE, "HELP")
    harness.drain()
    [parent] = parents(harness.slack)
    [help_reply] = replies(harness.slack, parent.ts)
    assert help_reply.blocks[1]["elements"][0]["text"] == (
        ":information_source: They texted HELP; CRM Text sent the store's help message."
    )
    harness.text("PIZZA", JANE, "STOP")
    harness.text("PIZZA", JANE, "start")
    harness.drain()
    start_reply = replies(harness.slack, parent.ts)[-1]
    assert start_reply.text == "start"
    assert start_reply.blocks[1]["elements"][0]["text"] == (
        ":white_check_mark: They texted START/YES and are opted in."
    )
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == OPTED_IN
    assert (
        harness.services.storage.customers.consent_history(customer["id"])[-1]["how"]
        == "texted START"
    )
    [parent] = parents(harness.slack)
    assert parent.blocks[0]["text"]["text"].endswith("· opted in")


def test_wrong_token_answers_404_and_stores_nothing(harness: Harness) -> None:
    form = {"message": "hi", "keyword": "PIZZA", "mobileNum": JANE, "msgID": "1"}
    response = httpx.post(harness.callback_url("wrong-token-0000000"), data=form)
    assert response.status_code == 404
    assert harness.services.storage.conversations.message_by_provider_id("PIZZA", "1") is None
    assert harness.services.storage.jobs.rows() == []


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"message": "hi", "mobileNum": JANE, "msgID": "1"}, "missing field keyword"),
        ({"message": "hi", "keyword": "PIZZA", "msgID": "1"}, "missing field mobileNum"),
        (
            {"message": "hi", "keyword": "PIZZA", "mobileNum": "12ab", "msgID": "1"},
            "does not start with 10 digits",
        ),
        (
            {"message": "", "keyword": "PIZZA", "mobileNum": JANE, "msgID": "1"},
            "empty message and no mms",
        ),
        (
            {
                "message": "x",
                "keyword": "PIZZA",
                "mobileNum": JANE,
                "msgID": "1",
                "timeStamp": "yesterday",
            },
            "timeStamp 'yesterday' is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            {
                "message": "x",
                "keyword": "PIZZA",
                "mobileNum": JANE,
                "msgID": "1",
                "mms": "{not json",
            },
            "mms is not valid JSON",
        ),
        (
            {
                "message": "x",
                "keyword": "PIZZA",
                "mobileNum": JANE,
                "msgID": "1",
                "mms": json.dumps({"0": {"ContentType": "image/png", "URL": "file:///etc/passwd"}}),
            },
            "is not http(s)",
        ),
    ],
)
def test_malformed_callback_answers_400_with_a_reason(
    harness: Harness, form: dict[str, str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = httpx.post(harness.callback_url(), data=form)
    assert response.status_code == 400
    assert reason in response.text
    assert harness.services.storage.jobs.rows() == []


def test_unknown_keyword_answers_422(harness: Harness) -> None:
    form = {"message": "hi", "keyword": "TACOS", "mobileNum": JANE, "msgID": "1"}
    response = httpx.post(harness.callback_url(), data=form)
    assert response.status_code == 422
    assert "TACOS is not configured in SMS_STORES" in response.text


def test_oversized_and_garbage_bodies_get_4xx_not_5xx(harness: Harness) -> None:
    huge = httpx.post(harness.callback_url(), data={"message": "x" * 400_000, "keyword": "PIZZA"})
    assert huge.status_code == 413
    garbage = httpx.post(
        harness.callback_url(),
        content=b"\xff\xfe--not-a-form",
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert garbage.status_code == 400
    assert harness.services.storage.jobs.rows() == []


def test_restart_between_stored_and_posted_posts_exactly_once(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first")
    harness.drain()
    harness.text("PIZZA", JANE, "sent while the bridge was going down")
    assert harness.slack.calls_to("chat.postMessage")[-1].args["text"] != (
        "sent while the bridge was going down"
    )

    harness.restart()
    harness.drain()
    harness.drain()

    [parent] = parents(harness.slack)
    assert [m.text for m in replies(harness.slack, parent.ts)] == [
        "sent while the bridge was going down"
    ]


def test_slack_rate_limit_is_waited_out_and_posts_once(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    harness.text("PIZZA", JANE, "rate limited")
    harness.drain()  # each 429 becomes a job retry after Retry-After; no worker sleeps on it

    for _ in range(2):
        assert parents(harness.slack) == []
        [job] = harness.services.storage.jobs.rows("pending")
        assert "rate limit" in job["last_error"]
        assert job["attempts"] == 0  # waiting for Slack is not a failed attempt
        harness.clock.advance(seconds=1.5)
        harness.drain()
    assert [m.text for m in parents(harness.slack)] == ["Text from (415) 555-0101: rate limited"]
    assert len(harness.slack.calls_to("chat.postMessage")) == 3


def test_resolved_thread_makes_the_next_text_open_a_new_linked_thread(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "my order is late")
    harness.drain()
    [old] = parents(harness.slack)

    response = harness.sender.event(
        {
            "type": "reaction_added",
            "user": "USAM",
            "reaction": "white_check_mark",
            "item": {"type": "message", "channel": PIZZA_CHANNEL, "ts": old.ts},
            "event_ts": "1.0",
        }
    )
    assert response.status_code == 200
    harness.drain()
    assert replies(harness.slack, old.ts)[-1].text == (
        ":white_check_mark: Resolved by <@USAM>. The customer's next text opens a new thread."
    )

    harness.text("PIZZA", JANE, "new question")
    harness.drain()
    _, new = parents(harness.slack)
    assert new.text == "Text from (415) 555-0101: new question"
    hint = new.blocks[2]["elements"][0]["text"]
    permalink = f"https://fake.slack.local/archives/{PIZZA_CHANNEL}/p{old.ts.replace('.', '')}"
    assert hint.endswith(f"<{permalink}|Previous conversation>")


def test_quiet_period_opens_a_new_thread(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "first visit")
    harness.clock.advance(days=6)
    harness.text("PIZZA", JANE, "six days later")
    harness.clock.advance(days=7, seconds=1)
    harness.text("PIZZA", JANE, "after a quiet week")
    harness.drain()

    first, second = parents(harness.slack)
    assert [m.text for m in replies(harness.slack, first.ts)] == ["six days later"]
    assert second.text == "Text from (415) 555-0101: after a quiet week"


def test_background_workers_post_without_help(harness: Harness) -> None:
    harness.services.runner.start()
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "are you open?")
    harness.slack.wait_for(lambda: len(parents(harness.slack)) == 1)
    assert parents(harness.slack)[0].text == "Text from (415) 555-0101: are you open?"


def test_slack_outage_longer_than_minutes_still_posts_the_text(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.slack.fail_next("chat.postMessage", status=503, error="service_unavailable", times=15)
    harness.text("PIZZA", JANE, "sent during a Slack outage")
    for _ in range(40):  # backoff grows to 5 min (±20 % jitter): about 75 minutes of outage
        harness.drain()
        harness.clock.advance(minutes=7)
    assert [m.text for m in parents(harness.slack)] == [
        "Text from (415) 555-0101: sent during a Slack outage"
    ]


def test_deeply_nested_mms_json_is_a_400_not_a_500(harness: Harness) -> None:
    form = {
        "message": "x",
        "keyword": "PIZZA",
        "mobileNum": JANE,
        "msgID": "9",
        "mms": "[" * 60_000 + "]" * 60_000,
    }
    parts = [(name, (None, value)) for name, value in form.items()]  # multipart: 120 KB
    response = httpx.post(harness.callback_url(), files=parts)
    assert response.status_code == 400
    assert "mms is not valid JSON" in response.text


def test_opt_out_is_requested_from_crm_text_once(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.text("PIZZA", JANE, "END")
    harness.text("PIZZA", JANE, "end")
    harness.drain()
    [parent] = parents(harness.slack)
    button = parent.blocks[3]["elements"][0]  # the soft request's Opt out button
    harness.press("opt_out_customer", button["value"], user="USAM")
    harness.drain()
    assert len([c for c in harness.sim.calls if c["method"] == "optoutcustomer"]) == 1
    opted_out = [d for d in harness.sim.outbox if d.kind == "template" and "opted out" in d.text]
    assert len(opted_out) == 1


@pytest.mark.parametrize("which", ["parent", "reply"])
def test_a_post_that_landed_before_the_connection_dropped_is_not_posted_again(
    harness: Harness, which: str
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    if which == "reply":
        harness.text("PIZZA", JANE, "first")
        harness.drain()
    harness.slack.drop_next("chat.postMessage")  # Slack posts it, the answer never arrives
    harness.text("PIZZA", JANE, "posted once")
    harness.drain()
    harness.clock.advance(seconds=5)
    harness.drain()
    posted = [m.text for m in harness.slack.messages if "posted once" in m.text]
    assert len(posted) == 1
    message = harness.services.storage.jobs.rows()
    assert all(j["status"] == "done" for j in message)


def test_a_customer_who_never_opted_in_shows_as_new_and_can_opt_in(harness: Harness) -> None:
    harness.text("PIZZA", "4155550188", "hi there, do you cater?")  # unknown to CRM Text
    harness.drain()
    [parent] = parents(harness.slack)
    assert parent.blocks[0]["text"]["text"].endswith("keyword PIZZA · new guest")
    customer = harness.services.storage.customers.find("PIZZA", "+14155550188")
    assert customer["status"] == 1
    harness.text("PIZZA", "4155550188", "PIZZA")  # the store keyword opts them in
    harness.drain()
    assert harness.services.storage.customers.get(customer["id"])["status"] == OPTED_IN
    [parent] = parents(harness.slack)
    assert parent.blocks[0]["text"]["text"].endswith("keyword PIZZA · opted in")


def test_an_opt_out_made_in_crm_text_reaches_the_thread(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hello")
    harness.drain()
    harness.sim.add_customer("PIZZA", JANE, status=5)  # opted out in CRM Text's admin UI
    harness.text("PIZZA", JANE, "are you there?")
    harness.drain()
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == OPTED_OUT
    assert harness.services.storage.customers.consent_history(customer["id"])[-1]["how"] == (
        "CRM Text getcustomerinfo"
    )
    [parent] = parents(harness.slack)
    assert parent.blocks[0]["text"]["text"].endswith("keyword PIZZA · opted out")


def test_a_callback_missing_several_fields_names_them_all(harness: Harness) -> None:
    response = httpx.post(harness.callback_url(), data={"message": "hi"})
    assert response.status_code == 400
    assert response.text == "bad callback: missing fields keyword, mobileNum, msgID\n"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (
            "mms",
            json.dumps({"²": {"ContentType": "image/png", "URL": "https://x.example/a.png"}}),
            "empty message and no mms",
        ),
        ("timeStamp", "9999-12-31 23:59:59", "is out of range"),
    ],
)
def test_odd_callback_values_are_400s(
    harness: Harness, field: str, value: str, reason: str
) -> None:
    form = {"keyword": "PIZZA", "mobileNum": JANE, "msgID": "77", field: value}
    if field != "mms":
        form["message"] = "hi"
    response = httpx.post(harness.callback_url(), data=form)
    assert response.status_code == 400
    assert reason in response.text


def test_a_customer_who_opted_out_can_rejoin_with_the_keyword(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "STOP")
    harness.text("PIZZA", JANE, "PIZZA")  # CRM Text opts them in again
    harness.drain()
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == OPTED_IN
    assert harness.services.storage.customers.consent_history(customer["id"])[-1]["how"] == (
        "texted PIZZA"
    )
