"""The ``send_reply`` job: a staff reply (or ``/sms``) goes out through CRM Text, exactly once.

Progress is written after every step (Slack post, each SMS/MMS part) so a retry or restart
resumes where it stopped; a part whose first attempt may have landed is recognised through
CRM Text's 12-hour duplicate answer instead of being sent twice.
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
from bot.slackcalls import slack_job
from bot.slacktext import to_plain
from bot.threads import ThreadPoster
from bridge import outbound
from bridge.config import Config
from bridge.crmtext import CrmTextClient, CrmTextUnavailable
from bridge.jobs import Retry
from bridge.media import MediaError, PreparedImage, media_secret, media_url, prepare_image
from bridge.storage import OPTED_OUT, Row, Storage

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = ("slack.com", "slack-edge.com", "slack-files.com")


@dataclass
class Sender:
    """Sends stored outbound messages and reports the outcome on the staff's Slack message."""

    config: Config
    storage: Storage
    client: WebClient
    crm: CrmTextClient
    http: httpx.Client
    clock: Callable[[], datetime]
    poster: ThreadPoster
    secret: bytes = field(init=False)
    _names: dict[str, str] = field(default_factory=dict)
    _file_hosts: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.secret = media_secret(self.config.slack_signing_secret, self.config.callback_token)
        api_host = urlparse(self.config.slack_api_url).hostname or ""
        self._file_hosts = (*SLACK_FILE_HOSTS, api_host)

    # -- the job --------------------------------------------------------------------------

    def send_reply(self, payload: dict[str, Any]) -> None:
        message = self.storage.message(payload["message_id"])
        if message["status"] != "pending":
            return
        thread = self.storage.thread(message["thread_id"])
        customer = self.storage.customer(message["customer_id"])
        staff = self.staff_name(message["staff_user"])
        text = outbound.with_signature(
            to_plain(message["text"]), self._signature(customer["store"], staff)
        )
        if not message["slack_ts"]:  # a /sms text: show it in its thread first
            message = self.poster.post_outbound(message, payload["_attempt"])
            thread = self.storage.thread(thread["id"])
        try:
            info = outbound.check(customer["status"], text)
            parts = self._parts(message, thread, text)
            self._send_parts(message, customer, parts)
        except outbound.NotSent as refusal:
            self._refused(message, thread, customer, refusal)
            return
        except CrmTextUnavailable as exc:
            raise Retry(f"CRM Text unreachable: {exc}") from exc
        self.storage.update_message(message["id"], status="sent", error="")
        self._react(thread["channel_id"], message["slack_ts"], blocks.REACTION_SENT)
        if text and (info.segments > 1 or info.encoding != "GSM-7"):
            note = blocks.segments_note(
                info.encoding, info.segments, info.billing_units, info.characters
            )
            self._post(thread, note)

    def gave_up(self, job: Row, error: str) -> None:
        """After the last retry: say in the thread that the reply was not sent."""
        message = self.storage.message(job["payload"]["message_id"])
        if message["status"] != "pending":
            return
        thread = self.storage.thread(message["thread_id"])
        partial = bool(message["maybe_sent"] or message["media_posted"])
        self.storage.update_message(
            message["id"], status="unknown" if partial else "failed", error=error
        )
        if message["slack_ts"]:
            self._react(thread["channel_id"], message["slack_ts"], blocks.REACTION_FAILED)
        if partial:
            self._post(thread, blocks.maybe_sent(message["media_posted"] or 0))
        else:
            self._post(thread, blocks.unreachable(job["attempts"]))

    # -- steps ----------------------------------------------------------------------------

    def _parts(self, message: Row, thread: Row, text: str) -> list[tuple[str, str | None]]:
        """(text, mms_url) per CRM Text call: the text rides with the first picture."""
        urls = self._prepared_urls(message, thread)
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
            self.storage.update_message(message["id"], maybe_sent=1)
            try:
                msg_id = outbound.send(
                    self.crm, customer["store"], customer["phone"], text, url, maybe_sent
                )
            except CrmTextUnavailable as exc:
                self.storage.update_message(
                    message["id"], maybe_sent=int(maybe_sent or exc.maybe_sent)
                )
                raise
            except outbound.NotSent:
                self.storage.update_message(message["id"], maybe_sent=0)
                raise
            fields: dict[str, Any] = {"media_posted": n, "maybe_sent": 0}
            if msg_id:
                fields["provider_id"] = msg_id if n == 1 else f"{message['id']}:{msg_id}"
            self.storage.update_message(message["id"], **fields)
            maybe_sent = False

    def _refused(self, message: Row, thread: Row, customer: Row, refusal: outbound.NotSent) -> None:
        self.storage.update_message(message["id"], status="blocked", error=refusal.reason)
        if refusal.code == "opted_out" and customer["status"] != OPTED_OUT:
            self.storage.set_status(
                customer["id"],
                OPTED_OUT,
                how="CRM Text refused a reply: customer is opted out",
                now=self.clock(),
            )
        self._react(thread["channel_id"], message["slack_ts"], blocks.REACTION_FAILED)
        self._post(thread, blocks.not_sent(refusal.reason))

    # -- pictures -------------------------------------------------------------------------

    def _prepared_urls(self, message: Row, thread: Row) -> list[str]:
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
        self.storage.update_message(message["id"], media=json.dumps(prepared))
        for refusal in refusals:
            self._post(thread, refusal)
        return [f["url"] for f in prepared if "url" in f]

    def picture(self, item: dict[str, Any]) -> tuple[str, int, str]:
        """Download, shrink and store a Slack file for a blast: (signed URL, bytes, type)."""
        image = prepare_image(self._download(item))
        url = self._save_picture(0, image)
        return url, len(image.data), image.content_type

    def _store_picture(self, message_id: int, item: dict[str, Any]) -> str:
        return self._save_picture(message_id, prepare_image(self._download(item)))

    def _save_picture(self, message_id: int, image: PreparedImage) -> str:
        media_id = secrets.token_urlsafe(16)
        now = self.clock()
        self.storage.add_media(
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
        """Fetch a Slack file with the bot token, sending the token to Slack hosts only."""
        url = item.get("url_private_download") or item.get("url_private") or ""
        for _ in range(4):
            if item.get("is_external") or not self._is_slack_host(url):
                raise outbound.NotSent("external", "it is stored outside Slack.")
            response = self.http.get(
                url,
                headers={"Authorization": f"Bearer {self.config.slack_bot_token}"},
                follow_redirects=False,
            )
            if response.is_redirect:
                url = str(response.url.join(response.headers["location"]))
                continue
            if response.status_code != 200:
                raise outbound.NotSent("download", f"Slack answered {response.status_code}.")
            if response.headers.get("content-type", "").startswith("text/html"):
                raise outbound.NotSent(
                    "download", "Slack sent a login page instead of the file (files:read scope?)."
                )
            return response.content
        raise outbound.NotSent("download", "Slack redirected too many times.")

    def _is_slack_host(self, url: str) -> bool:
        parsed = urlparse(url)
        host = parsed.hostname or ""
        return parsed.scheme in ("https", "http") and any(
            host == h or host.endswith("." + h) for h in self._file_hosts
        )

    # -- Slack helpers --------------------------------------------------------------------

    def staff_name(self, user: str | None) -> str:
        """The staff member's display name (cached); the user ID if Slack will not say."""
        if not user:
            return "Staff"
        if user not in self._names:
            try:
                profile = self.client.users_info(user=user)["user"]
                name = profile["profile"].get("display_name") or profile.get("real_name") or user
            except SlackApiError:
                return user
            self._names[user] = str(name)
        return self._names[user]

    def _signature(self, keyword: str, staff: str) -> str:
        template = self.config.signatures.get(keyword, "")
        return template.replace("{name}", staff)

    def _react(self, channel: str, ts: str, name: str) -> None:
        try:
            self.client.reactions_add(channel=channel, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_reacted":
                log.warning("reaction %s on %s failed: %s", name, ts, exc.response.get("error"))

    def _post(self, thread: Row, text: str) -> None:
        with slack_job("explain in thread"):
            self.client.chat_postMessage(
                channel=thread["channel_id"], thread_ts=thread["ts"], text=text
            )

    def mark_note(self, payload: dict[str, Any]) -> None:
        """Job ``mark_note``: a ``note:`` reply stays in Slack; mark it so everyone sees that."""
        message = self.storage.message(payload["message_id"])
        thread = self.storage.thread(message["thread_id"])
        self._react(thread["channel_id"], message["slack_ts"], blocks.REACTION_NOTE)
