"""A local stand-in for the Slack Web API, served over real HTTP on 127.0.0.1.

Point a real ``slack_sdk.WebClient(token=fake.bot_token, base_url=fake.api_url)``
at it. It records every call, keeps messages the way Slack would hold them
(top-level posts and thread replies), supports the three-step file upload used by
``files_upload_v2``, serves ``url_private_download`` only with the bot token, and
can inject failures (HTTP 429 + ``Retry-After``, 5xx, or "processed, then the
connection dropped"). ``smsbridge demo`` and the test suite both use it.

It is as strict as Slack where that matters to us: every message and view is checked
against Block Kit's limits (``fake_slack_limits``, a hand-written table independent of
slack_sdk) and refused like Slack refuses it (``invalid_blocks`` / ``invalid_arguments`` /
``msg_too_long``), each refusal also landing in ``refusals`` so a test can fail on it;
``conversations.history``/``replies`` page (``limit``, ``cursor``, ``has_more``,
``oldest``/``latest``/``inclusive``); and a ``trigger_id`` (``new_trigger_id``) opens one view
within 3 seconds.

Besides one-off failures (``fail_next``) it holds failure *states* that persist until
changed, the way a real workspace does: a revoked/invalid/inactive token
(``set_token_state``), an archived channel, a channel the bot was removed from or one that
is gone (``set_channel_state``), a scope taken away (``remove_scope``/``add_scope``), a
per-channel rate limit with a token bucket (``rate_limit``), and Slack Connect files whose
event objects carry only ``file_access: check_file_info`` (``add_file(..., connect=True)``).

Besides the Web API methods (``/api/<method>``) two non-API endpoints are
recorded as calls too, so they can be asserted on and given failures:
``file.upload`` (POST to an ``upload_url``) and ``file.download`` (GET of a
``url_private``/``url_private_download``).
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import math
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bot.dev import fake_slack_limits as limits
from bot.manifest import BOT_SCOPES

JsonDict = dict[str, Any]

_JSON_FIELDS = frozenset({"blocks", "attachments", "metadata", "files", "view"})
_FIRST_TS = 1_732_492_800_000_100  # microseconds; first ts is "1732492800.000100"
_PERMALINK_ROOT = "https://fake.slack.local"
_LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Slack</title></head>"
    b"<body><h1>Sign in to your workspace</h1></body></html>"
)
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id can be used after it was issued
_HISTORY_LIMIT_MAX = 999
_REPLIES_LIMIT_MAX = 1000
_DEFAULT_PAGE = 100  # Slack: "fewer than the requested number of items may be returned"
_MESSAGE_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "files.completeUploadExternal"}
)
_VIEW_METHODS = frozenset({"views.open", "views.update", "views.push"})
# A workspace where the app was installed from manifest.yml: its token has every bot scope.
_SCOPES = ",".join(sorted(BOT_SCOPES))

# What each token state answers to every call (set_token_state).
_TOKEN_ERRORS = {
    "revoked": "token_revoked",
    "invalid": "invalid_auth",
    "inactive": "account_inactive",
}

# The scope a bot token needs for a method (slack-platform.md §1.2; views.* and auth.test need
# none). Conversation reads depend on the conversation type: see _scope_for.
_METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "users.info": "users:read",
    "files.info": "files:read",
    "file.download": "files:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
_CONVERSATION_SCOPES = {
    "conversations.history": "history",
    "conversations.replies": "history",
    "conversations.info": "read",
}
_CONVERSATION_KINDS = {"C": "channels", "G": "groups", "D": "im"}

# Which channel states each channel method refuses, and with what. A read of an archived
# channel still works in Slack, and conversations.info reports the state in its answer
# (is_member / is_archived) instead of refusing.
_CHANNEL_STATE_ERRORS = {
    "missing": "channel_not_found",
    "archived": "is_archived",
    "not_member": "not_in_channel",
}
_CHANNEL_METHODS: dict[str, frozenset[str]] = {
    **{
        m: frozenset({"missing", "archived", "not_member"})
        for m in (
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "chat.delete",
            "reactions.add",
            "reactions.remove",
            "files.completeUploadExternal",
        )
    },
    **{
        m: frozenset({"missing", "not_member"})
        for m in ("chat.getPermalink", "conversations.history", "conversations.replies")
    },
    "conversations.info": frozenset({"missing"}),
}


@dataclass
class Call:
    method: str
    args: JsonDict
    token: str | None
    at: float


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    thread_ts: str | None = None
    user: str | None = None
    username: str | None = None
    blocks: list[JsonDict] | None = None
    metadata: JsonDict | None = None
    files: list[JsonDict] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    edited: bool = False
    ephemeral_for: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


class SlackError(Exception):
    """Raised by a method handler; answered as HTTP 200 {"ok": false, "error": ...}."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str
    drop: bool = False


@dataclass
class _Bucket:
    """A token bucket: ``burst`` calls at once, refilled at ``per_second``."""

    per_second: float
    burst: int
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    large: _Large | None = None  # a large file's bytes, sent in chunks instead of ``body``


@dataclass
class _Large:
    """A large file (a long video, a huge picture) that is never held in memory: ``size``
    bytes, ``head`` and then zeros. ``served`` counts the bytes actually sent."""

    size: int
    head: bytes = b""
    served: int = 0


def _json_reply(
    payload: JsonDict, status: int = 200, headers: dict[str, str] | None = None
) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=headers or {})


def _need(args: JsonDict, key: str, error: str) -> str:
    value = args.get(key)
    if not value:
        raise SlackError(error)
    return str(value)


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T1",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (seconds, monotonic) drives rate limits and trigger expiry."""
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.calls: list[Call] = []
        self.refusals: list[str] = []
        self.messages: list[Message] = []
        self.views: dict[str, JsonDict] = {}
        self.uploaded: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._users: dict[str, JsonDict] = {}
        self._files: dict[str, JsonDict] = {}
        self._blobs: dict[str, bytes] = {}
        self._large: dict[str, _Large] = {}
        self._pending_uploads: dict[str, JsonDict] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._latency: dict[str, float] = {}
        self._down: _Failure | None = None
        self.clock = clock
        self.rate_limited_calls = 0
        self._limits: dict[str, tuple[float, int]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._token_state = "ok"
        self._triggers: dict[str, float] = {}
        self._trigger_count = 0
        self._used_triggers: set[str] = set()
        self._channel_states: dict[str, str] = {}
        self._scopes: list[str] = _SCOPES.split(",")
        self._ts = _FIRST_TS
        self._ids: dict[str, int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.root_url = ""
        self._methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "files.info": self._files_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeSlack:
        server = _Server(("127.0.0.1", port), _Handler)
        server.fake = self
        self._server = server
        self.root_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fakeslack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api/"

    # -- test helpers ------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (AssertionError, LookupError):
                pass
            time.sleep(0.02)
        with self._lock:
            recent = [f"{c.method} {_short(c.args)}" for c in self.calls[-10:]]
        raise AssertionError(
            f"condition not met within {timeout}s: {_describe(predicate)}\n"
            f"last {len(recent)} of {len(self.calls)} calls:\n  "
            + "\n  ".join(recent or ["(none)"])
        )

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        with self._lock:
            return [m for m in self._visible(channel) if thread_ts in (m.ts, m.thread_ts)]

    def top_level(self, channel: str) -> list[Message]:
        with self._lock:
            return [m for m in self._visible(channel) if not m.is_reply]

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        error: str = "ratelimited",
        times: int = 1,
    ) -> None:
        """The next `times` calls to `method` answer `status` with {"ok": false, "error": error}."""
        with self._lock:
            queue = self._failures.setdefault(method, [])
            queue.extend(_Failure(status, retry_after, error) for _ in range(times))

    def drop_next(self, method: str, *, times: int = 1) -> None:
        """The next `times` calls to `method` take effect, then the connection closes unanswered."""
        with self._lock:
            queue = self._failures.setdefault(method, [])
            queue.extend(_Failure(0, 0, "", drop=True) for _ in range(times))

    def outage(self, *, status: int = 503, error: str = "service_unavailable") -> None:
        """Slack is down: every Web API call answers ``status`` until :meth:`outage_over`."""
        with self._lock:
            self._down = _Failure(status, 1, error)

    def outage_over(self) -> None:
        with self._lock:
            self._down = None

    def recover(self, method: str) -> None:
        """Slack answers `method` normally again: failures still queued for it are dropped."""
        with self._lock:
            self._failures.pop(method, None)

    def new_trigger_id(self) -> str:
        """A trigger_id as Slack puts in a slash command or interaction: it can open (or push)
        one view, within 3 seconds of being issued."""
        with self._lock:
            self._trigger_count += 1
            trigger = f"{self._trigger_count}.{self.team_id}.{secrets.token_hex(16)}"
            self._triggers[trigger] = self.clock()
            return trigger

    # -- Block Kit validation ------------------------------------------------------------------

    def check_view(self, view: Any) -> list[str]:
        """What Slack would refuse in a modal/Home view (empty: valid); pointers are relative to
        the view, e.g. ``/blocks/3/element/options/0/description/text``."""
        return limits.check_view(view)

    def check_interaction_response(
        self, source: str, body: Any, submitted: Any = None
    ) -> list[str]:
        """Check an interaction response the way Slack would: a view returned with
        ``response_action`` update / push must be valid, and ``errors`` must name input blocks
        of the ``submitted`` view (else Slack shows the person only "We had some trouble
        connecting"). A refusal is recorded in ``refusals``."""
        action = body.get("response_action") if isinstance(body, dict) else None
        if action in ("update", "push"):
            problems = limits.check_view(body.get("view"), "/view")
        elif action == "errors" and submitted is not None:
            problems = limits.check_errors(body.get("errors"), submitted)
        else:
            return []
        if problems:
            self._refuse(f"{source} response_action={body['response_action']}", problems)
        return problems

    def answered_with_view(self, view_id: str, view: Any) -> None:
        """An interaction was answered ``response_action: update``: like Slack, the modal now
        shows ``view`` and has a new hash (an update sent with the old hash is refused)."""
        with self._lock:
            if view_id in self.views:
                self._store_view(view_id, view)

    def _refuse(self, where: str, problems: list[str]) -> None:
        with self._lock:
            self.refusals.append(f"{where}: " + "; ".join(problems))

    # -- failure states (persist until changed) ------------------------------------------------

    def set_token_state(self, state: str) -> None:
        """Either "ok", or "revoked" / "invalid" / "inactive": every call then answers
        ``token_revoked`` / ``invalid_auth`` / ``account_inactive`` until set back to "ok"."""
        if state != "ok" and state not in _TOKEN_ERRORS:
            raise ValueError(f"unknown token state {state!r}")
        with self._lock:
            self._token_state = state

    def set_channel_state(self, channel: str, state: str) -> None:
        """Either "ok", or "archived" / "not_member" / "missing": the channel's methods then answer
        ``is_archived`` / ``not_in_channel`` / ``channel_not_found`` (see _CHANNEL_METHODS)."""
        if state != "ok" and state not in _CHANNEL_STATE_ERRORS:
            raise ValueError(f"unknown channel state {state!r}")
        with self._lock:
            if state == "ok":
                self._channel_states.pop(channel, None)
            else:
                self._channel_states[channel] = state

    def remove_scope(self, scope: str) -> None:
        """Methods needing ``scope`` answer ``missing_scope``; auth.test stops listing it."""
        with self._lock:
            if scope in self._scopes:
                self._scopes.remove(scope)

    def add_scope(self, scope: str) -> None:
        with self._lock:
            if scope not in self._scopes:
                self._scopes.append(scope)

    @property
    def scopes(self) -> list[str]:
        with self._lock:
            return list(self._scopes)

    def rate_limit(self, method: str, per_second: float = 1.0, burst: int = 1) -> None:
        """Allow ``method`` ``burst`` calls at once, refilled at ``per_second`` (per channel for
        chat.postMessage, like Slack); beyond that answer HTTP 429 ``ratelimited`` with a
        ``Retry-After`` header, and count the call in ``rate_limited_calls``."""
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be > 0 and burst >= 1")
        with self._lock:
            self._limits[method] = (per_second, burst)
            self._buckets = {k: b for k, b in self._buckets.items() if k[0] != method}

    def slow_down(self, method: str, seconds: float) -> None:
        """Answer ``method`` ``seconds`` late (a slow Slack; 0 for normal speed again)."""
        with self._lock:
            self._latency[method] = seconds

    def clear_rate_limit(self, method: str) -> None:
        with self._lock:
            self._limits.pop(method, None)
            self._buckets = {k: b for k, b in self._buckets.items() if k[0] != method}

    def dm_channel(self, user_id: str) -> str:
        """The id of the bot's direct-message conversation with ``user_id``."""
        return f"D{user_id}"

    def add_user(self, user_id: str, display_name: str, real_name: str = "") -> None:
        with self._lock:
            self._users[user_id] = _user_object(user_id, display_name, real_name, is_bot=False)

    def add_file(
        self, file_id: str, content: bytes, mimetype: str, name: str, *, connect: bool = False
    ) -> JsonDict:
        """A file someone shared; returns the file object as message events carry it.

        With ``connect=True`` it was shared from a Slack Connect workspace: the event's object
        is only ``{"id", "file_access": "check_file_info", ...}`` (no name, type or urls), and
        ``files.info`` returns the full object."""
        with self._lock:
            full = self._register_file(file_id, content, name, name, mimetype)
            if not connect:
                return full
            return {
                "id": file_id,
                "file_access": "check_file_info",
                "created": int(time.time()),
                "timestamp": int(time.time()),
                "user": full["user"],
            }

    def add_large_file(
        self,
        file_id: str,
        size: int,
        mimetype: str,
        name: str,
        *,
        head: bytes = b"",
        listed_size: int | None = None,
    ) -> JsonDict:
        """A large shared file (say a 300 MB video), served in chunks without being held in
        memory: ``head`` and then zeros, ``size`` bytes. ``listed_size`` is failure injection:
        the size its file object claims, if not its real size (a file whose bytes are not
        what Slack said). :meth:`bytes_served` tells how much of it was downloaded."""
        with self._lock:
            obj = self._register_file(file_id, b"", name, name, mimetype)
            obj["size"] = size if listed_size is None else listed_size
            self._large[file_id] = _Large(size, head)
            return obj

    def bytes_served(self, file_id: str) -> int:
        """How many bytes of a large file were sent to downloaders, in all."""
        with self._lock:
            return self._large[file_id].served

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        thread_ts: str | None = None,
        files: list[JsonDict] | None = None,
    ) -> Message:
        """Put a message into Slack as if a person posted it (e.g. a staff reply)."""
        with self._lock:
            return self._store(
                Message(channel, self._next_ts(), text, thread_ts, user, files=list(files or []))
            )

    def transcript(self, channel: str | None = None) -> str:
        with self._lock:
            channels = [channel] if channel else dict.fromkeys(m.channel for m in self.messages)
            return "\n".join(self._render_channel(c) for c in channels)

    # -- request handling (called from server threads) ---------------------------------------

    def _serve(
        self, name: str, args: JsonDict, token: str | None, action: Callable[[], _Reply]
    ) -> _Reply | None:
        with self._lock:
            latency = self._latency.get(name, 0.0)
        if latency:
            time.sleep(latency)
        with self._lock:
            self.calls.append(Call(name, args, token, time.time()))
            queue = self._failures.get(name)
            failure = queue.pop(0) if queue else self._down
            if failure is not None and not failure.drop:
                headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
                return _json_reply({"ok": False, "error": failure.error}, failure.status, headers)
            reply = action()
            return None if failure is not None else reply

    def _api(self, name: str, args: JsonDict, token: str | None) -> _Reply:
        if token != self.bot_token:
            return _json_reply({"ok": False, "error": "invalid_auth"})
        if self._token_state in _TOKEN_ERRORS:
            return _json_reply({"ok": False, "error": _TOKEN_ERRORS[self._token_state]})
        headers = {"x-oauth-scopes": ",".join(self._scopes)}
        needed = _scope_for(name, args)
        if needed is not None and needed not in self._scopes:
            refusal = {
                "error": "missing_scope",
                "needed": needed,
                "provided": headers["x-oauth-scopes"],
            }
            return _json_reply({"ok": False, **refusal}, headers=headers)
        limited = self._rate_limited(name, args)
        if limited is not None:
            return limited
        refused = self._validate(name, args)
        if refused is not None:
            return refused
        handler = self._methods.get(name)
        try:
            self._check_channel_state(name, args)
            result = handler(args) if handler else {}
        except SlackError as e:
            return _json_reply({"ok": False, "error": e.error}, headers=headers)
        return _json_reply({"ok": True, **result}, headers=headers)

    def _validate(self, name: str, args: JsonDict) -> _Reply | None:
        """Refuse what Slack would refuse in a message's or a view's content (see
        fake_slack_limits), record it in ``refusals`` and answer like Slack."""
        if name in _MESSAGE_METHODS:
            error, problems = _message_problems(name, args)
        elif name in _VIEW_METHODS:
            error, problems = _view_problems(args.get("view"))
        else:
            return None
        if not problems:
            return None
        self._refuse(f"{name} {error}", problems)
        payload: JsonDict = {"ok": False, "error": error}
        if error in ("invalid_blocks", "invalid_arguments"):
            payload["response_metadata"] = {"messages": problems}
        if error == "invalid_blocks":
            payload["errors"] = problems
        return _json_reply(payload)

    def _rate_limited(self, name: str, args: JsonDict) -> _Reply | None:
        limit = self._limits.get(name)
        if limit is None:
            return None
        channel = str(args.get("channel") or "") if name == "chat.postMessage" else ""
        bucket = self._buckets.get((name, channel))
        now = self.clock()
        if bucket is None:
            bucket = self._buckets[(name, channel)] = _Bucket(*limit, float(limit[1]), now)
        wait = bucket.take(now)
        if wait == 0.0:
            return None
        self.rate_limited_calls += 1
        retry_after = str(max(1, math.ceil(wait)))
        return _json_reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": retry_after})

    def _check_channel_state(self, name: str, args: JsonDict) -> None:
        refused_states = _CHANNEL_METHODS.get(name)
        if not refused_states:
            return
        channel = _channel_arg(args)
        state = self._channel_states.get(channel)
        if state in refused_states:
            raise SlackError(_CHANNEL_STATE_ERRORS[state])

    def _upload(self, file_id: str, body: bytes) -> _Reply:
        if file_id not in self._pending_uploads:
            return _Reply(404, b"unknown upload", "text/plain")
        self.uploaded[file_id] = body
        return _Reply(200, f"OK - {len(body)}".encode(), "text/plain; charset=utf-8")

    def _download(self, file_id: str, token: str | None) -> _Reply:
        needed = _scope_for("file.download", {})
        if token != self.bot_token or self._token_state != "ok" or needed not in self._scopes:
            return _Reply(200, _LOGIN_PAGE, "text/html; charset=utf-8")
        if file_id not in self._blobs:
            return _Reply(404, b"file not found", "text/plain")
        mimetype = str(self._files[file_id]["mimetype"])
        return _Reply(200, self._blobs[file_id], mimetype, large=self._large.get(file_id))

    # -- state helpers -----------------------------------------------------------------------

    def _next_ts(self) -> str:
        ts, self._ts = self._ts, self._ts + 100
        return f"{ts // 1_000_000}.{ts % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}{self._ids[prefix]:08d}"

    def _store(self, message: Message) -> Message:
        self.messages.append(message)
        return message

    def _visible(self, channel: str) -> list[Message]:
        return [m for m in self.messages if m.channel == channel and m.ephemeral_for is None]

    def _find(self, channel: str, ts: str) -> Message:
        for m in self._visible(channel):
            if m.ts == ts:
                return m
        raise SlackError("message_not_found")

    def _message_json(self, m: Message, with_metadata: bool = True) -> JsonDict:
        out: JsonDict = {"type": "message", "ts": m.ts, "text": m.text, "user": m.user}
        if m.user == self.bot_user_id:
            out["bot_id"] = self.bot_id
        optional = {"thread_ts": m.thread_ts, "username": m.username, "blocks": m.blocks}
        out.update({k: v for k, v in optional.items() if v is not None})
        if m.metadata is not None and with_metadata:
            out["metadata"] = m.metadata
        if m.files:
            out.update(subtype="file_share", files=m.files, upload=True)
        if m.reactions:
            out["reactions"] = [
                {"name": r, "users": [self.bot_user_id], "count": 1} for r in m.reactions
            ]
        if m.edited:
            out["edited"] = {"user": self.bot_user_id, "ts": m.ts}
        if not m.is_reply:
            replies = [r for r in self._visible(m.channel) if r.is_reply and r.thread_ts == m.ts]
            if replies:
                out.update(thread_ts=m.ts, reply_count=len(replies), latest_reply=replies[-1].ts)
        return out

    def _register_file(
        self, file_id: str, content: bytes, name: str, title: str, mimetype: str
    ) -> JsonDict:
        base = f"{self.root_url}/files-pri/{self.team_id}-{file_id}"
        obj: JsonDict = {
            "id": file_id,
            "name": name,
            "title": title,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "",
            "size": len(content),
            "user": self.bot_user_id,
            "is_external": False,
            "url_private": f"{base}/{quote(name)}",
            "url_private_download": f"{base}/download/{quote(name)}",
            "permalink": f"{_PERMALINK_ROOT}/files/{self.bot_user_id}/{file_id}/{quote(name)}",
            "channels": [],
            "shares": {},
        }
        self._files[file_id] = obj
        self._blobs[file_id] = content
        return obj

    def _store_view(self, view_id: str, view: Any) -> JsonDict:
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        stored: JsonDict = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "hash": f"{time.time():.6f}.{self._next_id('h')}",
            "state": {"values": {}},
        }
        self.views[view_id] = stored
        return stored

    # -- Web API methods ---------------------------------------------------------------------

    def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "url": f"{_PERMALINK_ROOT}/",
            "team": "Fake Team",
            "user": "bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = _need(args, "channel", "channel_not_found")
        if channel[:1] in ("U", "W"):  # a user id: Slack posts into the bot's DM with them
            channel = self.dm_channel(channel)
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            raise SlackError("no_text")
        message = self._store(
            Message(
                channel,
                self._next_ts(),
                str(args.get("text") or ""),
                args.get("thread_ts") or None,
                self.bot_user_id,
                self._username(args),
                args.get("blocks"),
                args.get("metadata"),
            )
        )
        return {"channel": channel, "ts": message.ts, "message": self._message_json(message)}

    def _username(self, args: JsonDict) -> str | None:
        """``username`` only takes effect with chat:write.customize (Slack ignores it without)."""
        if "chat:write.customize" not in self._scopes:
            return None
        return args.get("username") or None

    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel = _need(args, "channel", "channel_not_found")
        message = self._find(channel, _need(args, "ts", "message_not_found"))
        if "text" in args:
            message.text = str(args["text"] or "")
        if "blocks" in args:
            message.blocks = args["blocks"] or None
        if "metadata" in args:
            message.metadata = args["metadata"]
        message.edited = True
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = _need(args, "channel", "channel_not_found")
        user = _need(args, "user", "user_not_in_channel")
        message = self._store(
            Message(
                channel,
                self._next_ts(),
                str(args.get("text") or ""),
                args.get("thread_ts") or None,
                self.bot_user_id,
                self._username(args),
                args.get("blocks"),
                ephemeral_for=user,
            )
        )
        return {"message_ts": message.ts}

    def _chat_get_permalink(self, args: JsonDict) -> JsonDict:
        channel = _need(args, "channel", "channel_not_found")
        message = self._find(channel, _need(args, "message_ts", "message_not_found"))
        link = f"{_PERMALINK_ROOT}/archives/{channel}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _reaction_target(self, args: JsonDict) -> tuple[Message, str]:
        channel = _need(args, "channel", "channel_not_found")
        message = self._find(channel, _need(args, "timestamp", "message_not_found"))
        return message, _need(args, "name", "invalid_name")

    def _reactions_add(self, args: JsonDict) -> JsonDict:
        message, name = self._reaction_target(args)
        if name in message.reactions:
            raise SlackError("already_reacted")
        message.reactions.append(name)
        return {}

    def _reactions_remove(self, args: JsonDict) -> JsonDict:
        message, name = self._reaction_target(args)
        if name not in message.reactions:
            raise SlackError("no_reaction")
        message.reactions.remove(name)
        return {}

    def _users_info(self, args: JsonDict) -> JsonDict:
        user_id = _need(args, "user", "user_not_found")
        if user_id == self.bot_user_id and user_id not in self._users:
            return {"user": _user_object(user_id, "bot", "bot", is_bot=True)}
        if user_id not in self._users:
            raise SlackError("user_not_found")
        return {"user": self._users[user_id]}

    def _conversations_info(self, args: JsonDict) -> JsonDict:
        channel = _need(args, "channel", "channel_not_found")
        state = self._channel_states.get(channel, "ok")
        return {
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": channel.startswith("C"),
                "is_member": state != "not_member",
                "is_archived": state == "archived",
            }
        }

    def _conversations_history(self, args: JsonDict) -> JsonDict:
        """Top-level messages newest first, paged like Slack (limit, cursor, has_more) within
        oldest/latest (exclusive unless ``inclusive``)."""
        channel = _need(args, "channel", "channel_not_found")
        in_range = _time_range(args)
        newest_first = [m for m in reversed(self.top_level(channel)) if in_range(m.ts)]
        cursor = _decode_cursor(args.get("cursor"))
        if cursor is not None:
            newest_first = [m for m in newest_first if _ts_key(m.ts) <= cursor]
        limit = _limit(args, _HISTORY_LIMIT_MAX)
        page, rest = newest_first[:limit], newest_first[limit:]
        return self._page(page, rest, args)

    def _conversations_replies(self, args: JsonDict) -> JsonDict:
        """A thread oldest first, its parent first on the first page, paged like Slack; given a
        reply's ts, only that message (as Slack does)."""
        channel = _need(args, "channel", "channel_not_found")
        ts = _need(args, "ts", "thread_not_found")
        found = self.thread(channel, ts)
        if not found or found[0].ts != ts:
            raise SlackError("thread_not_found")
        if found[0].is_reply:
            return self._page(found[:1], [], args)
        parent, in_range = found[0], _time_range(args)
        replies = [m for m in found[1:] if in_range(m.ts)]
        limit = _limit(args, _REPLIES_LIMIT_MAX)
        cursor = _decode_cursor(args.get("cursor"))
        if cursor is None:
            return self._page([parent, *replies[: limit - 1]], replies[limit - 1 :], args)
        replies = [m for m in replies if _ts_key(m.ts) >= cursor]
        return self._page(replies[:limit], replies[limit:], args)

    def _page(self, page: list[Message], rest: list[Message], args: JsonDict) -> JsonDict:
        meta = _flag(args.get("include_all_metadata"))
        out: JsonDict = {
            "messages": [self._message_json(m, meta) for m in page],
            "has_more": bool(rest),
        }
        if rest:
            out["response_metadata"] = {"next_cursor": _encode_cursor(rest[0].ts)}
        return out

    def _use_trigger(self, args: JsonDict) -> None:
        trigger = _need(args, "trigger_id", "invalid_trigger_id")
        issued = self._triggers.get(trigger)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        if self.clock() - issued > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        self._used_triggers.add(trigger)

    def _views_open(self, args: JsonDict) -> JsonDict:
        external_id = (args.get("view") or {}).get("external_id")
        if external_id and any(v.get("external_id") == external_id for v in self.views.values()):
            raise SlackError("duplicate_external_id")
        self._use_trigger(args)
        return {"view": self._store_view(self._next_id("V"), args.get("view"))}

    def _views_update(self, args: JsonDict) -> JsonDict:
        view_id = args.get("view_id") or next(
            (
                k
                for k, v in self.views.items()
                if args.get("external_id") and v.get("external_id") == args["external_id"]
            ),
            None,
        )
        if not view_id or view_id not in self.views:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != self.views[view_id]["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view(view_id, args.get("view"))}

    def _views_push(self, args: JsonDict) -> JsonDict:
        self._use_trigger(args)
        return {"view": self._store_view(self._next_id("V"), args.get("view"))}

    def _files_info(self, args: JsonDict) -> JsonDict:
        file_id = _need(args, "file", "file_not_found")
        if file_id not in self._files:
            raise SlackError("file_not_found")
        return {"file": self._files[file_id]}

    def _files_get_upload_url(self, args: JsonDict) -> JsonDict:
        filename = _need(args, "filename", "invalid_arguments")
        length = int(_need(args, "length", "invalid_arguments"))
        file_id = self._next_id("F")
        self._pending_uploads[file_id] = {"name": filename, "length": length}
        return {"file_id": file_id, "upload_url": f"{self.root_url}/upload/v1/{file_id}"}

    def _files_complete_upload(self, args: JsonDict) -> JsonDict:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        objects = [self._finish_upload(item) for item in items]
        channel = args.get("channel_id") or str(args.get("channels") or "").split(",")[0]
        if channel:
            self._share_files(channel, objects, args)
        return {"files": [{"id": o["id"], "title": o["title"]} for o in objects]}

    def _finish_upload(self, item: Any) -> JsonDict:
        file_id = str(item.get("id", "")) if isinstance(item, dict) else ""
        if file_id not in self.uploaded:
            raise SlackError("file_not_found")
        name = str(self._pending_uploads[file_id]["name"])
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return self._register_file(
            file_id, self.uploaded[file_id], name, str(item.get("title") or name), mimetype
        )

    def _share_files(self, channel: str, objects: list[JsonDict], args: JsonDict) -> None:
        thread_ts = args.get("thread_ts") or None
        message = self._store(
            Message(
                channel,
                self._next_ts(),
                str(args.get("initial_comment") or ""),
                thread_ts,
                self.bot_user_id,
                self._username(args),
                args.get("blocks"),
                files=objects,
            )
        )
        for obj in objects:
            share = {"ts": message.ts, **({"thread_ts": thread_ts} if thread_ts else {})}
            obj["channels"] = [channel]
            obj["shares"] = {"public": {channel: [share]}}

    # -- transcript --------------------------------------------------------------------------

    def _render_channel(self, channel: str) -> str:
        lines = [f"#{channel}"]
        messages = [m for m in self.messages if m.channel == channel]
        for parent in (m for m in messages if not m.is_reply):
            lines += self._render_message(parent, "")
            for reply in (m for m in messages if m.is_reply and m.thread_ts == parent.ts):
                lines += self._render_message(reply, "    ")
        return "\n".join(lines) + "\n"

    def _render_message(self, m: Message, indent: str) -> list[str]:
        author = m.username or self._display_name(m.user)
        marks = " (edited)" if m.edited else ""
        if m.ephemeral_for:
            marks += f" (only visible to {self._display_name(m.ephemeral_for)})"
        body = _flatten_blocks(m.blocks) if m.blocks else m.text.splitlines()
        first, rest = (body[0], body[1:]) if body else ("", [])
        lines = [f"{indent}- {author}{marks}: {first}".rstrip()]
        lines += [f"{indent}  {line}".rstrip() for line in rest]
        lines += [
            f"{indent}  [file] {f['name']} ({f['mimetype']}, {f['size']} bytes)" for f in m.files
        ]
        if m.reactions:
            lines.append(f"{indent}  [reactions] " + " ".join(f":{r}:" for r in m.reactions))
        return lines

    def _display_name(self, user_id: str | None) -> str:
        if user_id is None:
            return "?"
        if user_id == self.bot_user_id and user_id not in self._users:
            return "bot"
        profile = self._users.get(user_id, {}).get("profile", {})
        return str(profile.get("display_name") or profile.get("real_name") or user_id)


# -- module helpers ------------------------------------------------------------------------------


def _message_problems(name: str, args: JsonDict) -> tuple[str, list[str]]:
    text = args.get("text")
    most = limits.UPDATE_MAX_TEXT if name == "chat.update" else limits.MESSAGE_MAX_TEXT
    if isinstance(text, str) and len(text) > most:
        return "msg_too_long", [f"text is {len(text)} characters; {name} allows {most}"]
    metadata = args.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        return "invalid_metadata_format", ["metadata needs event_type and event_payload"]
    blocks = args.get("blocks")
    if blocks is None or blocks == "":
        return "invalid_blocks", []
    if not isinstance(blocks, list):
        return "invalid_blocks_format", ["blocks must be a JSON array"]
    return "invalid_blocks", limits.check_blocks(blocks)


def _view_problems(view: Any) -> tuple[str, list[str]]:
    if isinstance(view, dict) and len(json.dumps(view)) > limits.VIEW_MAX_BYTES:
        return "view_too_large", [f"the view is over {limits.VIEW_MAX_BYTES} bytes"]
    return "invalid_arguments", limits.check_view(view, "/view")


def _ts_key(ts: str) -> int:
    """A message ts ("1732492800.000100") as microseconds, for exact comparisons."""
    seconds, _, fraction = str(ts).partition(".")
    if not seconds.isdigit() or not (fraction.isdigit() or fraction == ""):
        raise ValueError(ts)
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _time_range(args: JsonDict) -> Callable[[str], bool]:
    """oldest/latest as Slack documents them: bounds excluded unless ``inclusive``."""
    try:
        oldest = _ts_key(args["oldest"]) if args.get("oldest") not in (None, "") else None
    except ValueError:
        raise SlackError("invalid_ts_oldest") from None
    try:
        latest = _ts_key(args["latest"]) if args.get("latest") not in (None, "", "now") else None
    except ValueError:
        raise SlackError("invalid_ts_latest") from None
    inclusive = _flag(args.get("inclusive"))

    def in_range(ts: str) -> bool:
        key = _ts_key(ts)
        if oldest is not None and (key < oldest or (key == oldest and not inclusive)):
            return False
        return latest is None or key < latest or (key == latest and inclusive)

    return in_range


def _limit(args: JsonDict, most: int) -> int:
    try:
        limit = int(args.get("limit") or _DEFAULT_PAGE)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    if limit < 1:
        raise SlackError("invalid_limit")
    return min(limit, most)


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: Any) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
        if not text.startswith("next_ts:"):
            raise ValueError(text)
        return _ts_key(text[len("next_ts:") :])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None


def _channel_arg(args: JsonDict) -> str:
    channel = args.get("channel") or args.get("channel_id") or args.get("channels") or ""
    return str(channel).split(",")[0]


def _scope_for(method: str, args: JsonDict) -> str | None:
    if method in _METHOD_SCOPES:
        return _METHOD_SCOPES[method]
    if method in _CONVERSATION_SCOPES:
        kind = _CONVERSATION_KINDS.get(_channel_arg(args)[:1], "channels")
        return f"{kind}:{_CONVERSATION_SCOPES[method]}"
    return None


def _user_object(user_id: str, display_name: str, real_name: str, *, is_bot: bool) -> JsonDict:
    profile = {
        "display_name": display_name,
        "display_name_normalized": display_name,
        "real_name": real_name,
        "real_name_normalized": real_name,
    }
    return {
        "id": user_id,
        "name": display_name.lower().replace(" ", "."),
        "real_name": real_name,
        "is_bot": is_bot,
        "deleted": False,
        "profile": profile,
    }


def _short(args: JsonDict, limit: int = 120) -> str:
    text = json.dumps(args, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return getattr(predicate, "__qualname__", repr(predicate))


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _block_lines(block: JsonDict) -> list[str]:
    kind = block.get("type")
    if kind in ("section", "header"):
        texts = [_text_of(block.get("text"))] + [_text_of(f) for f in block.get("fields", [])]
        lines = [line for t in texts if t for line in t.splitlines()]
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            lines.append(f"[{_text_of(accessory.get('text'))}]")
        return lines
    if kind == "context":
        alts = [_text_of(e) or f"[{e.get('alt_text', 'image')}]" for e in block.get("elements", [])]
        return [" ".join(alts)]
    if kind == "actions":
        return [
            " ".join(
                f"[{_text_of(e.get('text')) or e.get('action_id', '?')}]"
                for e in block.get("elements", [])
            )
        ]
    if kind == "divider":
        return ["---"]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "input":
        return [f"{_text_of(block.get('label'))}: [input]"]
    return [f"[{kind}]"]


def _flatten_blocks(blocks: list[JsonDict]) -> list[str]:
    return [line for b in blocks if isinstance(b, dict) for line in _block_lines(b)]


def _decode_args(pairs: Iterable[tuple[str, Any]]) -> JsonDict:
    args: JsonDict = dict(pairs)
    for key in _JSON_FIELDS & args.keys():
        if isinstance(args[key], str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                pass
    return args


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> None:
        fake = cast(_Server, self.server).fake
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        token = self._bearer()
        reply: _Reply | None
        if url.path.startswith("/api/"):
            args = self._args(url.query, body)
            token = token or args.pop("token", None)
            name = url.path[len("/api/") :]
            reply = fake._serve(name, args, token, lambda: fake._api(name, args, token))
        elif url.path.startswith("/upload/v1/"):
            file_id = url.path.rsplit("/", 1)[-1]
            reply = fake._serve(
                "file.upload",
                {"file_id": file_id, "length": len(body)},
                token,
                lambda: fake._upload(file_id, body),
            )
        elif url.path.startswith("/files-pri/"):
            file_id = unquote(url.path.split("/")[2]).split("-", 1)[-1]
            reply = fake._serve(
                "file.download", {"file": file_id}, token, lambda: fake._download(file_id, token)
            )
        else:
            reply = _Reply(404, b"not found", "text/plain")
        if reply is None:
            self.close_connection = True  # processed, but the client never hears back
            return
        self._send(reply)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def _args(self, query: str, body: bytes) -> JsonDict:
        pairs = parse_qsl(query, keep_blank_values=True)
        content_type = self.headers.get("Content-Type") or ""
        if body.lstrip().startswith(b"{") or "json" in content_type:
            parsed = json.loads(body or b"{}")
            return {**_decode_args(pairs), **_decode_args(parsed.items())}
        pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return _decode_args(pairs)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        large = reply.large
        self.send_header("Content-Length", str(large.size if large else len(reply.body)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if large is None:
            self.wfile.write(reply.body)
            return
        self._send_large(large)

    def _send_large(self, large: _Large) -> None:
        chunk = 256 * 1024
        zeros = bytes(chunk)
        sent = 0
        fake = cast(_Server, self.server).fake
        try:
            while sent < large.size:
                piece = large.head[sent : sent + chunk] if sent < len(large.head) else b""
                piece = (piece + zeros)[: min(chunk, large.size - sent)]
                self.wfile.write(piece)
                sent += len(piece)
                with fake._lock:
                    large.served += len(piece)
        except OSError:  # the downloader hung up
            self.close_connection = True


def serve_main(argv: list[str] | None = None) -> int:
    """``smsbridge fake-slack``: run the stand-in until Ctrl-C, then print the transcript."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="smsbridge fake-slack",
        description="A local stand-in for the Slack Web API (for trying smsbridge by hand).",
    )
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--token", default="xoxb-test", help="the bot token it accepts")
    args = parser.parse_args(argv)
    fake = FakeSlack(bot_token=args.token).start(args.port)
    print(f"fake Slack Web API on {fake.api_url} (SLACK_API_URL), token {args.token}")
    print("Ctrl-C prints what was posted (and what Slack would have refused).")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(fake.transcript())
        for refusal in fake.refusals:
            print(f"REFUSED {refusal}")
    finally:
        fake.stop()
    return 0
