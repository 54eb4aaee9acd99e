"""The audience sync: CRM Text's customer lists (``getcustbystatus``) brought into storage.

Streams: one page is fetched, merged in one transaction and dropped before the next is asked
for, so memory stays flat whatever the store's size, and a sync cut short keeps every page it
finished. CRM Text is authoritative for opt-ins, except that a local opt-out always wins: it is
pushed to CRM Text (optoutcustomer) and the preflight blocks until that is done, and once CRM
Text has had it, its list never moves the customer back (only their own START/keyword text can).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from bridge.crmtext import CrmTextClient, CrmTextUnavailable, Customer
from bridge.jobs import Retry
from bridge.optout import not_sent_held, request_opt_out
from bridge.store import OPTED_IN, OPTED_OUT, PENDING, Store

PAGE = 1000
MAX_OFFSET = 200_000  # customers per status; a store is far smaller
STATUSES = (OPTED_IN, PENDING, OPTED_OUT)


def pages(
    crm: CrmTextClient, store: str, status: int, size: int = PAGE
) -> Iterator[list[Customer]]:
    """The store's customers with ``status``, one page at a time, each page once.

    Stops on a short page, at the cap, or when CRM Text answers the same page again (an
    ignored offset). Raises :class:`Retry` when CRM Text cannot be reached.
    """
    offset = 0
    previous: frozenset[str] = frozenset()
    while True:
        try:
            page = crm.customers_by_status(store, status, offset, size)
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        mobiles = frozenset(c.mobile for c in page)
        if not page or mobiles == previous:
            return
        yield page
        if len(page) < size or offset >= MAX_OFFSET:
            return
        previous = mobiles
        offset += size


def sync(
    storage: Store, crm: CrmTextClient, store: str, now: datetime, page_size: int = PAGE
) -> int:
    """Bring in CRM Text's customer list; return how many records changed."""
    changed = 0
    for status in STATUSES:
        for page in pages(crm, store, status, page_size):
            with storage.transaction():
                changed += merge_page(storage, store, page, now)
    return changed


def merge_page(storage: Store, store: str, page: list[Customer], now: datetime) -> int:
    """Merge one page: new customers added (located once), changed statuses recorded."""
    remote = {"+1" + c.mobile: c for c in page}
    local = storage.customers.find_many(store, list(remote))
    missing = [(phone, c.name, c.cust_id) for phone, c in remote.items() if phone not in local]
    if missing:
        storage.customers.add_many(store, missing, now=now)
        local.update(storage.customers.find_many(store, [p for p, _, _ in missing]))
    changed = 0
    moves: list[tuple[int, int, int]] = []
    for phone, customer in remote.items():
        row = local[phone]
        if row["status"] == customer.status:
            continue
        if row["status"] == OPTED_OUT and not storage.customers.opt_out_unpushed(row["id"]):
            # The latest consent event is a revocation: CRM Text's list never undoes it; only
            # the customer's own opt-in text does (bridge.inbound), which leaves them opted in.
            continue
        if row["status"] == OPTED_OUT:
            changed += request_opt_out(
                storage,
                row["id"],
                how="local opt-out pushed to CRM Text",
                text="",
                actor="smsbridge",
                thread_id=None,
                now=now,
                push=True,
            )
            continue
        moves.append((row["id"], row["status"], customer.status))
    changed += storage.customers.set_statuses(moves, how="CRM Text customer list", now=now)
    opted_out = [customer_id for customer_id, _, after in moves if after == OPTED_OUT]
    for customer_id in storage.conversations.holding(opted_out) if opted_out else ():
        not_sent_held(storage, customer_id, now)  # every reply held for them: not sent
    return changed
