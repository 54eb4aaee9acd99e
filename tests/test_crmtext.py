"""CrmTextClient against the CRM Text simulator over real HTTP, plus parsing unit tests."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import flask
import httpx
import pytest
from PIL import Image
from werkzeug.serving import make_server

from bot.dev.fake_crmtext import Delivery, SimStore, Simulator, parse_auth, text_main
from bridge.crmtext import (
    CrmTextClient,
    CrmTextError,
    CrmTextUnavailable,
    Customer,
    SentMessage,
)
from bridge.phones import InvalidPhone

USER = "acct"
PASSWORD = "s3cr:et"  # contains a colon on purpose (split rule U17)
PHONE = "4155550100"
E164 = "+14155550100"
T0 = datetime(2024, 7, 4, 19, 30, 5, tzinfo=UTC)  # 12:30:05 PDT

STOP_TEXT = "Main St Pizza: You are now opted out and will receive no further messages."
PIZZA_CONFIRM = (
    "Main St Pizza: You are now opted in to receive text messages. "
    "Reply HELP for help, STOP to cancel."
)
TACOS_REQUEST = (
    "Taco Town: Reply YES to receive text messages from us. "
    "Msg and data rates may apply. Reply HELP for help, STOP to cancel."
)
TACOS_CONFIRM = (
    "Taco Town: You are now opted in to receive text messages. Reply HELP for help, STOP to cancel."
)


class Clock:
    """A controllable UTC clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@contextmanager
def serve(app: flask.Flask) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1:<free port> in a daemon thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Receiver:
    """A tiny callback endpoint recording what the simulator posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.reply_status = 200
        self.app = flask.Flask("receiver")
        self.app.add_url_rule("/cb", "cb", self._cb, methods=["POST"])

    def _cb(self) -> tuple[str, int]:
        self.posts.append(
            {
                "content_type": flask.request.content_type,
                "form": flask.request.form.to_dict(),
                "files": list(flask.request.files),
            }
        )
        return "ok", self.reply_status


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    stores = [
        SimStore("PIZZA", "1001", "Main St Pizza"),
        SimStore("TACOS", "2002", "Taco Town", double_optin=True),
    ]
    return Simulator(USER, PASSWORD, stores, clock=clock)


@pytest.fixture
def base_url(sim: Simulator) -> Iterator[str]:
    with serve(sim.app()) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[CrmTextClient]:
    c = CrmTextClient(base_url + "/smapi/rest", USER, PASSWORD)
    yield c
    c.close()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with serve(rec.app) as url:
        yield rec, url + "/cb"


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def api_call(base_url: str, auth: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": auth} if auth else {}
    return httpx.post(base_url + "/smapi/rest", headers=headers, timeout=5, **kwargs)


# ---------- sendsmsmsg ----------


def test_send_sms_to_opted_in_customer(sim: Simulator, client: CrmTextClient) -> None:
    sim.add_customer("PIZZA", PHONE, 3, "Ann Lee")
    sent = client.send_sms("pizza", E164, "Your order is ready")

    delivery = sim.outbox[0]
    cust_id = sim.customers[("PIZZA", PHONE)].cust_id
    assert sent == SentMessage(
        msg_id=delivery.msg_id,
        text="Your order is ready",
        customer=Customer(cust_id, "1001", 3, "Ann Lee", PHONE),
    )
    assert sim.outbox == [
        Delivery("PIZZA", PHONE, "Your order is ready", None, "sms", delivery.msg_id, T0, T0)
    ]
    assert [{k: v for k, v in c.items() if k != "at"} for c in sim.calls] == [
        {
            "method": "sendsmsmsg",
            "keyword": "PIZZA",  # upper-cased by the client
            "user": USER,
            "params": {
                "method": "sendsmsmsg",
                "phone_number": PHONE,
                "message": "Your order is ready",
            },
        }
    ]


def test_send_sms_with_mms_and_empty_text(sim: Simulator, client: CrmTextClient) -> None:
    sim.add_customer("PIZZA", PHONE)
    sent = client.send_sms("PIZZA", PHONE, "", mms_url="https://example.com/menu.png")
    assert sent.text == ""
    assert sim.outbox[0].mms_url == "https://example.com/menu.png"
    assert sim.calls[0]["params"]["mmsurl"] == "https://example.com/menu.png"

    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "menu", mms_url="ftp://example.com/menu.png")
    assert (exc.value.status, exc.value.message) == (400, "Invalid mmsurl")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (None, "Customer is not Opted-In"),
        (1, "Customer is not Opted-In"),
        (4, "Customer is Pending"),
        (5, "Customer is Opted-Out"),
    ],
)
def test_send_sms_refused_unless_opted_in(
    sim: Simulator, client: CrmTextClient, status: int | None, message: str
) -> None:
    if status is not None:
        sim.add_customer("PIZZA", PHONE, status)
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "Hello")
    assert (exc.value.op, exc.value.status, exc.value.message) == ("sendsmsmsg", 400, message)
    assert str(exc.value) == f"CRM Text sendsmsmsg: 400 {message}"
    assert sim.outbox == []


def test_duplicate_blocked_for_12_hours(
    sim: Simulator, client: CrmTextClient, clock: Clock
) -> None:
    sim.add_customer("PIZZA", PHONE)
    client.send_sms("PIZZA", PHONE, "Hi")
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "Hi")
    assert (exc.value.status, exc.value.message) == (400, "Duplicate message")
    client.send_sms("PIZZA", PHONE, "Hi again")  # different text is fine

    clock.advance(hours=11, minutes=59)
    with pytest.raises(CrmTextError):
        client.send_sms("PIZZA", PHONE, "Hi")
    clock.advance(minutes=1, seconds=1)
    client.send_sms("PIZZA", PHONE, "Hi")
    assert [d.text for d in sim.outbox] == ["Hi", "Hi again", "Hi"]


def test_duplicate_allowed_when_store_disables_block(clock: Clock) -> None:
    store = SimStore("PIZZA", "1001", "Main St Pizza", duplicate_block=False)
    sim = Simulator(USER, PASSWORD, [store], clock=clock)
    sim.add_customer("PIZZA", PHONE)
    with serve(sim.app()) as url:
        client = CrmTextClient(url + "/smapi/rest", USER, PASSWORD)
        client.send_sms("PIZZA", PHONE, "Hi")
        client.send_sms("PIZZA", PHONE, "Hi")
        client.close()
    assert [d.text for d in sim.outbox] == ["Hi", "Hi"]


def test_length_limit_and_empty_message(sim: Simulator, client: CrmTextClient) -> None:
    sim.add_customer("PIZZA", PHONE)
    client.send_sms("PIZZA", PHONE, "x" * 1600)
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "y" * 1601)
    assert (exc.value.status, exc.value.message) == (400, "Message exceeds 1600 characters")
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "  ")
    assert (exc.value.status, exc.value.message) == (400, "Missing message")
    assert len(sim.outbox) == 1


def test_bad_phone(sim: Simulator, client: CrmTextClient, base_url: str) -> None:
    with pytest.raises(InvalidPhone):
        client.send_sms("PIZZA", "555-0100", "Hi")
    assert sim.calls == []  # never sent
    resp = api_call(
        base_url,
        basic(f"{USER}:{PASSWORD}:PIZZA"),
        data={"method": "sendsmsmsg", "phone_number": "+14155550100", "message": "Hi"},
    )
    assert resp.status_code == 200
    assert 'status="400" message="Invalid phone number"' in resp.text


def test_send_pacing_one_per_second(sim: Simulator, client: CrmTextClient) -> None:
    for i in range(3):
        sim.add_customer("PIZZA", f"415555020{i}")
        client.send_sms("PIZZA", f"415555020{i}", "Sale today")
    assert [d.deliver_at for d in sim.outbox] == [T0 + timedelta(seconds=s) for s in (0, 1, 2)]
    assert all(d.sent_at == T0 for d in sim.outbox)


# ---------- sendcampaign ----------


def test_campaign_reaches_only_opted_in(sim: Simulator, client: CrmTextClient) -> None:
    statuses = {"4155550101": 3, "4155550102": 5, "4155550103": 4, "4155550104": 1}
    for phone, status in statuses.items():
        sim.add_customer("PIZZA", phone, status)
    sim.add_customer("PIZZA", "4155550105", 3)
    sim.add_customer("PIZZA", "4155550107", 3)
    sim.add_customer("TACOS", "4155550106", 3)  # other store
    client.send_sms("PIZZA", "4155550105", "2-for-1 tonight")  # blocks the campaign copy

    answer = client.send_campaign("PIZZA", "Friday deal", "2-for-1 tonight")

    assert answer == "Messages is getting dispatched"
    campaign = [d for d in sim.outbox if d.kind == "campaign"]
    assert [(d.keyword, d.phone, d.text) for d in campaign] == [
        ("PIZZA", "4155550101", "2-for-1 tonight"),
        ("PIZZA", "4155550107", "2-for-1 tonight"),
    ]
    # queue: the single send occupies 1 s, then 30 msg/s
    start = T0 + timedelta(seconds=1)
    assert [d.deliver_at for d in campaign] == [start, start + timedelta(seconds=1 / 30)]
    assert sim.calls[-1]["params"] == {
        "method": "sendcampaign",
        "name": "Friday deal",
        "message": "2-for-1 tonight",
    }


def test_campaign_needs_name(sim: Simulator, client: CrmTextClient) -> None:
    with pytest.raises(CrmTextError) as exc:
        client.send_campaign("PIZZA", "", "Hello")
    assert (exc.value.op, exc.value.status, exc.value.message) == (
        "sendcampaign",
        400,
        "Missing campaign name",
    )


# ---------- opt-in / opt-out / customer info ----------


def test_single_opt_in(sim: Simulator, client: CrmTextClient) -> None:
    cust = client.opt_in("PIZZA", E164, "Ann", "Lee")
    assert cust == Customer(sim.customers[("PIZZA", PHONE)].cust_id, "1001", 3, "Ann Lee", PHONE)
    assert [(d.phone, d.kind, d.text) for d in sim.outbox] == [(PHONE, "template", PIZZA_CONFIRM)]
    assert sim.calls[0]["params"] == {
        "method": "optincustomer",
        "phone_number": PHONE,
        "firstname": "Ann",
        "lastname": "Lee",
    }


def test_double_opt_in_flow(sim: Simulator, client: CrmTextClient) -> None:
    cust = client.opt_in("tacos", "+14155550120", "Bo", "Diaz")
    assert (cust.status, cust.name, cust.mobile, cust.store_id) == (
        4,
        "Bo Diaz",
        "4155550120",
        "2002",
    )
    assert [(d.phone, d.text) for d in sim.outbox] == [("4155550120", TACOS_REQUEST)]
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("TACOS", "4155550120", "Welcome")
    assert exc.value.message == "Customer is Pending"

    result = sim.customer_texts("TACOS", "4155550120", " yes ")

    assert result["callback_status"] is None  # no callback set
    assert sim.customer_status("TACOS", "4155550120") == 3
    assert sim.outbox[-1].text == TACOS_CONFIRM
    assert client.customer_info("TACOS", "4155550120").status == 3
    client.send_sms("TACOS", "4155550120", "Welcome")
    assert sim.outbox[-1].text == "Welcome"


def test_opt_out_via_api(sim: Simulator, client: CrmTextClient) -> None:
    sim.add_customer("PIZZA", PHONE, 3, "Ann Lee")
    cust = client.opt_out("PIZZA", PHONE)
    assert cust.status == 5
    assert sim.customer_status("PIZZA", PHONE) == 5
    assert [d.text for d in sim.outbox] == [
        "Main St Pizza: You have been opted out and will receive no further messages."
    ]


def test_customer_info_and_unknown(sim: Simulator, client: CrmTextClient) -> None:
    sim.add_customer("PIZZA", PHONE, 4, "Cy")
    info = client.customer_info("PIZZA", PHONE)
    assert info == Customer(sim.customers[("PIZZA", PHONE)].cust_id, "1001", 4, "Cy", PHONE)
    with pytest.raises(CrmTextError) as exc:
        client.customer_info("PIZZA", "4155550999")
    assert (exc.value.op, exc.value.status, exc.value.message) == (
        "getcustomerinfo",
        404,
        "Customer not found",
    )


def test_customers_by_status_paging(sim: Simulator, client: CrmTextClient) -> None:
    for i, status in enumerate([3, 5, 3, 3]):
        sim.add_customer("PIZZA", f"415555030{i}", status, f"C{i}")
    opted_in = client.customers_by_status("PIZZA", 3)
    assert [(c.mobile, c.name, c.status) for c in opted_in] == [
        ("4155550300", "C0", 3),
        ("4155550302", "C2", 3),
        ("4155550303", "C3", 3),
    ]
    page = client.customers_by_status("PIZZA", 3, offset=1, count=1)
    assert [c.mobile for c in page] == ["4155550302"]
    assert client.customers_by_status("TACOS", 3) == []


def test_set_and_get_callback(sim: Simulator, client: CrmTextClient) -> None:
    assert client.get_callback("PIZZA") == ""
    client.set_callback("PIZZA", "https://bot.example.com/crmtext/abc123")
    assert client.get_callback("pizza") == "https://bot.example.com/crmtext/abc123"
    assert client.get_callback("TACOS") == ""
    with pytest.raises(CrmTextError) as exc:
        client.set_callback("PIZZA", "not a url")
    assert exc.value.status == 400


# ---------- inbound automation + callbacks ----------


def test_stop_opts_out_sends_template_and_posts_multipart_callback(
    sim: Simulator, client: CrmTextClient, receiver: tuple[Receiver, str]
) -> None:
    rec, cb_url = receiver
    sim.add_customer("PIZZA", PHONE, 3, "Ann Lee")
    client.set_callback("PIZZA", cb_url)

    result = sim.customer_texts("PIZZA", E164, " Stop ")

    assert result["callback_status"] == 200
    assert sim.customer_status("PIZZA", PHONE) == 5
    assert [(d.phone, d.kind, d.text) for d in sim.outbox] == [(PHONE, "template", STOP_TEXT)]
    assert len(rec.posts) == 1
    post = rec.posts[0]
    assert post["content_type"].startswith("multipart/form-data; boundary=")
    assert post["files"] == []
    assert post["form"] == {
        "custID": sim.customers[("PIZZA", PHONE)].cust_id,
        "message": " Stop ",
        "keyword": "PIZZA",
        "mobileNum": PHONE,
        "optInStatus": "Opt-out",
        "timeStamp": "2024-07-04 12:30:05",  # PDT
        "subacct": "1001",
        "custName": "Ann Lee",
        "msgID": result["msg_id"],
        "subacct_name": "Main St Pizza",
    }
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "Come back!")
    assert exc.value.message == "Customer is Opted-Out"

    sim.customer_texts("PIZZA", PHONE, "start")
    assert sim.customer_status("PIZZA", PHONE) == 3
    assert rec.posts[1]["form"]["optInStatus"] == "Opt-in"
    assert int(rec.posts[1]["form"]["msgID"]) > int(result["msg_id"])


def test_mms_callback_field(
    sim: Simulator, client: CrmTextClient, receiver: tuple[Receiver, str]
) -> None:
    rec, cb_url = receiver
    sim.add_customer("PIZZA", PHONE)
    client.set_callback("PIZZA", cb_url)
    media = [
        ("image/jpeg", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"),
        ("image/png", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"),
    ]
    sim.customer_texts("PIZZA", PHONE, "look at this", media)
    form = rec.posts[0]["form"]
    assert form["message"] == "look at this"
    assert json.loads(form["mms"]) == {
        "0": {"ContentType": "image/jpeg", "URL": media[0][1]},
        "1": {"ContentType": "image/png", "URL": media[1][1]},
        "count": 2,
    }
    sim.customer_texts("PIZZA", PHONE, "plain")
    assert "mms" not in rec.posts[1]["form"]


def test_urlencoded_callback_in_winter(receiver: tuple[Receiver, str]) -> None:
    rec, cb_url = receiver
    clock = Clock(datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC))  # 00:00:00 PST
    store = SimStore("PIZZA", "1001", "Main St Pizza")
    sim = Simulator(USER, PASSWORD, [store], clock=clock, callback_format="urlencoded")
    sim.callbacks["PIZZA"] = cb_url

    sim.customer_texts("PIZZA", PHONE, "pizza")  # keyword from a new number: opt-in

    post = rec.posts[0]
    assert post["content_type"] == "application/x-www-form-urlencoded"
    assert post["form"]["timeStamp"] == "2024-01-15 00:00:00"
    assert post["form"]["optInStatus"] == "Opt-in"
    assert sim.customer_status("PIZZA", PHONE) == 3
    assert [d.text for d in sim.outbox] == [PIZZA_CONFIRM]


def test_help_and_plain_text_keep_status(sim: Simulator, receiver: tuple[Receiver, str]) -> None:
    rec, cb_url = receiver
    rec.reply_status = 500
    sim.callbacks["PIZZA"] = cb_url
    sim.add_customer("PIZZA", PHONE, 3)
    assert sim.customer_texts("PIZZA", PHONE, "help")["callback_status"] == 500
    sim.customer_texts("PIZZA", PHONE, "Is the oven on?")
    assert sim.customer_status("PIZZA", PHONE) == 3
    assert [d.text for d in sim.outbox] == [
        "Main St Pizza: Reply to this message to reach the store. Reply STOP to opt out."
    ]
    assert len(rec.posts) == 2  # one attempt each, no retries
    assert sim.callback_log[0]["status"] == 500


# ---------- auth ----------


def test_wrong_password_is_401_inside_http_200(base_url: str) -> None:
    client = CrmTextClient(base_url + "/smapi/rest", USER, "wrong")
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "Hi")
    client.close()
    assert (exc.value.status, exc.value.message) == (401, "Invalid auth string")

    resp = api_call(base_url, basic(f"{USER}:wrong:PIZZA"), data={"method": "getcallback"})
    assert resp.status_code == 200


def test_unknown_keyword_is_401(client: CrmTextClient) -> None:
    with pytest.raises(CrmTextError) as exc:
        client.get_callback("BURGERS")
    assert (exc.value.status, exc.value.message) == (401, "Invalid auth string")


@pytest.mark.parametrize("auth", [None, "Basic !!!notbase64", basic("nocolons"), "Bearer x"])
def test_missing_or_garbled_header_is_http_401(base_url: str, auth: str | None) -> None:
    resp = api_call(base_url, auth, data={"method": "getcallback"})
    assert resp.status_code == 401
    assert 'status="401"' in resp.text


def test_auth_split_on_first_and_last_colon() -> None:
    assert parse_auth(basic("acct:s3cr:et:PIZZA")) == ("acct", "s3cr:et", "PIZZA")
    assert parse_auth(basic("acct:pw")) is None


# ---------- other API surface ----------


def test_unknown_method_query_params_and_json_body(sim: Simulator, base_url: str) -> None:
    auth = basic(f"{USER}:{PASSWORD}:PIZZA")
    resp = api_call(base_url, auth, data={"method": "frobnicate"})
    assert resp.status_code == 200
    assert 'op="frobnicate" status="400" message="Unknown method"' in resp.text

    sim.add_customer("PIZZA", PHONE)
    query = {"method": "sendsmsmsg", "phone_number": PHONE, "message": "via query"}
    resp = api_call(base_url, auth, params=query)
    assert 'status="200"' in resp.text
    assert sim.outbox[-1].text == "via query"

    resp = api_call(base_url, auth, params={"method": "sendsmsmsg"}, json=query)
    assert 'status="400" message="Invalid phone number"' in resp.text


# ---------- transport failures ----------


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = CrmTextClient(f"http://127.0.0.1:{port}/smapi/rest", USER, PASSWORD)
    with pytest.raises(CrmTextUnavailable):
        client.send_sms("PIZZA", PHONE, "Hi")
    client.close()


def test_timeout_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts the connection in the backlog but never answers
        port = s.getsockname()[1]
        client = CrmTextClient(f"http://127.0.0.1:{port}/smapi/rest", USER, PASSWORD, timeout=0.3)
        with pytest.raises(CrmTextUnavailable) as exc:
            client.get_callback("PIZZA")
        client.close()
    assert "Timeout" in str(exc.value)


# ---------- parsing with a mock transport ----------


def mock_client(body: str, status: int = 200) -> tuple[CrmTextClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body.encode())

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return CrmTextClient("https://crm.test/smapi/rest", "u", "p", http=http), seen


def test_get_callback_says_none_when_the_answer_does_not_say() -> None:
    """getcallback's answer is undocumented: no <callback> element is "cannot tell", not "unset"."""
    client, _ = mock_client('<response op="getcallback" status="200" message="ok"></response>')
    assert client.get_callback("PIZZA") is None
    client, _ = mock_client(
        '<response op="getcallback" status="200" message="ok"><callback/></response>'
    )
    assert client.get_callback("PIZZA") == ""


DOC_LIKE_SMS = """

  <?xml version="1.0" encoding="UTF-8"?>
  <response op= "sendsmsmsg" status= "200" message= "ok">
     <msgID>
        999111222
     </msgID>
     <message> Hello there </message>
     <timestamp>2014-05-12 08:05:42</timestamp>
     <customer>
        <custId> 7829018 </custId>
        <subacct>4021</subacct>
        <optinStatus> 3 </optinStatus>
        <custName></custName>
        <custMobile>4155550100</custMobile>
     </customer>
"""


def test_lenient_parse_of_doc_like_body_and_request_shape() -> None:
    client, seen = mock_client(DOC_LIKE_SMS)
    sent = client.send_sms("pizza", E164, "Hello there & more")
    assert sent == SentMessage(
        "999111222", "Hello there", Customer("7829018", "4021", 3, "", "4155550100")
    )
    req = seen[0]
    assert req.method == "POST"
    assert str(req.url) == "https://crm.test/smapi/rest"
    assert req.headers["Authorization"] == basic("u:p:PIZZA")
    assert req.headers["Accept"] == "application/xml"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(req.content.decode()) == {
        "method": ["sendsmsmsg"],
        "phone_number": [PHONE],
        "message": ["Hello there & more"],
    }


def test_campaign_doc_sample_without_closing_tag() -> None:
    client, _ = mock_client(
        '<response op= "sendcampaign" status= "200" message= "Messages is getting dispatched">'
    )
    assert client.send_campaign("PIZZA", "n", "m") == "Messages is getting dispatched"


def test_op_mismatch_is_unavailable() -> None:
    client, _ = mock_client('<response op="optincustomer" status="200" message="ok"/>')
    with pytest.raises(CrmTextUnavailable) as exc:
        client.set_callback("PIZZA", "https://x.test/cb")
    assert "optincustomer" in str(exc.value)


def test_error_status_with_whitespace() -> None:
    client, _ = mock_client(
        ' <response op="sendsmsmsg" status=" 400 " message="Customer is Opted-Out"></response>\n'
    )
    with pytest.raises(CrmTextError) as exc:
        client.send_sms("PIZZA", PHONE, "Hi")
    assert (exc.value.op, exc.value.status, exc.value.message) == (
        "sendsmsmsg",
        400,
        "Customer is Opted-Out",
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [("<html>oops</html>", 200), ("not xml at all", 200), ("", 500), ("<response", 200)],
)
def test_unusable_answers_are_unavailable(body: str, status: int) -> None:
    client, _ = mock_client(body, status)
    with pytest.raises(CrmTextUnavailable):
        client.get_callback("PIZZA")


def test_http_401_is_crmtext_error() -> None:
    client, _ = mock_client("", 401)
    with pytest.raises(CrmTextError) as exc:
        client.get_callback("PIZZA")
    assert (exc.value.op, exc.value.status) == ("getcallback", 401)


def test_missing_customer_element_is_unavailable() -> None:
    client, _ = mock_client('<response op="optincustomer" status="200" message="ok"/>')
    with pytest.raises(CrmTextUnavailable):
        client.opt_in("PIZZA", PHONE)


# ---------- developer endpoints and CLI ----------


def test_sim_control_endpoints(
    sim: Simulator, base_url: str, receiver: tuple[Receiver, str]
) -> None:
    rec, cb_url = receiver
    sim.callbacks["PIZZA"] = cb_url
    resp = httpx.post(
        base_url + "/_sim/customers",
        json={"keyword": "PIZZA", "phone": PHONE, "status": 3, "name": "Ann"},
    )
    assert resp.json() == {"ok": True}
    assert sim.customer_status("PIZZA", PHONE) == 3

    media_url = base_url + "/_sim/media/cat"
    resp = httpx.post(
        base_url + "/_sim/text",
        json={
            "keyword": "PIZZA",
            "phone": PHONE,
            "message": "STOP",
            "media": [["image/png", media_url]],
        },
    )
    assert resp.json() == {"msg_id": rec.posts[0]["form"]["msgID"], "callback_status": 200}
    assert json.loads(rec.posts[0]["form"]["mms"])["0"]["URL"] == media_url

    outbox = httpx.get(base_url + "/_sim/outbox").json()
    assert [(o["phone"], o["kind"], o["text"]) for o in outbox] == [(PHONE, "template", STOP_TEXT)]
    assert outbox[0]["sent_at"] == "2024-07-04T19:30:05+00:00"

    redirect = httpx.get(media_url)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == "/_sim/image/cat.png"
    image = httpx.get(media_url, follow_redirects=True)
    assert image.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (320, 240)

    resp = httpx.post(base_url + "/_sim/text", json={"keyword": "NOPE", "phone": PHONE})
    assert resp.status_code == 400


def test_text_cli(sim: Simulator, base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = text_main(["--sim", base_url, "--store", "pizza", "--from", "(415) 555-0100", "hello"])
    assert code == 0
    assert sim.customer_status("PIZZA", PHONE) == 1  # new guest, not opted in
    assert json.loads(capsys.readouterr().out)["callback_status"] is None
