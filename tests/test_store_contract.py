"""Every storage behaviour, run against both backends (SQLite and a real PostgreSQL), each test
on a fresh database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING, Store, iso, open_store
from bridge.store.schema import migrations
from tests import pg_server

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
POSTGRES_MIGRATIONS = [
    "m007_baseline",
    "m008_indexes",
    "m009_customer_location",
    "m010_job_leases",
    "m012_recipient_caps",
    "m013_held_replies",
    "m015_process_state",
]
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
    else:
        url = pg_server.fresh_database()
    opened = open_store(url)
    opened.migrate()
    opened.stores.sync({"PIZZA": "CPIZZA01", "CARS": "CCARS001"})
    yield opened
    opened.close()


def customer(store: Store, phone: str = "+14155550101", keyword: str = "PIZZA") -> int:
    return int(store.customers.upsert(keyword, phone, now=NOW)["id"])


# -- schema -------------------------------------------------------------------------------------


def test_migrating_again_applies_nothing(store: Store) -> None:
    assert store.migrate() == []


def test_a_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    sqlite = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    postgres = open_store(pg_server.empty_database())
    try:
        assert sqlite.pending_migrations()[-1] == "m015_process_state"
        assert postgres.pending_migrations() == POSTGRES_MIGRATIONS
        applied = sqlite.migrate()
        assert applied[0] == "m001_initial" and applied[-7:] == [
            "m007_staff_decisions",
            "m008_indexes",
            "m009_customer_location",
            "m010_job_leases",
            "m012_recipient_caps",
            "m013_held_replies",
            "m015_process_state",
        ]
        assert postgres.migrate() == POSTGRES_MIGRATIONS
        assert sqlite.migrate() == postgres.migrate() == []
        assert sqlite.pending_migrations() == postgres.pending_migrations() == []
    finally:
        sqlite.close()
        postgres.close()


# -- stores -------------------------------------------------------------------------------------


def test_stores_follow_configuration(store: Store) -> None:
    store.stores.sync({"PIZZA": "CNEW0001"})
    store.stores.set_details("PIZZA", "Main St Pizza", "1001")
    store.stores.set_details("PIZZA", "", "")
    assert store.stores.get("pizza") == {
        "keyword": "PIZZA",
        "channel_id": "CNEW0001",
        "name": "Main St Pizza",
        "store_id": "1001",
    }
    assert store.stores.get("NOPE") is None


def test_store_details_change_only_when_they_differ(store: Store) -> None:
    store.stores.set_details("PIZZA", "Main St Pizza", "1001")
    store.stores.set_details("PIZZA", "Main St Pizza", "")
    store.stores.set_details("PIZZA", "", "1002")
    assert store.stores.get("PIZZA") == {
        "keyword": "PIZZA",
        "channel_id": "CPIZZA01",
        "name": "Main St Pizza",
        "store_id": "1002",
    }


def test_callbacks_of_one_store_do_not_queue_behind_each_other_for_its_details() -> None:
    """Every callback names its store; writing the unchanged name again locked the store's row
    until the callback's transaction ended, so on PostgreSQL one store's callbacks ran one at a
    time (seen as acks of seconds at 100 callbacks a second)."""
    store = open_store(pg_server.fresh_database())
    store.stores.sync({"PIZZA": "CPIZZA01"})
    store.stores.set_details("PIZZA", "Main St Pizza", "1001")
    outcome: list[str] = []

    def second_callback() -> None:
        try:
            with store.transaction():
                store.db.execute("SET LOCAL lock_timeout = '3s'")
                store.stores.set_details("PIZZA", "Main St Pizza", "1001")
            outcome.append("stored")
        except Exception as exc:  # noqa: BLE001  # the lock timeout, reported below
            outcome.append(type(exc).__name__)

    try:
        with store.transaction():  # the first callback, still storing its message
            store.stores.set_details("PIZZA", "Main St Pizza", "1001")
            other = threading.Thread(target=second_callback)
            other.start()
            other.join(10)
        assert outcome == ["stored"]
    finally:
        store.close()


# -- customers and consent ----------------------------------------------------------------------


def test_upsert_finds_the_same_customer_and_fills_in_what_it_learns(store: Store) -> None:
    first = store.customers.upsert("pizza", "+14155550101", now=NOW)
    again = store.customers.upsert("PIZZA", "+14155550101", name="Ana", crm_id="77", now=NOW)
    blank = store.customers.upsert("PIZZA", "+14155550101", name="", now=NOW)
    assert first["id"] == again["id"] == blank["id"]
    assert (blank["name"], blank["crm_id"], blank["status"], blank["store"]) == (
        "Ana",
        "77",
        NEW,
        "PIZZA",
    )
    assert store.customers.find("PIZZA", "+14155550101") == blank
    assert store.customers.find("CARS", "+14155550101") is None
    with pytest.raises(KeyError):
        store.customers.get(999_999)


def test_a_status_change_writes_the_ledger_once(store: Store) -> None:
    cid = customer(store)
    assert store.customers.set_status(cid, OPTED_IN, how="texted START", text="START", now=NOW)
    assert not store.customers.set_status(cid, OPTED_IN, how="again", now=NOW)
    [entry] = store.customers.consent_history(cid)
    assert (entry["status_from"], entry["status_to"], entry["how"], entry["text"]) == (
        NEW,
        OPTED_IN,
        "texted START",
        "START",
    )
    row = store.customers.get(cid)
    assert (row["status"], row["consent_source"], row["crm_synced"]) == (
        OPTED_IN,
        "texted START",
        1,
    )
    assert [c["id"] for c in store.customers.with_status("PIZZA", OPTED_IN)] == [cid]
    assert [c["id"] for c in store.customers.of_store("pizza")] == [cid]


def test_a_customer_is_located_when_added(store: Store) -> None:
    store.customers.upsert("PIZZA", "(305) 555-0100", now=NOW)
    store.customers.add_many("PIZZA", [("+14155550102", "Bo", "9"), ("junk", "", "")], now=NOW)
    store.customers.add_many("PIZZA", [("+14155550102", "Other", "")], now=NOW)  # kept as is
    rows = [
        (c["phone"], c["name"], c["status"], c["e164"], c["area_code"], c["state"], c["zones"])
        for c in store.customers.of_store("PIZZA")
    ]
    assert rows == [
        ("(305) 555-0100", "", NEW, "+13055550100", "305", "FL", "America/New_York"),
        ("+14155550102", "Bo", NEW, "+14155550102", "415", "CA", "America/Los_Angeles"),
        ("junk", "", NEW, None, "", None, ""),
    ]
    found = store.customers.find_many("pizza", ["+14155550102", "junk", "+14155550199"])
    assert {p: (r["phone"], r["status"]) for p, r in found.items()} == {
        "+14155550102": ("+14155550102", NEW),
        "junk": ("junk", NEW),
    }
    assert store.customers.find_many("CARS", ["+14155550102"]) == {}


def test_set_statuses_moves_only_customers_still_as_expected(store: Store) -> None:
    one, two = customer(store, "+14155550101"), customer(store, "+14155550102")
    store.customers.set_status(two, OPTED_OUT, how="staff", now=NOW, crm_synced=False)
    moved = store.customers.set_statuses(
        [(one, NEW, OPTED_IN), (two, NEW, OPTED_IN)], how="CRM Text customer list", now=NOW
    )
    assert moved == 1
    row = store.customers.get(one)
    assert (row["status"], row["consent_source"], row["crm_synced"]) == (
        OPTED_IN,
        "CRM Text customer list",
        1,
    )
    ledger = store.customers.consent_history(one)
    assert [(e["status_from"], e["status_to"], e["how"]) for e in ledger] == [
        (NEW, OPTED_IN, "CRM Text customer list")
    ]
    assert store.customers.get(two)["status"] == OPTED_OUT  # moved since: left alone
    assert len(store.customers.consent_history(two)) == 1


def test_set_statuses_in_bulk_moves_each_customer_once_with_its_ledger_entry(store: Store) -> None:
    """A store's first sync moves every customer: more than one statement's worth (500), a few
    changed since the page was read, statuses moving in different directions."""
    phones = [f"+1415555{n:04d}" for n in range(1203)]
    store.customers.add_many("PIZZA", [(p, "", "") for p in phones], now=NOW)
    ids = [store.customers.find_many("PIZZA", [p])[p]["id"] for p in phones]
    for n in (0, 499, 500, 1202):  # opted out by staff since the page was read
        store.customers.set_status(ids[n], OPTED_OUT, how="staff", now=NOW, crm_synced=False)
    moves = [(cid, NEW, PENDING if n % 3 == 0 else OPTED_IN) for n, cid in enumerate(ids)]

    moved = store.customers.set_statuses(moves, how="CRM Text customer list", now=NOW)

    assert moved == 1199
    statuses = {row["id"]: row["status"] for row in store.customers.of_store("PIZZA")}
    assert [statuses[cid] for cid in ids[:4]] == [OPTED_OUT, OPTED_IN, OPTED_IN, PENDING]
    assert [statuses[cid] for cid in ids[498:502]] == [PENDING, OPTED_OUT, OPTED_OUT, PENDING]
    assert statuses[ids[1202]] == OPTED_OUT and statuses[ids[1201]] == OPTED_IN
    ledger = store.db.all("SELECT customer_id, status_from, status_to, how FROM consent")
    assert len(ledger) == 1199 + 4
    synced = [e for e in ledger if e["how"] == "CRM Text customer list"]
    assert sorted(e["customer_id"] for e in synced) == sorted(
        cid for n, cid in enumerate(ids) if n not in (0, 499, 500, 1202)
    )
    assert {(e["status_from"], e["status_to"]) for e in synced} == {
        (NEW, PENDING),
        (NEW, OPTED_IN),
    }
    assert store.customers.consent_history(ids[3])[0]["status_to"] == PENDING
    assert store.customers.get(ids[1])["consent_source"] == "CRM Text customer list"


def test_the_audience_is_worked_out_from_stored_locations(store: Store) -> None:
    """Opted-in valid numbers once each (first customer's place), minus numbers opted out
    elsewhere; every exclusion counted."""
    for phone, status in [
        ("+13055550100", OPTED_IN),
        ("(415) 555-0101", OPTED_IN),
        ("+14155550101", OPTED_IN),  # the same number again: a duplicate
        ("+14155550102", OPTED_IN),
        ("415.555.0102", OPTED_OUT),  # that number opted out elsewhere
        ("junk", OPTED_IN),
        ("+18085550100", PENDING),
        ("+18085550101", NEW),
        ("+18005550100", OPTED_IN),  # toll-free: no time zone, never a blast recipient
        ("+19002345678", OPTED_IN),  # non-geographic (premium rate): likewise
    ]:
        cid = customer(store, phone)
        store.customers.set_status(cid, status, how="test", now=NOW)
    store.db.execute("UPDATE customers SET zones = NULL WHERE phone = '+13055550100'")  # pre-m009
    recipients, counts, places = store.customers.audience_counts("pizza")
    assert recipients == ["+13055550100", "+14155550101"]
    assert counts == {
        "opted_out": 1,
        "pending": 1,
        "new": 1,
        "invalid": 1,
        "toll_free": 1,
        "non_geographic": 1,
        "duplicate": 1,
        "opted_out_number": 1,
    }
    assert places == [("FL", "America/New_York", 1), ("CA", "America/Los_Angeles", 1)]
    assert store.customers.audience_counts("CARS") == (
        [],
        {
            k: 0
            for k in ("opted_out", "pending", "new", "invalid", "toll_free", "non_geographic")
            + ("duplicate", "opted_out_number")
        },
        [],
    )
    first = store.customers.audience_of("PIZZA")[0]
    assert first[1:] == ("+13055550100", OPTED_IN, "+13055550100", "FL", "America/New_York")


def test_a_local_opt_out_is_unpushed_until_crm_text_has_it(store: Store) -> None:
    cid = customer(store)
    store.customers.set_status(cid, OPTED_IN, how="callback", now=NOW)
    store.customers.set_status(cid, OPTED_OUT, how="staff", now=NOW, crm_synced=False)
    assert store.customers.opt_out_unpushed(cid)
    assert store.customers.pending_opt_outs("PIZZA") == 1
    store.customers.crm_push_failed(cid, "CRM Text refused")
    assert store.customers.opt_out_unpushed(cid)  # still not at CRM Text: still blocks
    assert store.customers.pending_opt_outs("PIZZA") == 1  # refused: still blocks a campaign
    store.customers.mark_crm_synced(cid)
    assert not store.customers.opt_out_unpushed(cid)
    assert store.customers.pending_opt_outs("PIZZA") == 0


def test_only_the_customers_own_rejoin_moves_them_off_opted_out(store: Store) -> None:
    cid = customer(store)
    store.customers.set_status(cid, OPTED_OUT, how="texted STOP", now=NOW)
    for status in (OPTED_IN, PENDING, NEW):  # a job's stale read of CRM Text
        assert not store.customers.set_status(cid, status, how="CRM Text", now=NOW)
    assert store.customers.get(cid)["status"] == OPTED_OUT
    assert store.customers.set_status(cid, OPTED_IN, how="texted START", now=NOW, rejoin=True)
    assert [e["how"] for e in store.customers.consent_history(cid)] == [
        "texted STOP",
        "texted START",
    ]


def test_housekeeping_never_changes_who_may_be_texted(store: Store) -> None:
    cid = customer(store)
    store.customers.set_status(cid, OPTED_OUT, how="staff", now=NOW, crm_synced=False)
    job = store.jobs.enqueue("crm_opt_out", {"customer_id": cid}, customer_id=cid, now=NOW)
    assert job is not None
    store.jobs.claim(NOW, LEASE)
    store.jobs.finish(job, "failed", "refused")
    later = NOW + timedelta(days=60)
    removed = store.housekeeping(later, media_age=timedelta(days=1), keep=timedelta(days=30))
    assert removed["jobs"] == 1 and store.jobs.rows() == []
    assert store.customers.opt_out_unpushed(cid)
    assert store.customers.get(cid)["status"] == OPTED_OUT


def test_stop_requests_nobody_decided(store: Store) -> None:
    cid = customer(store)
    store.customers.set_status(cid, OPTED_IN, how="callback", now=NOW)
    thread = store.conversations.current_thread(cid, "CPIZZA01", NOW, timedelta(days=1))
    message = store.conversations.add_message(
        {"store": "PIZZA", "customer_id": cid, "thread_id": thread["id"], "intent": "soft_stop"}
    )
    assert store.customers.asked_to_stop(cid)
    assert store.customers.undecided_stop_requests("PIZZA") == 1
    store.conversations.update_message(message, decided_by="USAM")
    assert not store.customers.asked_to_stop(cid)
    assert store.customers.undecided_stop_requests("PIZZA") == 0


def test_the_consent_log_pages_one_store_from_a_time(store: Store) -> None:
    jane, bob = customer(store), customer(store, "+14155550102")
    other = customer(store, "+14155550103", keyword="CARS")
    store.customers.set_status(jane, OPTED_IN, how="a", now=NOW)
    store.customers.set_status(other, OPTED_IN, how="b", now=NOW)
    store.customers.set_status(bob, PENDING, how="c", actor="USAM", now=NOW + timedelta(hours=1))
    store.customers.set_status(jane, OPTED_OUT, how="d", text="STOP", now=NOW + timedelta(days=1))
    rows = store.customers.consent_log("pizza", "", 0, 2)
    assert [(r["phone"], r["how"]) for r in rows] == [("+14155550101", "a"), ("+14155550102", "c")]
    rest = store.customers.consent_log("PIZZA", "", rows[-1]["id"], 2)
    assert [(r["how"], r["text"], r["status_from"], r["status_to"]) for r in rest] == [
        ("d", "STOP", OPTED_IN, OPTED_OUT)
    ]
    later = store.customers.consent_log("PIZZA", iso(NOW + timedelta(minutes=1)), 0, 10)
    assert [r["how"] for r in later] == ["c", "d"]


def test_a_held_message_moves_on_once(store: Store) -> None:
    cid = customer(store)
    thread = store.conversations.current_thread(cid, "CPIZZA01", NOW, timedelta(days=1))
    held = store.conversations.add_message(
        {
            "store": "PIZZA",
            "customer_id": cid,
            "thread_id": thread["id"],
            "status": "awaiting_opt_in",
        }
    )
    assert [m["id"] for m in store.conversations.held_messages(cid)] == [held]
    assert store.conversations.move_message(held, "awaiting_opt_in", "pending", held_until=None)
    # released first: the expiry finds it no longer waiting
    assert not store.conversations.move_message(held, "awaiting_opt_in", "expired")
    assert store.conversations.message(held)["status"] == "pending"
    assert store.conversations.held_messages(cid) == []


def test_a_call_budget_is_one_token_bucket_for_every_process(store: Store) -> None:
    assert [store.slack.take_budget("b", 100.0, 6) for _ in range(6)] == [0.0] * 6
    assert store.slack.take_budget("b", 100.0, 6) == 10.0  # 6 a minute: one every 10 s
    assert store.slack.take_budget("other", 100.0, 6) == 0.0  # budgets are separate
    assert store.slack.take_budget("b", 105.0, 6) == 5.0
    assert store.slack.take_budget("b", 110.0, 6) == 0.0


def test_view_hashes_follow_our_own_updates_and_are_dropped_after_a_day(store: Store) -> None:
    assert store.slack.newest_view_hash("h0") == "h0"
    store.slack.remember_view_hash("h0", "h1", NOW)
    store.slack.remember_view_hash("h1", "h2", NOW + timedelta(hours=2))
    assert store.slack.newest_view_hash("h0") == store.slack.newest_view_hash("h1") == "h2"
    store.slack.remember_view_hash("h2", "h0", NOW)  # a cycle never loops
    assert store.slack.newest_view_hash("h0") == "h2"
    removed = store.housekeeping(NOW + timedelta(hours=25), timedelta(days=1), timedelta(days=30))
    assert removed["view_hashes"] == 2
    assert store.slack.newest_view_hash("h1") == "h2"  # the newer one stays
    assert store.slack.newest_view_hash("h0") == "h0"


# -- conversations ------------------------------------------------------------------------------


def test_current_thread_is_kept_then_renewed_after_quiet_resolve_or_move(store: Store) -> None:
    cid, quiet = customer(store), timedelta(days=1)
    first = store.conversations.current_thread(cid, "CPIZZA01", NOW, quiet)
    same = store.conversations.current_thread(cid, "CPIZZA01", NOW + timedelta(hours=20), quiet)
    assert same["id"] == first["id"] and same["last_activity_at"] == iso(NOW + timedelta(hours=20))
    after_quiet = store.conversations.current_thread(
        cid, "CPIZZA01", NOW + timedelta(days=3), quiet
    )
    assert after_quiet["id"] != first["id"] and after_quiet["previous_id"] == first["id"]
    assert store.conversations.resolve_thread(after_quiet["id"], "USAM", NOW)
    assert not store.conversations.resolve_thread(after_quiet["id"], "USAM", NOW)
    after_resolve = store.conversations.current_thread(cid, "CPIZZA01", NOW, quiet)
    assert after_resolve["id"] not in (first["id"], after_quiet["id"])
    moved = store.conversations.current_thread(cid, "CCARS001", NOW, quiet)
    assert moved["id"] != after_resolve["id"] and moved["channel_id"] == "CCARS001"
    assert len({first["thread_key"], after_quiet["thread_key"], moved["thread_key"]}) == 3


def test_threads_and_messages_by_slack_ts(store: Store) -> None:
    cid = customer(store)
    thread = store.conversations.current_thread(cid, "CPIZZA01", NOW, timedelta(days=1))
    store.conversations.set_thread_ts(thread["id"], "1700000000.000100")
    assert store.conversations.thread_by_ts("CPIZZA01", "1700000000.000100")["id"] == thread["id"]
    first = store.conversations.add_message(
        {"store": "PIZZA", "customer_id": cid, "thread_id": thread["id"], "text": "a",
         "media": ["https://x/1.png"], "provider_id": "m1", "source_key": "crm:m1"}
    )  # fmt: skip
    second = store.conversations.add_message(
        {"store": "PIZZA", "customer_id": cid, "thread_id": thread["id"], "text": "b",
         "posted_with": first}
    )  # fmt: skip
    store.conversations.update_message(first, slack_ts="1700000000.000200", status="posted")
    assert store.conversations.message(first)["media"] == '["https://x/1.png"]'
    assert store.conversations.message_by_provider_id("pizza", "m1")["id"] == first
    assert store.conversations.message_by_source("crm:m1")["id"] == first
    assert [m["id"] for m in store.conversations.unposted_after(thread["id"], first, 5)] == [second]
    assert [m["id"] for m in store.conversations.posted_with(first)] == [second]
    assert [m["text"] for m in store.conversations.thread_messages(thread["id"])] == ["a", "b"]
    assert store.conversations.newest_thread_ts(thread["id"], but=second) == "1700000000.000200"
    assert store.conversations.newest_thread_ts(thread["id"], but=first) == "1700000000.000100"
    assert store.conversations.newest_parent_ts("CPIZZA01") == "1700000000.000100"
    assert store.conversations.newest_parent_ts("CCARS001") is None


def test_a_known_thread_is_added_once_with_a_unique_key(store: Store) -> None:
    cid = customer(store)
    mine = store.conversations.current_thread(cid, "CPIZZA01", NOW, timedelta(days=1))
    known = store.conversations.add_known_thread(cid, "CPIZZA01", "17.1", mine["thread_key"], NOW)
    again = store.conversations.add_known_thread(cid, "CPIZZA01", "17.1", "other", NOW)
    assert known["id"] == again["id"] != mine["id"]
    assert known["thread_key"] != mine["thread_key"]


def test_an_event_key_counts_the_first_time_only(store: Store) -> None:
    assert store.conversations.first_time("slack-event:E1", NOW)
    assert not store.conversations.first_time("slack-event:E1", NOW)
    store.housekeeping(NOW + timedelta(days=31), timedelta(days=1), timedelta(days=30))
    assert store.conversations.first_time("slack-event:E1", NOW)


def test_a_transaction_rolls_back_everything_in_it(store: Store) -> None:
    cid = customer(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.customers.set_status(cid, OPTED_IN, how="x", now=NOW)
        with store.transaction():
            store.jobs.enqueue("post_notice", {}, customer_id=cid, now=NOW)
        raise RuntimeError("boom")
    assert store.customers.get(cid)["status"] == NEW
    assert store.jobs.rows() == []


# -- jobs ---------------------------------------------------------------------------------------


def test_a_queue_runs_in_order_one_job_at_a_time(store: Store) -> None:
    a = store.jobs.enqueue("k", {"n": 1}, queue="q", now=NOW)
    b = store.jobs.enqueue("k", {"n": 2}, queue="q", now=NOW)
    other = store.jobs.enqueue("k", {"n": 3}, queue="r", now=NOW + timedelta(seconds=1))
    first = store.jobs.claim(NOW + timedelta(seconds=2), LEASE)
    assert first is not None and (first.id, first.payload, first.attempts) == (
        a,
        {"n": 1},
        1,
    )
    second = store.jobs.claim(NOW + timedelta(seconds=2), LEASE)
    assert second is not None and second.id == other  # b waits behind a
    assert store.jobs.claim(NOW + timedelta(seconds=2), LEASE) is None
    store.jobs.finish(a)
    third = store.jobs.claim(NOW + timedelta(seconds=2), LEASE)
    assert third is not None and third.id == b


def test_the_job_summary_counts_waiting_and_failed_jobs(store: Store) -> None:
    """What /healthz shows, counted in the database (it used to read every waiting job)."""
    assert store.jobs.summary() == {"pending": 0, "oldest_pending": None, "failed": 0}
    store.jobs.enqueue("k", {}, queue="q", now=NOW + timedelta(seconds=5))
    store.jobs.enqueue("k", {}, queue="q", now=NOW + timedelta(seconds=9))
    done = store.jobs.enqueue("k", {}, queue="r", now=NOW)
    failed = store.jobs.enqueue("k", {}, queue="s", now=NOW - timedelta(hours=1))
    parked = store.jobs.enqueue("k", {}, queue="t", now=NOW - timedelta(hours=2))
    assert done is not None and failed is not None and parked is not None
    store.jobs.finish(done)
    store.jobs.finish(failed, "failed", "gave up")
    store.jobs.park(parked, "slack", "token revoked")
    assert store.jobs.summary() == {
        "pending": 2,
        "oldest_pending": iso(NOW + timedelta(seconds=5)),
        "failed": 1,
    }


def test_a_dedupe_key_adds_a_job_once(store: Store) -> None:
    assert store.jobs.enqueue("k", {}, queue="q", dedupe_key="d", now=NOW) is not None
    assert store.jobs.enqueue("k", {}, queue="q", dedupe_key="d", now=NOW) is None
    assert len(store.jobs.rows()) == 1


def test_a_customer_job_goes_to_its_lane(store: Store) -> None:
    store.jobs.enqueue("post_inbound", {}, customer_id=7, now=NOW)
    store.jobs.enqueue("send_reply", {}, customer_id=7, now=NOW)
    assert [(j["queue"], j["lane"]) for j in store.jobs.rows()] == [
        ("customer:7:slack", "slack"),
        ("customer:7:crm", "crm"),
    ]
    crm = store.jobs.claim(NOW, LEASE, lanes=["crm"])
    assert crm is not None and crm.kind == "send_reply"
    assert store.jobs.claim(NOW, LEASE, lanes=["crm"]) is None
    assert store.jobs.claim(NOW, LEASE, lanes=[]) is None
    slack = store.jobs.claim(NOW, LEASE)
    assert slack is not None and slack.kind == "post_inbound"
    with pytest.raises(ValueError):
        store.jobs.enqueue("k", {}, now=NOW)


def test_a_lane_claims_the_kinds_it_has_now(store: Store) -> None:
    """A job stored with the lane of an older release is claimed by the lane its kind has now
    (bridge.jobs.LANES is the one place that says so)."""
    job = store.jobs.enqueue("blast_step", {"blast_id": 1}, queue="blast:1", now=NOW)
    store.db.execute("UPDATE jobs SET lane = 'crm' WHERE id = ?", [job])
    assert store.jobs.claim(NOW, LEASE, lanes=["crm"]) is None
    claimed = store.jobs.claim(NOW, LEASE, lanes=["blast"])
    assert claimed is not None and claimed.id == job


def test_attempts_count_at_claim_and_a_lost_lease_is_claimed_again(store: Store) -> None:
    job = store.jobs.enqueue("k", {}, queue="q", now=NOW)
    assert store.jobs.claim(NOW, LEASE).attempts == 1  # type: ignore[union-attr]
    assert store.jobs.claim(NOW + timedelta(minutes=4), LEASE) is None
    store.jobs.renew(job, NOW + timedelta(minutes=10))  # type: ignore[arg-type]
    assert store.jobs.claim(NOW + timedelta(minutes=6), LEASE) is None
    again = store.jobs.claim(NOW + timedelta(minutes=11), LEASE)  # the worker died
    assert again is not None and (again.attempts, again.lost) == (2, 1)


def test_a_released_job_runs_again_at_once_without_charging_the_attempt(store: Store) -> None:
    job = store.jobs.enqueue("k", {}, queue="q", now=NOW)
    assert job is not None
    store.jobs.claim(NOW, LEASE)
    store.jobs.release(job)
    store.jobs.release(job)  # given back once: the attempt is refunded once
    store.jobs.renew(job, NOW + timedelta(hours=1))  # a job nobody runs gets no lease
    again = store.jobs.claim(NOW, LEASE)
    assert again is not None and (again.id, again.attempts, again.lost) == (job, 1, 0)


def test_retry_waits_and_refund_gives_the_attempt_back(store: Store) -> None:
    job = store.jobs.enqueue("k", {}, queue="q", now=NOW)
    assert job is not None
    store.jobs.claim(NOW, LEASE)
    store.jobs.retry(job, NOW + timedelta(seconds=30), "503")
    assert store.jobs.next_time() == NOW + timedelta(seconds=30)
    assert store.jobs.claim(NOW + timedelta(seconds=29), LEASE) is None
    store.jobs.claim(NOW + timedelta(seconds=30), LEASE)
    store.jobs.retry(job, NOW + timedelta(seconds=40), "429", refund=True)
    [row] = store.jobs.rows()
    assert (row["attempts"], row["last_error"], row["locked_until"]) == (1, "429", None)


def test_a_parked_job_holds_its_queue_until_unparked(store: Store) -> None:
    a = store.jobs.enqueue("post_inbound", {}, queue="q", now=NOW)
    b = store.jobs.enqueue("post_inbound", {}, queue="q", now=NOW)
    c = store.jobs.enqueue("post_notice", {}, queue="r", now=NOW)
    assert a is not None and b is not None and c is not None
    store.jobs.claim(NOW, LEASE)
    store.jobs.park(a, "token_revoked", "token revoked")
    assert store.jobs.park_pending(["post_notice"], "token_revoked", "token revoked", NOW) == 1
    assert store.jobs.park_keys() == {"token_revoked": 2}
    assert store.jobs.claim(NOW, LEASE) is None
    assert store.jobs.unpark("token_revoked", NOW + timedelta(seconds=1)) == 2
    later = NOW + timedelta(seconds=1)
    claimed = [store.jobs.claim(later, LEASE), store.jobs.claim(later, LEASE)]
    assert sorted(j.id for j in claimed if j) == [a, c]
    assert [j.attempts for j in claimed if j and j.id == a] == [1]  # parking refunded


def test_has_pending_looks_into_payloads(store: Store) -> None:
    store.jobs.enqueue("blast_step", {"blast_id": 3}, queue="blast:3", now=NOW)
    assert store.jobs.has_pending("blast_step", "blast_id", 3)
    assert not store.jobs.has_pending("blast_step", "blast_id", 4)
    assert not store.jobs.has_pending("blast_start", "blast_id", 3)


def test_a_waiting_job_by_its_key_and_its_payload_changed(store: Store) -> None:
    job = store.jobs.enqueue("send_reply", {"text": "Hi"}, queue="q", dedupe_key="r1", now=NOW)
    assert job is not None
    store.jobs.set_payload(job, {"text": "Hello"})
    waiting = store.jobs.waiting("r1")
    assert waiting is not None and (waiting["id"], waiting["payload"]) == (job, {"text": "Hello"})
    store.jobs.claim(NOW, LEASE)
    store.jobs.finish(job)
    assert store.jobs.waiting("r1") is None
    assert store.jobs.waiting("r2") is None


def test_the_newest_job_of_a_queue(store: Store) -> None:
    assert store.jobs.latest_payload("blast_preview", "view:V1") is None
    first = store.jobs.enqueue("blast_preview", {"n": 1}, queue="view:V1", now=NOW)
    store.jobs.enqueue("blast_compose", {"n": 2}, queue="view:V1", now=NOW)
    assert first is not None
    assert not store.jobs.has_later("view:V1", first + 1)
    assert store.jobs.has_later("view:V1", first)
    store.jobs.enqueue("blast_preview", {"n": 3}, queue="view:V1", now=NOW)
    store.jobs.enqueue("blast_preview", {"n": 4}, queue="view:V2", now=NOW)
    assert store.jobs.latest_payload("blast_preview", "view:V1") == {"n": 3}


# -- blasts -------------------------------------------------------------------------------------


def test_a_blast_and_its_recipients(store: Store) -> None:
    a, b, c = (customer(store, f"+1415555010{n}") for n in range(3))
    blast = store.blasts.add({"store": "PIZZA", "name": "b1", "status": "draft", "text": "hi"})
    assert store.blasts.active("PIZZA") is None
    assert store.blasts.move(blast, ("draft",), "confirmed", confirmed_by="USAM")
    assert not store.blasts.move(blast, ("draft",), "confirmed")
    assert store.blasts.active("PIZZA")["id"] == blast  # type: ignore[index]
    store.blasts.update(blast, started_at=iso(NOW), progress_channel="C1", progress_ts="1.2")
    assert store.blasts.by_progress("C1", "1.2")["id"] == blast  # type: ignore[index]
    assert [x["id"] for x in store.blasts.history("PIZZA", NOW)] == [blast]
    assert store.blasts.history("PIZZA", NOW + timedelta(seconds=1)) == []
    store.blasts.add_recipients(blast, [(a, "+14155550100"), (b, "+14155550101")])
    store.blasts.add_recipients(blast, [(a, "+14155550100"), (c, "+14155550102")])
    store.blasts.update_recipient(blast, a, status="sent", finished_at=iso(NOW))
    store.blasts.update_recipient(blast, b, status="skipped", reason="opted out")
    assert store.blasts.skip_pending(blast, "cancelled", NOW) == 1
    assert store.blasts.recipient_counts(blast) == {"sent": 1, "skipped": 2}
    assert store.blasts.recipient_reasons(blast, "skipped") == {"cancelled": 1, "opted out": 1}
    assert [r["customer_id"] for r in store.blasts.recipients(blast)] == [a, b, c]
    assert [r["customer_id"] for r in store.blasts.recipients(blast, "sent")] == [a]
    assert store.blasts.recent_for(a, NOW)["id"] == blast  # type: ignore[index]
    assert store.blasts.recent_for(b, NOW) is None
    assert (
        [x["id"] for x in store.blasts.rows("PIZZA")]
        == [blast]
        == [x["id"] for x in store.blasts.rows()]
    )


def test_a_campaign_marks_every_pending_recipient_sent(store: Store) -> None:
    a, b = customer(store, "+14155550100"), customer(store, "+14155550101")
    blast = store.blasts.add({"store": "PIZZA", "status": "sending"})
    store.blasts.add_recipients(blast, [(a, "+14155550100"), (b, "+14155550101")])
    store.blasts.update_recipient(blast, b, status="skipped")
    assert store.blasts.campaign_sent(blast, NOW) == 1
    assert store.blasts.recipient_reasons(blast, "sent") == {"campaign": 1}


def test_recipients_are_recorded_in_bulk_and_those_no_longer_opted_in_skipped(
    store: Store,
) -> None:
    """More recipients than one statement takes (RECIPIENT_BATCH), recorded exactly; then one
    statement skips exactly those whose consent changed since the confirmation."""
    from bridge.store.blasts import RECIPIENT_BATCH

    count = RECIPIENT_BATCH + 7
    phones = [f"+1415{n:07d}" for n in range(count)]
    store.customers.add_many("PIZZA", [(p, "", "") for p in phones], now=NOW)
    found = store.customers.find_many("PIZZA", phones)
    ids = [int(found[p]["id"]) for p in phones]
    store.customers.set_statuses([(i, NEW, OPTED_IN) for i in ids], how="list", now=NOW)
    blast = store.blasts.add({"store": "PIZZA", "status": "confirmed"})
    store.blasts.add_recipients(blast, list(zip(ids, phones, strict=True)))
    store.blasts.add_recipients(blast, [(ids[0], phones[0])])  # again: nothing doubled
    recorded = store.blasts.recipients(blast)
    assert [(r["customer_id"], r["phone"], r["status"]) for r in recorded] == [
        (i, p, "pending") for i, p in zip(ids, phones, strict=True)
    ]
    out, pending = ids[5], ids[RECIPIENT_BATCH + 3]
    store.customers.set_statuses(
        [(out, OPTED_IN, OPTED_OUT), (pending, OPTED_IN, PENDING)], how="texted STOP", now=NOW
    )
    store.blasts.update_recipient(blast, ids[6], status="sent")
    store.customers.set_statuses([(ids[6], OPTED_IN, OPTED_OUT)], how="texted STOP", now=NOW)
    assert store.blasts.skip_no_longer_opted_in(blast, OPTED_IN, NOW) == 2
    skipped = store.blasts.recipients(blast, "skipped")
    assert [(r["customer_id"], r["reason"], r["finished_at"]) for r in skipped] == [
        (out, "opted out since the blast was confirmed", iso(NOW)),
        (pending, "opted out since the blast was confirmed", iso(NOW)),
    ]
    assert store.blasts.recipient_counts(blast) == {"pending": count - 3, "skipped": 2, "sent": 1}


# -- media --------------------------------------------------------------------------------------


def test_media_round_trips_bytes_and_expires(store: Store) -> None:
    store.media.add("m1", 1, "image/png", "png", b"\x89PNG\x00", NOW)
    store.media.add("m1", 1, "image/jpeg", "jpg", b"\xff\xd8", NOW)
    row = store.media.get("m1")
    assert row is not None and (row["content_type"], row["data"]) == ("image/jpeg", b"\xff\xd8")
    removed = store.housekeeping(NOW + timedelta(days=2), timedelta(days=1), timedelta(days=30))
    assert removed["media"] == 1 and store.media.get("m1") is None


# -- Slack problems and pacing ------------------------------------------------------------------


def test_a_problem_is_opened_once_and_resolved(store: Store) -> None:
    assert store.slack.open_problem("token", "Token revoked", "Reinstall", NOW)
    assert not store.slack.open_problem("token", "Token revoked", "Reinstall", NOW)
    assert [p["key"] for p in store.slack.open_problems()] == ["token"]
    resolved = store.slack.resolve_problem("token", NOW)
    assert resolved is not None and resolved["resolved_at"] == iso(NOW)
    assert store.slack.resolve_problem("token", NOW) is None
    assert store.slack.open_problems() == []
    assert store.slack.open_problem("token", "Token revoked", "Reinstall", NOW)


def test_a_burst_then_one_post_per_interval(store: Store) -> None:
    slots = [store.slack.reserve_slot("C1", None, 100.0, 1.0, 3) for _ in range(6)]
    assert slots == [100.0, 100.0, 100.0, 101.0, 102.0, 103.0]
    assert store.slack.reserve_slot("C2", None, 100.0, 1.0, 3) == 100.0  # per channel
    assert store.slack.reserve_slot("C1", None, 110.0, 1.0, 3) == 110.0  # refilled meanwhile


def test_a_job_keeps_its_slot_and_a_hold_delays_the_channel(store: Store) -> None:
    first = store.slack.reserve_slot("C1", 7, 100.0, 1.0, 1)
    assert store.slack.reserve_slot("C1", 7, 100.5, 1.0, 1) == first == 100.0
    store.slack.release_slot("C1", 7)
    assert store.slack.reserve_slot("C1", 7, 100.5, 1.0, 1) == 101.0
    store.slack.hold_channel("C1", 130.0, 1.0, 1)
    assert store.slack.reserve_slot("C1", None, 120.0, 1.0, 1) == 130.0


def test_m008_carries_an_unpushed_opt_out_over_from_the_job_rows(tmp_path: Path) -> None:
    """An existing SQLite install: the opt-outs whose newest push had not succeeded become
    unsynced customers, and each waiting queue gets its head."""
    path = str(tmp_path / "old.db")
    old = Database(path)
    migrations.apply(old, stop_before="m008_indexes")
    old.execute("INSERT INTO stores (keyword, channel_id, name) VALUES ('PIZZA', 'C1', '')")
    for cid, status in ((1, OPTED_OUT), (2, OPTED_OUT), (3, OPTED_OUT), (4, OPTED_IN)):
        old.execute(
            "INSERT INTO customers (id, store, phone, name, crm_id, status) VALUES"
            " (?, 'PIZZA', ?, '', '', ?)",
            [cid, f"+1415555010{cid}", status],
        )
    jobs = [  # (customer, status) of crm_opt_out jobs, oldest first
        (1, "failed"),
        (2, "done"),
        (3, "failed"),
        (3, "done"),
        (2, "pending"),
    ]
    for cid, status in jobs:
        old.execute(
            "INSERT INTO jobs (kind, payload, queue, status, attempts, run_at, created_at)"
            " VALUES ('crm_opt_out', ?, ?, ?, 0, '2026', '2026')",
            [f'{{"customer_id": {cid}}}', f"customer:{cid}:crm", status],
        )
    old.conn.commit()
    old.close()
    store = open_store("sqlite:///" + path)
    assert store.migrate()[:3] == ["m008_indexes", "m009_customer_location", "m010_job_leases"]
    assert [store.customers.opt_out_unpushed(cid) for cid in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]
    assert [(j["status"], j["head"], j["lane"]) for j in store.jobs.rows()] == [
        ("failed", 0, "crm"),
        ("done", 0, "crm"),
        ("failed", 0, "crm"),
        ("done", 0, "crm"),
        ("pending", 1, "crm"),
    ]
    store.close()
