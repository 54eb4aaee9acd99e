"""``/sms-blast``: the compose modal with live preflight, confirmation, and progress in Slack."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blast_blocks as views
from bot.commands import queue_answer
from bot.interactive import form_refused
from bot.sending import Sender
from bot.slackcalls import slack_job
from bridge.blasts import ALREADY_CONFIRMED, STORE_ZONE, BlastEngine, BlastRefused, Image
from bridge.config import Config
from bridge.jobs import GiveUp, Park, Retry, current_job
from bridge.media import MediaError
from bridge.outbound import NotSent
from bridge.store import ClaimedJob, Store, iso

log = logging.getLogger(__name__)

FORM_GONE = (
    "smsbridge no longer knows this blast form (it was restarted with a new database, or the "
    "form is out of date). Nothing was sent. Close it and start again with `/sms-blast`."
)
OUT_OF_DATE = (
    ":warning: That button is out of date, so nothing was done. Use `/sms` or `/sms-blast` again."
)
PROGRESS_EVERY = 3.0  # seconds between chat.update calls (Tier 3), final state always shown


@dataclass
class Blasts:
    """Slack side of blasts; :class:`~bridge.blasts.BlastEngine` decides, this renders."""

    config: Config
    storage: Store
    engine: BlastEngine
    client: WebClient
    sender: Sender
    clock: Callable[[], datetime]
    wake: Callable[[], None]
    # When this process last updated each blast's progress: only a throttle (at most one
    # chat.update per PROGRESS_EVERY per process; the final state is always shown), so a copy
    # per process is harmless.
    _updated: dict[int, float] = field(default_factory=dict)

    # -- who may blast --------------------------------------------------------------------

    def refusal(self, user: str) -> str | None:
        admins = self.config.blast_admins
        if user in admins:
            return None
        if not admins:
            return "Blasts are turned off: nobody is listed in BLAST_ADMINS."
        names = ", ".join(f"<@{a}>" for a in sorted(admins))
        return f"Only blast admins can text every customer: {names}. Ask one of them."

    # -- listeners ------------------------------------------------------------------------

    def register(self, app: App, on_command: Any, on_action: Any, on_view: Any) -> None:
        on_command("/sms-blast")(self.on_command)
        on_action("blast_text")(self.on_edit)
        on_action("blast_options")(self.on_edit)
        on_view(views.COMPOSE)(self.on_compose)
        on_view(views.CONFIRM)(self.on_confirm)
        for action in ("blast_pause", "blast_resume", "blast_cancel"):
            on_action(action)(self.on_control)

    def on_command(self, ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        """Open the compose modal at once (a trigger_id is single-use and lasts 3 s); the
        preflight and the audience sync run afterwards, as jobs, and update the modal."""
        channel, user = command.get("channel_id", ""), command.get("user_id", "")
        store = self.config.keyword_for(channel)
        if store is None:
            stores = ", ".join(f"<#{c}>" for c in self.config.stores.values())
            ack(text=f"`/sms-blast` works in a store channel: {stores}.")
            return
        refusal = self.refusal(user)
        if refusal:
            ack(text=refusal)
            return
        text = command.get("text", "").strip()
        try:
            opened = client.views_open(
                trigger_id=command["trigger_id"],
                view=views.compose_view(store, channel, text, False, None),
            )
        except SlackApiError as exc:
            ack(text=form_refused(exc))
            return
        ack()
        view = opened["view"]
        self._preview(store, channel, text, False, str(view["id"]), str(view.get("hash", "")))
        self.storage.jobs.enqueue(
            "blast_sync",
            {"store": store, "view_id": view["id"]},
            queue=f"sync:{store}",
            now=self.clock(),
        )
        self.wake()

    def on_edit(self, ack: Ack, body: dict[str, Any]) -> None:
        """As the admin types or ticks the opt-out option: queue a preview of this state. Only
        the newest state of a modal is computed (see :meth:`preview`)."""
        ack()
        view = body["view"]
        meta = self._meta(view)
        if meta is None:
            return
        text, append = _compose_values(view)
        self._preview(meta["store"], meta["channel"], text, append, view["id"], view.get("hash"))
        self.wake()

    def _preview(
        self, store: str, channel: str, text: str, append: bool, view_id: str, hash_: str | None
    ) -> None:
        self.storage.jobs.enqueue(
            "blast_preview",
            {
                "store": store,
                "channel": channel,
                "text": text,
                "append": append,
                "view_id": view_id,
                "hash": hash_ or "",
            },
            queue=f"view:{view_id}",
            now=self.clock(),
        )

    def on_compose(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Refuse at once what the text alone forbids; otherwise show "checking" and let the
        ``blast_compose`` job run the full preflight and turn the modal into the confirmation."""
        user = body["user"]["id"]
        refusal = self.refusal(user)
        if refusal:
            ack(response_action="errors", errors={"message": refusal})
            return
        meta = self._meta(view)
        if meta is None:
            ack(response_action="update", view=_notice_view(FORM_GONE))
            return
        text, append = _compose_values(view)
        blocks = self.engine.quick_blocks(meta["store"], text, append)
        if blocks:
            ack(
                response_action="errors",
                errors={"message": f"{blocks[0].title} {blocks[0].detail}"},
            )
            return
        files = view["state"]["values"].get("image", {}).get("file", {}).get("files") or []
        ack(response_action="update", view=views.working_view())
        self.storage.jobs.enqueue(
            "blast_compose",
            {
                "store": meta["store"],
                "channel": meta["channel"],
                "text": text,
                "append": append,
                "user": user,
                "file": files[0] if files else None,
                "view_id": view["id"],
            },
            queue=f"view:{view['id']}",
            now=self.clock(),
        )
        self.wake()

    def on_confirm(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Check what the form itself shows (ticks, typed count, one blast at a time), close
        the modal, and let the durable ``blast_confirm`` job launch the blast."""
        user = body["user"]["id"]
        known = self._known_blast(view)
        if known is None:
            ack(response_action="update", view=_notice_view(FORM_GONE))
            return
        blast_id, meta = known
        values = view["state"]["values"]
        acks = {
            o["value"] for o in values.get("acks", {}).get("acks", {}).get("selected_options") or []
        }
        typed = values.get("typed_count", {}).get("count", {}).get("value")
        try:
            self._accept(user, blast_id, view, acks, typed, meta.get("total"))
        except BlastRefused as exc:
            field = "typed_count" if "Type the number" in str(exc) else "acks"
            if field in values:
                ack(response_action="errors", errors={field: str(exc)})
            else:
                ack(response_action="update", view=_notice_view(str(exc)))
            return
        ack()
        self.wake()

    def _accept(
        self,
        user: str,
        blast_id: int,
        view: dict[str, Any],
        acks: set[str],
        typed: str | None,
        total: int | None,
    ) -> None:
        refusal = self.refusal(user)
        if refusal:
            raise BlastRefused(refusal)
        blast = self.storage.blasts.get(blast_id)
        if blast["status"] != "draft":
            raise BlastRefused(ALREADY_CONFIRMED)
        active = self.storage.blasts.active(blast["store"])
        if active is not None:
            raise BlastRefused(
                f"Blast “{active['name']}” is still running for this store. "
                "A store runs one blast at a time."
            )
        shown = {
            o["value"]
            for b in view["blocks"]
            if b.get("block_id") == "acks"
            for o in b["element"]["options"]
        }
        if shown - acks:
            raise BlastRefused("Tick every warning to confirm you have read it.")
        over = self.config.blast_typed_confirm_over
        if total is not None and total > over and (typed or "").strip() != str(total):
            raise BlastRefused(f"Type the number of recipients ({total}) to confirm.")
        queued = self.storage.jobs.enqueue(
            "blast_confirm",
            {"blast_id": blast_id, "user": user, "acks": sorted(acks), "typed": typed},
            queue=f"blast:{blast_id}",
            dedupe_key=f"blast-confirm:{blast_id}",
            now=self.clock(),
        )
        if queued is None:  # the same form submitted twice
            raise BlastRefused(ALREADY_CONFIRMED)

    def on_control(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        user = body["user"]["id"]
        refusal = self.refusal(user)
        channel = body.get("channel", {}).get("id", "")
        if refusal:  # a durable job: a rate-limited Slack never fails the button
            queue_answer(self.storage, self.clock(), channel, user, refusal)
            self.wake()
            return
        try:
            blast_id = int(action.get("value") or "")
        except ValueError:
            log.warning(
                "button %s with a value smsbridge cannot read: %r",
                action.get("action_id"),
                action.get("value"),
            )
            queue_answer(self.storage, self.clock(), channel, user, OUT_OF_DATE)
            self.wake()
            return
        verb = action["action_id"].removeprefix("blast_")
        changed = {
            "pause": self.engine.pause,
            "resume": self.engine.resume,
            "cancel": self.engine.cancel,
        }[verb](blast_id)
        if changed:
            self.storage.jobs.enqueue(
                "blast_progress",
                {"blast_id": blast_id},
                queue=f"blast-progress:{blast_id}",
                now=self.clock(),
            )
            self.wake()

    # -- jobs -----------------------------------------------------------------------------

    def sync(self, payload: dict[str, Any]) -> None:
        """Job ``blast_sync``: refresh the audience from CRM Text; if anything changed, preview
        the modal's newest state again."""
        changed = self.engine.sync(payload["store"])
        view_id = payload.get("view_id")
        if not changed or not view_id:
            return
        latest = self.storage.jobs.latest_payload("blast_preview", f"view:{view_id}")
        if latest is not None:
            self.storage.jobs.enqueue(
                "blast_preview", latest, queue=f"view:{view_id}", now=self.clock()
            )

    def preview(self, payload: dict[str, Any]) -> None:
        """Job ``blast_preview``: the compose modal's preflight for one state of the form.

        Debounced: when a newer state of the same modal is already waiting, this one is dropped
        without computing. The update carries the view's hash as the state was typed, so it never
        lands on a modal that moved on (submitted, closed); Slack answers ``hash_conflict``.
        """
        view_id = payload["view_id"]
        job_id = current_job()
        if job_id is not None and self.storage.jobs.has_later(f"view:{view_id}", job_id):
            log.info("preview of view %s dropped: a newer one is waiting", view_id)
            return
        store, channel, text, append = (
            payload["store"], payload["channel"], payload["text"], payload["append"]
        )  # fmt: skip
        result = self.engine.check(store, text, append)
        view = views.compose_view(store, channel, text, append, result)
        self._update_view(view_id, view, self._newest_hash(payload.get("hash") or None))

    def compose(self, payload: dict[str, Any]) -> None:
        """Job ``blast_compose``: the picture, every check, the draft, then the confirmation
        in the modal (or the form again with what to fix)."""
        store, channel, text, append = (
            payload["store"], payload["channel"], payload["text"], payload["append"]
        )  # fmt: skip
        view_id = payload["view_id"]
        try:
            image = self._image(payload.get("file"))
        except (MediaError, NotSent) as exc:
            problem = f":x: The picture cannot be sent: {getattr(exc, 'reason', str(exc))}"
            self._update_view(
                view_id, views.compose_view(store, channel, text, append, None, problem)
            )
            return
        except httpx.HTTPError as exc:
            raise Retry(f"blast picture: {exc}") from exc
        result = self.engine.check(store, text, append, image)
        if any(f.code != "quiet_hours" for f in result.blocks):
            form = views.compose_view(store, channel, text, append, result, views.FIX_BELOW)
            self._update_view(view_id, form)
            return
        blast_id = self.engine.draft(store, text, append, payload["user"], image)
        blast = self.storage.blasts.get(blast_id)
        confirm = views.confirm_view(
            blast_id,
            blast["name"],
            result,
            self.config.blast_typed_confirm_over,
            self._quiet_note(result),
        )
        self._update_view(view_id, confirm)

    def confirm(self, payload: dict[str, Any]) -> None:
        """Job ``blast_confirm``: launch the draft (every check again, recipients recorded,
        ``blast_start`` queued, all in :meth:`BlastEngine.confirm`). Durable: an admin's Send
        survives a restart. A refusal found only now is told to the admin in the channel."""
        blast_id = payload["blast_id"]
        user = payload["user"]
        try:
            self.engine.confirm(
                blast_id,
                user,
                set(payload["acks"]),
                payload.get("typed"),
                self.config.blast_typed_confirm_over,
            )
        except BlastRefused as exc:
            blast = self.storage.blasts.get(blast_id)
            if str(exc) == ALREADY_CONFIRMED:
                return  # this job ran before (a retry after a crash): nothing to tell
            channel = self.config.stores[blast["store"]]
            with slack_job("blast refusal", channel):
                self.client.chat_postEphemeral(
                    channel=channel,
                    user=user,
                    text=f":x: Blast “{blast['name']}” was not sent: {exc}",
                )

    def start(self, payload: dict[str, Any]) -> None:
        """Job ``blast_start``."""
        blast_id = payload["blast_id"]
        self.engine.start(blast_id)
        self._queue_progress(blast_id, force=True)

    def step(self, payload: dict[str, Any]) -> None:
        """Job ``blast_step``: one recipient, then the next step at the paced time."""
        blast_id = payload["blast_id"]
        began = time.monotonic()
        delay = self.engine.step(blast_id, payload.get("seq", 0))
        self._queue_progress(blast_id, force=delay is None)
        if delay is not None:
            self.engine.schedule_step(blast_id, max(0.0, delay - (time.monotonic() - began)))

    def gave_up(self, job: ClaimedJob, error: str) -> None:
        """CRM Text stayed unreachable: pause the blast (the store is not stuck) and say why."""
        blast_id = job.payload["blast_id"]
        self.engine.halt(blast_id, f"Paused: {error}. Press Resume to continue where it stopped.")
        self._queue_progress(blast_id, force=True)

    def _queue_progress(self, blast_id: int, force: bool) -> None:
        """From the blast lane, progress is shown by the Slack lane: a slow or rate-limited
        Slack never slows or repeats the sending. One waiting update is enough (the final one
        always). Every update goes through the blast's one progress queue, so one runs at a
        time whatever the number of processes: the message is posted once, then updated."""
        if force or not self.storage.jobs.has_pending("blast_progress", "blast_id", blast_id):
            self.storage.jobs.enqueue(
                "blast_progress",
                {"blast_id": blast_id, "force": force},
                queue=f"blast-progress:{blast_id}",
                now=self.clock(),
            )
            self.wake()

    def progress(self, payload: dict[str, Any]) -> None:
        """Job ``blast_progress`` (and after each step): one message, updated every few s."""
        blast_id = payload["blast_id"]
        blast = self.storage.blasts.get(blast_id)
        final = blast["status"] in ("done", "cancelled", "blocked", "paused", "scheduled")
        if not (payload.get("force") or final) and (
            time.monotonic() - self._updated.get(blast_id, 0.0) < PROGRESS_EVERY
        ):
            return
        self._post_progress(blast_id)  # one at a time: the blast's progress queue

    def _post_progress(self, blast_id: int) -> None:
        blast = self.storage.blasts.get(blast_id)
        self._updated[blast_id] = time.monotonic()
        text, body = views.progress(
            blast,
            self.storage.blasts.recipient_counts(blast_id),
            self.clock(),
            self.storage.blasts.recipient_reasons(blast_id, "failed"),
            self.storage.blasts.recipient_reasons(blast_id, "skipped"),
        )
        channel = self.config.stores[blast["store"]]
        with slack_job("blast progress"):
            if blast["progress_ts"]:
                self.client.chat_update(
                    channel=channel, ts=blast["progress_ts"], text=text, blocks=body
                )
            else:
                response = self.client.chat_postMessage(channel=channel, text=text, blocks=body)
                self.storage.blasts.update(
                    blast_id,
                    progress_channel=channel,
                    progress_ts=str(response["ts"]),
                    progress_at=iso(self.clock()),
                )

    # -- helpers --------------------------------------------------------------------------

    def _meta(self, view: dict[str, Any]) -> dict[str, str] | None:
        """The compose form's store and channel; None when the form is not one we can read."""
        try:
            meta = json.loads(view.get("private_metadata") or "")
        except ValueError:
            meta = None
        if (
            not isinstance(meta, dict)
            or meta.get("store") not in self.config.stores
            or not isinstance(meta.get("channel"), str)
        ):
            log.warning("blast form %s with unreadable metadata", view.get("id"))
            return None
        return {"store": str(meta["store"]), "channel": str(meta["channel"])}

    def _known_blast(self, view: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The confirm form's blast (and its metadata), if this database knows it."""
        try:
            meta = json.loads(view.get("private_metadata") or "")
            blast_id = int(meta["blast_id"])
            self.storage.blasts.get(blast_id)
        except (ValueError, KeyError, TypeError):
            log.warning("blast confirm form %s for a blast unknown here", view.get("id"))
            return None
        return blast_id, meta

    def _image(self, file: dict[str, Any] | None) -> Image | None:
        if not file:
            return None
        url, size, kind = self.sender.picture(file)
        return Image(url, size, kind)

    def _newest_hash(self, hash_: str | None) -> str | None:
        """The view's hash after our own updates since ``hash_`` (none: ``hash_``), so the
        newest preview computed for an older hash still lands when only our own update came in
        between, whichever process made it (the database remembers: see m015)."""
        return None if hash_ is None else self.storage.slack.newest_view_hash(hash_)

    def _update_view(self, view_id: str, view: dict[str, Any], hash_: str | None = None) -> None:
        """views.update; a modal that is gone or moved on (closed, submitted) is left alone."""
        try:
            with slack_job("blast form"):
                try:
                    response = self.client.views_update(view_id=view_id, hash=hash_, view=view)
                except SlackApiError as exc:
                    if exc.response.get("error") in ("hash_conflict", "not_found"):
                        log.info("blast form %s not updated: %s", view_id, exc.response["error"])
                        return
                    raise
        except Park:
            raise  # the token or app needs a person: the job waits, parked, with the others
        except GiveUp as exc:
            log.info("blast form %s not updated: %s", view_id, exc)
            return
        shown = response.get("view")
        new_hash = shown.get("hash") if isinstance(shown, dict) else None
        if hash_ and new_hash:
            self.storage.slack.remember_view_hash(hash_, str(new_hash), self.clock())

    def _quiet_note(self, result: Any) -> str | None:
        if result.next_allowed is None:
            return None
        when = result.next_allowed.astimezone(STORE_ZONE).strftime("%a %b %-d, %-I:%M %p %Z")
        if result.mode == "campaign":
            return f"It is outside allowed hours for some customers: the campaign goes at {when}."
        return (
            "Sending starts now; customers outside their allowed hours are texted when their "
            f"window opens (everyone fits from {when})."
        )


def _compose_values(view: dict[str, Any]) -> tuple[str, bool]:
    values = view["state"]["values"]
    text = values.get("message", {}).get("blast_text", {}).get("value") or ""
    selected = values.get("options", {}).get("blast_options", {}).get("selected_options") or []
    return text, any(o.get("value") == "append_opt_out" for o in selected)


def _notice_view(message: str) -> dict[str, Any]:
    return views.notice_view(message)
