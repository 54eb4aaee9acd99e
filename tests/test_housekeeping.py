"""Housekeeping runs in the worker, at its start and then periodically (not only when a web
process starts), and never changes who may be texted."""

from __future__ import annotations

import time
from datetime import timedelta

from bot.worker import Worker
from bridge.store import OPTED_IN, OPTED_OUT, PENDING, Row, iso
from tests.conftest import Harness


def consent_state(harness: Harness) -> tuple[list[Row], list[Row]]:
    db = harness.services.storage.db
    return db.all("SELECT * FROM customers ORDER BY id"), db.all(
        "SELECT * FROM consent ORDER BY id"
    )


def test_the_worker_tidies_old_rows_periodically_and_never_touches_consent(
    harness: Harness,
) -> None:
    storage = harness.services.storage
    old = harness.clock() - timedelta(days=60)
    for phone, status in (("+14155550101", OPTED_IN), ("+14155550102", OPTED_OUT)):
        cid = int(storage.customers.upsert("PIZZA", phone, now=old)["id"])
        storage.customers.set_status(cid, status, how="texted", now=old)
    pending = int(storage.customers.upsert("PIZZA", "+14155550103", now=old)["id"])
    storage.customers.set_status(pending, PENDING, how="opt-in request", now=old)
    # Staff opted a customer out 60 days ago; CRM Text refused the push: they stay blocked
    # here (and the next audience sync pushes it again), though the job row is long finished.
    refused = int(storage.customers.upsert("PIZZA", "+14155550104", now=old)["id"])
    storage.customers.set_status(refused, OPTED_IN, how="list", now=old)
    storage.customers.set_status(refused, OPTED_OUT, how="staff", now=old, crm_synced=False)
    job = storage.jobs.enqueue(
        "crm_opt_out", {"customer_id": refused}, customer_id=refused, now=old
    )
    assert job is not None and storage.jobs.claim(old, timedelta(minutes=1)) is not None
    storage.jobs.finish(job, "failed", "refused")
    storage.customers.crm_push_failed(refused, "refused")
    before = consent_state(harness)

    worker = Worker(harness.services, grace=1.0, housekeeping_every=0.05)
    worker.start()  # tidies at start ...
    try:
        assert storage.jobs.rows() == []
        # ... and again later: rows that grew old while it runs go too
        storage.conversations.first_time("slack:EvOld", old)
        storage.db.execute(
            "INSERT INTO jobs (kind, payload, queue, status, attempts, run_at, created_at, head)"
            " VALUES ('ops_alert', '{}', 'ops:old', 'done', 1, ?, ?, 0)",
            [iso(old), iso(old)],
        )
        deadline = time.monotonic() + 10
        while storage.jobs.rows() or storage.db.all("SELECT key FROM events"):
            assert time.monotonic() < deadline, "housekeeping did not run again"
            time.sleep(0.05)
    finally:
        worker.shutdown()
    assert consent_state(harness) == before
    assert storage.customers.opt_out_unpushed(refused)
    statuses = {c["phone"]: c["status"] for c in storage.db.all("SELECT * FROM customers")}
    assert statuses == {
        "+14155550101": OPTED_IN,
        "+14155550102": OPTED_OUT,
        "+14155550103": PENDING,
        "+14155550104": OPTED_OUT,
    }
