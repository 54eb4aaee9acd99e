"""Accept an inbound text: record it, its consent meaning and the job that posts it, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta

from bridge.callback import InboundSms
from bridge.keywords import Intent, classify, normalise
from bridge.store import OPTED_IN, OPTED_OUT, Row, Store, iso

log = logging.getLogger(__name__)

# A text within this long of a blast to the customer is shown as a reply to that blast.
BLAST_REPLY_WINDOW = timedelta(days=3)


class UnknownStore(LookupError):
    """The callback names a keyword that is not in SMS_STORES."""


class Inbound:
    """Turns parsed callbacks into stored messages plus durable jobs."""

    def __init__(
        self,
        storage: Store,
        stores: Mapping[str, str],
        *,
        quiet: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.storage = storage
        self.stores = stores
        self.quiet = quiet
        self.clock = clock

    def accept(self, sms: InboundSms) -> tuple[int, bool]:
        """Store the message once; return (message id, whether it was new)."""
        channel = self.stores.get(sms.keyword)
        if channel is None:
            raise UnknownStore(f"keyword {sms.keyword} is not configured in SMS_STORES")
        now = self.clock()
        intent = classify(sms.text)  # before the lock: nothing else waits on reading a text
        with self.storage.transaction():
            self.storage.lock(f"sms {sms.keyword} {sms.msg_id}")
            seen = self.storage.conversations.message_by_provider_id(sms.keyword, sms.msg_id)
            if seen is not None:
                return seen["id"], False
            self.storage.stores.set_details(sms.keyword, sms.store_name, sms.store_id)
            customer = self.storage.customers.upsert(
                sms.keyword, sms.phone, name=sms.customer_name, crm_id=sms.cust_id, now=now
            )
            changed = self._apply_consent(customer, sms, intent, now)
            thread = self.storage.conversations.current_thread(
                customer["id"], channel, now, self.quiet
            )
            blast = self.storage.blasts.recent_for(customer["id"], now - BLAST_REPLY_WINDOW)
            message_id = self.storage.conversations.add_message(
                {
                    "store": sms.keyword,
                    "customer_id": customer["id"],
                    "thread_id": thread["id"],
                    "direction": "in",
                    "kind": "mms" if sms.media else "sms",
                    "intent": intent.value,
                    "text": sms.text,
                    "media": [asdict(m) for m in sms.media],
                    "provider_id": sms.msg_id,
                    "provider_time": iso(sms.received_at),
                    "status": "received",
                    "created_at": iso(now),
                    "blast_id": blast["id"] if blast else None,
                }
            )
            self.storage.jobs.enqueue(
                "post_inbound",
                {"message_id": message_id},
                customer_id=customer["id"],
                dedupe_key=f"post:{message_id}",
                now=now,
            )
            if sms.opted_in is False and intent not in (Intent.STOP, Intent.REVOKE):
                self.storage.jobs.enqueue(
                    "crm_status_check",
                    {"customer_id": customer["id"], "thread_id": thread["id"]},
                    customer_id=customer["id"],
                    now=now,
                )
            if changed and thread["ts"] is not None:  # the parent card shows the status
                self.storage.jobs.enqueue(
                    "refresh_thread",
                    {"thread_id": thread["id"]},
                    customer_id=customer["id"],
                    now=now,
                )
            if intent is Intent.REVOKE and changed:
                self.storage.jobs.enqueue(
                    "crm_opt_out",
                    {"customer_id": customer["id"], "message_id": message_id},
                    customer_id=customer["id"],
                    dedupe_key=f"optout:{message_id}",
                    now=now,
                )
        log.info("stored inbound %s from %s for %s", sms.msg_id, sms.phone, sms.keyword)
        return message_id, True

    def _apply_consent(self, customer: Row, sms: InboundSms, intent: Intent, now: datetime) -> bool:
        """Write what the text and CRM Text's optInStatus say about consent to the ledger;
        True when the customer's status changed."""
        word = normalise(sms.text)
        if intent is Intent.STOP:
            status, how = OPTED_OUT, f"texted {word}; CRM Text opted them out"
        elif intent is Intent.REVOKE:
            status, how = OPTED_OUT, f"texted {word}; smsbridge asks CRM Text to opt them out"
        elif sms.opted_in and (
            customer["status"] != OPTED_OUT
            or intent is Intent.START
            or not self.storage.customers.opt_out_unpushed(customer["id"])
        ):
            # A local opt-out that CRM Text has not heard of yet is not undone by a callback;
            # once CRM Text has it, an opt-in there (START, the keyword) is the customer's own.
            how = f"texted {word}" if intent is Intent.START else "CRM Text callback says Opt-in"
            status = OPTED_IN
        else:
            # The callback says Opt-out for anyone not opted in (never asked, pending, opted
            # out): the exact status comes from getcustomerinfo (job crm_status_check).
            return False
        return self.storage.customers.set_status(
            customer["id"],
            status,
            how=how,
            text=sms.text,
            now=now,
            crm_synced=intent is not Intent.REVOKE,  # smsbridge still has to tell CRM Text
        )
