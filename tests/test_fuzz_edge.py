"""Fuzzing the edges (hypothesis, part of the normal suite, bounded to a few seconds each): the
CRM Text callback parser and route, the Slack route with signed payloads of odd shapes, and
phone parsing. Nothing may crash or answer 5xx, and a refused request stores nothing.

The example counts are fixed (``derandomize``: the same examples every run, so CI is
repeatable); raise ``max_examples`` locally to search longer.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.callback import MAX_TEXT_CHARS, CallbackError, InboundSms, parse_callback
from bridge.phones import (
    InvalidPhone,
    from_crmtext,
    locate,
    parse_us,
    split_leading_number,
    to_crmtext,
)
from tests.conftest import PIZZA_CHANNEL, Harness

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
FAST = settings(max_examples=200, deadline=None, derandomize=True)
HTTP = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the callback ---------------------------------------------------------------------------

FIELDS = ["keyword", "mobileNum", "msgID", "message", "mms", "timeStamp", "optInStatus",
          "custID", "custName", "subacct", "subacct_name", "MOBILENUM", "Message"]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
# Picture numbers: small ones, and digit runs past Python's 4,300-digit int() limit.
long_digits = st.builds(
    lambda digit, n: digit * n,
    st.sampled_from("0123456789"),
    st.sampled_from([4, 4301, 6000]) | st.integers(4, 6000),
)
mms_keys = st.sampled_from(["0", "1", "count", "²", "01", "009", "1000"]) | long_digits
mms_values = st.one_of(
    st.text(max_size=40),
    json_values.map(json.dumps),
    st.dictionaries(
        mms_keys,
        st.dictionaries(
            st.sampled_from(["URL", "url", "ContentType"]),
            st.sampled_from(["https://media.example/a.jpg", "http://x", "file:///etc", ""])
            | st.text(max_size=10),
            max_size=2,
        )
        | json_values,
        max_size=3,
    ).map(json.dumps),
)
field_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["PIZZA", "CARS", "TACOS", "4155550101", "+14155550101", "415555010",
                     "2026-11-24 10:00:00", "9999-12-31 23:59:59", "Opt-in", "Opt-out", " "]),
    st.from_regex(r"\+?1?\d{10}[\d\D]{0,5}", fullmatch=True),
    st.text(max_size=2000),
    st.builds(lambda c, n: c * n, st.sampled_from("a9 -:/!"), st.integers(100, 20_000)),
)  # fmt: skip
odd_forms = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), field_values, max_size=9
).flatmap(
    lambda form: (
        st.just(form) if "mms" not in form else mms_values.map(lambda mms: {**form, "mms": mms})
    )
)
# The required fields present, so the parser gets as far as the odd ones.
nearly_valid_forms = st.builds(
    lambda msg_id, odd: {"keyword": "PIZZA", "mobileNum": "4155550101", "msgID": msg_id, **odd},
    st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    st.fixed_dictionaries(
        {},
        optional={
            "message": field_values,
            "mms": mms_values,
            "timeStamp": field_values,
            "keyword": field_values,
            "mobileNum": field_values,
            "custName": field_values,
        },
    ),
)
callback_forms = odd_forms | nearly_valid_forms


@FAST
@given(callback_forms)
def test_the_callback_parser_parses_or_says_why(form: dict[str, str]) -> None:
    try:
        sms = parse_callback(form, NOW)
    except CallbackError as exc:
        assert str(exc) and len(str(exc)) <= 200  # a value quoted back is cut to 100
        return
    assert isinstance(sms, InboundSms)
    assert re.fullmatch(r"\+1\d{10}", sms.phone)
    assert len(sms.text) <= MAX_TEXT_CHARS + 60
    assert sms.text.strip() or sms.media
    assert all(m.url.startswith(("http://", "https://")) for m in sms.media)


@HTTP
@given(form=callback_forms, serial=st.integers(0, 10**9))
def test_the_callback_route_never_answers_5xx_and_stores_nothing_it_refuses(
    harness: Harness, form: dict[str, str], serial: int
) -> None:
    storage = harness.services.storage
    jobs_before = len(storage.jobs.rows())
    msg_id = next((v for k, v in form.items() if k.lower() == "msgid"), None)
    seen = msg_id is not None and any(
        storage.conversations.message_by_provider_id(k, msg_id.strip()) for k in ("PIZZA", "CARS")
    )
    response = httpx.post(harness.callback_url(), data=form, timeout=30)
    assert response.status_code in (200, 400, 413, 422), response.text
    assert len(response.text) <= 200
    assert response.headers["x-content-type-options"] == "nosniff"
    if response.status_code != 200:
        assert len(storage.jobs.rows()) == jobs_before
        if msg_id is not None and not seen:
            for keyword in ("PIZZA", "CARS"):
                assert storage.conversations.message_by_provider_id(keyword, msg_id.strip()) is None


# --- the Slack route, signed ---------------------------------------------------------------

SLACK_KEYS = ["type", "event", "user", "channel", "team", "actions", "view", "text", "ts",
              "thread_ts", "subtype", "trigger_id", "team_id", "bot_id", "files", "message",
              "container", "state", "values", "callback_id", "private_metadata", "action_id",
              "block_id", "value", "id", "authorizations", "enterprise", "item", "event_id",
              "response_url", "channel_type", "previous_message"]  # fmt: skip
TYPES = ["event_callback", "block_actions", "view_submission", "view_closed", "shortcut",
         "message_action", "url_verification", "app_rate_limited", "interactive_message",
         "block_suggestion", "bogus", "message", "app_mention", "member_joined_channel",
         "tokens_revoked", "app_uninstalled"]  # fmt: skip
slack_atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from(["", "USAM", "UBOT", PIZZA_CHANNEL, "C0NOPE", "T1", "1.2", "x", "/sms",
                     "1700000000.000100", "BBOT"] + TYPES),
    st.text(max_size=12),
)  # fmt: skip
slack_values = st.recursive(
    slack_atoms,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(SLACK_KEYS), inner, max_size=5)
    ),
    max_leaves=16,
)
slack_payloads = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={k: slack_values for k in SLACK_KEYS if k != "type"},
)


def slack_request(payload: dict[str, Any], how: str) -> tuple[str, str]:
    if how == "json":
        return json.dumps(payload), "application/json"
    if how == "command":
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        form.pop("type")
        form.setdefault("command", "/sms")
        return urlencode(form), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


@HTTP
@given(payload=slack_payloads, how=st.sampled_from(["json", "payload", "command"]))
def test_signed_odd_slack_payloads_never_get_a_5xx(
    harness: Harness, payload: dict[str, Any], how: str
) -> None:
    storage = harness.services.storage
    jobs_before = len(storage.jobs.rows())
    body, content_type = slack_request(payload, how)
    response = harness.sender.post(body, content_type)
    assert response.status_code < 500, (response.status_code, body[:300])
    if response.status_code >= 400:
        assert len(storage.jobs.rows()) == jobs_before


# --- phone numbers -----------------------------------------------------------------------------

phone_text = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[+(]?1?[ .\-(]*\d{3}[ .\-)]*\d{3}[ .\-]*\d{4}.{0,10}", fullmatch=True),
    st.text(alphabet="0123456789+()-. xX#*", max_size=30),
)


@FAST
@given(phone_text)
def test_phone_parsing_returns_a_number_or_invalid_phone(text: str) -> None:
    try:
        e164 = parse_us(text)
    except InvalidPhone:
        pass
    else:
        assert re.fullmatch(r"\+1\d{10}", e164)
        assert "+1" + to_crmtext(e164) == e164
        assert locate(e164).e164 == e164
    try:
        number, rest = split_leading_number(text)
    except InvalidPhone:
        pass
    else:
        assert re.fullmatch(r"\+1\d{10}", number) and rest == rest.strip()
    try:
        assert re.fullmatch(r"\+1\d{10}", from_crmtext(text))
    except InvalidPhone:
        pass
    location = locate(text)  # never raises: an unusable number has no e164
    assert location.e164 is None or re.fullmatch(r"\+1\d{10}", location.e164)


@pytest.mark.parametrize("text", ["a" + "!" * 60000 + "a", "1" * 100_000, "(" * 50_000])
def test_long_phone_like_input_is_refused_not_crashed(text: str) -> None:
    with pytest.raises(InvalidPhone):
        parse_us(text)
