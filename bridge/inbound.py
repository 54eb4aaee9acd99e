"""Accept an inbound text: record it, its consent meaning and the job that posts it, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta

from bridge.callback import InboundSms
from bridge.held import release
from bridge.keywords import Intent, classify, normalise
from bridge.optout import not_sent_held
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
            revocation = intent in (Intent.STOP, Intent.REVOKE)
            if sms.opted_in is False and not revocation:
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
            crm_acted = intent is Intent.STOP and sms.opted_in is False
            if (
                revocation
                and not crm_acted  # a bare STOP/QUIT CRM Text has opted them out for
                and (changed or self.storage.customers.opt_out_unpushed(customer["id"]))
                and not self.storage.jobs.has_pending("crm_opt_out", "customer_id", customer["id"])
            ):
                self.storage.jobs.enqueue(
                    "crm_opt_out",
                    # "Opt-out" in the callback is anyone not opted in: ask CRM Text first
                    {
                        "customer_id": customer["id"],
                        "message_id": message_id,
                        "check": sms.opted_in is False,
                    },
                    customer_id=customer["id"],
                    dedupe_key=f"optout:{message_id}",
                    now=now,
                )
            status = self.storage.customers.get(customer["id"])["status"] if changed else None
            if status == OPTED_IN:
                release(self.storage, customer["id"], now)  # replies held until they opted in
            elif status == OPTED_OUT:
                not_sent_held(self.storage, customer["id"], now)  # ... never will be sent
        log.info("stored inbound %s from %s for %s", sms.msg_id, sms.phone, sms.keyword)
        return message_id, True

    def _apply_consent(self, customer: Row, sms: InboundSms, intent: Intent, now: datetime) -> bool:
        """Write what the text and CRM Text's optInStatus say about consent to the ledger;
        True when the customer's status changed.

        * An opt-out word however decorated, or a revocation read as certain, opts the customer
          out here at once. CRM Text has done it too only for the bare words STOP and QUIT
          with a callback saying Opt-out (the callback says Opt-out for anyone not opted in,
          so for other words it proves nothing); otherwise the opt-out is ours until CRM Text
          confirms it (``crm_synced`` 0; job ``crm_opt_out`` pushes it, or finds with
          getcustomerinfo that CRM Text already has it).
        * A callback saying Opt-in never undoes a local opt-out by itself: only the customer
          opting in again does (START, UNSTOP, the store keyword; YES once CRM Text has the
          opt-out, because a YES then answers CRM Text's own opt-in request).
        """
        word = normalise(sms.text)
        if intent in (Intent.STOP, Intent.REVOKE):
            # CRM Text acts on bare STOP/QUIT alone; its callback says Opt-out for anyone not
            # opted in (pending, never asked), so for other words it proves nothing.
            at_crm = intent is Intent.STOP and sms.opted_in is False
            how = f"texted {word}; " + (
                "CRM Text opted them out" if at_crm else "smsbridge asks CRM Text to opt them out"
            )
            return self.storage.customers.set_status(
                customer["id"], OPTED_OUT, how=how, text=sms.text, now=now, crm_synced=at_crm
            )
        if not sms.opted_in:
            # The callback says Opt-out for anyone not opted in (never asked, pending, opted
            # out): the exact status comes from getcustomerinfo (job crm_status_check).
            return False
        if customer["status"] == OPTED_OUT and not self._opts_in_again(customer, sms, intent):
            return False
        rejoined = customer["status"] == OPTED_OUT or intent is Intent.START
        how = f"texted {word}" if rejoined else "CRM Text callback says Opt-in"
        return self.storage.customers.set_status(
            customer["id"], OPTED_IN, how=how, text=sms.text, now=now, rejoin=rejoined
        )

    def _opts_in_again(self, customer: Row, sms: InboundSms, intent: Intent) -> bool:
        """Is this text the customer opting in again after an opt-out (CRM Text says Opt-in)?"""
        word = normalise(sms.text)
        if word == sms.keyword.upper():
            return True
        if intent is not Intent.START:
            return False
        return word not in ("YES", "Y") or not self.storage.customers.opt_out_unpushed(
            customer["id"]
        )
