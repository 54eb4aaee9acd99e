"""A CRM Text simulator: the ``/smapi/rest`` API, handset automation and callbacks.

Behaves like ``restapi.crmtext.com/smapi/rest`` as described in
``shared/reference/crmtext-api.md`` (section 5 lists the assumptions made where the
real service is undocumented). :class:`Simulator` holds the state and can be driven
directly from tests; :meth:`Simulator.app` is its HTTP face. Simulator choices:

* HTTP 200 for every API outcome; HTTP 401 only for a missing/unparseable auth header.
* Auth string split on the first and last colon (passwords may contain ``:``).
* Duplicate rule compares text *and* mms URL of store-initiated sends (sms, campaign).
* Automated templates are delivered at once; API sends are paced per store
  (``sendsmsmsg`` 1/s, campaigns 30/s, times ``speed``) via ``Delivery.deliver_at``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import io
import json
import logging
import mimetypes
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import flask
import httpx
from werkzeug.wrappers import Response as WerkzeugResponse

from bridge.phones import to_crmtext

log = logging.getLogger(__name__)

PACIFIC = ZoneInfo("America/Los_Angeles")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_LENGTH = 1600
DUPLICATE_WINDOW = timedelta(hours=12)
CAMPAIGN_RATE = 30.0
NEW, OPTED_IN, PENDING, OPTED_OUT = 1, 3, 4, 5
STATUSES = (NEW, OPTED_IN, PENDING, OPTED_OUT)
DEFAULT_STORE = "PIZZA:1001:Main St Pizza"


class ApiError(Exception):
    """An API-level failure: rendered as ``<response status=.. message=..>`` in HTTP 200."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


@dataclass
class SimStore:
    """A store (sub-account) selected by its primary keyword."""

    keyword: str
    store_id: str
    name: str
    double_optin: bool = False
    duplicate_block: bool = True


@dataclass
class SimCustomer:
    """A customer record of one store."""

    cust_id: str
    phone: str
    status: int
    name: str
    updated: datetime


@dataclass
class Delivery:
    """A message that reached a phone (API send or automated template)."""

    keyword: str
    phone: str
    text: str
    mms_url: str | None
    kind: str  # "sms" | "campaign" | "template"
    msg_id: str
    deliver_at: datetime
    sent_at: datetime


def templates(store: SimStore) -> dict[str, str]:
    """The five automatic store templates, with the store name inserted."""
    name = store.name
    return {
        "optin_request": f"{name}: Reply YES to receive text messages from us. "
        "Msg and data rates may apply. Reply HELP for help, STOP to cancel.",
        "optin_confirm": f"{name}: You are now opted in to receive text messages. "
        "Reply HELP for help, STOP to cancel.",
        "optout": f"{name}: You have been opted out and will receive no further messages.",
        "stop": f"{name}: You are now opted out and will receive no further messages.",
        "help": f"{name}: Reply to this message to reach the store. Reply STOP to opt out.",
    }


def pacific(ts: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` wall time in America/Los_Angeles."""
    return ts.astimezone(PACIFIC).strftime(TIME_FORMAT)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _digits10(phone: str) -> str:
    """10 digits from E.164 or 10 digits (test/driver side, lenient)."""
    return to_crmtext(phone)


def _api_phone(params: dict[str, str]) -> str:
    """``phone_number`` as the API demands it: exactly 10 digits."""
    phone = params.get("phone_number", "").strip()
    if not re.fullmatch(r"\d{10}", phone):
        raise ApiError(400, "Invalid phone number")
    return phone


def _check_mms_url(url: str | None) -> None:
    if url is not None and not re.match(r"https?://[^\s/]+", url, re.IGNORECASE):
        raise ApiError(400, "Invalid mmsurl")


def _check_message(message: str, mms_url: str | None) -> None:
    if not message.strip() and not mms_url:
        raise ApiError(400, "Missing message")
    # The carrier path behind CRM Text counts UTF-16 code units: an emoji is 2 (issue 9).
    if max(len(message), len(message.encode("utf-16-le")) // 2) > MAX_LENGTH:
        raise ApiError(400, f"Message exceeds {MAX_LENGTH} characters")
    _check_mms_url(mms_url)


def parse_auth(header: str | None) -> tuple[str, str, str] | None:
    """(user, password, keyword) from ``Basic base64(user:password:KEYWORD)``.

    Splits on the first and last colon, so the password may contain colons.
    """
    if not header or not header.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if raw.count(":") < 2:
        return None
    user, rest = raw.split(":", 1)
    password, keyword = rest.rsplit(":", 1)
    return user, password, keyword


def _el(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = text
    return child


def xml_response(op: str, status: int, message: str, children: list[ET.Element]) -> bytes:
    """Serialize the ``<response>`` envelope."""
    root = ET.Element("response", {"op": op, "status": str(status), "message": message})
    root.extend(children)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


class Simulator:
    """Thread-safe CRM Text state: stores, customers, outbox, callbacks and API calls."""

    def __init__(
        self,
        user: str,
        password: str,
        stores: list[SimStore],
        *,
        speed: float = 1.0,
        callback_format: str = "multipart",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if callback_format not in ("multipart", "urlencoded"):
            raise ValueError("callback_format must be 'multipart' or 'urlencoded'")
        self.user = user
        self.password = password
        self.stores = {s.keyword.upper(): s for s in stores}
        self.speed = speed
        self.callback_format = callback_format
        self.clock = clock or _utcnow
        self.outbox: list[Delivery] = []
        self.calls: list[dict[str, Any]] = []
        self.callbacks: dict[str, str] = {}
        self.callback_log: list[dict[str, Any]] = []
        self.customers: dict[tuple[str, str], SimCustomer] = {}
        self._lock = threading.RLock()
        self._next_msg = 900000000
        self._next_cust = 7000000
        self._queue_free: dict[str, datetime] = {}
        self._outage: list[int] = []
        self._outage_method: str | None = None
        self._late: dict[str, dict[int, float]] = {}  # method -> {nth call: seconds late}
        self._counted: dict[str, int] = {}

    # ----- state helpers (call with the lock held) -----

    def _store(self, keyword: str) -> SimStore:
        store = self.stores.get(keyword.upper())
        if store is None:
            raise KeyError(f"unknown store keyword {keyword!r}")
        return store

    def _msg_id(self) -> str:
        self._next_msg += 1
        return str(self._next_msg)

    def _customer(self, store: SimStore, phone: str) -> SimCustomer | None:
        return self.customers.get((store.keyword.upper(), phone))

    def _get_or_create(self, store: SimStore, phone: str) -> SimCustomer:
        cust = self._customer(store, phone)
        if cust is None:
            self._next_cust += 1
            cust = SimCustomer(str(self._next_cust), phone, NEW, "", self.clock())
            self.customers[(store.keyword.upper(), phone)] = cust
        return cust

    def _set_status(self, cust: SimCustomer, status: int) -> None:
        cust.status = status
        cust.updated = self.clock()

    def _deliver(
        self, store: SimStore, phone: str, text: str, mms_url: str | None, kind: str
    ) -> Delivery:
        now = self.clock()
        deliver_at = now
        if kind != "template":
            rate = self.speed * (CAMPAIGN_RATE if kind == "campaign" else 1.0)
            key = store.keyword.upper()
            deliver_at = max(now, self._queue_free.get(key, now))
            self._queue_free[key] = deliver_at + timedelta(seconds=1.0 / rate)
        delivery = Delivery(
            store.keyword.upper(), phone, text, mms_url, kind, self._msg_id(), deliver_at, now
        )
        self.outbox.append(delivery)
        return delivery

    def _template(self, store: SimStore, phone: str, name: str) -> None:
        self._deliver(store, phone, templates(store)[name], None, "template")

    def _is_duplicate(self, store: SimStore, phone: str, text: str, mms: str | None) -> bool:
        if not store.duplicate_block:
            return False
        since = self.clock() - DUPLICATE_WINDOW
        return any(
            d.keyword == store.keyword.upper()
            and d.phone == phone
            and d.text == text
            and d.mms_url == mms
            and d.kind in ("sms", "campaign")
            and d.sent_at > since
            for d in self.outbox
        )

    # ----- public driver API (tests, /_sim endpoints) -----

    def add_customer(
        self, keyword: str, phone: str, status: int = OPTED_IN, name: str = ""
    ) -> None:
        """Create or overwrite a customer record (no templates sent)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self._lock:
            cust = self._get_or_create(self._store(keyword), _digits10(phone))
            self._set_status(cust, status)
            cust.name = name

    def customer_status(self, keyword: str, phone: str) -> int | None:
        """The customer's status, or ``None`` if the store does not know the number."""
        with self._lock:
            cust = self._customer(self._store(keyword), _digits10(phone))
            return cust.status if cust else None

    def customer_texts(
        self,
        keyword: str,
        phone: str,
        message: str,
        media: list[tuple[str, str]] | None = None,
        *,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """A customer texts the store: run automation, then POST the store's callback (or
        ``callback_url``: CRM Text behind a load balancer reaching one of several processes)."""
        with self._lock:
            store = self._store(keyword)
            cust = self._get_or_create(store, _digits10(phone))
            self._automate(store, cust, message)
            fields = self._callback_fields(store, cust, message, media)
            url = callback_url or self.callbacks.get(store.keyword.upper())
        status = self._post_callback(url, fields) if url else None
        return {"msg_id": fields["msgID"], "callback_status": status}

    def _automate(self, store: SimStore, cust: SimCustomer, message: str) -> None:
        word = message.strip().upper()
        if word in ("STOP", "QUIT"):
            self._set_status(cust, OPTED_OUT)
            self._template(store, cust.phone, "stop")
        elif word == "HELP":
            self._template(store, cust.phone, "help")
        elif word in ("YES", "Y") and cust.status == PENDING and store.double_optin:
            self._opt_in_now(store, cust)
        elif word == store.keyword.upper() and cust.status != OPTED_IN:
            self._opt_in_now(store, cust)  # handset keyword opt-ins are single opt-in
        elif word in ("START", "UNSTOP") and cust.status == OPTED_OUT:
            self._opt_in_now(store, cust)

    def _opt_in_now(self, store: SimStore, cust: SimCustomer) -> None:
        self._set_status(cust, OPTED_IN)
        self._template(store, cust.phone, "optin_confirm")

    def _callback_fields(
        self,
        store: SimStore,
        cust: SimCustomer,
        message: str,
        media: list[tuple[str, str]] | None,
    ) -> dict[str, str]:
        fields = {
            "custID": cust.cust_id,
            "message": message,
            "keyword": store.keyword.upper(),
            "mobileNum": cust.phone,
            "optInStatus": "Opt-in" if cust.status == OPTED_IN else "Opt-out",
            "timeStamp": pacific(self.clock()),
            "subacct": store.store_id,
            "custName": cust.name,
            "msgID": self._msg_id(),
            "subacct_name": store.name,
        }
        if media:
            mms: dict[str, Any] = {
                str(i): {"ContentType": ctype, "URL": url} for i, (ctype, url) in enumerate(media)
            }
            mms["count"] = len(media)
            fields["mms"] = json.dumps(mms)
        return fields

    def _post_callback(self, url: str, fields: dict[str, str]) -> int | None:
        """One POST, no retry; returns the HTTP status or ``None`` on a transport error."""
        status: int | None
        content_type = ""
        try:
            if self.callback_format == "multipart":
                parts = [(k, (None, v)) for k, v in fields.items()]
                resp = httpx.post(url, files=parts, timeout=10.0)
            else:
                resp = httpx.post(url, data=fields, timeout=10.0)
            status = resp.status_code
            content_type = resp.request.headers.get("content-type", "")
            if not resp.is_success:
                log.warning("callback %s answered HTTP %s", url, status)
        except httpx.HTTPError as exc:
            log.warning("callback %s failed: %s", url, exc)
            status = None
        with self._lock:
            self.callback_log.append(
                {"url": url, "fields": fields, "status": status, "content_type": content_type}
            )
        return status

    # ----- API methods: (store, params) -> (message, children) -----

    def handle(self, params: dict[str, str], auth: tuple[str, str, str]) -> bytes:
        """Answer one authenticated API call (params already merged) as XML."""
        op = params.get("method", "").strip().lower()
        user, password, keyword = auth
        with self._lock:
            self.calls.append(
                {
                    "method": op,
                    "keyword": keyword,
                    "user": user,
                    "params": params,
                    "at": time.time(),
                }
            )
            try:
                store = self._authenticate(user, password, keyword)
                handler = self._handlers().get(op)
                if handler is None:
                    raise ApiError(400, "Unknown method")
                message, children = handler(store, params)
            except ApiError as err:
                return xml_response(op, err.status, err.message, [])
        return xml_response(op, 200, message, children)

    def _authenticate(self, user: str, password: str, keyword: str) -> SimStore:
        good = hmac.compare_digest(user.encode(), self.user.encode()) and hmac.compare_digest(
            password.encode(), self.password.encode()
        )
        store = self.stores.get(keyword.upper())
        if not good or store is None:
            raise ApiError(401, "Invalid auth string")
        return store

    def _handlers(
        self,
    ) -> dict[str, Callable[[SimStore, dict[str, str]], tuple[str, list[ET.Element]]]]:
        return {
            "sendsmsmsg": self._api_sendsmsmsg,
            "sendcampaign": self._api_sendcampaign,
            "optincustomer": self._api_optincustomer,
            "optoutcustomer": self._api_optoutcustomer,
            "getcustomerinfo": self._api_getcustomerinfo,
            "getcustbystatus": self._api_getcustbystatus,
            "setcallback": self._api_setcallback,
            "getcallback": self._api_getcallback,
        }

    def _customer_el(self, store: SimStore, cust: SimCustomer) -> ET.Element:
        el = ET.Element("customer")
        _el(el, "custId", cust.cust_id)
        _el(el, "subacct", store.store_id)
        _el(el, "timestamp", pacific(cust.updated))
        _el(el, "optinStatus", str(cust.status))
        _el(el, "custName", cust.name)
        _el(el, "custMobile", cust.phone)
        return el

    def _api_sendsmsmsg(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        phone = _api_phone(params)
        text = params.get("message", "")
        mms_url = params.get("mmsurl") or None
        _check_message(text, mms_url)
        cust = self._customer(store, phone)
        if cust is None or cust.status == NEW:
            raise ApiError(400, "Customer is not Opted-In")
        if cust.status == PENDING:
            raise ApiError(400, "Customer is Pending")
        if cust.status == OPTED_OUT:
            raise ApiError(400, "Customer is Opted-Out")
        if self._is_duplicate(store, phone, text, mms_url):
            raise ApiError(400, "Duplicate message")
        delivery = self._deliver(store, phone, text, mms_url, "sms")
        wrapper = ET.Element("message")
        _el(wrapper, "msgID", delivery.msg_id)
        _el(wrapper, "message", text)
        _el(wrapper, "timestamp", pacific(delivery.sent_at))
        _el(wrapper, "txnid", "T" + delivery.msg_id)
        _el(wrapper, "msg_direction", "MT")
        _el(wrapper, "user_id", store.store_id)
        wrapper.append(self._customer_el(store, cust))
        return "ok", [wrapper]

    def _api_sendcampaign(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        if not params.get("name", "").strip():
            raise ApiError(400, "Missing campaign name")
        text = params.get("message", "")
        mms_url = params.get("mmsurl") or None
        _check_message(text, mms_url)
        key = store.keyword.upper()
        targets = sorted(
            (c for (k, _), c in self.customers.items() if k == key and c.status == OPTED_IN),
            key=lambda c: int(c.cust_id),
        )
        for cust in targets:
            if not self._is_duplicate(store, cust.phone, text, mms_url):
                self._deliver(store, cust.phone, text, mms_url, "campaign")
        return "Messages is getting dispatched", []

    def _api_optincustomer(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        cust = self._get_or_create(store, _api_phone(params))
        name = f"{params.get('firstname', '').strip()} {params.get('lastname', '').strip()}"
        if name.strip():
            cust.name = name.strip()
        if cust.status != OPTED_IN:
            if store.double_optin:
                if cust.status != PENDING:
                    self._set_status(cust, PENDING)
                    self._template(store, cust.phone, "optin_request")
            else:
                self._opt_in_now(store, cust)
        return "ok", [self._customer_el(store, cust)]

    def _api_optoutcustomer(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        phone = _api_phone(params)
        known = self._customer(store, phone) is not None
        cust = self._get_or_create(store, phone)
        if cust.status != OPTED_OUT:
            self._set_status(cust, OPTED_OUT)
            if known:
                self._template(store, phone, "optout")
        return "ok", [self._customer_el(store, cust)]

    def _api_getcustomerinfo(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        cust = self._customer(store, _api_phone(params))
        if cust is None:
            raise ApiError(404, "Customer not found")
        return "ok", [self._customer_el(store, cust)]

    def _api_getcustbystatus(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        try:
            status = int(params.get("status", ""))
            offset = int(params.get("offset") or 0)
            count = int(params.get("count") or 1000)
        except ValueError as exc:
            raise ApiError(400, "Invalid status, offset or count") from exc
        if status not in STATUSES or offset < 0 or count < 0:
            raise ApiError(400, "Invalid status, offset or count")
        key = store.keyword.upper()
        matches = sorted(
            (c for (k, _), c in self.customers.items() if k == key and c.status == status),
            key=lambda c: int(c.cust_id),
        )
        return "ok", [self._customer_el(store, c) for c in matches[offset : offset + count]]

    def _api_setcallback(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        url = params.get("callback", "").strip()
        if not re.match(r"https?://[^\s/]+", url, re.IGNORECASE):
            raise ApiError(400, "Invalid callback URL")
        self.callbacks[store.keyword.upper()] = url
        return "ok", []

    def _api_getcallback(
        self, store: SimStore, params: dict[str, str]
    ) -> tuple[str, list[ET.Element]]:
        callback = ET.Element("callback")
        callback.text = self.callbacks.get(store.keyword.upper(), "")
        return "ok", [callback]

    # ----- HTTP face -----

    def app(self) -> flask.Flask:
        """The Flask app: ``/smapi/rest`` plus JSON ``/_sim/...`` control endpoints."""
        app = flask.Flask("smsbridge-simulator")
        app.add_url_rule("/smapi/rest", "api", self._view_api, methods=["POST"])
        app.add_url_rule("/_sim/text", "text", self._view_text, methods=["POST"])
        app.add_url_rule("/_sim/outbox", "outbox", self._view_outbox, methods=["GET"])
        app.add_url_rule("/_sim/calls", "calls", self._view_calls, methods=["GET"])
        app.add_url_rule("/_sim/customers", "customers", self._view_customers, methods=["POST"])
        app.add_url_rule("/_sim/image/<name>.png", "image", _view_image, methods=["GET"])
        app.add_url_rule("/_sim/media/<name>", "media", _view_media, methods=["GET"])
        return app

    def fail_next(self, count: int = 1, status: int = 503, method: str | None = None) -> None:
        """Failure injection: the next ``count`` API requests (of ``method``, if given) answer
        HTTP ``status``. A 500/502/504 is answered after the call was carried out, as a
        gateway timing out would; other statuses before."""
        with self._lock:
            self._outage = [status] * count
            self._outage_method = method

    def answer_late(self, method: str, nth: int, seconds: float) -> None:
        """A slow CRM Text: the ``nth`` call to ``method`` from now (1 = the next one) is
        carried out at once, but its answer comes ``seconds`` later (a worker killed meanwhile
        never learns that the text went out)."""
        with self._lock:
            start = self._counted.get(method, 0)
            self._late.setdefault(method, {})[start + nth] = seconds

    def _view_api(self) -> flask.Response:
        params = {**flask.request.args.to_dict(), **flask.request.form.to_dict()}
        op = params.get("method", "").strip().lower()
        with self._lock:
            hit = self._outage and self._outage_method in (None, op)
            outage = self._outage.pop(0) if hit else None
        if outage is not None and outage not in (500, 502, 504):
            return flask.Response("Service Unavailable", status=outage, content_type="text/plain")
        auth = parse_auth(flask.request.headers.get("Authorization"))
        if auth is None:
            with self._lock:
                self.calls.append(
                    {
                        "method": op,
                        "keyword": None,
                        "user": None,
                        "params": params,
                        "at": time.time(),
                    }
                )
            body = xml_response(op, 401, "Missing auth string", [])
            resp = flask.Response(body, status=401, content_type="text/xml; charset=UTF-8")
            resp.headers["WWW-Authenticate"] = 'Basic realm="CRM Text"'
            return resp
        body = self.handle(params, auth)
        with self._lock:
            self._counted[op] = self._counted.get(op, 0) + 1
            late = self._late.get(op, {}).pop(self._counted[op], 0.0)
        if late:
            time.sleep(late)
        if outage is not None:  # carried out, but the answer is lost in a gateway
            return flask.Response("Gateway Timeout", status=outage, content_type="text/plain")
        return flask.Response(body, status=200, content_type="text/xml; charset=UTF-8")

    def _view_text(self) -> tuple[flask.Response, int]:
        data = flask.request.get_json(silent=True) or {}
        try:
            media = [(str(t), str(u)) for t, u in data.get("media") or []]
            result = self.customer_texts(
                str(data["keyword"]), str(data["phone"]), str(data.get("message", "")), media
            )
        except (KeyError, ValueError, TypeError) as exc:
            return flask.jsonify({"error": str(exc)}), 400
        return flask.jsonify(result), 200

    def _view_outbox(self) -> flask.Response:
        with self._lock:
            items = [asdict(d) for d in self.outbox]
        for item in items:
            item["deliver_at"] = item["deliver_at"].isoformat()
            item["sent_at"] = item["sent_at"].isoformat()
        return flask.jsonify(items)

    def _view_calls(self) -> flask.Response:
        with self._lock:
            return flask.jsonify(list(self.calls))

    def _view_customers(self) -> tuple[flask.Response, int]:
        data = flask.request.get_json(silent=True) or {}
        try:
            self.add_customer(
                str(data["keyword"]),
                str(data["phone"]),
                int(data.get("status", OPTED_IN)),
                str(data.get("name", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return flask.jsonify({"error": str(exc)}), 400
        return flask.jsonify({"ok": True}), 200


def make_png(name: str, size: tuple[int, int] = (320, 240)) -> bytes:
    """A small solid-colour PNG whose colour is derived from ``name``."""
    from PIL import Image, ImageDraw

    r, g, b = hashlib.sha256(name.encode()).digest()[:3]
    image = Image.new("RGB", size, (r, g, b))
    ImageDraw.Draw(image).text((10, 10), name[:40], fill=(255 - r, 255 - g, 255 - b))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _view_image(name: str) -> flask.Response:
    return flask.Response(make_png(name), content_type="image/png")


def _view_media(name: str) -> WerkzeugResponse:
    return flask.redirect(flask.url_for("image", name=name), code=302)


def parse_store(spec: str, index: int) -> SimStore:
    """``KEYWORD[:store_id[:Name]]`` -> :class:`SimStore`."""
    parts = spec.split(":", 2)
    keyword = parts[0].strip().upper()
    if not keyword:
        raise ValueError(f"bad --store {spec!r}")
    store_id = parts[1].strip() if len(parts) > 1 and parts[1].strip() else str(1001 + index)
    name = parts[2].strip() if len(parts) > 2 and parts[2].strip() else keyword.title()
    return SimStore(keyword, store_id, name)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smsbridge simulator", description="Run a CRM Text simulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--user", default="demo")
    p.add_argument("--password", default="demo")
    p.add_argument("--store", action="append", default=[], help="KEYWORD[:store_id[:Name]]")
    p.add_argument("--double-optin", action="append", default=[], metavar="KEYWORD")
    p.add_argument("--customer", action="append", default=[], help="KEYWORD:PHONE[:STATUS[:NAME]]")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--callback-format", choices=["multipart", "urlencoded"], default="multipart")
    return p


def main(argv: list[str] | None = None) -> int:
    """``smsbridge simulator``: serve the simulator until interrupted."""
    from werkzeug.serving import run_simple

    args = _build_parser().parse_args(argv)
    stores = [parse_store(s, i) for i, s in enumerate(args.store or [DEFAULT_STORE])]
    double = {k.upper() for k in args.double_optin}
    for store in stores:
        store.double_optin = store.keyword in double
    sim = Simulator(
        args.user, args.password, stores, speed=args.speed, callback_format=args.callback_format
    )
    for spec in args.customer:
        kw, phone, *rest = spec.split(":", 3)
        status = int(rest[0]) if rest else OPTED_IN
        sim.add_customer(kw, phone, status, rest[1] if len(rest) > 1 else "")
    base = f"http://{args.host}:{args.port}"
    print(f"CRM Text simulator on {base}/smapi/rest (user {args.user!r})", file=sys.stderr)
    for s in stores:
        mode = "double" if s.double_optin else "single"
        print(f"  store {s.keyword} id={s.store_id} {s.name!r} {mode} opt-in", file=sys.stderr)
    run_simple(args.host, args.port, sim.app(), threaded=True)
    return 0


def text_main(argv: list[str] | None = None) -> int:
    """``smsbridge text``: pretend a customer texted the store (POST /_sim/text)."""
    p = argparse.ArgumentParser(prog="smsbridge text", description="Text a simulated store.")
    p.add_argument("--sim", default="http://127.0.0.1:8090", help="simulator base URL")
    p.add_argument("--store", required=True, help="store keyword")
    p.add_argument("--from", dest="phone", required=True, help="customer phone")
    p.add_argument("--media", action="append", default=[], help="media URL (MMS)")
    p.add_argument("message", nargs="?", default="")
    args = p.parse_args(argv)
    media = [[mimetypes.guess_type(u)[0] or "image/jpeg", u] for u in args.media]
    payload: dict[str, Any] = {"keyword": args.store, "phone": args.phone, "message": args.message}
    if media:
        payload["media"] = media
    try:
        resp = httpx.post(args.sim.rstrip("/") + "/_sim/text", json=payload, timeout=30.0)
    except httpx.HTTPError as exc:
        print(f"simulator not reachable at {args.sim}: {exc}", file=sys.stderr)
        return 1
    print(resp.text.strip())
    return 0 if resp.is_success else 1
