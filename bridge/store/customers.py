"""Stores (keyword -> Slack channel) and customers with their consent, as first-class state.

A customer's row says who may be texted: ``status``, ``consent_source`` (how it came about) and
``crm_synced`` (0 while a local opt-out has not reached CRM Text; ``crm_push_error`` when the
push was refused or gave up). Each change is written with its ledger entry in one transaction;
nothing else (job rows, housekeeping) ever decides it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bridge import area_codes
from bridge.clock import iso
from bridge.consent import NEW, OPTED_IN, OPTED_OUT, PENDING
from bridge.phones import locate
from bridge.store.db import Database, Row, insert

CHUNK = 500  # rows per multi-row statement (well under either backend's parameter limit)
_TOLL_FREE = sorted(area_codes.TOLL_FREE_CODES)
_NON_GEO = sorted(area_codes.NON_GEOGRAPHIC_CODES)


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


_NOT_PLACES = _marks(_TOLL_FREE + _NON_GEO)
LOCATION = "e164, area_code, state, zones"  # a number as located at ingest (m009)


class Stores:
    def __init__(self, db: Database) -> None:
        self.db = db

    def sync(self, stores: dict[str, str]) -> None:
        """Make the stores table match configuration (keyword -> Slack channel)."""
        with self.db.transaction():
            for keyword, channel in stores.items():
                self.db.execute(
                    "INSERT INTO stores (keyword, channel_id, name) VALUES (?, ?, '')"
                    " ON CONFLICT (keyword) DO UPDATE SET channel_id = excluded.channel_id",
                    [keyword, channel],
                )

    def get(self, keyword: str) -> Row | None:
        return self.db.one("SELECT * FROM stores WHERE keyword = ?", [keyword.upper()])

    def set_details(self, keyword: str, name: str, store_id: str) -> None:
        """Record the store's name and CRM Text id as a callback gives them. Only a change is
        written: every callback calls this, and a write would lock the store's row until the
        callback's transaction ends (one store's callbacks then run one at a time)."""
        if name or store_id:
            self.db.execute(
                "UPDATE stores SET name = coalesce(nullif(?, ''), name),"
                " store_id = coalesce(nullif(?, ''), store_id) WHERE keyword = ?"
                " AND ((? <> '' AND coalesce(name, '') <> ?)"
                " OR (? <> '' AND coalesce(store_id, '') <> ?))",
                [name, store_id, keyword, name, name, store_id, store_id],
            )


class Customers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, customer_id: int) -> Row:
        row = self.db.one("SELECT * FROM customers WHERE id = ?", [customer_id])
        if row is None:
            raise KeyError(f"no customer {customer_id}")
        return row

    def find(self, keyword: str, phone: str) -> Row | None:
        return self.db.one(
            "SELECT * FROM customers WHERE store = ? AND phone = ?", [keyword.upper(), phone]
        )

    def upsert(
        self, keyword: str, phone: str, *, name: str = "", crm_id: str = "", now: datetime
    ) -> Row:
        """Find or create the customer; fill in name and CRM Text id when we learn them."""
        with self.db.transaction():
            row = self.find(keyword, phone)
            if row is None:
                self.db.execute(
                    "INSERT INTO customers (store, phone, name, crm_id, status, created_at,"
                    f" updated_at, {LOCATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [
                        keyword.upper(),
                        phone,
                        name,
                        crm_id,
                        NEW,
                        iso(now),
                        iso(now),
                        *locate(phone).columns(),
                    ],
                )
            elif (name and name != row["name"]) or (crm_id and crm_id != row["crm_id"]):
                self.db.execute(
                    "UPDATE customers SET name = coalesce(nullif(?, ''), name),"
                    " crm_id = coalesce(nullif(?, ''), crm_id) WHERE id = ?",
                    [name, crm_id, row["id"]],
                )
            else:
                return row
            found = self.find(keyword, phone)
            assert found is not None
            return found

    def find_many(self, keyword: str, phones: list[str]) -> dict[str, Row]:
        """The store's customers among ``phones`` (``id``, ``phone``, ``status``; one query
        per 500 numbers), by phone."""
        found: dict[str, Row] = {}
        for i in range(0, len(phones), CHUNK):
            chunk = phones[i : i + CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.all(
                f"SELECT id, phone, status FROM customers WHERE store = ? AND phone IN ({marks})",
                [keyword.upper(), *chunk],
            )
            found.update((row["phone"], row) for row in rows)
        return found

    def add_many(
        self, keyword: str, customers: list[tuple[str, str, str]], *, now: datetime
    ) -> None:
        """Add new customers ``(phone, name, crm_id)`` at once, each located at ingest; status
        NEW (their status is then set through :meth:`set_statuses`, with the consent ledger).
        A number the store already has is left as it is."""
        store, at = keyword.upper(), iso(now)
        with self.db.transaction():
            for i in range(0, len(customers), CHUNK):
                chunk = customers[i : i + CHUNK]
                self.db.execute(
                    "INSERT INTO customers (store, phone, name, crm_id, status, created_at,"
                    f" updated_at, {LOCATION}) VALUES "
                    + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
                    + " ON CONFLICT DO NOTHING",
                    [
                        value
                        for phone, name, crm_id in chunk
                        for value in (
                            store,
                            phone,
                            name,
                            crm_id,
                            NEW,
                            at,
                            at,
                            *locate(phone).columns(),
                        )
                    ],
                )

    def set_statuses(self, moves: list[tuple[int, int, int]], *, how: str, now: datetime) -> int:
        """:meth:`set_status` for many customers ``(id, status before, status after)`` at once,
        each as CRM Text has it (``crm_synced``): each moves only if it still has its status
        before, and each move is in the ledger. Returns how many moved. Two statements per
        500 customers (a store's first sync moves every customer)."""
        count, at = 0, iso(now)
        with self.db.transaction():
            for i in range(0, len(moves), CHUNK):
                chunk = moves[i : i + CHUNK]
                rows = self.db.all(
                    "UPDATE customers SET status = v.column3, updated_at = ?, consent_source = ?,"
                    " crm_synced = 1, crm_push_error = NULL FROM (VALUES "
                    + ", ".join("(?, ?, ?)" for _ in chunk)
                    + ") AS v WHERE customers.id = v.column1 AND customers.status = v.column2"
                    " RETURNING customers.id",
                    [at, how, *(value for move in chunk for value in move)],
                )
                moved = {row["id"] for row in rows}
                ledger = [(cid, before, after) for cid, before, after in chunk if cid in moved]
                if ledger:
                    self.db.execute(
                        "INSERT INTO consent (customer_id, at, status_from, status_to, how, text,"
                        " actor) VALUES " + ", ".join("(?, ?, ?, ?, ?, '', '')" for _ in ledger),
                        [v for cid, before, after in ledger for v in (cid, at, before, after, how)],
                    )
                count += len(ledger)
        return count

    def set_status(
        self,
        customer_id: int,
        status: int,
        *,
        how: str,
        text: str = "",
        actor: str = "",
        now: datetime,
        crm_synced: bool = True,
        rejoin: bool = False,
    ) -> bool:
        """Change a customer's opt-in status and write the consent ledger; True if it changed.

        ``crm_synced=False``: the change is ours alone (an opt-out CRM Text must still be told
        of); it stays recorded until :meth:`mark_crm_synced`.

        An opted-out customer stays opted out unless ``rejoin``: the customer's own opt-in
        text (START, UNSTOP, the keyword; YES after CRM Text's confirmation). A job that read
        CRM Text's status before a revocation arrived can never undo it. The move is made only
        if the status is still the one read here (one conditional update).
        """
        with self.db.transaction():
            before = self.get(customer_id)["status"]
            if before == status or (before == OPTED_OUT and not rejoin):
                return False
            moved = self.db.execute(
                "UPDATE customers SET status = ?, updated_at = ?, consent_source = ?,"
                " crm_synced = ?, crm_push_error = NULL WHERE id = ? AND status = ?",
                [status, iso(now), how, int(crm_synced), customer_id, before],
            )
            if not moved:
                return False
            insert(
                self.db,
                "consent",
                {
                    "customer_id": customer_id,
                    "at": iso(now),
                    "status_from": before,
                    "status_to": status,
                    "how": how,
                    "text": text,
                    "actor": actor,
                },
            )
            return True

    def mark_crm_synced(self, customer_id: int) -> None:
        """CRM Text has the customer's current status (an opt-out push succeeded)."""
        self.db.execute(
            "UPDATE customers SET crm_synced = 1, crm_push_error = NULL WHERE id = ?",
            [customer_id],
        )

    def crm_push_failed(self, customer_id: int, error: str) -> None:
        """The opt-out push was refused or gave up: still blocked here, still not at CRM Text."""
        self.db.execute(
            "UPDATE customers SET crm_push_error = ? WHERE id = ? AND crm_synced = 0",
            [error or "failed", customer_id],
        )

    def opt_out_unpushed(self, customer_id: int) -> bool:
        """Is the customer opted out here but CRM Text has not been told (pending or failed)?
        If not, CRM Text knows, and an opt-in there is the customer rejoining."""
        row = self.get(customer_id)
        return bool(row["status"] == OPTED_OUT and not row["crm_synced"])

    def pending_opt_outs(self, store: str) -> int:
        """Opt-outs CRM Text has not confirmed: on their way, refused or given up alike (a
        campaign reaches everyone CRM Text lists as opted in, so each one blocks it)."""
        row = self.db.one(
            "SELECT count(*) AS n FROM customers WHERE store = ? AND crm_synced = 0 AND status = ?",
            [store, OPTED_OUT],
        )
        return int(row["n"]) if row else 0

    def consent_history(self, customer_id: int) -> list[Row]:
        return self.db.all("SELECT * FROM consent WHERE customer_id = ? ORDER BY id", [customer_id])

    def consent_log(self, keyword: str, since: str, after: int, limit: int) -> list[Row]:
        """A page of the store's consent ledger (entries at or after ``since``, an ISO time,
        with id above ``after``), oldest first, each with the customer's number and name.
        The ledger is walked in id order from ``after`` (CROSS JOIN keeps SQLite from starting
        at the store's customers and sorting all their entries for every page), so a whole
        export reads each entry once."""
        return self.db.all(
            "SELECT c.id, c.at, c.status_from, c.status_to, c.how, c.text, c.actor,"
            " u.phone, u.name FROM consent c CROSS JOIN customers u"
            " WHERE u.id = c.customer_id AND u.store = ? AND c.at >= ? AND c.id > ?"
            " ORDER BY c.id LIMIT ?",
            [keyword.upper(), since, after, limit],
        )

    def with_status(self, keyword: str, status: int) -> list[Row]:
        return self.db.all(
            "SELECT * FROM customers WHERE store = ? AND status = ? ORDER BY id",
            [keyword.upper(), status],
        )

    def of_store(self, keyword: str) -> list[Row]:
        return self.db.all("SELECT * FROM customers WHERE store = ? ORDER BY id", [keyword.upper()])

    def audience_counts(
        self, keyword: str
    ) -> tuple[list[str], dict[str, int], list[tuple[str | None, str, int]]]:
        """The store's audience worked out in the database from the locations stored at ingest
        (the rules of :func:`bridge.preflight.summarise`, which tests hold this to):

        * recipients: opted-in valid numbers (E.164) that no opted-out record shares, once each,
          in order of their first customer;
        * counts: ``opted_out`` (status), ``pending``, ``new``, ``invalid``, ``toll_free``,
          ``non_geographic`` (opted in, but no place to check quiet hours in), ``opted_out_number``
          (opted in, but the number is opted out elsewhere) and ``duplicate``;
        * places: ``(state, zones, recipients)`` in order of first appearance.

        Customers never located (added before ``m009``) are located first.
        """
        store = keyword.upper()
        with self.db.transaction():
            self._locate_missing(store)
            # Every opted-in record that may be texted, in id order, as three narrow columns:
            # no GROUP BY (grouping 100,000 numbers and sorting the groups by their first id
            # spilled to disk on PostgreSQL), read in primary-key order; the numbers are made
            # unique below. NOT EXISTS, not NOT IN: an anti-join stays one pass however many
            # numbers are opted out. Toll-free and non-geographic numbers are never
            # recipients (no time zone).
            eligible = self.db.tuples(
                "SELECT c.e164, c.state, c.zones FROM customers c"
                " WHERE c.store = ? AND c.status = ? AND c.e164 IS NOT NULL"
                f" AND c.area_code NOT IN ({_NOT_PLACES}) AND NOT EXISTS"
                " (SELECT 1 FROM customers o WHERE o.store = ? AND o.status = ?"
                " AND o.e164 = c.e164) ORDER BY c.id",
                [store, OPTED_IN, *_TOLL_FREE, *_NON_GEO, store, OPTED_OUT],
            )
            row = self.db.one(
                "SELECT sum(CASE WHEN status = ? THEN 1 ELSE 0 END) AS opted_out,"
                " sum(CASE WHEN status = ? THEN 1 ELSE 0 END) AS pending,"
                " sum(CASE WHEN status NOT IN (?, ?, ?) THEN 1 ELSE 0 END) AS new,"
                " sum(CASE WHEN status = ? AND e164 IS NULL THEN 1 ELSE 0 END) AS invalid,"
                " sum(CASE WHEN status = ? AND e164 IS NOT NULL"
                f" AND area_code IN ({_marks(_TOLL_FREE)}) THEN 1 ELSE 0 END) AS toll_free,"
                " sum(CASE WHEN status = ? AND e164 IS NOT NULL"
                f" AND area_code IN ({_marks(_NON_GEO)}) THEN 1 ELSE 0 END) AS non_geographic,"
                " sum(CASE WHEN status = ? THEN 1 ELSE 0 END) AS opted_in"
                " FROM customers WHERE store = ?",
                [OPTED_OUT, PENDING, OPTED_IN, OPTED_OUT, PENDING, OPTED_IN, OPTED_IN,
                 *_TOLL_FREE, OPTED_IN, *_NON_GEO, OPTED_IN, store],
            )  # fmt: skip
        assert row is not None
        # Each number once, at its first customer (a dict keeps first insertion order). Every
        # record of a number is located alike (locate is a function of the number), so any
        # record gives its place.
        located = {e164: (state, zones) for e164, state, zones in eligible}
        recipients = list(located)
        places = Counter(located.values())  # in order of first appearance
        names = ("opted_out", "pending", "new", "invalid", "toll_free", "non_geographic")
        counts = {name: int(row[name] or 0) for name in names}
        counts["duplicate"] = len(eligible) - len(located)
        counts["opted_out_number"] = (
            int(row["opted_in"] or 0)
            - counts["invalid"]
            - counts["toll_free"]
            - counts["non_geographic"]
            - len(recipients)
            - counts["duplicate"]
        )
        return recipients, counts, [(state, zones, n) for (state, zones), n in places.items()]

    def _locate_missing(self, store: str) -> None:
        for row in self.db.all(
            "SELECT id, phone FROM customers WHERE store = ? AND zones IS NULL", [store]
        ):
            self.db.execute(
                f"UPDATE customers SET ({LOCATION}) = (?, ?, ?, ?) WHERE id = ?",
                [*locate(row["phone"]).columns(), row["id"]],
            )

    def audience_of(self, keyword: str) -> list[tuple[int, str, int, str | None, str | None, str]]:
        """What a blast preflight needs of every customer, read in one narrow query:
        ``(id, phone, status, e164, state, zones)`` in id order (location as stored at ingest)."""
        return self.db.tuples(
            "SELECT id, phone, status, e164, state, zones FROM customers WHERE store = ?"
            " ORDER BY id",
            [keyword.upper()],
        )

    def undecided_stop_requests(self, store: str) -> int:
        """Texts that sound like a stop request from customers still opted in, undecided."""
        row = self.db.one(
            "SELECT count(*) AS n FROM messages m JOIN customers c ON c.id = m.customer_id"
            " WHERE m.store = ? AND m.intent = 'soft_stop' AND m.decided_by IS NULL"
            " AND c.status = ?",
            [store, OPTED_IN],
        )
        return int(row["n"]) if row else 0

    def asked_to_stop(self, customer_id: int) -> bool:
        """Has the customer sent a text that sounds like "stop" that staff have not decided on?"""
        row = self.db.one(
            "SELECT 1 AS x FROM messages WHERE customer_id = ? AND intent = 'soft_stop'"
            " AND decided_by IS NULL LIMIT 1",
            [customer_id],
        )
        return row is not None
