"""A blast's recipients: recorded at confirmation, and those whose consent changed before the
sending starts skipped (set-based statements on both backends, see tests/test_store_contract.py
for the exact rows at more than one statement's batch)."""

from __future__ import annotations

from tests.conftest import Harness
from tests.test_blasts import MESSAGE, compose, confirm, delivered, seed, send_all

NUMBERS = ["4155550201", "4155550202", "3105550203"]


def test_a_customer_who_opts_out_between_confirmation_and_start_is_skipped(
    harness: Harness,
) -> None:
    seed(harness, NUMBERS)
    assert confirm(harness, compose(harness, MESSAGE, append=False)).status_code == 200
    storage = harness.services.storage
    assert harness.services.runner.run_one(["blast"])  # the confirmation: recipients recorded
    [blast] = storage.blasts.rows("PIZZA")
    assert [r["phone"] for r in storage.blasts.recipients(blast["id"])] == [
        f"+1{n}" for n in NUMBERS
    ]
    harness.text("PIZZA", "4155550202", "STOP")  # before the blast starts
    send_all(harness, 10)
    assert delivered(harness) == [("3105550203", MESSAGE), ("4155550201", MESSAGE)]
    counts = storage.blasts.recipient_counts(blast["id"])
    assert counts == {"sent": 2, "skipped": 1}
    assert storage.blasts.recipient_reasons(blast["id"], "skipped") == {
        "opted out since the blast was confirmed": 1
    }
