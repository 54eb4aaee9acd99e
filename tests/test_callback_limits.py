"""A CRM Text callback with absurd fields gets a short, clear 400 and a short log line, never a
500: picture numbers of thousands of digits, a keyword of any length, values quoted back in the
answer (cut to 100 characters), and any error the parser did not foresee."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.conftest import Harness

JANE = "4155550101"
LONG = 10_000


def post(harness: Harness, **fields: str) -> httpx.Response:
    form = {"keyword": "PIZZA", "mobileNum": JANE, "msgID": "m1", **fields}
    return httpx.post(harness.callback_url(), data=form, timeout=30)


def assert_nothing_stored(harness: Harness) -> None:
    storage = harness.services.storage
    assert storage.jobs.rows() == []
    assert storage.conversations.message_by_provider_id("PIZZA", "m1") is None


@pytest.mark.parametrize("digits", [4, 5000])
def test_an_mms_picture_number_of_many_digits_is_a_400_not_a_500(
    harness: Harness, digits: int
) -> None:
    mms = json.dumps({"1" * digits: {"URL": "https://api.twilio.com/a.jpg"}})
    response = post(harness, mms=mms)
    assert response.status_code == 400
    shown = "1" * min(digits, 100) + ("…" if digits > 100 else "")
    assert response.text == (
        f"bad callback: mms key '{shown}' is not a picture number (at most 3 digits)\n"
    )
    assert_nothing_stored(harness)


def test_three_digit_picture_numbers_are_read_in_number_order(harness: Harness) -> None:
    mms = json.dumps(
        {
            "010": {"ContentType": "image/png", "URL": "https://api.twilio.com/b.png"},
            "2": {"ContentType": "image/png", "URL": "https://api.twilio.com/a.png"},
            "count": 2,
        }
    )
    response = post(harness, mms=mms, message="two pictures")
    assert response.status_code == 200
    message = harness.services.storage.conversations.message_by_provider_id("PIZZA", "m1")
    assert message is not None
    media = message["media"]
    media = json.loads(media) if isinstance(media, str) else media
    assert [m["url"] for m in media] == [
        "https://api.twilio.com/a.png",
        "https://api.twilio.com/b.png",
    ]


def test_an_error_the_parser_did_not_foresee_is_a_400_and_a_log_line(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise ValueError("x" * LONG)

    monkeypatch.setattr("bridge.webhook.parse_callback", broken)
    with caplog.at_level(logging.WARNING, logger="bridge.webhook"):
        response = post(harness, message="hi")
    assert response.status_code == 400
    assert response.text == "bad callback: its fields could not be read\n"
    [line] = [r.getMessage() for r in caplog.records if r.name == "bridge.webhook"]
    assert line == f"callback rejected: the parser failed: ValueError: {'x' * 100}…"
    assert_nothing_stored(harness)


def test_a_keyword_longer_than_32_characters_is_a_400(harness: Harness) -> None:
    response = post(harness, keyword="P" * LONG, message="hi")
    assert response.status_code == 400
    assert response.text == "bad callback: keyword is longer than 32 characters\n"
    assert_nothing_stored(harness)
    unknown = post(harness, keyword="P" * 32, message="hi")
    assert unknown.status_code == 422
    assert unknown.text == f"keyword {'P' * 32} is not configured in SMS_STORES\n"


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        (
            {"message": "hi", "timeStamp": "9" * LONG},
            f"timeStamp '{'9' * 100}…' is not YYYY-MM-DD HH:MM:SS",
        ),
        (
            {"mms": json.dumps({"0": {"URL": "ftp://" + "a" * LONG}})},
            f"mms URL '{('ftp://' + 'a' * LONG)[:100]}…' is not http(s)",
        ),
        (
            {"message": "hi", "mobileNum": "x" * LONG},
            f"mobileNum '{'x' * 100}…' does not start with 10 digits",
        ),
    ],
)
def test_a_long_value_is_quoted_back_cut_to_100_characters(
    harness: Harness, fields: dict[str, str], answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.webhook"):
        response = post(harness, **fields)
    assert response.status_code == 400
    assert response.text == f"bad callback: {answer}\n"
    [line] = [r.getMessage() for r in caplog.records if r.name == "bridge.webhook"]
    assert line == f"callback rejected: {answer}"
    assert_nothing_stored(harness)
