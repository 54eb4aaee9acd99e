"""What staff see in Slack is valid Block Kit and shows customer text literally, at any size."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import blocks
from bot.blast_blocks import blast_label
from bridge.crmtext import CrmTextError
from bridge.keywords import Intent
from tests.blockkit_limits import message_problems, view_problems
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_blasts import blast_command, compose, confirm, open_view, seed

JANE = "4155550101"
CARD = "Main St Pizza · keyword PIZZA · opted in"


def thread_of(harness: Harness) -> list[Any]:
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    return harness.slack.thread(PIZZA_CHANNEL, parent.ts)


def section_texts(message: Any) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


# -- escaping ----------------------------------------------------------------------------------


def test_customer_markup_shows_literally_and_pings_nobody(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="<!here> Bob & Co")
    harness.text("PIZZA", JANE, "<!channel> hi & bye")
    harness.text("PIZZA", JANE, "<https://evil.example|acme.slack.com> ask <@USAM> <#C1>")
    harness.drain()

    parent, reply = thread_of(harness)
    assert parent.text == "Text from &lt;!here&gt; Bob &amp; Co · (415) 555-0101: " + (
        "&lt;!channel&gt; hi &amp; bye"
    )
    assert harness.slack.transcript(PIZZA_CHANNEL) == (
        f"#{PIZZA_CHANNEL}\n"
        "- bot: :speech_balloon: *&lt;!here&gt; Bob &amp; Co · (415) 555-0101*\n"
        f"  {CARD}\n"
        "  > &lt;!channel&gt; hi &amp; bye\n"
        f"  {parent_hint()}\n"
        "  [Resolve]\n"
        "  [Record opt-out] [Consent history]\n"
        "    - <!here> Bob & Co · (415) 555-0101: &lt;https://evil.example|acme.slack.com&gt; "
        "ask &lt;@USAM&gt; &lt;#C1&gt;\n"
    )
    assert reply.text == "&lt;https://evil.example|acme.slack.com&gt; ask &lt;@USAM&gt; &lt;#C1&gt;"
    # customer text is never run through Slack's automatic @channel / #channel parsing
    assert parent.blocks[1]["text"]["verbatim"] is True
    assert reply.blocks[0]["text"]["verbatim"] is True


def parent_hint() -> str:
    return (
        "Reply in this thread to text them (:outbox_tray: sent, :x: not sent). "
        "Start with `note:` to keep a reply in Slack. "
        "React :white_check_mark: or press Resolve when done."
    )


def test_staff_quoting_the_customer_texts_back_exactly_what_they_sent(harness: Harness) -> None:
    """Round trip: the customer's text shown in Slack, staff paste it, Slack sends it to us
    escaped, and the customer's phone gets the characters they typed."""
    from tests.test_replies import sends, staff_reply

    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "<!channel> hi & bye <3")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    shown = parent.blocks[1]["text"]["text"].removeprefix("> ")
    assert shown == "&lt;!channel&gt; hi &amp; bye &lt;3"
    staff_reply(harness, parent, f"You wrote: {shown}")  # Slack escapes typed text the same way
    harness.drain()
    [call] = sends(harness)
    assert call["params"]["message"] == "You wrote: <!channel> hi & bye <3"


def test_unsafe_picture_address_is_shown_as_text_not_a_disguised_link() -> None:
    assert blocks.picture_link("https://evil.example/x|acme.slack.com", 1) == (
        ":frame_with_picture: Picture 1 could not be uploaded to Slack. Its address: "
        "https://evil.example/x|acme.slack.com"
    )
    assert blocks.picture_link("https://crm.example/m?a=1&b=<2>", 2) == (
        ":frame_with_picture: Picture 2 could not be uploaded to Slack. Its address: "
        "https://crm.example/m?a=1&amp;b=&lt;2&gt;"
    )
    assert blocks.picture_link("https://crm.example/m?a=1&b=2", 3) == (
        ":frame_with_picture: Picture 3 could not be uploaded to Slack: "
        "<https://crm.example/m?a=1&amp;b=2|open it>"
    )


def test_provider_words_are_escaped_in_notices() -> None:
    assert blocks.not_sent("Not sent: CRM Text said <b>no</b> & more") == (
        ":x: Not sent: CRM Text said &lt;b&gt;no&lt;/b&gt; &amp; more"
    )
    assert blocks.refused_file("<!channel>.png", "too big") == (
        ":x: &lt;!channel&gt;.png was not sent: too big"
    )
    # staff text arrives as Slack markup ("a & b" is delivered as "a &amp; b"): escaped once
    assert blocks.edited_after_send("USAM", "a &amp; b\n&lt;c&gt;") == (
        ":pencil2: <@USAM> edited a reply that was already texted. "
        "The customer has the original:\n> a &amp; b\n> &lt;c&gt;"
    )


def test_store_name_from_crm_text_is_escaped() -> None:
    customer = {"name": "", "phone": "+14155550101", "status": 3, "store": "PIZZA"}
    store = {"name": "Tom & Jerry's <Pizza>", "keyword": "PIZZA"}
    _, body = blocks.parent_post(customer, store, "hi", None, None)
    assert body[0]["text"]["text"] == (
        ":speech_balloon: *(415) 555-0101*\nTom &amp; Jerry's &lt;Pizza&gt; · keyword PIZZA · "
        "opted in"
    )


# -- any size ----------------------------------------------------------------------------------


def test_a_1600_character_text_of_short_lines_is_posted_in_several_sections(
    harness: Harness,
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3, name="Jane Doe")
    long_text = "a\n" * 800
    harness.text("PIZZA", JANE, long_text)
    harness.text("PIZZA", JANE, "&" * 1600)
    harness.drain()

    parent, reply = thread_of(harness)
    quoted = section_texts(parent)[1:]
    assert len(quoted) == 2
    assert all(len(text) <= 3000 for text in quoted)
    assert "\n".join(quoted) == "\n".join(["> a"] * 800)
    assert message_problems(parent.text, parent.blocks) == []

    shown = section_texts(reply)
    assert [len(text) for text in shown] == [3000, 3000, 2000]
    assert "".join(shown) == "&amp;" * 1600
    assert message_problems(reply.text, reply.blocks) == []


def test_a_text_of_1600_newlines_is_posted() -> None:
    customer = {"name": "Jane", "phone": "+14155550101", "status": 3, "store": "PIZZA"}
    store = {"name": "Main St Pizza", "keyword": "PIZZA"}
    text, body = blocks.parent_post(customer, store, "\n" * 1600, None, None)
    assert message_problems(text, body) == []
    text, body = blocks.inbound_reply("x" + "\n" * 1599, 0, Intent.NONE, 7)
    assert message_problems(text, body) == []


def test_text_beyond_what_one_message_holds_is_cut_with_a_note() -> None:
    customer = {"name": "Jane", "phone": "+14155550101", "status": 3, "store": "PIZZA"}
    store = {"name": "Main St Pizza", "keyword": "PIZZA"}
    text, body = blocks.parent_post(customer, store, "&" * 200_000, None, None)
    assert message_problems(text, body) == []
    assert len(body) == 50
    shown = [b["text"]["text"] for b in body[1:-3]]
    assert shown[:-1] == ["> " + "&amp;" * 599] * 45  # 45 × 599 of the 200,000 shown
    assert shown[-1] == (
        "_… 173,045 more characters are not shown: Slack holds 50 blocks per message._"
    )


names = st.text(max_size=300)
texts = st.text(min_size=1, max_size=1600) | st.text(
    alphabet="&<>\n a😀", min_size=1, max_size=1600
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, name=names, store_name=names, intent=st.sampled_from(list(Intent)))
def test_any_text_and_name_make_valid_blocks(
    text: str, name: str, store_name: str, intent: Intent
) -> None:
    customer = {"name": name, "phone": "+14155550101", "status": 3, "store": "PIZZA"}
    store = {"name": store_name, "keyword": "PIZZA"}
    notice = blocks.notice_blocks(intent, 7) + [blocks.context(blast_label(name))]
    for fallback, body in (
        blocks.parent_post(customer, store, text, "https://x.slack.com/p1", None, notice=notice),
        blocks.parent_post(customer, store, text, None, "USAM", outbound_by="<@USAM>"),
        blocks.inbound_reply(text, 0, intent, 7, label=blast_label(name)),
        blocks.inbound_reply(text, 0, intent, 7, decision=("opt_out", "USAM")),
    ):
        assert message_problems(fallback, body) == []
    assert len(blocks.customer_label(customer)) <= 80  # chat.postMessage username
    for plain in (
        blocks.outbound_post("<@USAM>", customer, text),
        blocks.edited_after_send("USAM", text),
        blocks.refused_file(name, text),
    ):
        assert message_problems(plain, None) == []


# -- the blast confirmation --------------------------------------------------------------------


def test_the_confirmation_with_warnings_is_a_view_slack_accepts(harness: Harness) -> None:
    seed(harness)
    view = compose(harness, "2 pizzas for $20 😀 & wings <3", append=False)
    assert view_problems(view) == []
    acks = next(b for b in view["blocks"] if b.get("block_id") == "acks")
    options = acks["element"]["options"]
    assert [(o["value"], o["text"]["text"], o.get("description")) for o in options] == [
        ("encoding", "*Special characters cut each text part from 160 to 70 characters*", None),
        ("opt_out_missing", "*No opt-out instructions*", None),
    ]
    assert preflight_sections(view)[3] == (  # what each warning means, above the checkboxes
        "*Read each warning, then tick it below:*\n"
        ":warning: *Special characters cut each text part from 160 to 70 characters* "
        "Found “😀” at character 18 (no plain replacement).\n"
        ":warning: *No opt-out instructions* Customers must be told how to stop texts. "
        "Add “Reply STOP to opt out” at the end (it still fits in 1 part)."
    )
    preview = next(t for t in preflight_sections(view) if t.startswith("*As it will arrive:*"))
    assert preview == "*As it will arrive:*\n> 2 pizzas for $20 😀 &amp; wings &lt;3"
    assert confirm(harness, view).text == ""


def preflight_sections(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]


# -- staff decisions on a possible stop request ------------------------------------------------


def test_after_opt_out_the_buttons_give_way_to_the_decision(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "hi")
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.drain()
    _, flagged = thread_of(harness)
    button = flagged.blocks[2]["elements"][0]
    assert button["action_id"] == "opt_out_customer"

    harness.slack.fail_next("chat.update", status=503, error="service_unavailable")
    harness.press("opt_out_customer", button["value"], user="USAM")
    for _ in range(5):  # the first chat.update fails; the durable job tries again
        harness.drain()
        harness.clock.advance(minutes=1)

    _, flagged, *_ = thread_of(harness)
    assert [b["type"] for b in flagged.blocks] == ["section", "context", "context"]
    assert flagged.blocks[2]["elements"][0]["text"] == (
        ":no_entry: <@USAM> pressed Opt out: this customer is opted out."
    )
    assert flagged.edited


def test_not_a_stop_request_on_the_parent_card_shows_who_decided(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "can you stop texting me so much")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    keep = next(e for e in parent.blocks[3]["elements"] if e["action_id"] == "not_a_stop_request")
    harness.press("not_a_stop_request", keep["value"], user="UALEX")
    harness.drain()

    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert [b["type"] for b in parent.blocks] == [
        "section",
        "section",
        "context",
        "context",
        "context",
        "actions",
        "actions",
    ]
    assert parent.blocks[3]["elements"][0]["text"] == (
        ":ok_hand: <@UALEX> decided this was not a request to stop texting."
    )
    assert [e["action_id"] for e in parent.blocks[5]["elements"]] == ["resolve_thread"]


def refusing(message: str) -> Any:
    def refuse(keyword: str, phone: str) -> Any:
        raise CrmTextError("optoutcustomer", 400, message)

    return refuse


def test_crm_text_refusing_an_opt_out_is_quoted_literally(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    monkeypatch.setattr(harness.services.crm, "opt_out", refusing("<!channel> no & no"))
    harness.press("opt_out_customer", parent.blocks[3]["elements"][0]["value"])
    harness.drain()
    assert harness.slack.thread(PIZZA_CHANNEL, parent.ts)[-1].text == (
        ":warning: CRM Text refused the opt-out (&lt;!channel&gt; no &amp; no). "
        "This number stays blocked here; opt them out in the CRM Text admin too."
    )


def test_crm_text_refusing_an_opt_in_request_is_quoted_literally(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.services.crm, "opt_in", refusing("<@USAM> & <!here>"))
    harness.press("send_opt_in", json.dumps({"keyword": "PIZZA", "phone": "+14155550109"}))
    harness.drain()
    [answer] = [m for m in harness.slack.messages if m.ephemeral_for == "USAM"]
    assert (
        answer.text == ":x: CRM Text refused the opt-in request: &lt;@USAM&gt; &amp; &lt;!here&gt;"
    )


def test_a_blast_typed_longer_than_the_box_says_what_was_cut(harness: Harness) -> None:
    seed(harness)
    blast_command(harness, "x" * 3500)
    harness.drain()
    view = open_view(harness)
    assert view_problems(view) == []
    [message] = [b for b in view["blocks"] if b.get("block_id") == "message"]
    assert len(message["element"]["initial_value"]) == 3000
    assert message["hint"]["text"] == (
        "Only the first 3,000 of the 3,500 characters you typed fit in this box."
    )
