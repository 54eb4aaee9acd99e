"""Store-wide blasts: preflight, confirmation, and a resumable per-recipient send.

No Slack here: the bot renders what this returns. Every state change is a guarded status move
(``draft → confirmed → sending → done``), so a double click, a retried request or a restart
can never launch or text anyone twice. A store runs one blast at a time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge import audience, outbound, preflight, quiet_hours, state_rules
from bridge.config import Config
from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.jobs import Retry
from bridge.store import OPTED_IN, Row, Store, iso, parse_iso

log = logging.getLogger(__name__)

CAMPAIGN_THRESHOLD = 700
ALREADY_CONFIRMED = "This blast was already confirmed; it is not sent twice."
STORE_ZONE = ZoneInfo("America/Los_Angeles")
CAP_WINDOW = timedelta(hours=24)  # state caps count marketing texts in a rolling 24 hours


class BlastRefused(Exception):
    """The blast cannot move on; the message is for the admin."""


@dataclass(frozen=True)
class Image:
    """A prepared blast picture: its public signed URL, size and type."""

    url: str
    size: int
    content_type: str


class BlastEngine:
    """Decides and records everything about blasts; jobs call :meth:`start` and :meth:`step`."""

    def __init__(
        self,
        config: Config,
        storage: Store,
        crm: CrmTextClient,
        clock: Callable[[], datetime],
    ) -> None:
        self.storage = storage
        self.crm = crm
        self.clock = clock
        self.settings = preflight.Settings(
            monthly_limit=config.blast_monthly_limit,
            price_per_unit=config.price_per_unit,
            mode=config.blast_mode,
            campaign_threshold=CAMPAIGN_THRESHOLD,
        )

    # -- the audience ---------------------------------------------------------------------

    def sync(self, store: str) -> int:
        """Bring in CRM Text's customer list page by page (:func:`bridge.audience.sync`)."""
        return audience.sync(self.storage, self.crm, store, self.clock())

    # -- preflight ------------------------------------------------------------------------

    def check(
        self, store: str, text: str, append_opt_out: bool, image: Image | None = None
    ) -> preflight.Preflight:
        """Run every compliance check on the store's current audience and history."""
        now = self.clock()
        row = self.storage.stores.get(store)
        name = (row["name"] if row else "") or store
        draft = preflight.Draft(
            name,
            text,
            append_opt_out,
            image.size if image else None,
            image.content_type if image else None,
        )
        audience = self.audience(store)
        return preflight.run(draft, audience, self.history(store, now), now, self.settings)

    def audience(self, store: str) -> preflight.AudienceSummary:
        """The store's audience, worked out by the database from the locations stored at
        ingest: no number is parsed and no row becomes a Python object but the recipients."""
        recipients, counts, places = self.storage.customers.audience_counts(store)
        return preflight.AudienceSummary(
            tuple(recipients),
            preflight.excluded_counts(
                counts["opted_out"] + counts["opted_out_number"],
                counts["pending"],
                counts["new"],
                counts["invalid"],
                counts["duplicate"],
                counts["toll_free"],
                counts["non_geographic"],
            ),
            {(tuple(zones.split()), state): n for state, zones, n in places},
        )

    def quick_blocks(
        self, store: str, text: str, append_opt_out: bool
    ) -> tuple[preflight.Finding, ...]:
        """What forbids sending ``text`` whatever the audience (:func:`preflight.text_blocks`):
        cheap at any store size, for refusing a submission before it is acknowledged."""
        now = self.clock()
        since = now - preflight.DUPLICATE_WINDOW
        sent = [b for b in self.storage.blasts.history(store, since) if b["status"] != "blocked"]
        history = preflight.History(
            recent_texts=tuple((parse_iso(b["started_at"]), b["final_text"]) for b in sent)
        )
        draft = preflight.Draft("", text, append_opt_out)
        return preflight.text_blocks(draft, history, now, self.settings)

    def history(self, store: str, now: datetime) -> preflight.History:
        month_start = now.astimezone(STORE_ZONE).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        since = min(month_start, now - preflight.DUPLICATE_WINDOW)
        sent = [b for b in self.storage.blasts.history(store, since) if b["status"] != "blocked"]
        return preflight.History(
            blasts_this_month=sum(parse_iso(b["started_at"]) >= month_start for b in sent),
            recent_texts=tuple((parse_iso(b["started_at"]), b["final_text"]) for b in sent),
            pending_revocations=self.storage.customers.pending_opt_outs(store),
            undecided_stop_requests=self.storage.customers.undecided_stop_requests(store),
            at_state_cap=self.storage.blasts.at_cap(store, _caps(), now - CAP_WINDOW),
        )

    # -- draft and confirmation -----------------------------------------------------------

    def draft(
        self,
        store: str,
        text: str,
        append_opt_out: bool,
        user: str,
        image: Image | None,
        name: str = "",
    ) -> int:
        now = self.clock()
        label = name.strip() or _default_name(text, now)
        return self.storage.blasts.add(
            {
                "store": store,
                "name": label,
                "text": text,
                "final_text": preflight.final_text(preflight.Draft("", text, append_opt_out)),
                "append_opt_out": int(append_opt_out),
                "media_url": image.url if image else "",
                "status": "draft",
                "created_by": user,
                "created_at": iso(now),
                "total": 0,
                "acknowledged": json.dumps(
                    {"image": {"size": image.size, "type": image.content_type}} if image else {}
                ),
            }
        )

    def image_of(self, blast: Row) -> Image | None:
        info = json.loads(blast["acknowledged"] or "{}").get("image")
        if not blast["media_url"] or not info:
            return None
        return Image(blast["media_url"], int(info.get("size", 0)), str(info.get("type", "")))

    def check_blast(self, blast: Row) -> preflight.Preflight:
        return self.check(
            blast["store"], blast["text"], bool(blast["append_opt_out"]), self.image_of(blast)
        )

    def confirm(
        self,
        blast_id: int,
        user: str,
        acknowledged: set[str],
        typed_count: str | None,
        typed_over: int,
    ) -> preflight.Preflight:
        """Launch a draft: checks again, records the recipients and queues the start.

        The preflight runs outside the storage lock (it reads the whole audience); the launch
        itself is one short transaction that re-checks the draft is still a draft.
        """
        blast = self.storage.blasts.get(blast_id)
        if blast["status"] != "draft":
            raise BlastRefused(ALREADY_CONFIRMED)
        result = self.check_blast(blast)
        blocks = [f for f in result.blocks if f.code != "quiet_hours"]
        if blocks:
            raise BlastRefused(f"{blocks[0].title} {blocks[0].detail}")
        quiet = [f for f in result.blocks if f.code == "quiet_hours"]
        if any(f.code not in acknowledged for f in [*result.warnings, *quiet]):
            raise BlastRefused("Tick every warning to confirm you have read it.")
        total = len(result.recipients)
        if total > typed_over and (typed_count or "").strip() != str(total):
            raise BlastRefused(f"Type the number of recipients ({total}) to confirm.")
        ids: dict[str, int] = {}
        for cid, phone, _, e164, _, _ in self.storage.customers.audience_of(blast["store"]):
            ids.setdefault(e164 or phone, cid)  # recipients are E.164, as located at ingest
        meta = json.loads(blast["acknowledged"] or "{}")
        with self.storage.transaction():
            if self.storage.blasts.get(blast_id)["status"] != "draft":
                raise BlastRefused(ALREADY_CONFIRMED)
            active = self.storage.blasts.active(blast["store"])
            if active is not None:
                raise BlastRefused(
                    f"Blast “{active['name']}” is still running for this store. "
                    "A store runs one blast at a time."
                )
            self.storage.blasts.add_recipients(blast_id, [(ids[p], p) for p in result.recipients])
            self.storage.blasts.update(
                blast_id,
                status="confirmed",
                confirmed_by=user,
                confirmed_at=iso(self.clock()),
                mode=result.mode,
                total=total,
                final_text=result.final_text,
                acknowledged=json.dumps({**meta, "warnings": sorted(acknowledged)}),
            )
            self.storage.jobs.enqueue(
                "blast_start",
                {"blast_id": blast_id},
                queue=f"blast:{blast_id}",
                dedupe_key=f"blast-start:{blast_id}",
                now=self.clock(),
            )
        return result

    # -- sending --------------------------------------------------------------------------

    def start(self, blast_id: int) -> str:
        """Job ``blast_start``: check again right before sending, then send or schedule.

        Safe to run again after a crash at any point. Returns the new status.
        """
        blast = self.storage.blasts.get(blast_id)
        if blast["status"] == "sending":
            return self._continue(blast)
        if blast["status"] not in ("confirmed", "scheduled"):
            return str(blast["status"])
        self.sync(blast["store"])
        now = self.clock()
        result = self.check_blast(blast)
        quiet = next((f for f in result.blocks if f.code == "quiet_hours"), None)
        hard = [f for f in result.blocks if f is not quiet]
        if quiet is not None and (result.next_allowed is None or blast["mode"] == "campaign"):
            if result.next_allowed is None:
                hard.append(quiet)  # no time in the next days fits everyone
            else:
                return self._schedule(blast_id, result.next_allowed)
        if hard:
            report = "; ".join(f"{f.title} {f.detail}" for f in hard)
            self.storage.blasts.move(blast_id, ("confirmed", "scheduled"), "blocked", report=report)
            self.storage.blasts.skip_pending(blast_id, "blast blocked before sending", now)
            return "blocked"
        if blast["mode"] == "campaign":
            capped_until = self.campaign_cap_wait(blast_id, now)
            if capped_until is not None:  # a campaign cannot leave anyone out: it waits
                return self._schedule(blast_id, capped_until)
        self._skip_no_longer_opted_in(blast_id, now)
        with self.storage.transaction():
            if not self.storage.blasts.move(
                blast_id, ("confirmed", "scheduled"), "sending", started_at=iso(now)
            ):
                return str(self.storage.blasts.get(blast_id)["status"])
            if blast["mode"] != "campaign":
                self.schedule_step(blast_id, 0.0)
        return self._continue(self.storage.blasts.get(blast_id))

    def _continue_later(self, blast_id: int) -> None:
        """After Resume: a campaign goes back through ``start``, a one-by-one blast steps on."""
        if self.storage.blasts.get(blast_id)["mode"] == "campaign":
            self.storage.jobs.enqueue(
                "blast_start", {"blast_id": blast_id}, queue=f"blast:{blast_id}", now=self.clock()
            )
        else:
            self.schedule_step(blast_id, 0.0)

    def _continue(self, blast: Row) -> str:
        """A sending blast: send the campaign if it was not requested yet, or make sure a step
        is queued (a crash may have lost it)."""
        if blast["mode"] == "campaign":
            self._send_campaign(blast)
            return "done"
        if not self.storage.jobs.has_pending("blast_step", "blast_id", blast["id"]):
            self.schedule_step(blast["id"], 0.0)
        return "sending"

    def _schedule(self, blast_id: int, when: datetime) -> str:
        self.storage.blasts.move(
            blast_id, ("confirmed", "scheduled"), "scheduled", run_at=iso(when)
        )
        delay = max(0.0, (when - self.clock()).total_seconds())
        self.storage.jobs.enqueue(
            "blast_start",
            {"blast_id": blast_id},
            queue=f"blast:{blast_id}",
            now=self.clock(),
            delay=delay,
            dedupe_key=f"blast-start:{blast_id}:{iso(when)}",
        )
        return "scheduled"

    def _skip_no_longer_opted_in(self, blast_id: int, now: datetime) -> None:
        """Recipients whose consent changed since the confirmation are skipped (one
        statement, whatever the blast's size)."""
        skipped = self.storage.blasts.skip_no_longer_opted_in(blast_id, OPTED_IN, now)
        if skipped:
            log.info("blast %s: %d recipient(s) no longer opted in, skipped", blast_id, skipped)

    def _send_campaign(self, blast: Row) -> None:
        """One sendcampaign; CRM Text batches it at 30 msg/s. Never requested twice."""
        now = self.clock()
        if blast["campaign_attempted_at"]:
            self._campaign_unknown(blast["id"])
            return
        self.storage.blasts.update(blast["id"], campaign_attempted_at=iso(now))
        name = f"smsbridge-{blast['store']}-{blast['id']}"
        try:
            self.crm.send_campaign(
                blast["store"], name, blast["final_text"], blast["media_url"] or None
            )
        except CrmTextUnavailable as exc:
            if not exc.maybe_sent:  # it never reached CRM Text: safe to request again
                self.storage.blasts.update(blast["id"], campaign_attempted_at=None)
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except CrmTextError as exc:
            self.storage.blasts.skip_pending(
                blast["id"], f"CRM Text refused the campaign: {exc.message}", now
            )
            self._finish(blast["id"], "done", f"CRM Text refused the campaign: {exc.message}")
            return
        self.storage.blasts.campaign_sent(blast["id"], now)
        self._finish(blast["id"], "done", f"Handed to CRM Text as campaign {name}.")

    def schedule_step(self, blast_id: int, delay: float) -> None:
        """Queue the blast's next step. Each step has a number and only the newest one runs,
        so a step retried after a crash can never start a second, parallel chain of sends."""
        with self.storage.transaction():
            seq = (self.storage.blasts.get(blast_id)["step_seq"] or 0) + 1
            self.storage.blasts.update(blast_id, step_seq=seq)
            self.storage.jobs.enqueue(
                "blast_step",
                {"blast_id": blast_id, "seq": seq},
                queue=f"blast:{blast_id}",
                now=self.clock(),
                delay=delay,
                dedupe_key=f"blast-step:{blast_id}:{seq}",
            )

    def step(self, blast_id: int, seq: int) -> float | None:
        """Job ``blast_step``: text one recipient; return seconds until the next step, or None."""
        blast = self.storage.blasts.get(blast_id)
        now = self.clock()
        if seq != blast["step_seq"] or blast["mode"] == "campaign":
            return None  # a stale copy of a step that already scheduled its successor
        if blast["status"] == "cancelled":
            self.storage.blasts.skip_pending(blast_id, "cancelled", now)
            self._finish(blast_id, "cancelled", "")
            return None
        if blast["status"] != "sending":
            return None  # paused (Resume queues a new step), done or blocked
        pending = self.storage.blasts.recipients(blast_id, "pending")
        if not pending:
            self._finish(blast_id, "done", "")
            return None
        allowed = quiet_hours.check_many([r["phone"] for r in pending], now, timedelta(seconds=1))
        never = [
            r
            for r in pending
            if not allowed[r["phone"]].ok and not allowed[r["phone"]].next_allowed
        ]
        for row in never:  # toll-free or non-geographic: no time zone, never texted in blasts
            self.storage.blasts.update_recipient(
                blast_id,
                row["customer_id"],
                status="skipped",
                reason=quiet_hours.not_a_place(row["phone"]) or allowed[row["phone"]].reason,
                finished_at=iso(now),
            )
        ready = [r for r in pending if allowed[r["phone"]].ok]
        if never and not ready:
            return 0.0
        if not ready:
            wake = min(a.next_allowed for a in allowed.values() if a.next_allowed is not None)
            self.storage.blasts.update(blast_id, run_at=iso(wake))
            return max(1.0, (wake - now).total_seconds())
        self._text_one(blast, ready[0], now)
        return 1.0 / self.settings.individual_rate

    def _text_one(self, blast: Row, recipient: Row, now: datetime) -> None:
        customer = self.storage.customers.get(recipient["customer_id"])
        key = (blast["id"], customer["id"])
        if self.storage.customers.asked_to_stop(customer["id"]):
            self.storage.blasts.update_recipient(
                *key,
                status="skipped",
                reason="asked to stop; no decision yet",
                finished_at=iso(now),
            )
            return
        if customer["status"] != OPTED_IN:
            self.storage.blasts.update_recipient(
                *key, status="skipped", reason="opted out during the blast", finished_at=iso(now)
            )
            return
        maybe_sent = bool(recipient["attempted_at"])
        with self.storage.transaction():  # counted and marked together: two stores' blasts
            self.storage.lock(f"cap {recipient['phone']}")  # never both send the 4th
            capped = (
                None if maybe_sent else self.over_cap(recipient["phone"], customer["state"], now)
            )
            if capped is not None:
                self.storage.blasts.update_recipient(
                    *key, status="skipped", reason=capped, finished_at=iso(now)
                )
                return
            self.storage.blasts.update_recipient(*key, attempted_at=iso(now))
        try:
            msg_id = outbound.send(
                self.crm,
                blast["store"],
                customer["phone"],
                blast["final_text"],
                blast["media_url"] or None,
                maybe_sent,
            )
        except CrmTextUnavailable as exc:
            if not (maybe_sent or exc.maybe_sent):
                self.storage.blasts.update_recipient(*key, attempted_at=None)
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        except outbound.NotSent as refusal:
            self.storage.blasts.update_recipient(
                *key, status="failed", reason=_reason(refusal), finished_at=iso(now)
            )
            return
        self.storage.blasts.update_recipient(
            *key, status="sent", provider_id=msg_id, finished_at=iso(now)
        )

    def over_cap(self, phone: str, state: str | None, now: datetime) -> str | None:
        """Why ``phone`` must not get another blast text now under its state's rolling 24-hour
        cap (Florida, Oklahoma, Maryland: 3; bridge.state_rules), else None. Every blast text
        counts, from any store: the subject of a text is not known, so the count is strict."""
        cap = state_rules.cap_for(state)
        if cap is None:
            return None
        if self.storage.blasts.sent_to_since(phone, now - CAP_WINDOW) < cap:
            return None
        name = quiet_hours.STATE_NAMES.get(state or "", state)
        return f"{name} allows at most {cap} marketing texts per person in 24 hours"

    def campaign_cap_wait(self, blast_id: int, now: datetime) -> datetime | None:
        """When a campaign (which reaches every opted-in customer at once) may start without
        going over any recipient's 24-hour state cap; None if it may start now. One query over
        the blast's pending recipients in capped states and their texts of the last 24 hours."""
        caps = _caps()
        since = now - CAP_WINDOW
        sent: dict[str, list[datetime]] = {}
        cap_of: dict[str, int] = {}
        for phone, state, finished in self.storage.blasts.recent_texts_of_pending(
            blast_id, sorted(caps), since
        ):
            sent.setdefault(phone, []).append(parse_iso(finished))
            cap_of[phone] = caps[state]
        waits = [
            sorted(times)[len(times) - cap_of[phone]] + CAP_WINDOW
            for phone, times in sent.items()
            if len(times) >= cap_of[phone]
        ]  # the oldest text whose expiry brings the count below the cap
        return max(waits) if waits else None

    def _finish(self, blast_id: int, status: str, report: str) -> None:
        self.storage.blasts.move(
            blast_id,
            ("sending", "cancelled", "paused"),
            status,
            finished_at=iso(self.clock()),
            report=report,
        )

    # -- admin controls -------------------------------------------------------------------

    def pause(self, blast_id: int) -> bool:
        return self.storage.blasts.move(blast_id, ("sending",), "paused", report="")

    def halt(self, blast_id: int, report: str) -> None:
        """Pause a blast whose job gave up; one that never started becomes ``blocked``."""
        blast = self.storage.blasts.get(blast_id)
        if blast["mode"] == "campaign" and blast["campaign_attempted_at"]:
            self._campaign_unknown(blast_id)
        elif not self.storage.blasts.move(blast_id, ("sending",), "paused", report=report):
            self.storage.blasts.move(blast_id, ("confirmed", "scheduled"), "blocked", report=report)

    def _campaign_unknown(self, blast_id: int) -> None:
        """The sendcampaign request may have reached CRM Text: never send it again."""
        self.storage.blasts.skip_pending(blast_id, "campaign outcome unknown", self.clock())
        self._finish(
            blast_id,
            "done",
            "The campaign request may have reached CRM Text but no answer came back; it is not "
            "sent again. Check the campaign in CRM Text's reports.",
        )

    def resume(self, blast_id: int) -> bool:
        with self.storage.transaction():
            if not self.storage.blasts.move(blast_id, ("paused",), "sending", report=""):
                return False
            self._continue_later(blast_id)
            return True

    def cancel(self, blast_id: int) -> bool:
        """Stop further sends; texts already sent stay sent."""
        with self.storage.transaction():
            moved = self.storage.blasts.move(
                blast_id, ("confirmed", "scheduled", "sending", "paused"), "cancelled"
            )
            if moved:
                self.storage.blasts.skip_pending(blast_id, "cancelled", self.clock())
                self.storage.blasts.update(blast_id, finished_at=iso(self.clock()))
            return moved


def _caps() -> dict[str, int]:
    """State -> its rolling 24-hour cap, for the states that have one."""
    return {row.state: row.cap_24h for row in state_rules.ROWS if row.cap_24h}


def _reason(refusal: outbound.NotSent) -> str:
    return {
        "opted_out": "opted out",
        "pending": "opt-in pending",
        "not_opted_in": "not opted in",
        "duplicate": "CRM Text 12-hour duplicate block",
    }.get(refusal.code, refusal.reason.removeprefix("Not sent: "))


def _default_name(text: str, now: datetime) -> str:
    words = " ".join(text.split())
    short = words if len(words) <= 32 else words[:31].rstrip() + "…"
    return f"{now.astimezone(STORE_ZONE):%b %-d}: {short}"
