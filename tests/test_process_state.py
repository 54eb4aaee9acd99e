"""No state that matters lives in one process's memory: two app instances on one database
(as two processes would be) share the Slack history call budget and know each other's
updates of the blast form."""

from __future__ import annotations

import copy

from bot.services import build_services
from bot.threads import HistoryBudget
from bridge.store import open_store
from tests.conftest import Harness
from tests.test_blast_acks import keystroke
from tests.test_blasts import blast_command, open_view, preflight_text, seed


def test_two_processes_share_one_history_call_budget(harness: Harness) -> None:
    other = open_store(harness.config.database_url)  # another process's connection
    try:
        now = [1_000.0]
        mine = HistoryBudget(harness.services.storage, per_minute=20, clock=lambda: now[0])
        theirs = HistoryBudget(other, per_minute=20, clock=lambda: now[0])
        assert [mine.take() for _ in range(12)] == [0.0] * 12
        assert [theirs.take() for _ in range(8)] == [0.0] * 8
        assert theirs.take() == mine.take() == 3.0  # the minute's 20 are used, by both
        now[0] += 3.0
        assert theirs.take() == 0.0
        assert mine.take() == 3.0
    finally:
        other.close()


def test_a_preview_run_by_another_process_lands_after_our_own_update(harness: Harness) -> None:
    """The form opens; one process shows its first preview (views.update changes the view's
    hash). The admin had typed before that update reached them, so their keystroke carries the
    old hash; another process computes its preview and must use the hash our own update gave
    the view, or Slack refuses it (hash_conflict) and the form never shows the text."""
    seed(harness)
    blast_command(harness, "")
    opened = copy.deepcopy(open_view(harness))
    harness.drain()  # this process: the audience sync and the first preview
    first = harness.slack.views[opened["id"]]["hash"]
    assert first != opened["hash"]
    keystroke(harness, opened, "Main St Pizza: hi")
    other = build_services(harness.config, clock=harness.clock)  # another worker process
    try:
        before = len(harness.slack.calls_to("views.update"))
        assert other.runner.drain() == 1
    finally:
        other.close()
    [update] = harness.slack.calls_to("views.update")[before:]
    assert update.args["hash"] == first
    shown = harness.slack.views[opened["id"]]
    assert shown["blocks"][0]["element"]["initial_value"] == "Main St Pizza: hi"
    assert ":mag: *Preflight* — *3 recipients* · GSM-7 · 1 segment × 3 = 3 SMS" in (
        preflight_text(shown)
    )
