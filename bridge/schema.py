"""The database schema, as ordered ``sqlite_utils.Migrations``. Never edit an applied one."""

from __future__ import annotations

from sqlite_utils import Database, Migrations
from sqlite_utils.db import Table

from bridge.phones import locate  # new customers go through the same pure function

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


@migrations()
def m009_customer_location(db: Database) -> None:
    """Each customer's number worked out once: ``e164`` (NULL: not a valid US number),
    ``area_code``, ``state`` (NULL: unknown) and ``zones`` (IANA names joined by spaces, ``""``:
    unknown), so a blast preflight never parses numbers. Backfills every existing customer.
    Indexes: ``(store, status, e164, state, zones)`` (the preflight's audience, read from the
    index alone) and
    the customers not located yet (``zones IS NULL``, none after the backfill)."""
    customers = _table(db, "customers")
    for column in ("e164", "area_code", "state", "zones"):
        customers.add_column(column, str)
    customers.create_index(["store", "status", "e164", "state", "zones"], "customers_audience")
    db.execute("CREATE INDEX customers_unlocated ON customers (store) WHERE zones IS NULL")
    rows = list(db.execute("SELECT id, phone FROM customers"))
    db.conn.executemany(
        "UPDATE customers SET e164 = ?, area_code = ?, state = ?, zones = ? WHERE id = ?",
        [(*locate(phone).columns(), cid) for cid, phone in rows],
    )


@migrations()
def m010_job_leases(db: Database) -> None:
    """``jobs.lost``: how many times a claim found the job abandoned (the worker running it
    died: killed, out of memory), so such a job gives up after a few tries at claim time.
    One column, default 0; nothing else changes."""
    db.execute("ALTER TABLE jobs ADD COLUMN lost INTEGER NOT NULL DEFAULT 0")
