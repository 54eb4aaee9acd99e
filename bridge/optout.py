"""Opting customers out in CRM Text on their behalf (revocation words, staff's Opt out button)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.held import report_now
from bridge.jobs import GiveUp, Handler, Retry
from bridge.store import OPTED_OUT, Store

log = logging.getLogger(__name__)


def request_opt_out(
    storage: Store,
    customer_id: int,
    *,
    how: str,
    text: str,
    actor: str,
    thread_id: int | None,
    now: datetime,
    push: bool = False,
) -> bool:
    """Mark the customer opted out now and queue one optoutcustomer call.

    Nothing is queued when they already were opted out here (CRM Text sends its opt-out
    message on every call, and one confirmation is all the rule allows) unless ``push``: the
    local opt-out must be pushed to CRM Text, which still lists them as opted in.
    """
    with storage.transaction():
        changed = storage.customers.set_status(
            customer_id, OPTED_OUT, how=how, text=text, actor=actor, now=now, crm_synced=False
        )
        if not (changed or push) or storage.jobs.has_pending(
            "crm_opt_out", "customer_id", customer_id
        ):
            return False
        storage.jobs.enqueue(
            "crm_opt_out",
            {"customer_id": customer_id, "thread_id": thread_id, "actor": actor},
            customer_id=customer_id,
            now=now,
        )
        return True


def release_held_replies(storage: Store, customer_id: int, now: datetime) -> int:
    """Staff have decided on every text of the customer that may be a stop request, or the
    customer is opted out anyway: the replies held meanwhile go on to ``send_reply`` (sent if
    it was not a stop request, reported as not sent to an opted-out customer). Returns how
    many were released."""
    customer = storage.customers.get(customer_id)
    if customer["status"] != OPTED_OUT and storage.customers.asked_to_stop(customer_id):
        return 0
    held = storage.conversations.held_replies(customer_id)
    with storage.transaction():
        for message in held:
            storage.conversations.update_message(message["id"], status="pending", error="")
            storage.jobs.enqueue(
                "send_reply", {"message_id": message["id"]}, customer_id=customer_id, now=now
            )
    return len(held)


def not_sent_held(storage: Store, customer_id: int, now: datetime) -> int:
    """The customer is opted out: every reply held for them is reported as not sent, both
    those waiting for their opt-in (:func:`bridge.held.report_now`) and those waiting for a
    decision on a stop request (:func:`release_held_replies`). Every opt-out path calls this.
    Returns how many."""
    return report_now(storage, customer_id, now) + release_held_replies(storage, customer_id, now)


def opt_out_handler(storage: Store, crm: CrmTextClient, clock: Callable[[], datetime]) -> Handler:
    """Job ``crm_opt_out``: call optoutcustomer, then tell the thread."""

    def handle(payload: dict[str, Any]) -> None:
        customer = storage.customers.get(payload["customer_id"])
        if customer["status"] != OPTED_OUT:
            return  # they opted in again (START) before the push went out: theirs to decide
        try:
            # Already opted out there (getcustomerinfo 5): a second call would text them again.
            if not (
                payload.get("check")
                and _opted_out_at_crm(crm, customer["store"], customer["phone"])
            ):
                crm.opt_out(customer["store"], customer["phone"])
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError as exc:
            _notice(
                storage,
                payload,
                customer["id"],
                clock(),
                f":warning: CRM Text refused the opt-out ({_literal(exc.message)}). "
                "This number stays blocked here; opt them out in the CRM Text admin too.",
            )
            storage.customers.crm_push_failed(customer["id"], str(exc))
            raise GiveUp(str(exc)) from exc
        storage.customers.mark_crm_synced(customer["id"])
        _notice(
            storage,
            payload,
            customer["id"],
            clock(),
            ":no_entry: Opted out in CRM Text. No more texts will go to this number.",
        )

    return handle


def _opted_out_at_crm(crm: CrmTextClient, store: str, phone: str) -> bool:
    """Does getcustomerinfo say opted out (5)? False when CRM Text does not know the number."""
    try:
        return crm.customer_info(store, phone).status == OPTED_OUT
    except CrmTextUnavailable:
        raise
    except CrmTextError:
        return False


def _literal(text: str) -> str:
    """CRM Text's words shown as written in a chat notice (``&``, ``<``, ``>`` as entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _notice(
    storage: Store, payload: dict[str, Any], customer_id: int, now: datetime, text: str
) -> None:
    thread_id = payload.get("thread_id")
    if thread_id is None and payload.get("message_id") is not None:
        thread_id = storage.conversations.message(payload["message_id"])["thread_id"]
    if thread_id is None:
        return
    storage.jobs.enqueue(
        "post_notice",
        {"thread_id": thread_id, "text": text, "refresh": True},
        customer_id=customer_id,
        now=now,
    )


def status_check_handler(
    storage: Store, crm: CrmTextClient, clock: Callable[[], datetime]
) -> Handler:
    """Job ``crm_status_check``: learn a customer's exact status (1/3/4/5) from CRM Text.

    A local opt-out is never undone here; only the customer's START can do that.
    """

    def handle(payload: dict[str, Any]) -> None:
        customer = storage.customers.get(payload["customer_id"])
        try:
            status = crm.customer_info(customer["store"], customer["phone"]).status
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError as exc:
            raise GiveUp(f"getcustomerinfo: {exc}") from exc
        if customer["status"] == OPTED_OUT or status == customer["status"]:
            return
        now = clock()
        with storage.transaction():
            storage.customers.set_status(
                customer["id"], status, how="CRM Text getcustomerinfo", now=now
            )
            if status == OPTED_OUT:
                not_sent_held(storage, customer["id"], now)
        if payload.get("thread_id") is not None:
            storage.jobs.enqueue(
                "refresh_thread",
                {"thread_id": payload["thread_id"]},
                customer_id=customer["id"],
                now=clock(),
            )

    return handle
