"""The database schema for both backends. Never edit an applied migration; add one.

SQLite: ordered ``sqlite_utils.Migrations`` (m001-m007 unchanged for existing installs).
PostgreSQL: :data:`POSTGRES` lists ``(name, statements)``; its first step builds the schema as
of m007 in one go, later steps mirror the SQLite ones, tracked in ``smsbridge_migrations``.

Adding a migration ``mNNN_name``: write the SQLite function below (decorated with
``@migrations()``), append ``("mNNN_name", [...])`` to :data:`POSTGRES` reaching the same
schema (``INTEGER``/``BIGINT`` for int, ``TEXT`` for str, ``DOUBLE PRECISION`` for float,
``BYTEA`` for bytes), and both run from :func:`migrate`. Plain ``ALTER TABLE ... ADD COLUMN``
and ``CREATE INDEX`` statements are the same on both: put them in a list used by both. A step
that needs Python (a backfill) is a function of the narrow database in the PostgreSQL list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database, Migrations
from sqlite_utils.db import Table

from bridge.phones import locate  # new customers go through the same pure function

if TYPE_CHECKING:
    from bridge.store.db import Database as Db

migrations = Migrations("smsbridge")


def _table(db: Database, name: str) -> Table:
    table = db[name]
    assert isinstance(table, Table)
    return table


@migrations()
def m001_initial(db: Database) -> None:
    """Stores, customers, consent ledger, threads, messages, events and jobs."""
    _table(db, "stores").create(
        {"keyword": str, "channel_id": str, "name": str, "store_id": str}, pk="keyword"
    )
    _table(db, "customers").create(
        {
            "id": int,
            "store": str,
            "phone": str,
            "name": str,
            "crm_id": str,
            "status": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        foreign_keys=[("store", "stores", "keyword")],
    )
    _table(db, "customers").create_index(["store", "phone"], unique=True)
    _table(db, "consent").create(
        {
            "id": int,
            "customer_id": int,
            "at": str,
            "status_from": int,
            "status_to": int,
            "how": str,
            "text": str,
            "actor": str,
        },
        pk="id",
        foreign_keys=[("customer_id", "customers", "id")],
    )
    _table(db, "threads").create(
        {
            "id": int,
            "customer_id": int,
            "channel_id": str,
            "ts": str,
            "opened_at": str,
            "last_activity_at": str,
            "resolved_at": str,
            "resolved_by": str,
            "previous_id": int,
        },
        pk="id",
        foreign_keys=[("customer_id", "customers", "id")],
    )
    _table(db, "threads").create_index(["channel_id", "ts"])
    _table(db, "messages").create(
        {
            "id": int,
            "store": str,
            "customer_id": int,
            "thread_id": int,
            "direction": str,
            "kind": str,
            "intent": str,
            "text": str,
            "media": str,
            "provider_id": str,
            "provider_time": str,
            "slack_ts": str,
            "media_posted": int,
            "status": str,
            "error": str,
            "staff_user": str,
            "source_key": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("customer_id", "customers", "id"), ("thread_id", "threads", "id")],
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_messages_provider ON messages (store, provider_id)"
        " WHERE provider_id IS NOT NULL"
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_messages_source ON messages (source_key)"
        " WHERE source_key IS NOT NULL"
    )
    _table(db, "events").create({"key": str, "seen_at": str}, pk="key")
    _table(db, "jobs").create(
        {
            "id": int,
            "kind": str,
            "payload": str,
            "queue": str,
            "dedupe_key": str,
            "status": str,
            "attempts": int,
            "run_at": str,
            "locked_until": str,
            "last_error": str,
            "created_at": str,
        },
        pk="id",
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL"
    )
    _table(db, "jobs").create_index(["status", "run_at"])


@migrations()
def m002_media(db: Database) -> None:
    """Prepared MMS pictures, served at /media/... behind signed links."""
    _table(db, "media").create(
        {
            "id": str,
            "message_id": int,
            "content_type": str,
            "extension": str,
            "data": bytes,
            "created_at": str,
        },
        pk="id",
    )


@migrations()
def m003_blasts(db: Database) -> None:
    """Store-wide blasts and their per-recipient ledger; inbound replies remember the blast."""
    _table(db, "blasts").create(
        {
            "id": int,
            "store": str,
            "name": str,
            "text": str,
            "final_text": str,
            "append_opt_out": int,
            "media_url": str,
            "mode": str,
            "status": str,
            "created_by": str,
            "created_at": str,
            "confirmed_by": str,
            "confirmed_at": str,
            "acknowledged": str,
            "run_at": str,
            "started_at": str,
            "finished_at": str,
            "total": int,
            "progress_channel": str,
            "progress_ts": str,
            "progress_at": str,
            "campaign_attempted_at": str,
            "report": str,
        },
        pk="id",
    )
    _table(db, "blasts").create_index(["store", "status"])
    _table(db, "blast_recipients").create(
        {
            "blast_id": int,
            "customer_id": int,
            "phone": str,
            "status": str,
            "reason": str,
            "provider_id": str,
            "attempted_at": str,
            "finished_at": str,
        },
        pk=("blast_id", "customer_id"),
        foreign_keys=[("blast_id", "blasts", "id"), ("customer_id", "customers", "id")],
    )
    _table(db, "blast_recipients").create_index(["blast_id", "status"])
    _table(db, "messages").add_column("blast_id", int)


@migrations()
def m004_exactly_once(db: Database) -> None:
    """Numbered blast steps; "the last attempt may have reached CRM Text" marks; staff
    decisions on texts that sound like stop requests."""
    _table(db, "blasts").add_column("step_seq", int)
    _table(db, "messages").add_column("maybe_sent", int)
    _table(db, "messages").add_column("decided_by", str)


@migrations()
def m005_slack_keys(db: Database) -> None:
    """Slack keys and posting state.

    * ``thread_key`` / ``message_key``: random keys that Slack message metadata carries, so
      reconciliation never trusts a local autoincrement id;
    * ``post_after`` (a Slack ts known to be older than the post) and ``post_tried`` (the last
      attempt got no answer, so it may have landed): where a look-up for it may stop;
    * ``final_text`` and ``signature``: a reply's exact outgoing text, fixed before it is sent;
    * ``staff_name``: the name the event carried; ``send_started``: edits and deletions after
      it are too late;
    * ``posted_with``: the message whose Slack post also carries this one (texts that queued
      up behind Slack are combined into one post).
    """
    _table(db, "threads").add_column("thread_key", str)
    _table(db, "threads").add_column("post_after", str)
    _table(db, "threads").add_column("post_tried", int)
    _table(db, "messages").add_column("message_key", str)
    _table(db, "messages").add_column("post_after", str)
    _table(db, "messages").add_column("post_tried", int)
    _table(db, "messages").add_column("final_text", str)
    _table(db, "messages").add_column("signature", str)
    _table(db, "messages").add_column("staff_name", str)
    _table(db, "messages").add_column("send_started", int)
    _table(db, "messages").add_column("posted_with", int)
    db.execute("UPDATE threads SET thread_key = lower(hex(randomblob(16)))")
    db.execute("UPDATE messages SET message_key = lower(hex(randomblob(16)))")
    db.execute("CREATE UNIQUE INDEX idx_threads_key ON threads (thread_key)")
    db.execute("CREATE UNIQUE INDEX idx_messages_key ON messages (message_key)")


@migrations()
def m006_slack_health(db: Database) -> None:
    """Lanes, parked jobs, Slack problems and per-channel pacing of Slack posts.

    A customer's queue splits into a ``slack`` and a ``crm`` lane (the kinds below are the
    ``slack`` lane as of this migration; ``bridge.jobs.LANES`` is the list from now on).
    """
    _table(db, "jobs").add_column("park_key", str)
    db.execute(
        "UPDATE jobs SET queue = queue || CASE WHEN kind IN ('post_inbound', 'post_notice',"
        " 'thread_resolved', 'refresh_thread', 'mark_note') THEN ':slack' ELSE ':crm' END"
        " WHERE queue GLOB 'customer:[0-9]*' AND queue NOT GLOB 'customer:*:*'"
    )
    _table(db, "slack_problems").create(
        {
            "id": int,
            "key": str,
            "problem": str,
            "fix": str,
            "since": str,
            "resolved_at": str,
        },
        pk="id",
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_slack_problems_open ON slack_problems (key)"
        " WHERE resolved_at IS NULL"
    )
    _table(db, "slack_pacing").create({"channel": str, "tat": float}, pk="channel")
    _table(db, "slack_slots").create(
        {"channel": str, "job_id": int, "at": float}, pk=("channel", "job_id")
    )


@migrations()
def m007_staff_decisions(db: Database) -> None:
    """Which way staff decided a text that may be a stop request ("opt_out" / "not_stop")."""
    _table(db, "messages").add_column("decision", str)


# The job kinds in the ``slack`` lane when m008 ran (``bridge.jobs.LANES`` from then on).
_SLACK_KINDS_M008 = (
    "'post_inbound', 'post_notice', 'thread_resolved', 'refresh_thread', 'mark_note',"
    " 'blast_progress', 'ops_alert', 'reply_feedback', 'post_outbound', 'recover_reply',"
    " 'show_decision'"
)

M008_COMMON = [
    # Consent is state, not derived from job rows: where the status came from, and whether
    # CRM Text has it yet (0: a local opt-out still to be pushed; crm_push_error: CRM Text
    # refused it or it gave up, and it stays blocked here).
    "ALTER TABLE customers ADD COLUMN consent_source TEXT",
    "ALTER TABLE customers ADD COLUMN crm_synced INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE customers ADD COLUMN crm_push_error TEXT",
    # The durable queue: each job's lane, and whether it is the head of its queue (the oldest
    # unfinished job, the only one that may be claimed).
    "ALTER TABLE jobs ADD COLUMN lane TEXT",
    "ALTER TABLE jobs ADD COLUMN head INTEGER NOT NULL DEFAULT 0",
    f"UPDATE jobs SET lane = CASE WHEN kind IN ({_SLACK_KINDS_M008}) THEN 'slack' ELSE 'crm' END",
    "UPDATE jobs SET head = 1 WHERE status IN ('pending', 'parked') AND id IN"
    " (SELECT min(id) FROM jobs WHERE status IN ('pending', 'parked') GROUP BY queue)",
    # Every hot path by index, never a scan that grows with history. The old (status, run_at)
    # index would walk every job waiting behind its queue's head: claims use the heads only.
    "DROP INDEX idx_jobs_status_run_at",
    "CREATE INDEX idx_jobs_claim ON jobs (run_at, id) WHERE status = 'pending' AND head = 1",
    "CREATE INDEX idx_jobs_claim_lane ON jobs (lane, run_at, id)"
    " WHERE status = 'pending' AND head = 1",
    "CREATE INDEX idx_jobs_queue ON jobs (queue, id) WHERE status IN ('pending', 'parked')",
    "CREATE INDEX idx_jobs_kind ON jobs (kind, status)",
    "CREATE INDEX idx_jobs_parked ON jobs (park_key) WHERE status = 'parked'",
    "CREATE INDEX idx_jobs_finished ON jobs (created_at) WHERE status NOT IN ('pending', 'parked')",
    "CREATE INDEX idx_blast_recipients_customer ON blast_recipients"
    " (customer_id, status, finished_at)",
    "CREATE INDEX idx_blasts_progress ON blasts (progress_channel, progress_ts)",
    "CREATE INDEX idx_blasts_started ON blasts (store, started_at)",
    "CREATE INDEX idx_threads_customer ON threads (customer_id, id)",
    "CREATE INDEX idx_messages_thread ON messages (thread_id, id)",
    "CREATE INDEX idx_messages_customer ON messages (customer_id, intent)",
    "CREATE INDEX idx_messages_store_intent ON messages (store, intent)",
    "CREATE INDEX idx_messages_posted_with ON messages (posted_with) WHERE posted_with IS NOT NULL",
    "CREATE INDEX idx_customers_status ON customers (store, status)",
    "CREATE INDEX idx_customers_unsynced ON customers (store) WHERE crm_synced = 0",
    "CREATE INDEX idx_consent_customer ON consent (customer_id, id)",
    "CREATE INDEX idx_media_created ON media (created_at)",
    "CREATE INDEX idx_events_seen ON events (seen_at)",
    "CREATE INDEX idx_slack_slots_at ON slack_slots (at)",
]

# Customers whose newest optoutcustomer job had not succeeded: their opt-out is not at CRM
# Text yet (what used to be worked out from job rows each time).
_M008_UNSYNCED = (
    "UPDATE customers SET crm_synced = 0 WHERE status = 5 AND id IN (SELECT {cid} FROM jobs j"
    " WHERE j.kind = 'crm_opt_out' AND j.id = (SELECT max(k.id) FROM jobs k"
    " WHERE k.kind = 'crm_opt_out' AND {kcid} = {cid}) AND j.status != 'done')"
)


@migrations()
def m008_indexes(db: Database) -> None:
    """Indexes for every hot path; consent state on the customer; queue heads and lanes."""
    for statement in M008_COMMON:
        db.execute(statement)
    db.execute(
        _M008_UNSYNCED.format(
            cid="json_extract(j.payload, '$.customer_id')",
            kcid="json_extract(k.payload, '$.customer_id')",
        )
    )


M009_COMMON = [
    # Each customer's number worked out once (bridge.phones.locate): ``e164`` (NULL: not a
    # valid US number), ``area_code``, ``state`` (NULL: unknown) and ``zones`` (IANA names
    # joined by spaces, "": unknown), so a blast preflight never parses numbers.
    "ALTER TABLE customers ADD COLUMN e164 TEXT",
    "ALTER TABLE customers ADD COLUMN area_code TEXT",
    "ALTER TABLE customers ADD COLUMN state TEXT",
    "ALTER TABLE customers ADD COLUMN zones TEXT",
    # The preflight's audience, read from the index alone; the customers not located yet
    # (none after the backfill).
    "CREATE INDEX customers_audience ON customers (store, status, e164, state, zones)",
    "CREATE INDEX customers_unlocated ON customers (store) WHERE zones IS NULL",
]


@migrations()
def m009_customer_location(db: Database) -> None:
    """Each customer's number located once (``e164``, ``area_code``, ``state``, ``zones``) and
    indexed for the preflight's audience. Backfills every existing customer."""
    for statement in M009_COMMON:
        db.execute(statement)
    rows = list(db.execute("SELECT id, phone FROM customers"))
    db.conn.executemany(
        "UPDATE customers SET e164 = ?, area_code = ?, state = ?, zones = ? WHERE id = ?",
        [(*locate(phone).columns(), cid) for cid, phone in rows],
    )


# How many times a claim found the job abandoned (its worker died running it: killed, out of
# memory), so such a job gives up at claim time after a few. One column, default 0.
M010_COMMON = ["ALTER TABLE jobs ADD COLUMN lost INTEGER NOT NULL DEFAULT 0"]


@migrations()
def m010_job_leases(db: Database) -> None:
    """``jobs.lost``: claims that found the job abandoned (its worker died)."""
    for statement in M010_COMMON:
        db.execute(statement)


M012_COMMON = [
    # The rolling 24-hour cap (bridge.blasts): blast texts a number got since a moment, counted
    # from this index alone, never by scanning a blast's or a customer's history.
    "CREATE INDEX blast_recipients_sent_phone ON blast_recipients (phone, finished_at)"
    " WHERE status = 'sent'",
]


@migrations()
def m012_recipient_caps(db: Database) -> None:
    """Every customer located again (area codes spanning zones, 689/436/624 and the other
    corrections of bridge.area_codes) and the index the 24-hour cap counts with."""
    for statement in M012_COMMON:
        db.execute(statement)
    rows = list(db.execute("SELECT id, phone FROM customers"))
    db.conn.executemany(
        "UPDATE customers SET e164 = ?, area_code = ?, state = ?, zones = ? WHERE id = ?",
        [(*locate(phone).columns(), cid) for cid, phone in rows],
    )


# A staff reply to a customer who has not opted in waits (``messages.status =
# 'awaiting_opt_in'``) until they opt in or ``held_until`` passes; found by index.
M013_COMMON = [
    "ALTER TABLE messages ADD COLUMN held_until TEXT",
    "CREATE INDEX idx_messages_awaiting_opt_in ON messages (customer_id, id)"
    " WHERE status = 'awaiting_opt_in'",
]


@migrations()
def m013_held_replies(db: Database) -> None:
    """``messages.held_until``: until when a reply waits for the customer to opt in."""
    for statement in M013_COMMON:
        db.execute(statement)


# m015: state every process shares, which used to live in one process's memory: budgets of
# Slack calls (token buckets; e.g. the history look-ups that find a post whose answer was lost)
# and the blast form's view hashes (the hash our own views.update gave a view, so a preview
# computed in another process still lands).
M015_COMMON = [
    "CREATE TABLE call_budgets (name TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,"
    " at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE view_hashes (hash TEXT PRIMARY KEY, next_hash TEXT NOT NULL,"
    " created_at TEXT NOT NULL)",
    "CREATE INDEX idx_view_hashes_created_at ON view_hashes (created_at)",
]


@migrations()
def m015_process_state(db: Database) -> None:
    """Slack call budgets and blast form view hashes, shared by every process."""
    for statement in M015_COMMON:
        db.execute(statement)


def _locate_customers(db: Db) -> None:
    """m009's and m012's backfill on PostgreSQL: every existing customer located."""
    for row in db.all("SELECT id, phone FROM customers ORDER BY id"):
        db.execute(
            "UPDATE customers SET e164 = ?, area_code = ?, state = ?, zones = ? WHERE id = ?",
            [*locate(row["phone"]).columns(), row["id"]],
        )


_POSTGRES_M007 = [
    "CREATE TABLE stores (keyword TEXT PRIMARY KEY, channel_id TEXT, name TEXT, store_id TEXT)",
    """CREATE TABLE customers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        store TEXT REFERENCES stores (keyword), phone TEXT, name TEXT, crm_id TEXT,
        status INTEGER, created_at TEXT, updated_at TEXT)""",
    "CREATE UNIQUE INDEX idx_customers_store_phone ON customers (store, phone)",
    """CREATE TABLE consent (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        customer_id BIGINT REFERENCES customers (id), at TEXT, status_from INTEGER,
        status_to INTEGER, how TEXT, text TEXT, actor TEXT)""",
    """CREATE TABLE threads (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        customer_id BIGINT REFERENCES customers (id), channel_id TEXT, ts TEXT, opened_at TEXT,
        last_activity_at TEXT, resolved_at TEXT, resolved_by TEXT, previous_id BIGINT,
        thread_key TEXT, post_after TEXT, post_tried INTEGER)""",
    "CREATE INDEX idx_threads_channel_id_ts ON threads (channel_id, ts)",
    "CREATE UNIQUE INDEX idx_threads_key ON threads (thread_key)",
    """CREATE TABLE messages (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        store TEXT, customer_id BIGINT REFERENCES customers (id),
        thread_id BIGINT REFERENCES threads (id), direction TEXT, kind TEXT, intent TEXT,
        text TEXT, media TEXT, provider_id TEXT, provider_time TEXT, slack_ts TEXT,
        media_posted INTEGER, status TEXT, error TEXT, staff_user TEXT, source_key TEXT,
        created_at TEXT, blast_id BIGINT, maybe_sent INTEGER, decided_by TEXT,
        message_key TEXT, post_after TEXT, post_tried INTEGER, final_text TEXT, signature TEXT,
        staff_name TEXT, send_started INTEGER, posted_with BIGINT, decision TEXT)""",
    "CREATE UNIQUE INDEX idx_messages_provider ON messages (store, provider_id)"
    " WHERE provider_id IS NOT NULL",
    "CREATE UNIQUE INDEX idx_messages_source ON messages (source_key) WHERE source_key IS NOT NULL",
    "CREATE UNIQUE INDEX idx_messages_key ON messages (message_key)",
    "CREATE TABLE events (key TEXT PRIMARY KEY, seen_at TEXT)",
    """CREATE TABLE jobs (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind TEXT, payload TEXT, queue TEXT, dedupe_key TEXT, status TEXT, attempts INTEGER,
        run_at TEXT, locked_until TEXT, last_error TEXT, created_at TEXT, park_key TEXT)""",
    "CREATE UNIQUE INDEX idx_jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL",
    "CREATE INDEX idx_jobs_status_run_at ON jobs (status, run_at)",
    """CREATE TABLE media (id TEXT PRIMARY KEY, message_id BIGINT, content_type TEXT,
        extension TEXT, data BYTEA, created_at TEXT)""",
    """CREATE TABLE blasts (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        store TEXT, name TEXT, text TEXT, final_text TEXT, append_opt_out INTEGER,
        media_url TEXT, mode TEXT, status TEXT, created_by TEXT, created_at TEXT,
        confirmed_by TEXT, confirmed_at TEXT, acknowledged TEXT, run_at TEXT, started_at TEXT,
        finished_at TEXT, total INTEGER, progress_channel TEXT, progress_ts TEXT,
        progress_at TEXT, campaign_attempted_at TEXT, report TEXT, step_seq INTEGER)""",
    "CREATE INDEX idx_blasts_store_status ON blasts (store, status)",
    """CREATE TABLE blast_recipients (
        blast_id BIGINT REFERENCES blasts (id), customer_id BIGINT REFERENCES customers (id),
        phone TEXT, status TEXT, reason TEXT, provider_id TEXT, attempted_at TEXT,
        finished_at TEXT, PRIMARY KEY (blast_id, customer_id))""",
    "CREATE INDEX idx_blast_recipients_blast_id_status ON blast_recipients (blast_id, status)",
    """CREATE TABLE slack_problems (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        key TEXT, problem TEXT, fix TEXT, since TEXT, resolved_at TEXT)""",
    "CREATE UNIQUE INDEX idx_slack_problems_open ON slack_problems (key) WHERE resolved_at IS NULL",
    "CREATE TABLE slack_pacing (channel TEXT PRIMARY KEY, tat DOUBLE PRECISION)",
    """CREATE TABLE slack_slots (channel TEXT, job_id BIGINT, at DOUBLE PRECISION,
        PRIMARY KEY (channel, job_id))""",
]

Step = str | Callable[["Db"], None]  # a statement, or Python (a backfill)

POSTGRES: list[tuple[str, Sequence[Step]]] = [
    ("m007_baseline", _POSTGRES_M007),
    (
        "m008_indexes",
        [
            *M008_COMMON,
            _M008_UNSYNCED.format(
                cid="(j.payload::jsonb ->> 'customer_id')::bigint",
                kcid="(k.payload::jsonb ->> 'customer_id')::bigint",
            ),
        ],
    ),
    ("m009_customer_location", [*M009_COMMON, _locate_customers]),
    ("m010_job_leases", M010_COMMON),
    ("m012_recipient_caps", [*M012_COMMON, _locate_customers]),
    ("m013_held_replies", M013_COMMON),
    ("m015_process_state", M015_COMMON),
]


def migrate(db: Db, *, stop_before: str | None = None) -> list[str]:
    """Apply pending migrations to either backend; return their names. ``stop_before``: stop
    at that migration (tests make an install as it was before it)."""
    from bridge.store.db import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        if db.path == ":memory:":
            return _apply_sqlite(Database(db.connection()), stop_before)
        # A connection of its own, as sqlite-utils expects (it manages its transactions).
        conn = sqlite3.connect(db.path, timeout=30)
        try:
            return _apply_sqlite(Database(conn), stop_before)
        finally:
            conn.close()
    return _migrate_postgres(db, stop_before)


def _apply_sqlite(database: Database, stop_before: str | None) -> list[str]:
    names = [m.name for m in migrations.pending(database)]
    if stop_before in names:
        names = names[: names.index(stop_before)]
    migrations.apply(database, stop_before=stop_before)
    return names


def pending(db: Db) -> list[str]:
    """The migrations not applied yet (``smsbridge doctor``: is the database migrated?)."""
    from bridge.store.db import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        return [m.name for m in migrations.pending(Database(db.connection()))]
    table = db.one("SELECT to_regclass('smsbridge_migrations') AS t")
    done = (
        {row["name"] for row in db.all("SELECT name FROM smsbridge_migrations")}
        if table and table["t"]
        else set()
    )
    return [name for name, _ in POSTGRES if name not in done]


def _migrate_postgres(db: Db, stop_before: str | None) -> list[str]:
    applied: list[str] = []
    with db.transaction():
        db.lock("smsbridge migrations")  # concurrent release phases take turns
        db.execute(
            "CREATE TABLE IF NOT EXISTS smsbridge_migrations (name TEXT PRIMARY KEY,"
            " applied_at TEXT NOT NULL)"
        )
        done = {row["name"] for row in db.all("SELECT name FROM smsbridge_migrations")}
        for name, statements in POSTGRES:
            if name == stop_before:
                break
            if name in done:
                continue
            for step in statements:
                if isinstance(step, str):
                    db.execute(step)
                else:
                    step(db)
            db.execute(
                "INSERT INTO smsbridge_migrations (name, applied_at) VALUES (?, ?)",
                [name, datetime.now(UTC).isoformat()],
            )
            applied.append(name)
    return applied
