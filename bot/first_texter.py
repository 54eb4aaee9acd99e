"""A customer who is not opted in texts the store first: their thread says so and offers the
opt-in request (see bridge/held.py for the replies typed meanwhile).

The callback's ``optInStatus`` says "Opt-out" for anyone not opted in, so the exact status
comes from the ``crm_status_check`` job (getcustomerinfo). :func:`offering_opt_in` wraps that
job: once it knows the customer is a new guest or opt-in pending, the thread gets one
``offer_opt_in`` notice (Slack lane, after the text itself in the customer's queue).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.held import release
from bridge.jobs import GiveUp, Handler
from bridge.store import NEW, OPTED_IN, PENDING, Store


def offering_opt_in(handler: Handler, storage: Store, clock: Callable[[], datetime]) -> Handler:
    """``handler`` (the status check), then the thread's opt-in offer when the customer is not
    opted in, or their held replies released when CRM Text has them opted in. CRM Text not
    knowing the number (the check gives up) leaves them a new guest."""

    def offer(payload: dict[str, Any]) -> None:
        customer = storage.customers.get(payload["customer_id"])
        if customer["status"] == OPTED_IN:  # CRM Text has them opted in: held replies go
            release(storage, customer["id"], clock())
            return
        thread_id = payload.get("thread_id")
        if thread_id is None or customer["status"] not in (NEW, PENDING):
            return
        storage.jobs.enqueue(
            "offer_opt_in",
            {"thread_id": thread_id},
            customer_id=customer["id"],
            dedupe_key=f"offer-opt-in:{thread_id}",  # once per thread
            now=clock(),
        )

    def handle(payload: dict[str, Any]) -> None:
        try:
            handler(payload)
        except GiveUp:
            offer(payload)
            raise
        offer(payload)

    return handle
