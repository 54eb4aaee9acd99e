"""Running smsbridge locally without Slack or CRM Text: a threaded WSGI server, and a sender
of signed Slack requests. Used by ``smsbridge demo`` and by the test suite."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier
from werkzeug.serving import BaseWSGIServer, make_server

from bot.dev.fake_slack import FakeSlack

# Interaction payloads that Slack gives a trigger_id (it can open one view within 3 s).
_TRIGGERING = frozenset({"block_actions", "view_submission", "shortcut", "message_action"})


class LiveServer:
    """A WSGI app served on 127.0.0.1 on a free port, in a daemon thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self._server.port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class SlackSender:
    """Posts what Slack would post to ``/slack/events``, signed with the signing secret.

    Given the fake Slack the app talks to, it acts for that Slack: slash commands and
    interactions carry a ``trigger_id`` the fake issued (valid for 3 s, once), and a view the
    app returns in a ``response_action`` is checked against Block Kit's limits like Slack
    would (a refusal lands in ``slack.refusals``)."""

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        team_id: str = "T1",
        *,
        slack: FakeSlack | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/slack/events"
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id
        self.slack = slack
        self._counter = 0

    def trigger_id(self) -> str:
        """A new trigger_id: issued by the fake Slack when there is one."""
        self._counter += 1
        return self.slack.new_trigger_id() if self.slack else f"trigger.{self._counter}"

    def post(
        self, body: str, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": str(signature),
            **(headers or {}),
        }
        return httpx.post(self.url, content=body.encode(), headers=all_headers, timeout=30)

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> httpx.Response:
        """An Events API ``event_callback`` (optionally marked as Slack's retry)."""
        self._counter += 1
        envelope = {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id or f"Ev{int(time.time())}{self._counter:04d}",
            "event_time": int(time.time()),
            "event": event,
        }
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(envelope), "application/json", headers)

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        """block_actions / view_submission: ``payload=<json>`` form-encoded."""
        payload.setdefault("team", {"id": self.team_id})
        if payload.get("type") in _TRIGGERING:
            payload.setdefault("trigger_id", self.trigger_id())
        body = urlencode({"payload": json.dumps(payload)})
        response = self.post(body, "application/x-www-form-urlencoded")
        if self.slack is not None and response.status_code == 200 and response.content:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            problems = self.slack.check_interaction_response(
                str(payload.get("type")), answer, payload.get("view")
            )
            view_id = (payload.get("view") or {}).get("id")
            if not problems and isinstance(answer, dict) and view_id:
                if answer.get("response_action") == "update":
                    self.slack.answered_with_view(view_id, answer.get("view"))
        return response

    def command(self, command: str, text: str, *, user: str, channel: str) -> httpx.Response:
        """A slash command, form-encoded like Slack sends it."""
        form = {
            "token": "legacy",
            "team_id": self.team_id,
            "channel_id": channel,
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "trigger_id": self.trigger_id(),
            "response_url": "http://127.0.0.1:9/hook",
            "api_app_id": "A1",
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded")
