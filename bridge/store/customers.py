"""Stores (keyword -> Slack channel) and customers with their consent, as first-class state.

A customer's row says who may be texted: ``status``, ``consent_source`` (how it came about) and
``crm_synced`` (0 while a local opt-out has not reached CRM Text; ``crm_push_error`` when the
push was refused or gave up). Each change is written with its ledger entry in one transaction;
nothing else (job rows, housekeeping) ever decides it.
"""

from __future__ import annotations

from datetime import datetime

from bridge.clock import iso
from bridge.consent import NEW, OPTED_IN, OPTED_OUT
from bridge.store.db import Database, Row, insert, update


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
        if name or store_id:
            self.db.execute(
                "UPDATE stores SET name = coalesce(nullif(?, ''), name),"
                " store_id = coalesce(nullif(?, ''), store_id) WHERE keyword = ?",
                [name, store_id, keyword],
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
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [keyword.upper(), phone, name, crm_id, NEW, iso(now), iso(now)],
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
    ) -> bool:
        """Change a customer's opt-in status and write the consent ledger; True if it changed.

        ``crm_synced=False``: the change is ours alone (an opt-out CRM Text must still be told
        of); it stays recorded until :meth:`mark_crm_synced`.
        """
        with self.db.transaction():
            before = self.get(customer_id)["status"]
            if before == status:
                return False
            update(
                self.db,
                "customers",
                {"id": customer_id},
                {
                    "status": status,
                    "updated_at": iso(now),
                    "consent_source": how,
                    "crm_synced": crm_synced,
                    "crm_push_error": None,
                },
            )
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
        """Opt-outs on their way to CRM Text (not yet refused or given up)."""
        row = self.db.one(
            "SELECT count(*) AS n FROM customers WHERE store = ? AND crm_synced = 0"
            " AND status = ? AND crm_push_error IS NULL",
            [store, OPTED_OUT],
        )
        return int(row["n"]) if row else 0

    def consent_history(self, customer_id: int) -> list[Row]:
        return self.db.all("SELECT * FROM consent WHERE customer_id = ? ORDER BY id", [customer_id])

    def with_status(self, keyword: str, status: int) -> list[Row]:
        return self.db.all(
            "SELECT * FROM customers WHERE store = ? AND status = ? ORDER BY id",
            [keyword.upper(), status],
        )

    def of_store(self, keyword: str) -> list[Row]:
        return self.db.all("SELECT * FROM customers WHERE store = ? ORDER BY id", [keyword.upper()])

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
