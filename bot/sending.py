"""The ``send_reply`` job: a staff reply (or ``/sms``) goes out through CRM Text, exactly once.

The exact outgoing text, signature included, is fixed before anything is sent, so every retry
sends the same bytes. Progress is written after every SMS/MMS part so a retry or restart
resumes where it stopped; a part whose first attempt may have landed is recognised through
CRM Text's 12-hour duplicate answer instead of being sent twice. This job never waits on
Slack: the ``/sms`` post and everything staff should see about the outcome (reaction, reason,
segments note) are separate ``post_outbound`` / ``reply_feedback`` jobs, retried until shown.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.replies import may_have_reached
from bot.slackcalls import slack_job
from bot.slacktext import to_plain
from bot.threads import ThreadPoster
from bridge import held, outbound
from bridge.config import Config
from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable
from bridge.jobs import GiveUp, Retry, lost_worker
from bridge.media import (
    MAX_FILE_BYTES,
    MediaError,
    PreparedImage,
    check_file,
    media_secret,
    media_url,
    prepare_image,
    too_many_bytes,
)
from bridge.optout import not_sent_held
from bridge.store import NEW, OPTED_IN, OPTED_OUT, PENDING, ClaimedJob, Row, Store

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = ("slack.com", "slack-edge.com", "slack-files.com")


@dataclass
class Sender:
    """Sends stored outbound messages and reports the outcome on the staff's Slack message."""

    config: Config
    storage: Store
    client: WebClient
    crm: CrmTextClient
    http: httpx.Client
    clock: Callable[[], datetime]
    poster: ThreadPoster
    secret: bytes = field(init=False)
    # users.info answers, per process: only a cache (the name a reply was signed with is stored
    # on the message, so a retry in another process signs it the same).
    _names: dict[str, str] = field(default_factory=dict)
    _file_hosts: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.secret = media_secret(self.config.slack_signing_secret, self.config.callback_token)
        api_host = urlparse(self.config.slack_api_url).hostname or ""
        self._file_hosts = (*SLACK_FILE_HOSTS, api_host)

    # -- the job --------------------------------------------------------------------------

    def send_reply(self, payload: dict[str, Any]) -> None:
        """Job ``send_reply`` (CRM Text lane): text the customer, record the outcome, and queue
        what staff should see about it as ``reply_feedback`` jobs (Slack lane)."""
        message = self.storage.conversations.message(payload["message_id"])
        if message["status"] != "pending":
            return
        customer = self.storage.customers.get(message["customer_id"])
        if not message["slack_ts"]:  # a /sms text: shown in its thread by a Slack-lane job
            self.storage.jobs.enqueue(
                "post_outbound",
                {"message_id": message["id"]},
                customer_id=customer["id"],
                dedupe_key=f"post-out:{message['id']}",
                now=self.clock(),
            )
        self._fix_text(message, customer)
        try:
            outbound.check(customer["status"], "")
            if self.storage.customers.asked_to_stop(customer["id"]):
                self._hold_for_decision(message)
                return
            urls = self._prepared_urls(message)
            claimed = self._claim(message["id"])
            if claimed is None:
                return  # deleted in Slack before it was sent
            text = claimed["final_text"]
            info = outbound.check(customer["status"], text)
            self._send_parts(claimed, customer, self._parts(text, urls))
        except outbound.NotSent as refusal:
            if customer["status"] in (NEW, PENDING) and self._hold(message, customer):
                return
            self._refused(message, customer, refusal)
            return
        except CrmTextUnavailable as exc:
            self._release(message["id"])
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        notes = []
        if text and (info.segments > 1 or info.encoding != "GSM-7"):
            notes.append(
                blocks.segments_note(
                    info.encoding, info.segments, info.billing_units, info.characters
                )
            )
        with self.storage.transaction():
            self.storage.conversations.update_message(message["id"], status="sent", error="")
            self._feedback(message, blocks.REACTION_SENT, notes)

    def _hold(self, message: Row, customer: Row) -> bool:
        """The customer has not opted in: hold the reply until they do (bridge/held.py) and
        say so on the reply and in the thread. False when it was no longer pending."""
        now = self.clock()
        with self.storage.transaction():
            until = held.hold(self.storage, message["id"], now)
            if until is None:
                return False
            note = blocks.held_notice(customer, customer["status"], until)
            self._feedback(message, blocks.REACTION_HELD, [note])
        log.info("reply %s held until %s opts in", message["id"], customer["id"])
        return True

    def expire_held(self, payload: dict[str, Any]) -> None:
        """Job ``held_expire``: a held reply's time is up. Sent after all if CRM Text has the
        customer opted in (a missed callback), else reported as not sent, once."""
        message = self.storage.conversations.message(payload["message_id"])
        if message["status"] != held.HELD:
            return
        customer = self.storage.customers.get(message["customer_id"])
        now = self.clock()
        if customer["status"] in (NEW, PENDING):
            try:
                status = self.crm.customer_info(customer["store"], customer["phone"]).status
            except CrmTextUnavailable as exc:
                raise Retry(f"CRM Text unreachable: {exc}") from exc
            except CrmTextError:
                status = customer["status"]  # CRM Text does not know them: not opted in
            if status == OPTED_IN:
                with self.storage.transaction():
                    self.storage.customers.set_status(
                        customer["id"], OPTED_IN, how="CRM Text getcustomerinfo", now=now
                    )
                    customer = self.storage.customers.get(customer["id"])
                    if customer["status"] == OPTED_IN:  # not opted out meanwhile
                        held.release(self.storage, customer["id"], now)
                        return
        elif customer["status"] == OPTED_IN:
            held.release(self.storage, customer["id"], now)
            return
        opted_out = customer["status"] == OPTED_OUT
        reason = "opted out while held" if opted_out else "not opted in before the hold ran out"
        with self.storage.transaction():
            if self.storage.conversations.move_message(
                message["id"], held.HELD, held.EXPIRED, error=reason
            ):
                note = blocks.held_expired(customer, message["text"], opted_out=opted_out)
                self._feedback(message, blocks.REACTION_FAILED, [note])

    def gave_up(self, job: ClaimedJob, error: str) -> None:
        """After the last retry: record it and queue the explanation for the thread."""
        message = self.storage.conversations.message(job.payload["message_id"])
        if message["status"] != "pending":
            return
        partial = bool(message["maybe_sent"] or message["media_posted"])
        if partial:
            note = blocks.maybe_sent(message["media_posted"] or 0)
        elif error.startswith("CRM Text"):
            note = blocks.unreachable(job.attempts)
        elif job.lost and error == lost_worker(job.lost):
            note = killed_note(job.lost)
        else:
            note = gave_up_note(error, job.attempts)
        with self.storage.transaction():
            self.storage.conversations.update_message(
                message["id"], status="unknown" if partial else "failed", error=error
            )
            self._feedback(message, blocks.REACTION_FAILED, [note])

    def feedback(self, payload: dict[str, Any]) -> None:
        """Job ``reply_feedback`` (Slack lane): the reaction and/or note staff should see about
        a reply, retried until Slack shows it (429s and 5xx retry; token and channel problems
        park it)."""
        message = self.storage.conversations.message(payload["message_id"])
        thread = self.storage.conversations.thread(message["thread_id"])
        reaction = payload.get("reaction")
        if reaction and message["slack_ts"]:
            self._react(thread["channel_id"], message["slack_ts"], reaction)
        note = payload.get("note")
        if note:
            if thread["ts"] is None:
                log.warning("reply %s: no thread to say %r in", message["id"], note)
                return
            with slack_job("explain in thread"):
                self.client.chat_postMessage(
                    channel=thread["channel_id"], thread_ts=thread["ts"], text=note
                )

    # -- steps ----------------------------------------------------------------------------

    def _fix_text(self, message: Row, customer: Row) -> None:
        """Fix the exact outgoing text (signature included) once, before anything is sent, so
        every retry sends the same bytes (CRM Text's duplicate guard relies on it)."""
        if message["final_text"] is not None:
            return
        signature = message["signature"]
        if signature is None:
            template = self.config.signatures.get(customer["store"], "")
            name = (
                self.staff_name(message["staff_user"], message["staff_name"])
                if "{name}" in template
                else ""
            )
            signature = template.replace("{name}", name)
        with self.storage.transaction():
            current = self.storage.conversations.message(message["id"])
            if current["final_text"] is None:
                final = outbound.with_signature(to_plain(current["text"]), signature)
                self.storage.conversations.update_message(
                    message["id"], signature=signature, final_text=final
                )

    def _claim(self, message_id: int) -> Row | None:
        """From here on an edit or deletion in Slack is too late; the text as it is now."""
        with self.storage.transaction():
            message = self.storage.conversations.message(message_id)
            if message["status"] != "pending":
                return None
            if not message["send_started"]:
                self.storage.conversations.update_message(message_id, send_started=1)
            if message["final_text"] is None:  # edited before the signature was fixed
                final = outbound.with_signature(to_plain(message["text"]), message["signature"])
                self.storage.conversations.update_message(message_id, final_text=final)
            return self.storage.conversations.message(message_id)

    def _release(self, message_id: int) -> None:
        """The attempt ended and certainly reached nobody (no part sent, CRM Text turned the
        request away): an edit or deletion in Slack is in time again."""
        with self.storage.transaction():
            message = self.storage.conversations.message(message_id)
            if message["status"] == "pending" and not may_have_reached(message):
                self.storage.conversations.update_message(message_id, send_started=0)

    def _feedback(self, message: Row, reaction: str | None, notes: list[str]) -> None:
        """Queue what staff should see: the reaction first, then each note, in order."""
        now = self.clock()
        items: list[dict[str, Any]] = [{"reaction": reaction}] if reaction else []
        items += [{"note": note} for note in notes]
        for item in items:
            self.storage.jobs.enqueue(
                "reply_feedback",
                {"message_id": message["id"], **item},
                customer_id=message["customer_id"],
                now=now,
            )

    @staticmethod
    def _parts(text: str, urls: list[str]) -> list[tuple[str, str | None]]:
        """(text, mms_url) per CRM Text call: the text rides with the first picture."""
        if not text and not urls:
            raise outbound.NotSent("nothing", "Not sent: there was nothing to text.")
        if not urls:
            return [(text, None)]
        return [(text if n == 0 else "", url) for n, url in enumerate(urls)]

    def _send_parts(self, message: Row, customer: Row, parts: list[tuple[str, str | None]]) -> None:
        """One CRM Text call per part, each recorded before the next; a part whose last attempt
        may have reached CRM Text is marked so its duplicate answer counts as sent."""
        done = message["media_posted"] or 0
        maybe_sent = bool(message["maybe_sent"])
        for n, (text, url) in enumerate(parts[done:], start=done + 1):
            self.storage.conversations.update_message(message["id"], maybe_sent=1)
            try:
                msg_id = outbound.send(
                    self.crm, customer["store"], customer["phone"], text, url, maybe_sent
                )
            except CrmTextUnavailable as exc:
                self.storage.conversations.update_message(
                    message["id"], maybe_sent=int(maybe_sent or exc.maybe_sent)
                )
                raise
            except outbound.NotSent:
                self.storage.conversations.update_message(message["id"], maybe_sent=0)
                raise
            fields: dict[str, Any] = {"media_posted": n, "maybe_sent": 0}
            if msg_id:
                fields["provider_id"] = msg_id if n == 1 else f"{message['id']}:{msg_id}"
            self.storage.conversations.update_message(message["id"], **fields)
            maybe_sent = False

    def _hold_for_decision(self, message: Row) -> None:
        """The customer may have asked to stop and staff have not decided: the reply waits
        (``bridge.optout.release_held_replies`` sends it on after the decision)."""
        with self.storage.transaction():
            self.storage.conversations.update_message(
                message["id"], status="held", error="waiting for a decision on a stop request"
            )
            self._feedback(message, None, [blocks.HELD_FOR_DECISION])

    def _refused(self, message: Row, customer: Row, refusal: outbound.NotSent) -> None:
        with self.storage.transaction():
            self.storage.conversations.update_message(
                message["id"], status="blocked", error=refusal.reason
            )
            if refusal.code == "opted_out" and customer["status"] != OPTED_OUT:
                self.storage.customers.set_status(
                    customer["id"],
                    OPTED_OUT,
                    how="CRM Text refused a reply: customer is opted out",
                    now=self.clock(),
                )
                not_sent_held(self.storage, customer["id"], self.clock())
            self._feedback(message, blocks.REACTION_FAILED, [blocks.not_sent(refusal.reason)])

    # -- pictures -------------------------------------------------------------------------

    def _prepared_urls(self, message: Row) -> list[str]:
        """Download, shrink and store each picture once; later attempts reuse the links."""
        files = json.loads(message["media"] or "[]")
        if not files:
            return []
        if all("url" in f or "refused" in f for f in files):
            return [f["url"] for f in files if "url" in f]
        prepared, refusals = [], []
        for item in files:
            try:
                prepared.append({**item, "url": self._store_picture(message["id"], item)})
            except (MediaError, outbound.NotSent) as exc:
                reason = exc.reason if isinstance(exc, outbound.NotSent) else str(exc)
                prepared.append({**item, "refused": reason})
                refusals.append(blocks.refused_file(item.get("name") or "A file", reason))
        with self.storage.transaction():
            self.storage.conversations.update_message(message["id"], media=json.dumps(prepared))
            self._feedback(message, None, refusals)
        return [f["url"] for f in prepared if "url" in f]

    def picture(self, item: dict[str, Any]) -> tuple[str, int, str]:
        """Download, shrink and store a Slack file for a blast: (signed URL, bytes, type)."""
        try:
            data = self._download(item)
        except (Retry, GiveUp) as exc:  # an interactive path: say so now, never wait
            reason = f"Could not fetch the picture from Slack ({exc}). Try again."
            raise outbound.NotSent("download", reason) from exc
        image = prepare_image(data)
        url = self._save_picture(0, image)
        return url, len(image.data), image.content_type

    def _store_picture(self, message_id: int, item: dict[str, Any]) -> str:
        return self._save_picture(message_id, prepare_image(self._download(item)))

    def _save_picture(self, message_id: int, image: PreparedImage) -> str:
        media_id = secrets.token_urlsafe(16)
        now = self.clock()
        self.storage.media.add(
            media_id, message_id, image.content_type, image.extension, image.data, now
        )
        return media_url(
            self.config.public_url,
            media_id,
            image.extension,
            secret=self.secret,
            now=now,
            ttl=timedelta(hours=self.config.media_ttl_hours),
        )

    def _download(self, item: dict[str, Any]) -> bytes:
        """Fetch a Slack file with the bot token, sending the token to Slack hosts only. What
        Slack says about the file (size, type) is checked first, so a video or a huge file is
        refused without being downloaded; the download stops at MAX_FILE_BYTES whatever was
        said. A Slack Connect file (``file_access: check_file_info``) comes without links, and
        a file still being scanned without its type: ``files.info`` has them."""
        if item.get("is_external"):
            raise outbound.NotSent("external", "it is stored outside Slack.")
        if (
            item.get("file_access") == "check_file_info"
            or not item.get("mimetype")
            or not isinstance(item.get("size"), int)
            or not (
                item.get("url_private_download")
                or item.get("url_private")
                or item.get("is_external")
            )
        ):
            item = {**item, **self._file_info(str(item.get("id") or ""))}
        check_file(item.get("size"), item.get("mimetype"))
        url = item.get("url_private_download") or item.get("url_private") or ""
        for _ in range(4):
            if item.get("is_external") or not self._is_slack_host(url):
                raise outbound.NotSent("external", "it is stored outside Slack.")
            refusal: outbound.NotSent | None = None  # frozen: raised outside the `with`
            try:
                with self.http.stream(
                    "GET",
                    url,
                    headers={"Authorization": f"Bearer {self.config.slack_bot_token}"},
                    follow_redirects=False,
                ) as response:
                    if response.is_redirect:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    try:
                        return _capped_body(response)
                    except outbound.NotSent as exc:
                        refusal = exc
            except httpx.HTTPError as exc:
                raise Retry(f"Slack file download: {exc}") from exc
            raise refusal
        raise outbound.NotSent("download", "Slack redirected too many times.")

    def _file_info(self, file_id: str) -> dict[str, Any]:
        with slack_job("Slack file details (files.info)"):
            try:
                info = self.client.files_info(file=file_id)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error in ("file_not_found", "file_deleted", "access_denied"):
                    reason = f"Slack would not share it ({error})."
                    raise outbound.NotSent("download", reason) from exc
                raise
        return dict(info["file"])

    def _is_slack_host(self, url: str) -> bool:
        parsed = urlparse(url)
        host = parsed.hostname or ""
        return parsed.scheme in ("https", "http") and any(
            host == h or host.endswith("." + h) for h in self._file_hosts
        )

    # -- Slack helpers --------------------------------------------------------------------

    def staff_name(self, user: str | None, hint: str | None = None) -> str:
        """The staff member's name for a signature: the name the event carried, else Slack's
        users.info (cached), else FALLBACK_NAME. Never the raw user ID, and a failing Slack
        never blocks a send."""
        if hint:
            return hint
        if not user:
            return FALLBACK_NAME
        if user not in self._names:
            try:
                profile = self.client.users_info(user=user)["user"]
                name = profile["profile"].get("display_name") or profile.get("real_name")
            except (SlackApiError, OSError, KeyError, TypeError) as exc:
                log.warning(
                    "users.info for %s failed (%s); signing as %r", user, exc, FALLBACK_NAME
                )
                return FALLBACK_NAME
            if not name:
                return FALLBACK_NAME
            self._names[user] = str(name)
        return self._names[user]

    def _react(self, channel: str, ts: str, name: str) -> None:
        """Add a reaction; already there counts as done, a deleted message as nothing to do."""
        with slack_job(f"reaction {name}"):
            try:
                self.client.reactions_add(channel=channel, timestamp=ts, name=name)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error == "message_not_found":
                    log.info("reaction %s on %s: the message is gone", name, ts)
                elif error != "already_reacted":
                    raise

    def mark_note(self, payload: dict[str, Any]) -> None:
        """Job ``mark_note``: a ``note:`` reply stays in Slack; mark it so everyone sees that."""
        message = self.storage.conversations.message(payload["message_id"])
        thread = self.storage.conversations.thread(message["thread_id"])
        self._react(thread["channel_id"], message["slack_ts"], blocks.REACTION_NOTE)


FALLBACK_NAME = "the team"


def _capped_body(response: httpx.Response) -> bytes:
    """A Slack file download's body, read in chunks and abandoned past MAX_FILE_BYTES."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Retry(f"Slack file download: Slack answered {response.status_code}")
    if response.status_code != 200:
        raise outbound.NotSent("download", f"Slack answered {response.status_code}.")
    if response.headers.get("content-type", "").startswith("text/html"):
        raise outbound.NotSent(
            "download", "Slack sent a login page instead of the file (files:read scope?)."
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES:
        raise MediaError(too_many_bytes(int(declared)))
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise MediaError(too_many_bytes(None))
        chunks.append(chunk)
    return b"".join(chunks)


def killed_note(lost: int) -> str:
    """A reply whose job kept killing its worker (out of memory: a picture?)."""
    return (
        f":x: Not sent: smsbridge stopped {lost} times while preparing this reply (out of "
        "memory? a picture may be too large), so it was not tried again. Send it again, with a "
        "smaller picture if it had one."
    )


def gave_up_note(error: str, attempts: int) -> str:
    """A reply given up on for a reason other than CRM Text being unreachable."""
    what = error.split(":", 1)[0] or "an error"
    return (
        f":x: Not sent: after {attempts} tries smsbridge still could not finish ({what}: "
        f"{error.split(':', 1)[-1].strip()}). Send the reply again."
    )
