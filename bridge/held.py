"""Replies held until the customer opts in (the first-texter flow).

A customer who is not opted in (a new guest, or opt-in pending) may text the store first. A
reply staff type meanwhile is held, not refused: it is texted once the customer opts in (their
YES or keyword, or CRM Text's answer to the opt-in request), or reported as not sent once
:data:`HOLD_FOR` has passed. A held reply is ``messages.status = 'awaiting_opt_in'`` with
``held_until`` (not ``'held'``: that is a reply waiting for staff to decide on a possible stop
request); its expiry is a ``held_expire`` job in a queue of its own (a job waiting 24 hours at
the head of the customer's queue would hold back everything else of theirs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.phones import pretty
from bridge.store import Row, Store, iso

HOLD_FOR = timedelta(hours=24)
HELD = "awaiting_opt_in"
EXPIRED = "expired"


def hold_hours() -> int:
    return int(HOLD_FOR.total_seconds() // 3600)


def _expiry_job(storage: Store, message_id: int, until: datetime, now: datetime) -> None:
    storage.jobs.enqueue(
        "held_expire",
        {"message_id": message_id},
        queue=f"held:{message_id}",
        dedupe_key=f"held-expire:{message_id}:{iso(until)}",
        now=now,
        delay=(until - now).total_seconds(),
    )


def hold(storage: Store, message_id: int, now: datetime) -> datetime | None:
    """Hold a pending reply until the customer opts in; the time it expires, or None when the
    reply was no longer pending (deleted, sent, held already)."""
    until = now + HOLD_FOR
    with storage.transaction():
        if not storage.conversations.move_message(
            message_id, "pending", HELD, held_until=iso(until), send_started=0
        ):
            return None
        _expiry_job(storage, message_id, until, now)
    return until


def add_held(storage: Store, fields: Row, now: datetime) -> int:
    """Store a new outbound message (a ``/sms`` draft) as held; returns its id."""
    until = now + HOLD_FOR
    with storage.transaction():
        message_id = storage.conversations.add_message(
            {**fields, "status": HELD, "held_until": iso(until)}
        )
        _expiry_job(storage, message_id, until, now)
    return message_id


def release(storage: Store, customer_id: int, now: datetime) -> int:
    """The customer opted in: each held reply goes back to ``pending`` with its ``send_reply``
    job (once: a reply released twice is sent once), and each thread is told. Returns how many
    were released."""
    released: list[Row] = []
    with storage.transaction():
        for message in storage.conversations.held_messages(customer_id):
            if not storage.conversations.move_message(message["id"], HELD, "pending"):
                continue
            storage.jobs.enqueue(
                "send_reply",
                {"message_id": message["id"]},
                customer_id=customer_id,
                dedupe_key=f"send-held:{message['id']}:{message['held_until']}",
                now=now,
            )
            released.append(message)
        if not released:
            return 0
        phone = pretty(storage.customers.get(customer_id)["phone"])
        for thread_id in dict.fromkeys(m["thread_id"] for m in released):
            n = sum(1 for m in released if m["thread_id"] == thread_id)
            what = "the held reply is" if n == 1 else f"{n} held replies are"
            storage.jobs.enqueue(
                "post_notice",
                {
                    "thread_id": thread_id,
                    "text": f":white_check_mark: {phone} opted in, so {what} being texted now.",
                },
                customer_id=customer_id,
                dedupe_key=f"released:{thread_id}:{released[-1]['id']}",
                now=now,
            )
    return len(released)


def report_now(storage: Store, customer_id: int, now: datetime) -> int:
    """The customer opted out: each reply waiting for their opt-in is reported as not sent
    now, not when its hold runs out (a ``held_expire`` job at once, in a queue of its own: the
    one in the hold's queue still waits). Returns how many."""
    waiting = storage.conversations.held_messages(customer_id)
    with storage.transaction():
        for message in waiting:
            storage.jobs.enqueue(
                "held_expire",
                {"message_id": message["id"]},
                queue=f"held-now:{message['id']}",
                dedupe_key=f"held-expire-now:{message['id']}:{message['held_until']}",
                now=now,
            )
    return len(waiting)
