"""Client for the CRM Text SMS API (``restapi.crmtext.com/smapi/rest``).

One endpoint, one form POST per call, ``method=<name>`` selects the operation and the
keyword in the Basic auth string (``user:password:KEYWORD``) selects the store. Every
response is an XML ``<response op=.. status=.. message=..>`` envelope, normally inside
HTTP 200; an XML status other than ``200`` is an API error (:class:`CrmTextError`).
Transport trouble (network, timeout, non-2xx HTTP other than 401, unparseable body)
is :class:`CrmTextUnavailable`. See ``shared/reference/crmtext-api.md``.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import httpx

from bridge.phones import to_crmtext

DEFAULT_TIMEOUT = 6.0


class CrmTextError(Exception):
    """The API answered with an error status (XML status != 200, or HTTP 401)."""

    def __init__(self, op: str, status: int, message: str) -> None:
        self.op = op
        self.status = status
        self.message = message
        super().__init__(f"CRM Text {op}: {status} {message}")

    def __str__(self) -> str:
        return f"CRM Text {self.op}: {self.status} {self.message}"


class CrmTextUnavailable(Exception):
    """CRM Text could not be reached or answered with something unusable.

    ``maybe_sent`` is False when the request certainly had no effect (the connection was never
    made, or CRM Text answered with an HTTP error) and True when it may have been carried out
    (a timeout or dropped connection after the request went out, an unreadable answer).
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class Customer:
    """A store's customer record; ``mobile`` is 10 digits, ``status`` 1/3/4/5."""

    cust_id: str
    store_id: str
    status: int
    name: str
    mobile: str


@dataclass(frozen=True)
class SentMessage:
    """Result of ``sendsmsmsg``."""

    msg_id: str
    text: str
    customer: Customer | None


def auth_header(user: str, password: str, keyword: str) -> str:
    """``Basic base64(user:password:KEYWORD)`` with the keyword upper-cased."""
    raw = f"{user}:{password}:{keyword.upper()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _local(tag: str) -> str:
    """Element tag without any ``{namespace}`` prefix, lower-cased."""
    return tag.rsplit("}", 1)[-1].lower()


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _find(root: ET.Element, name: str) -> ET.Element | None:
    """First descendant (or root itself) named ``name``, case-insensitively."""
    wanted = name.lower()
    return next((el for el in root.iter() if _local(el.tag) == wanted), None)


def _find_all(root: ET.Element, name: str) -> list[ET.Element]:
    wanted = name.lower()
    return [el for el in root.iter() if _local(el.tag) == wanted]


def _leaf_text(root: ET.Element, name: str) -> str | None:
    """Text of the first childless element named ``name`` (``None`` if there is none)."""
    for el in _find_all(root, name):
        if len(el) == 0:
            return _text(el)
    return None


def parse_envelope(op: str, body: bytes) -> ET.Element:
    """Parse a response body leniently and return its ``<response>`` element.

    Tolerates surrounding whitespace, a BOM, a missing XML declaration and a missing
    ``</response>`` (as in the doc samples).
    """
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        try:
            root = ET.fromstring(text + "</response>")
        except ET.ParseError as exc:
            raise CrmTextUnavailable(f"CRM Text {op}: unparseable response: {exc}") from exc
    response = root if _local(root.tag) == "response" else _find(root, "response")
    if response is None:
        raise CrmTextUnavailable(f"CRM Text {op}: no <response> element in body")
    return response


def check_envelope(op: str, response: ET.Element) -> None:
    """Raise :class:`CrmTextError` on an error status, :class:`CrmTextUnavailable` on junk."""
    raw_status = (response.get("status") or "").strip()
    message = (response.get("message") or "").strip()
    try:
        status = int(raw_status)
    except ValueError as exc:
        raise CrmTextUnavailable(f"CRM Text {op}: bad status {raw_status!r}") from exc
    if status != 200:
        raise CrmTextError(op, status, message)
    got_op = (response.get("op") or "").strip()
    if got_op.lower() != op:
        raise CrmTextUnavailable(f"CRM Text {op}: response is for op {got_op!r}")


def parse_customer(el: ET.Element) -> Customer:
    """Build a :class:`Customer` from a ``<customer>`` element."""
    raw_status = _leaf_text(el, "optinStatus") or ""
    try:
        status = int(raw_status)
    except ValueError as exc:
        raise CrmTextUnavailable(f"CRM Text: bad optinStatus {raw_status!r}") from exc
    mobile = re.sub(r"\D", "", _leaf_text(el, "custMobile") or "")
    if len(mobile) == 11 and mobile.startswith("1"):
        mobile = mobile[1:]
    return Customer(
        cust_id=_leaf_text(el, "custId") or "",
        store_id=_leaf_text(el, "subacct") or "",
        status=status,
        name=_leaf_text(el, "custName") or "",
        mobile=mobile[:10],
    )


def _required_customer(op: str, response: ET.Element) -> Customer:
    el = _find(response, "customer")
    if el is None:
        raise CrmTextUnavailable(f"CRM Text {op}: response has no <customer>")
    return parse_customer(el)


class CrmTextClient:
    """Synchronous CRM Text API client; one instance serves every store of the account."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._base_url = base_url
        self._user = user
        self._password = password
        self._timeout = timeout
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client()

    def close(self) -> None:
        """Close the HTTP client if this instance created it."""
        if self._owns_http:
            self._http.close()

    def _post(self, op: str, keyword: str, params: dict[str, str]) -> httpx.Response:
        headers = {
            "Authorization": auth_header(self._user, self._password, keyword),
            "Accept": "application/xml",
        }
        try:
            return self._http.post(
                self._base_url,
                data={"method": op, **params},
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise CrmTextUnavailable(
                f"CRM Text {op}: {type(exc).__name__}: {exc}", maybe_sent=not never_sent
            ) from exc

    def _call(self, op: str, keyword: str, params: dict[str, str]) -> ET.Element:
        """POST one API call and return the checked ``<response>`` element."""
        resp = self._post(op, keyword, params)
        if resp.status_code == 401:
            raise CrmTextError(op, 401, f"HTTP 401 {resp.reason_phrase}".strip())
        if not resp.is_success:
            # 503 (and 4xx) come from a front that did not pass the request on; 500, 502 and 504
            # can arrive after CRM Text already acted on it.
            maybe = resp.status_code in (500, 502, 504)
            raise CrmTextUnavailable(f"CRM Text {op}: HTTP {resp.status_code}", maybe_sent=maybe)
        response = parse_envelope(op, resp.content)
        check_envelope(op, response)
        return response

    def send_sms(
        self, keyword: str, phone: str, message: str, mms_url: str | None = None
    ) -> SentMessage:
        """``sendsmsmsg``: text one opted-in customer (optionally with an MMS image URL)."""
        params = {"phone_number": to_crmtext(phone), "message": message}
        if mms_url:
            params["mmsurl"] = mms_url
        response = self._call("sendsmsmsg", keyword, params)
        customer_el = _find(response, "customer")
        text = _leaf_text(response, "message")
        return SentMessage(
            msg_id=_leaf_text(response, "msgID") or "",
            text=message if text is None else text,
            customer=parse_customer(customer_el) if customer_el is not None else None,
        )

    def send_campaign(
        self, keyword: str, name: str, message: str, mms_url: str | None = None
    ) -> str:
        """``sendcampaign``: broadcast to every opted-in customer; returns the status text."""
        params = {"name": name, "message": message}
        if mms_url:
            params["mmsurl"] = mms_url
        response = self._call("sendcampaign", keyword, params)
        return (response.get("message") or "").strip()

    def opt_in(
        self, keyword: str, phone: str, first_name: str = "", last_name: str = ""
    ) -> Customer:
        """``optincustomer`` (only after the customer consented)."""
        params = {
            "phone_number": to_crmtext(phone),
            "firstname": first_name,
            "lastname": last_name,
        }
        return _required_customer("optincustomer", self._call("optincustomer", keyword, params))

    def opt_out(self, keyword: str, phone: str) -> Customer:
        """``optoutcustomer``: status becomes 5 and the opt-out template is sent."""
        params = {"phone_number": to_crmtext(phone)}
        return _required_customer("optoutcustomer", self._call("optoutcustomer", keyword, params))

    def customer_info(self, keyword: str, phone: str) -> Customer:
        """``getcustomerinfo``: the customer's record and opt-in status."""
        params = {"phone_number": to_crmtext(phone)}
        response = self._call("getcustomerinfo", keyword, params)
        return _required_customer("getcustomerinfo", response)

    def customers_by_status(
        self, keyword: str, status: int, offset: int = 0, count: int = 1000
    ) -> list[Customer]:
        """``getcustbystatus``: one page of the store's customers with ``status``."""
        params = {"status": str(status), "offset": str(offset), "count": str(count)}
        response = self._call("getcustbystatus", keyword, params)
        return [parse_customer(el) for el in _find_all(response, "customer")]

    def set_callback(self, keyword: str, url: str) -> None:
        """``setcallback``: where CRM Text posts the store's inbound messages."""
        self._call("setcallback", keyword, {"callback": url})

    def get_callback(self, keyword: str) -> str | None:
        """``getcallback``: the store's callback URL, ``""`` when none is set, ``None`` when the
        answer has no ``<callback>`` (its shape is undocumented: the live API may not say)."""
        response = self._call("getcallback", keyword, {})
        return _leaf_text(response, "callback")
