"""``/sms-blast``: the compose modal with live preflight, confirmation, and progress in Slack."""

from __future__ import annotations

import json
import logging
import threading
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
from bridge.blasts import STORE_ZONE, BlastEngine, BlastRefused, Image
from bridge.config import Config
from bridge.jobs import GiveUp, Retry
from bridge.media import MediaError
from bridge.outbound import NotSent
from bridge.storage import Storage, iso

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
    storage: Storage
    engine: BlastEngine
    client: WebClient
    sender: Sender
    clock: Callable[[], datetime]
    wake: Callable[[], None]
    _updated: dict[int, float] = field(default_factory=dict)
    # view id -> (store, channel, text, append) of open compose modals
    _open_views: dict[str, tuple[str, str, str, bool]] = field(default_factory=dict)
    _progress_lock: threading.Lock = field(default_factory=threading.Lock)

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
        result = self.engine.check(store, text, False)
        try:
            opened = client.views_open(
                trigger_id=command["trigger_id"],
                view=views.compose_view(store, channel, text, False, result),
            )
        except SlackApiError as exc:
            ack(text=form_refused(exc))
            return
        ack()
        self._open_views[str(opened["view"]["id"])] = (store, channel, text, False)
        self.storage.enqueue(
            "blast_sync",
            {"store": store, "view_id": opened["view"]["id"]},
            queue=f"sync:{store}",
            now=self.clock(),
        )
        self.wake()

    def on_edit(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        """Re-run the preflight as the admin types or ticks the opt-out option."""
        ack()
        view = body["view"]
        meta = self._meta(view)
        if meta is None:
            return
        text, append = _compose_values(view)
        self._open_views[view["id"]] = (meta["store"], meta["channel"], text, append)
        result = self.engine.check(meta["store"], text, append)
        try:
            client.views_update(
                view_id=view["id"],
                hash=view.get("hash"),
                view=views.compose_view(meta["store"], meta["channel"], text, append, result),
            )
        except SlackApiError as exc:  # hash_conflict: a newer keystroke already updated it
            log.info("preflight update skipped: %s", exc.response.get("error"))

    def on_compose(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
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
        try:
            image = self._image(view)
        except (MediaError, NotSent) as exc:
            ack(response_action="errors", errors={"image": getattr(exc, "reason", str(exc))})
            return
        except httpx.HTTPError as exc:
            ack(response_action="errors", errors={"image": f"Could not fetch the picture: {exc}"})
            return
        result = self.engine.check(meta["store"], text, append, image)
        blocks = [f for f in result.blocks if f.code != "quiet_hours"]
        if blocks:
            field = "image" if blocks[0].code == "mms" else "message"
            ack(response_action="errors", errors={field: f"{blocks[0].title} {blocks[0].detail}"})
            return
        self._open_views.pop(view["id"], None)
        blast_id = self.engine.draft(meta["store"], text, append, user, image)
        blast = self.storage.blast(blast_id)
        view = views.confirm_view(
            blast_id,
            blast["name"],
            result,
            self.config.blast_typed_confirm_over,
            self._quiet_note(result),
        )
        ack(response_action="update", view=view)

    def on_confirm(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        blast_id = self._known_blast(view)
        if blast_id is None:
            ack(response_action="update", view=_notice_view(FORM_GONE))
            return
        values = view["state"]["values"]
        acks = {
            o["value"] for o in values.get("acks", {}).get("acks", {}).get("selected_options") or []
        }
        typed = values.get("typed_count", {}).get("count", {}).get("value")
        try:
            if self.refusal(user):
                raise BlastRefused(self.refusal(user) or "")
            self.engine.confirm(blast_id, user, acks, typed, self.config.blast_typed_confirm_over)
        except BlastRefused as exc:
            field = "typed_count" if "Type the number" in str(exc) else "acks"
            if field in values:
                ack(response_action="errors", errors={field: str(exc)})
            else:
                ack(response_action="update", view=_notice_view(str(exc)))
            return
        ack()
        self.wake()

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
            self.storage.enqueue(
                "blast_progress",
                {"blast_id": blast_id},
                queue=f"blast-progress:{blast_id}",
                now=self.clock(),
            )
            self.wake()

    # -- jobs -----------------------------------------------------------------------------

    def sync(self, payload: dict[str, Any]) -> None:
        """Job ``blast_sync``: refresh the audience from CRM Text, then the open modal."""
        self.engine.sync(payload["store"])
        draft = self._open_views.get(payload["view_id"])
        if draft is None:
            return
        store, channel, text, append = draft
        result = self.engine.check(store, text, append)
        try:
            self.client.views_update(
                view_id=payload["view_id"],
                view=views.compose_view(store, channel, text, append, result),
            )
        except SlackApiError as exc:  # closed or submitted meanwhile
            log.info("preflight refresh skipped: %s", exc.response.get("error"))

    def start(self, payload: dict[str, Any]) -> None:
        """Job ``blast_start``."""
        blast_id = payload["blast_id"]
        self.engine.start(blast_id)
        self._show_progress(blast_id, force=True)

    def step(self, payload: dict[str, Any]) -> None:
        """Job ``blast_step``: one recipient, then the next step at the paced time."""
        blast_id = payload["blast_id"]
        began = time.monotonic()
        delay = self.engine.step(blast_id, payload.get("seq", 0))
        self._show_progress(blast_id, force=delay is None)
        if delay is not None:
            self.engine.schedule_step(blast_id, max(0.0, delay - (time.monotonic() - began)))

    def gave_up(self, job: dict[str, Any], error: str) -> None:
        """CRM Text stayed unreachable: pause the blast (the store is not stuck) and say why."""
        blast_id = job["payload"]["blast_id"]
        self.engine.halt(blast_id, f"Paused: {error}. Press Resume to continue where it stopped.")
        self._show_progress(blast_id, force=True)

    def _show_progress(self, blast_id: int, force: bool) -> None:
        """Progress is for people: a Slack failure here never stops or repeats a send."""
        try:
            self.progress({"blast_id": blast_id, "force": force})
        except (Retry, GiveUp) as exc:
            log.warning("blast %s progress not shown: %s", blast_id, exc)
            if force:  # make sure the final state shows once Slack is back
                self.storage.enqueue(
                    "blast_progress",
                    {"blast_id": blast_id},
                    queue=f"blast-progress:{blast_id}",
                    now=self.clock(),
                )

    def progress(self, payload: dict[str, Any]) -> None:
        """Job ``blast_progress`` (and after each step): one message, updated every few s."""
        blast_id = payload["blast_id"]
        blast = self.storage.blast(blast_id)
        final = blast["status"] in ("done", "cancelled", "blocked", "paused", "scheduled")
        if not (payload.get("force") or final) and (
            time.monotonic() - self._updated.get(blast_id, 0.0) < PROGRESS_EVERY
        ):
            return
        with self._progress_lock:  # one progress message per blast, even from two threads
            self._post_progress(blast_id)

    def _post_progress(self, blast_id: int) -> None:
        blast = self.storage.blast(blast_id)
        self._updated[blast_id] = time.monotonic()
        text, body = views.progress(
            blast,
            self.storage.recipient_counts(blast_id),
            self.clock(),
            self.storage.recipient_reasons(blast_id, "failed"),
            self.storage.recipient_reasons(blast_id, "skipped"),
        )
        channel = self.config.stores[blast["store"]]
        with slack_job("blast progress"):
            if blast["progress_ts"]:
                self.client.chat_update(
                    channel=channel, ts=blast["progress_ts"], text=text, blocks=body
                )
            else:
                response = self.client.chat_postMessage(channel=channel, text=text, blocks=body)
                self.storage.update_blast(
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

    def _known_blast(self, view: dict[str, Any]) -> int | None:
        """The confirm form's blast, if this database knows it."""
        try:
            blast_id = int(json.loads(view.get("private_metadata") or "")["blast_id"])
            self.storage.blast(blast_id)
        except (ValueError, KeyError, TypeError):
            log.warning("blast confirm form %s for a blast unknown here", view.get("id"))
            return None
        return blast_id

    def _image(self, view: dict[str, Any]) -> Image | None:
        files = view["state"]["values"].get("image", {}).get("file", {}).get("files") or []
        if not files:
            return None
        url, size, kind = self.sender.picture(files[0])
        return Image(url, size, kind)

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
