"""Nothing lost to a Slack error: lanes, parked work, /healthz, the start-up check, ops alerts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlite_utils import Database

from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack
from bridge.jobs import LANES
from bridge.store import OPTED_OUT, open_store
from bridge.store.schema import migrations
from tests.conftest import (
    CARS_CHANNEL,
    HEALTH_TOKEN,
    PIZZA_CHANNEL,
    Clock,
    Harness,
    make_config,
)
from tests.test_replies import open_thread, staff_reply

JANE = "4155550101"
SINCE = "2026-11-24T18:00:00.000000+00:00"

REVOKED = (
    "Slack revoked smsbridge's bot token (token_revoked): the app was removed or reinstalled. "
    "Nothing can be posted to Slack."
)
REINSTALL = (
    "Reinstall the Slack app (api.slack.com/apps → smsbridge → Install App), put its Bot User "
    "OAuth Token (xoxb-…) in SLACK_BOT_TOKEN and restart smsbridge; parked work then resumes "
    "in order."
)


def healthz(harness: Harness) -> httpx.Response:
    """The details (``/healthz/details`` with HEALTH_TOKEN); the public /healthz must agree."""
    details = httpx.get(
        f"{harness.server.url}/healthz/details",
        headers={"Authorization": f"Bearer {HEALTH_TOKEN}"},
    )
    public = httpx.get(f"{harness.server.url}/healthz")
    assert (public.status_code, public.text) == (
        (200, "ok\n") if details.status_code == 200 else (503, "not ok\n")
    )
    return details


def thread_texts(harness: Harness, channel: str = PIZZA_CHANNEL) -> list[str]:
    [parent] = harness.slack.top_level(channel)
    return [m.text for m in harness.slack.thread(channel, parent.ts)[1:]]


def dms(harness: Harness, user: str = "USAM") -> list[str]:
    return [m.text for m in harness.slack.top_level(harness.slack.dm_channel(user))]


def sim_calls(harness: Harness, method: str) -> list[dict[str, Any]]:
    return [c for c in harness.sim.calls if c["method"] == method]


def bot_joins(harness: Harness, channel: str) -> None:
    response = harness.sender.event(
        {
            "type": "member_joined_channel",
            "user": harness.slack.bot_user_id,
            "channel": channel,
            "channel_type": "C",
            "team": "T1",
        }
    )
    assert response.status_code == 200


def test_every_job_kind_has_a_lane(harness: Harness) -> None:
    assert set(harness.services.runner.handlers) <= set(LANES)


def test_bot_removed_from_the_channel_never_holds_back_a_reply_or_an_opt_out(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "not_member")
    harness.text("PIZZA", JANE, "Can you add garlic bread?")
    staff_reply(harness, parent, "Sure, added!")  # typed just before the bot was removed
    harness.drain()
    harness.text("PIZZA", JANE, "UNSUBSCRIBE")
    harness.drain()

    assert [
        (c["params"]["phone_number"], c["params"]["message"])
        for c in sim_calls(harness, "sendsmsmsg")
    ] == [(JANE, "Sure, added!")]
    [opt_out] = sim_calls(harness, "optoutcustomer")
    assert (opt_out["keyword"], opt_out["params"]["phone_number"]) == ("PIZZA", JANE)
    assert harness.sim.customer_status("PIZZA", JANE) == OPTED_OUT
    assert thread_texts(harness) == ["Sure, added!"]  # the customer's texts wait, parked
    assert {j["kind"] for j in harness.services.storage.jobs.rows("parked")} == {"post_inbound"}

    # Someone invites the bot back: the parked posts go out in order, then the notice.
    harness.slack.set_channel_state(PIZZA_CHANNEL, "ok")
    bot_joins(harness, PIZZA_CHANNEL)
    harness.drain()
    assert thread_texts(harness) == [
        "Sure, added!",
        "Can you add garlic bread?",
        "UNSUBSCRIBE",
        ":no_entry: Opted out in CRM Text. No more texts will go to this number.",
    ]
    assert harness.services.storage.jobs.rows("parked") == []
    assert healthz(harness).status_code == 200


def test_revoked_token_parks_texts_until_a_new_token_and_a_restart(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    open_thread(harness)
    harness.slack.set_token_state("revoked")
    harness.text("PIZZA", JANE, "first")
    harness.text("PIZZA", JANE, "second")
    with caplog.at_level(logging.ERROR):
        harness.drain()

    assert thread_texts(harness) == []
    response = healthz(harness)
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["problems"] == [{"problem": REVOKED, "since": SINCE, "fix": REINSTALL}]
    assert body["parked_jobs"] == 1  # the second text waits behind the first
    assert f"Slack problem: {REVOKED} Fix: {REINSTALL}" in caplog.messages
    assert harness.slack.calls_to("chat.postMessage")[-1].args["channel"] == PIZZA_CHANNEL
    assert dms(harness) == []  # with a dead token the log and /healthz are the alert

    harness.clock.advance(hours=2)
    harness.drain()
    assert thread_texts(harness) == []  # parked work is not retried on its own

    harness.slack.set_token_state("ok")  # a new token is installed; smsbridge restarts
    harness.restart()
    harness.drain()
    assert "\n".join(thread_texts(harness)) == "first\nsecond"  # in order (maybe one post)
    assert healthz(harness).json()["problems"] == []
    assert dms(harness) == [
        ":white_check_mark: *smsbridge is back to normal* (start-up check passed): "
        f"{REVOKED} (since 2026-11-24 18:00 UTC). 1 waiting job(s) resume in order."
    ]


def test_tokens_revoked_event_records_the_problem_and_parks_waiting_slack_work(
    harness: Harness,
) -> None:
    open_thread(harness)
    harness.slack.set_token_state("revoked")
    harness.text("PIZZA", JANE, "are you there?")  # stored; its post waits for a worker
    response = harness.sender.event(
        {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [harness.slack.bot_user_id]}}
    )
    assert response.status_code == 200

    assert healthz(harness).json()["problems"] == [
        {"problem": REVOKED, "since": SINCE, "fix": REINSTALL}
    ]
    [parked] = harness.services.storage.jobs.rows("parked")
    assert parked["kind"] == "post_inbound"
    harness.drain()
    assert harness.slack.calls_to("chat.postMessage")[1:] == []  # no doomed calls


def test_starting_with_a_revoked_token_parks_waiting_slack_work_and_says_so(
    harness: Harness,
) -> None:
    open_thread(harness)
    harness.text("PIZZA", JANE, "still there?")  # stored; smsbridge stops before posting it
    harness.slack.set_token_state("revoked")
    harness.restart()
    posts = len(harness.slack.calls_to("chat.postMessage"))
    harness.drain()

    assert healthz(harness).json()["problems"] == [
        {"problem": REVOKED, "since": SINCE, "fix": REINSTALL}
    ]
    [parked] = harness.services.storage.jobs.rows("parked")
    assert parked["kind"] == "post_inbound"
    assert len(harness.slack.calls_to("chat.postMessage")) == posts  # no doomed call
    assert dms(harness) == []


def test_app_uninstalled_is_a_problem_until_reinstalled(harness: Harness) -> None:
    assert harness.sender.event({"type": "app_uninstalled"}).status_code == 200
    response = healthz(harness)
    assert response.status_code == 503
    assert httpx.get(f"{harness.server.url}/livez").status_code == 200  # the process is up
    [problem] = response.json()["problems"]
    assert problem["problem"] == (
        "smsbridge was uninstalled from the Slack workspace (app_uninstalled). "
        "Nothing can be posted to Slack."
    )
    harness.restart()  # reinstalled, new token, restart
    assert healthz(harness).status_code == 200


def test_start_up_check_names_each_problem_with_its_fix_and_alerts_the_admins(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.slack.set_channel_state(CARS_CHANNEL, "not_member")
    harness.slack.remove_scope("reactions:write")
    with caplog.at_level(logging.ERROR):
        harness.restart()

    not_in = (
        "The bot is not in the CARS store channel #ccars001 (CCARS001) (not_in_channel): "
        "that store's texts cannot be posted."
    )
    invite = (
        "Invite it: type /invite @smsbridge in the CARS store channel #ccars001 (CCARS001). "
        "Parked texts are then posted in order."
    )
    scopes = (
        "smsbridge's Slack token lacks the scope(s) reactions:write that manifest.yml asks for."
    )
    update = (
        "Update the app from manifest.yml (api.slack.com/apps → smsbridge → App Manifest), "
        "reinstall it, put the new token in SLACK_BOT_TOKEN and restart smsbridge."
    )
    assert f"Slack problem: {scopes} Fix: {update}" in caplog.messages
    assert f"Slack problem: {not_in} Fix: {invite}" in caplog.messages
    response = healthz(harness)
    assert response.status_code == 503
    assert response.json()["problems"] == [
        {"problem": scopes, "since": SINCE, "fix": update},
        {"problem": not_in, "since": SINCE, "fix": invite},
    ]
    harness.drain()
    assert dms(harness) == [
        f":rotating_light: *smsbridge needs a person:* {scopes}\n*Fix:* {update}",
        f":rotating_light: *smsbridge needs a person:* {not_in}\n*Fix:* {invite}",
    ]
    harness.restart()  # a second start-up alerts nothing new
    harness.drain()
    assert len(dms(harness)) == 2

    harness.slack.set_channel_state(CARS_CHANNEL, "ok")
    bot_joins(harness, CARS_CHANNEL)
    harness.drain()
    assert dms(harness)[2:] == [
        ":white_check_mark: *smsbridge is back to normal* (the bot was invited): "
        f"{not_in} (since 2026-11-24 18:00 UTC). 0 waiting job(s) resume in order."
    ]
    assert [p["problem"] for p in healthz(harness).json()["problems"]] == [scopes]


def test_someone_else_joining_the_channel_resumes_nothing(harness: Harness) -> None:
    open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "not_member")
    harness.text("PIZZA", JANE, "hello?")
    harness.drain()
    response = harness.sender.event(
        {"type": "member_joined_channel", "user": "UALEX", "channel": PIZZA_CHANNEL}
    )
    assert response.status_code == 200
    harness.drain()
    assert [j["kind"] for j in harness.services.storage.jobs.rows("parked")] == ["post_inbound"]
    assert healthz(harness).status_code == 503


@pytest.fixture
def ops_harness(tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock) -> Any:
    h = Harness(make_config(tmp_path, slack, sim, ops_channel="COPS0001"), sim, slack, clock)
    yield h
    h.stop()


def test_archived_channel_is_alerted_once_in_the_ops_channel_and_resumes_after_unarchive(
    ops_harness: Harness,
) -> None:
    harness = ops_harness
    open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "archived")
    harness.text("PIZZA", JANE, "one")
    harness.text("PIZZA", JANE, "two")
    harness.drain()

    archived = "Channel CPIZZA01 is archived (is_archived): that store's texts cannot be posted."
    fix = (
        "Unarchive channel CPIZZA01 and invite the bot again (/invite @smsbridge), or point "
        "SMS_STORES at a new channel and restart smsbridge."
    )
    assert [m.text for m in harness.slack.top_level("COPS0001")] == [
        f":rotating_light: *smsbridge needs a person:* {archived}\n*Fix:* {fix}"
    ]
    assert dms(harness) == []

    harness.slack.set_channel_state(PIZZA_CHANNEL, "ok")
    harness.restart()
    harness.drain()
    assert "\n".join(thread_texts(harness)) == "one\ntwo"  # in order (maybe one post)
    assert [m.text for m in harness.slack.top_level("COPS0001")][1:] == [
        ":white_check_mark: *smsbridge is back to normal* (start-up check passed): "
        f"{archived} (since 2026-11-24 18:00 UTC). 1 waiting job(s) resume in order."
    ]


def test_a_message_slack_refuses_as_built_is_kept_and_reported_not_dropped(
    harness: Harness,
) -> None:
    open_thread(harness)
    harness.slack.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    harness.text("PIZZA", JANE, "this one trips a bug")
    harness.drain()

    [parked] = harness.services.storage.jobs.rows("parked")
    assert parked["kind"] == "post_inbound"
    problem = (
        "Slack refused a message smsbridge built (invalid_blocks). This is a bug in smsbridge."
    )
    fix = (
        "Report it with the log line that names the job. The message is kept: restart "
        "smsbridge after the fix is installed and it is tried again."
    )
    assert dms(harness) == [f":rotating_light: *smsbridge needs a person:* {problem}\n*Fix:* {fix}"]
    assert healthz(harness).json()["problems"] == [{"problem": problem, "since": SINCE, "fix": fix}]

    harness.restart()  # the fixed version is installed
    harness.drain()
    assert thread_texts(harness) == ["this one trips a bug"]


def test_healthz_is_ok_when_slack_is_fine(harness: Harness) -> None:
    response = healthz(harness)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["problems"] == []
    assert body["parked_jobs"] == 0


def test_migration_splits_waiting_customer_queues_into_lanes(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    old = Database(path)
    migrations.apply(old, stop_before="m006_slack_health")
    for kind in ("post_inbound", "send_reply", "crm_opt_out", "post_notice"):
        old.execute(
            "INSERT INTO jobs (kind, payload, queue, status, attempts, run_at, created_at)"
            " VALUES (?, '{}', 'customer:7', 'pending', 0, '2026', '2026')",
            [kind],
        )
    old.execute(
        "INSERT INTO jobs (kind, payload, queue, status, attempts, run_at, created_at)"
        " VALUES ('blast_step', '{}', 'blast:3', 'pending', 0, '2026', '2026')"
    )
    old.conn.commit()
    old.close()
    store = open_store("sqlite:///" + path)
    store.migrate()
    assert [(j["kind"], j["queue"], j["lane"], j["head"]) for j in store.jobs.rows()] == [
        ("post_inbound", "customer:7:slack", "slack", 1),
        ("send_reply", "customer:7:crm", "crm", 1),
        ("crm_opt_out", "customer:7:crm", "crm", 0),
        ("post_notice", "customer:7:slack", "slack", 0),
        ("blast_step", "blast:3", "crm", 1),
    ]
    store.close()


def test_a_start_up_check_slack_will_not_answer_resolves_nothing(harness: Harness) -> None:
    open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "not_member")
    harness.text("PIZZA", JANE, "hello?")
    harness.drain()
    harness.slack.set_channel_state(PIZZA_CHANNEL, "ok")
    harness.slack.fail_next("auth.test", status=429, retry_after=30)
    harness.restart()  # Slack is busy: the check cannot tell whether the bot is back
    harness.drain()

    assert [j["kind"] for j in harness.services.storage.jobs.rows("parked")] == ["post_inbound"]
    assert healthz(harness).status_code == 503
    harness.restart()
    harness.drain()
    assert thread_texts(harness) == ["hello?"]


def test_a_start_up_check_slack_would_not_answer_is_run_again_without_a_restart(
    harness: Harness,
) -> None:
    open_thread(harness)
    harness.slack.set_channel_state(PIZZA_CHANNEL, "not_member")
    harness.text("PIZZA", JANE, "hello?")
    harness.drain()
    harness.slack.set_channel_state(PIZZA_CHANNEL, "ok")  # invited back while smsbridge was down
    harness.slack.fail_next("auth.test", status=429, retry_after=30)
    harness.restart()  # Slack is busy at start-up: the check cannot run
    harness.drain()
    assert [j["kind"] for j in harness.services.storage.jobs.rows("parked")] == ["post_inbound"]
    assert healthz(harness).status_code == 503

    harness.clock.advance(seconds=31)  # Slack answers again: the check runs, work resumes
    harness.drain()
    assert thread_texts(harness) == ["hello?"]
    assert harness.services.storage.jobs.rows("parked") == []
    assert healthz(harness).status_code == 200
