"""Numbers are located once, at ingest, and the preflight uses what was stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from bridge import preflight
from bridge.blasts import BlastEngine
from bridge.config import Config
from bridge.phones import InvalidPhone, Location, locate, parse_us
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING, Store, open_store
from bridge.store.schema import migrate, migrations
from tests import pg_server

NOW = datetime(2026, 11, 25, 1, 15, tzinfo=UTC)  # 8:15 PM in Miami, 5:15 PM in San Francisco
MESSAGE = "Main St Pizza: 2 for $20 Friday! Reply STOP to opt out"


def test_locate_gives_e164_area_code_state_and_zones() -> None:
    assert locate("(305) 555-0100") == Location("+13055550100", "305", "FL", ("America/New_York",))
    assert locate("+14155550100") == Location("+14155550100", "415", "CA", ("America/Los_Angeles",))
    assert locate("not a number") == Location(None, "", None, ())


def test_a_new_customer_is_stored_with_its_location(tmp_path: Path) -> None:
    storage = open_store("sqlite:///" + str(tmp_path / "s.db"))
    storage.migrate()
    storage.stores.sync({"PIZZA": "C1"})
    storage.customers.upsert("PIZZA", "+13055550100", now=NOW)
    [row] = storage.customers.of_store("PIZZA")
    assert (row["e164"], row["area_code"], row["state"], row["zones"]) == (
        "+13055550100",
        "305",
        "FL",
        "America/New_York",
    )


def test_the_migration_backfills_existing_customers(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "old.db"))
    migrations.apply(db, stop_before="m009_customer_location")
    db["stores"].insert({"keyword": "PIZZA", "channel_id": "C1", "name": "", "store_id": ""})
    for phone in ("+13055550100", "junk"):
        db["customers"].insert({"store": "PIZZA", "phone": phone, "status": OPTED_IN})
    migrations.apply(db)
    rows = list(db.query("SELECT phone, e164, area_code, state, zones FROM customers"))
    assert rows == [
        {
            "phone": "+13055550100",
            "e164": "+13055550100",
            "area_code": "305",
            "state": "FL",
            "zones": "America/New_York",
        },
        {"phone": "junk", "e164": None, "area_code": "", "state": None, "zones": ""},
    ]


def test_the_migration_backfills_existing_customers_on_postgres() -> None:
    store = open_store(pg_server.empty_database())
    try:
        migrate(store.db, stop_before="m009_customer_location")
        store.db.execute(
            "INSERT INTO stores (keyword, channel_id, name) VALUES ('PIZZA', 'C1', '')"
        )
        for phone in ("+13055550100", "junk"):
            store.db.execute(
                "INSERT INTO customers (store, phone, status) VALUES ('PIZZA', ?, ?)",
                [phone, OPTED_IN],
            )
        assert store.migrate()[:2] == ["m009_customer_location", "m010_job_leases"]
        rows = store.db.all(
            "SELECT phone, e164, area_code, state, zones FROM customers ORDER BY id"
        )
        assert rows == [
            {
                "phone": "+13055550100",
                "e164": "+13055550100",
                "area_code": "305",
                "state": "FL",
                "zones": "America/New_York",
            },
            {"phone": "junk", "e164": None, "area_code": "", "state": None, "zones": ""},
        ]
    finally:
        store.close()


def test_the_preflight_uses_the_stored_location_not_the_number() -> None:
    """A San Francisco number stored as located in Florida: the Florida rule applies."""
    stored = Location("+14155550100", "415", "FL", ("America/New_York",))
    result = preflight.run(
        preflight.Draft("Main St Pizza", MESSAGE),
        [preflight.Audience("+14155550100", OPTED_IN, stored)],
        preflight.History(),
        NOW,
    )
    [quiet] = [f for f in result.findings if f.code == "quiet_hours"]
    assert quiet.title == "Outside texting hours for 1 of 1 customer"
    assert quiet.detail.startswith(
        "For example: It is 8:15 PM in Florida (America/New_York); Florida allows marketing "
        "texts 8:00 AM–8:00 PM."
    )


def test_quiet_hours_count_every_recipient_of_a_failing_group() -> None:
    audience = [
        preflight.Audience(f"+1305555{n:04d}", OPTED_IN, locate(f"+1305555{n:04d}"))
        for n in range(100, 103)
    ] + [preflight.Audience("+14155550100", OPTED_IN)]
    result = preflight.run(
        preflight.Draft("Main St Pizza", MESSAGE), audience, preflight.History(), NOW
    )
    [quiet] = [f for f in result.findings if f.code == "quiet_hours"]
    assert quiet.title == "Outside texting hours for 3 of 4 customers"


# -- the database's audience summary follows the preflight's rules exactly ---------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def audience_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One database per backend for every example (each example starts by emptying it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('audience') / 'a.db'}"
    else:
        url = pg_server.fresh_database()
    store = open_store(url)
    store.migrate()
    store.stores.sync({"PIZZA": "C1", "CARS": "C2"})
    yield store
    store.close()


FORMS = (
    "+1415555{:04d}",
    "(415) 555-{:04d}",
    "+1305555{:04d}",
    "+1808555{:04d}",
    "x{:04d}",
    "+1800555{:04d}",  # toll-free: never a recipient
    "900-555-{:04d}",  # non-geographic: likewise
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(FORMS) - 1),
            st.integers(100, 106),
            st.sampled_from([NEW, OPTED_IN, OPTED_IN, PENDING, OPTED_OUT]),
            st.sampled_from(["PIZZA", "CARS"]),
        ),
        max_size=40,
    )
)
def test_the_database_summary_is_the_preflight_summary(
    audience_store: Store, rows: list[tuple[int, int, int, str]]
) -> None:
    """Formats of one number, junk, every status and two stores: the SQL the bot runs gives
    exactly what :func:`preflight.summarise` gives for the same customers, on either backend."""
    storage = audience_store
    storage.db.execute("DELETE FROM customers")
    for form, line, status, store in rows:
        phone = FORMS[form].format(line)
        if storage.customers.find(store, phone) is None:
            storage.customers.add_many(store, [(phone, "", "")], now=NOW)
            storage.db.execute(
                "UPDATE customers SET status = ? WHERE store = ? AND phone = ?",
                [status, store, phone],
            )
    engine = BlastEngine(make_engine_config(), storage, None, lambda: NOW)  # type: ignore[arg-type]
    expected = preflight.summarise(
        preflight.Audience(c["phone"], c["status"]) for c in storage.customers.of_store("PIZZA")
    )
    assert engine.audience("PIZZA") == expected


def make_engine_config() -> Config:
    return Config(
        slack_bot_token="xoxb-test",
        slack_signing_secret="s",
        slack_api_url="http://127.0.0.1:9/api/",
        crmtext_user="u",
        crmtext_password="p",
        crmtext_api_url="http://127.0.0.1:9",
        stores={"PIZZA": "C1", "CARS": "C2"},
        callback_token="t",
        public_url="http://127.0.0.1",
        database_url="sqlite:///:memory:",
        blast_admins=frozenset(),
    )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789 +()-.x", max_size=18))
def test_locate_accepts_exactly_what_parse_us_accepts(text: str) -> None:
    try:
        expected: str | None = parse_us(text)
    except InvalidPhone:
        expected = None
    assert locate(text).e164 == expected
