"""/sms reads a number the way people type it and texts the rest of the line exactly."""

from __future__ import annotations

import pytest

from bridge.phones import InvalidPhone, split_leading_number
from tests.conftest import PIZZA_CHANNEL, Harness


@pytest.mark.parametrize(
    ("typed", "phone", "message"),
    [
        ("(415) 555-0100 Hi there", "+14155550100", "Hi there"),
        ("415.555.0100 Hi there", "+14155550100", "Hi there"),
        ("+1 415 555 0100 Hi there", "+14155550100", "Hi there"),
        ("1-415-555-0100 Hi there", "+14155550100", "Hi there"),
        ("+1 310 555 0104 Your order is ready", "+13105550104", "Your order is ready"),
        ("4155550100 2 large pizzas ready", "+14155550100", "2 large pizzas ready"),
        ("415 555 0100 2 large pizzas ready", "+14155550100", "2 large pizzas ready"),
        ("(415)555-0100: ready", "+14155550100", ": ready"),
        ("415-555-0100\nLine one\n\nLine  three", "+14155550100", "Line one\n\nLine  three"),
        ("  (415) 555-0100   Hi  ", "+14155550100", "Hi"),
        ("(415) 555-0100", "+14155550100", ""),
    ],
)
def test_the_leading_number_is_read_and_the_message_kept_exactly(
    typed: str, phone: str, message: str
) -> None:
    assert split_leading_number(typed) == (phone, message)


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "No phone number given."),
        ("Hi there", "“Hi” is not a phone number."),
        ("555-0100 Hi", "“555-0100” is not a valid phone number (US numbers have 10 digits)."),
        (
            "+44 20 7946 0958 Hi",
            "“+44 20 7946 0958” is a GB number; CRM Text texts US numbers only.",
        ),
    ],
)
def test_a_missing_or_foreign_number_is_explained(typed: str, error: str) -> None:
    with pytest.raises(InvalidPhone) as raised:
        split_leading_number(typed)
    assert str(raised.value) == error


def sms(harness: Harness, text: str) -> str:
    response = harness.sender.command("/sms", text, user="USAM", channel=PIZZA_CHANNEL)
    assert response.status_code == 200
    return response.text


def texted(harness: Harness) -> list[tuple[str, str]]:
    return [(d.phone, d.text) for d in harness.sim.outbox if d.kind == "sms"]


@pytest.mark.parametrize(
    ("typed", "phone"),
    [
        ("(415) 555-0100", "4155550100"),
        ("415.555.0100", "4155550100"),
        ("+1 415 555 0100", "4155550100"),
        ("1-415-555-0100", "4155550100"),
        ("+1 310 555 0104", "3105550104"),
    ],
)
def test_sms_texts_the_whole_message_to_the_number_as_typed(
    harness: Harness, typed: str, phone: str
) -> None:
    harness.sim.add_customer("PIZZA", phone, status=3)
    answer = sms(harness, f"{typed} Hi there")
    harness.drain()
    pretty = f"({phone[:3]}) {phone[3:6]}-{phone[6:]}"
    assert answer == f"Checking with CRM Text that {pretty} has opted in…"  # not known here
    assert texted(harness) == [(phone, "Hi there")]


def test_sms_keeps_line_breaks_and_spacing(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", "4155550100", status=3)
    sms(harness, "(415) 555-0100 Your order:\n- 2 large\n- 1 salad\n\nReady at 6pm  sharp")
    harness.drain()
    assert texted(harness) == [
        ("4155550100", "Your order:\n- 2 large\n- 1 salad\n\nReady at 6pm  sharp")
    ]


def test_sms_with_a_foreign_number_says_why_and_texts_nobody(harness: Harness) -> None:
    answer = sms(harness, "+44 20 7946 0958 Hi")
    harness.drain()
    assert answer == (
        "“+44 20 7946 0958” is a GB number; CRM Text texts US numbers only. "
        "Usage: `/sms <phone> <message>`, e.g. `/sms (415) 555-0100 Your order is ready!`"
    )
    assert texted(harness) == []


def test_sms_text_with_characters_slack_escapes_is_shown_once_escaped(harness: Harness) -> None:
    """Slack delivers ``&``, ``<``, ``>`` in a command as entities: the customer gets the
    characters, staff see them as typed, never ``&amp;amp;``."""
    harness.sim.add_customer("PIZZA", "4155550100", status=3)
    response = harness.sender.command(
        "/sms", "(415) 555-0100 Tom &amp; Jerry &lt;3\nline 2", user="USAM", channel=PIZZA_CHANNEL
    )
    assert response.status_code == 200
    harness.drain()
    assert [(d.phone, d.text) for d in harness.sim.outbox] == [
        ("4155550100", "Tom & Jerry <3\nline 2")
    ]
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert parent.text == "Text to (415) 555-0100: Tom &amp; Jerry &lt;3\nline 2"
    assert parent.blocks[1]["text"]["text"] == (
        ":outbox_tray: *<@USAM>* texted (415) 555-0100:\n> Tom &amp; Jerry &lt;3\n> line 2"
    )
    harness.sender.command(
        "/sms", "(415) 555-0100 Fish &amp; chips", user="USAM", channel=PIZZA_CHANNEL
    )
    harness.drain()
    assert [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]] == [
        ":outbox_tray: *<@USAM>* texted (415) 555-0100:\n> Fish &amp; chips"
    ]
