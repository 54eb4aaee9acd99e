"""/sms-blast answers at once at any store size: the modal opens before the preflight runs, the
compose and confirm submissions are acknowledged first and finished by jobs, and only the
newest keystroke is previewed."""

from __future__ import annotations

from typing import Any

from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_blasts import (
    MESSAGE,
    blast_command,
    compose,
    confirm,
    open_view,
    preflight_text,
    seed,
    state,
    submit,
)

CHECKING = ":hourglass_flowing_sand: *Preflight* — checking the text against the store's customers…"


def keystroke(harness: Harness, view: dict[str, Any], text: str) -> None:
    response = harness.sender.interaction(
        {
            "type": "block_actions",
            "user": {"id": "USAM"},
            "view": {**view, "state": {"values": state(text)}},
            "actions": [
                {
                    "action_id": "blast_text",
                    "block_id": "message",
                    "type": "plain_text_input",
                    "value": text,
                }
            ],
        }
    )
    assert response.status_code == 200 and response.text == ""


def test_the_modal_opens_before_the_preflight_runs(harness: Harness) -> None:
    seed(harness)
    assert blast_command(harness, MESSAGE) == ""
    [opened] = harness.slack.calls_to("views.open")
    assert preflight_text(opened.args["view"]).endswith(CHECKING)
    assert preflight_text(open_view(harness)).endswith(CHECKING)
    harness.drain()
    assert ":mag: *Preflight* — *3 recipients* · GSM-7 · 1 segment × 3 = 3 SMS" in preflight_text(
        open_view(harness)
    )


def test_only_the_newest_keystroke_is_previewed(harness: Harness) -> None:
    seed(harness)
    blast_command(harness, "")
    harness.drain()
    view = open_view(harness)
    before = len(harness.slack.calls_to("views.update"))
    keystroke(harness, view, "Main St Pizza: hi")
    keystroke(harness, view, "Main St Pizza: hi 👋 Reply STOP to opt out")
    assert len(harness.slack.calls_to("views.update")) == before  # nothing computed in the ack
    harness.drain()
    [update] = harness.slack.calls_to("views.update")[before:]
    assert update.args["hash"] == view["hash"]
    shown = harness.slack.views[view["id"]]
    assert shown["blocks"][0]["element"]["initial_value"] == (
        "Main St Pizza: hi 👋 Reply STOP to opt out"
    )
    assert ":mag: *Preflight* — *3 recipients* · UCS-2 · 1 segment × 3 = 3 SMS" in (
        preflight_text(shown)
    )


def test_a_preview_finished_after_the_form_moved_on_is_dropped(harness: Harness) -> None:
    """A sync that ends after the admin pressed Review must not put the old form back."""
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    assert view["callback_id"] == "blast_confirm"
    before = len(harness.slack.calls_to("views.update"))
    harness.sim.add_customer("PIZZA", "4155550299", status=3)  # the audience changed
    harness.services.storage.enqueue(
        "blast_sync",
        {"store": "PIZZA", "view_id": view["id"]},
        queue="sync:PIZZA",
        now=harness.clock(),
    )
    harness.drain()
    [stale] = harness.slack.calls_to("views.update")[before:]
    assert stale.args["view"]["callback_id"] == "blast_compose" and stale.args["hash"]
    assert harness.slack.views[view["id"]]["callback_id"] == "blast_confirm"


def test_compose_is_acknowledged_with_a_light_view_and_checked_in_a_job(
    harness: Harness,
) -> None:
    seed(harness)
    blast_command(harness, MESSAGE)
    harness.drain()
    view = open_view(harness)
    answer = submit(harness, view, state(MESSAGE)).json()
    assert answer["response_action"] == "update"
    assert preflight_text(answer["view"]) == (
        ":hourglass_flowing_sand: Checking the blast against every customer of the store. "
        "This form changes to the confirmation in a few seconds."
    )
    assert harness.services.storage.blasts("PIZZA") == []  # no draft yet
    harness.drain()
    shown = harness.slack.views[view["id"]]
    assert shown["callback_id"] == "blast_confirm"
    assert "*3 recipients*" in preflight_text(shown)


def test_a_blocked_text_found_by_the_job_shows_the_form_again(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", "4155550301", status=4)  # nobody opted in
    blast_command(harness, MESSAGE)
    harness.drain()
    view = open_view(harness)
    submit(harness, view, state(MESSAGE))
    harness.drain()
    shown = harness.slack.views[view["id"]]
    assert shown["callback_id"] == "blast_compose"
    assert shown["blocks"][0]["text"]["text"] == (
        ":x: Fix what is marked :no_entry: below, then press Review again."
    )
    assert ":no_entry: *Nobody can get this text*" in preflight_text(shown)
    assert harness.services.storage.blasts("PIZZA") == []


def test_confirm_is_acknowledged_first_and_launched_by_a_job(harness: Harness) -> None:
    seed(harness)
    view = compose(harness, MESSAGE, append=False)
    response = confirm(harness, view)
    assert response.status_code == 200 and response.text == ""
    [blast] = harness.services.storage.blasts("PIZZA")
    assert blast["status"] == "draft"  # nothing heavy ran before the answer
    harness.drain()
    assert harness.services.storage.blast(blast["id"])["status"] == "sending"


def test_a_refusal_found_after_the_ack_is_told_to_the_admin(harness: Harness) -> None:
    seed(harness)
    first = compose(harness, MESSAGE, append=False)
    second = compose(harness, "Main St Pizza: another offer. Reply STOP to opt out", append=False)
    assert confirm(harness, first).text == ""
    assert confirm(harness, second).text == ""  # both pressed before either was launched
    harness.drain()
    one, two = harness.services.storage.blasts("PIZZA")
    assert (one["status"], two["status"]) == ("sending", "draft")
    [note] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert note.channel == PIZZA_CHANNEL
    assert note.text == (
        f":x: Blast “{two['name']}” was not sent: Blast “{one['name']}” is still running for "
        "this store. A store runs one blast at a time."
    )
