"""FakeSlack driven through the real slack_sdk WebClient."""

import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.dev.fake_slack import FakeSlack
from tests.conftest import fail_on_refusals


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake
        fail_on_refusals(fake)


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])


def test_post_and_thread_reply(fake: FakeSlack, client: WebClient) -> None:
    metadata = {"event_type": "sms_in", "event_payload": {"sms_id": "s1"}}
    parent = client.chat_postMessage(channel="C1", text="hello", metadata=metadata)
    reply = client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])

    assert parent["ts"] == "1732492800.000100"
    assert float(reply["ts"]) > float(parent["ts"])
    assert [m.text for m in fake.thread("C1", parent["ts"])] == ["hello", "reply"]
    assert [m.text for m in fake.top_level("C1")] == ["hello"]
    assert fake.calls_to("chat.postMessage")[0].args["metadata"] == metadata
    assert fake.calls_to("chat.postMessage")[1].token == "xoxb-test"

    replies = client.conversations_replies(channel="C1", ts=parent["ts"], include_all_metadata=True)
    assert [m["text"] for m in replies["messages"]] == ["hello", "reply"]
    assert replies["messages"][0]["metadata"] == metadata
    assert replies["messages"][0]["reply_count"] == 1


def test_form_encoded_json_fields_are_decoded(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    blocks = '[{"type": "divider"}]'
    client.api_call("chat.update", params={"channel": "C1", "ts": ts, "blocks": blocks})
    assert fake.calls_to("chat.update")[0].args == {
        "channel": "C1",
        "ts": ts,
        "blocks": [{"type": "divider"}],
    }
    assert fake.messages[0].blocks == [{"type": "divider"}]


def test_bad_token_is_invalid_auth(fake: FakeSlack) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as err:
        bad.auth_test()
    assert err.value.response["error"] == "invalid_auth"
    assert fake.calls[0].token == "xoxb-wrong"


def test_files_upload_v2_lands_in_thread(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="customer thread")
    client.files_upload_v2(
        channel="C1",
        thread_ts=parent["ts"],
        content=b"\x89PNG data",
        filename="photo.png",
        title="Photo",
        initial_comment="MMS image",
    )

    share = fake.thread("C1", parent["ts"])[1]
    assert share.text == "MMS image"
    (file,) = share.files
    assert (file["name"], file["title"], file["size"], file["mimetype"]) == (
        "photo.png",
        "Photo",
        9,
        "image/png",
    )
    assert fake.uploaded[file["id"]] == b"\x89PNG data"
    info = client.files_info(file=file["id"])
    assert info["file"]["shares"]["public"]["C1"][0]["ts"] == share.ts


def test_rate_limit_is_retried(fake: FakeSlack) -> None:
    retrying = WebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.fail_next("chat.postMessage", retry_after=0)

    assert retrying.chat_postMessage(channel="C1", text="hi")["ok"]
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert [m.text for m in fake.messages] == ["hi"]


def test_rate_limit_without_retry_handler(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("reactions.add", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel="C1", timestamp="1.0", name="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"


def test_dropped_connection_after_success_double_posts(fake: FakeSlack) -> None:
    retrying = WebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )
    fake.drop_next("chat.postMessage")
    retrying.chat_postMessage(channel="C1", text="once")
    assert [m.text for m in fake.messages] == ["once", "once"]


def test_reactions_and_errors(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C1", ts="9.9", text="y")
    with pytest.raises(SlackApiError, match="user_not_found"):
        client.users_info(user="U404")
    assert fake.messages[0].reactions == ["eyes"]


def test_url_private_download_needs_the_token(fake: FakeSlack) -> None:
    file = fake.add_file("F1", b"GIF89a", "image/gif", "cat.gif")

    with urllib.request.urlopen(file["url_private_download"]) as anonymous:
        assert anonymous.status == 200
        assert anonymous.headers.get_content_type() == "text/html"
        assert b"<html" in anonymous.read()

    authed = urllib.request.Request(
        file["url_private_download"], headers={"Authorization": f"Bearer {fake.bot_token}"}
    )
    with urllib.request.urlopen(authed) as response:
        assert response.headers.get_content_type() == "image/gif"
        assert response.read() == b"GIF89a"


def test_views_are_stored(fake: FakeSlack, client: WebClient) -> None:
    view = {
        "type": "modal",
        "callback_id": "blast",
        "title": {"type": "plain_text", "text": "B"},
        "blocks": [],
    }
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=view)["view"]
    client.views_update(view_id=opened["id"], view={**view, "callback_id": "blast2"})
    assert opened["id"].startswith("V")
    assert fake.views[opened["id"]]["callback_id"] == "blast2"


def test_wait_for_times_out_with_context(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"(?s)never_true.*auth\.test"):
        fake.wait_for(lambda: "never_true" == "", timeout=0.1)


def test_transcript(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U1", "Ann")
    ts = client.chat_postMessage(
        channel="C1", text="Is my order ready?", username="Jane (+1 555-0100)"
    )["ts"]
    reply = client.chat_postMessage(channel="C1", text="Yes, after 3pm", thread_ts=ts)["ts"]
    client.reactions_add(channel="C1", timestamp=reply, name="white_check_mark")
    fake.add_message("C1", "Thanks!\nSee you", user="U1", thread_ts=ts)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Blast"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Sent 3 of 10"}},
        {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Cancel"}}],
        },
    ]
    status = client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)["ts"]
    client.chat_update(channel="C1", ts=status, text="done", blocks=blocks[:1])
    fake.add_file("F1", b"abc", "image/jpeg", "a.jpg")
    client.chat_postEphemeral(channel="C2", user="U1", text="Could not send")

    assert fake.transcript() == (
        "#C1\n"
        "- Jane (+1 555-0100): Is my order ready?\n"
        "    - bot: Yes, after 3pm\n"
        "      [reactions] :white_check_mark:\n"
        "    - Ann: Thanks!\n"
        "      See you\n"
        "- bot (edited): Blast\n"
        "\n"
        "#C2\n"
        "- bot (only visible to Ann): Could not send\n"
    )


# -- failure states ---------------------------------------------------------------------------


def _error(call) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return str(err.value.response["error"])


@pytest.mark.parametrize(
    ("state", "error"),
    [("revoked", "token_revoked"), ("invalid", "invalid_auth"), ("inactive", "account_inactive")],
)
def test_token_state_persists_for_every_method(
    fake: FakeSlack, client: WebClient, state: str, error: str
) -> None:
    fake.set_token_state(state)
    assert _error(client.auth_test) == error
    assert _error(lambda: client.chat_postMessage(channel="C1", text="x")) == error
    assert _error(lambda: client.users_info(user="U1")) == error  # still refused: a state
    assert fake.messages == []

    fake.set_token_state("ok")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]


def test_revoked_token_cannot_download_files(fake: FakeSlack) -> None:
    file = fake.add_file("F1", b"GIF89a", "image/gif", "cat.gif")
    fake.set_token_state("revoked")
    authed = urllib.request.Request(
        file["url_private_download"], headers={"Authorization": f"Bearer {fake.bot_token}"}
    )
    with urllib.request.urlopen(authed) as response:
        assert response.headers.get_content_type() == "text/html"


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("archived", "is_archived"),
        ("not_member", "not_in_channel"),
        ("missing", "channel_not_found"),
    ],
)
def test_channel_state_refuses_writes(
    fake: FakeSlack, client: WebClient, state: str, error: str
) -> None:
    ts = client.chat_postMessage(channel="C1", text="before")["ts"]
    fake.set_channel_state("C1", state)

    assert _error(lambda: client.chat_postMessage(channel="C1", text="x")) == error
    assert _error(lambda: client.chat_update(channel="C1", ts=ts, text="y")) == error
    assert _error(lambda: client.chat_postEphemeral(channel="C1", user="U1", text="z")) == error
    assert _error(lambda: client.reactions_add(channel="C1", timestamp=ts, name="eyes")) == error
    assert (
        _error(lambda: client.files_upload_v2(channel="C1", content=b"x", filename="a.txt"))
        == error
    )
    assert client.chat_postMessage(channel="C2", text="other channels are fine")["ok"]
    assert [m.text for m in fake.top_level("C1")] == ["before"]

    fake.set_channel_state("C1", "ok")
    assert client.chat_postMessage(channel="C1", text="after")["ok"]


def test_channel_state_on_reads_follows_slack(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="hello")["ts"]

    fake.set_channel_state("C1", "archived")  # an archived channel can still be read
    assert client.conversations_history(channel="C1")["messages"][0]["ts"] == ts
    info = client.conversations_info(channel="C1")["channel"]
    assert (info["is_archived"], info["is_member"]) == (True, True)

    fake.set_channel_state("C1", "not_member")
    assert _error(lambda: client.conversations_history(channel="C1")) == "not_in_channel"
    assert _error(lambda: client.conversations_replies(channel="C1", ts=ts)) == "not_in_channel"
    info = client.conversations_info(channel="C1")["channel"]
    assert (info["is_archived"], info["is_member"]) == (False, False)

    fake.set_channel_state("C1", "missing")
    assert _error(lambda: client.conversations_info(channel="C1")) == "channel_not_found"


def test_a_direct_message_to_a_user_is_allowed(fake: FakeSlack, client: WebClient) -> None:
    fake.set_channel_state("C1", "not_member")
    posted = client.chat_postMessage(channel="USAM", text="Slack cannot reach #C1")
    assert posted["channel"] == fake.dm_channel("USAM")
    assert [m.text for m in fake.top_level(fake.dm_channel("USAM"))] == ["Slack cannot reach #C1"]


def test_missing_scope_and_auth_test_header(fake: FakeSlack, client: WebClient) -> None:
    assert "reactions:write" in client.auth_test().headers["x-oauth-scopes"].split(",")
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]

    fake.remove_scope("reactions:write")
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert (err.value.response["error"], err.value.response["needed"]) == (
        "missing_scope",
        "reactions:write",
    )
    assert "reactions:write" not in client.auth_test().headers["x-oauth-scopes"].split(",")
    assert client.chat_postMessage(channel="C1", text="other methods work")["ok"]

    fake.remove_scope("channels:history")
    assert _error(lambda: client.conversations_history(channel="C1")) == "missing_scope"
    assert client.conversations_history(channel="G1")["ok"]  # private: groups:history

    fake.add_scope("reactions:write")
    assert client.reactions_add(channel="C1", timestamp=ts, name="eyes")["ok"]


def test_username_needs_chat_write_customize(fake: FakeSlack, client: WebClient) -> None:
    fake.remove_scope("chat:write.customize")
    client.chat_postMessage(channel="C1", text="x", username="Jane (+1 555-0100)")
    assert fake.messages[0].username is None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_is_a_token_bucket_per_channel() -> None:
    clock = _Clock()
    with FakeSlack(clock=clock) as fake:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])
        fake.rate_limit("chat.postMessage", per_second=1.0, burst=3)

        for n in range(3):
            client.chat_postMessage(channel="C1", text=f"burst {n}")
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="one too many")
        assert err.value.response.status_code == 429
        assert err.value.response["error"] == "ratelimited"
        assert err.value.response.headers["Retry-After"] == "1"
        client.chat_postMessage(channel="C2", text="another channel has its own allowance")

        clock.now += 1.0
        client.chat_postMessage(channel="C1", text="one more after a second")
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel="C1", text="but only one")

        assert fake.rate_limited_calls == 2
        assert [m.text for m in fake.top_level("C1")] == [
            "burst 0",
            "burst 1",
            "burst 2",
            "one more after a second",
        ]
        fake.clear_rate_limit("chat.postMessage")
        client.chat_postMessage(channel="C1", text="unlimited again")


def test_rate_limit_retry_after_rounds_up(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit("reactions.add", per_second=0.25, burst=1)
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    client.reactions_add(channel="C1", timestamp=ts, name="a")
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel="C1", timestamp=ts, name="b")
    assert err.value.response.headers["Retry-After"] == "4"


def test_slack_connect_file_needs_files_info(fake: FakeSlack, client: WebClient) -> None:
    stub = fake.add_file("F1", b"GIF89a", "image/gif", "cat.gif", connect=True)
    assert stub["id"] == "F1" and stub["file_access"] == "check_file_info"
    assert "url_private_download" not in stub and "mimetype" not in stub

    full = client.files_info(file="F1")["file"]
    assert (full["name"], full["mimetype"], full["size"]) == ("cat.gif", "image/gif", 6)
    assert full["url_private_download"].startswith(fake.root_url)


# -- Block Kit limits ---------------------------------------------------------------------------


def _text(n: int, char: str = "x") -> str:
    return char * n


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(text)}


def _button(**fields) -> dict:
    return {"type": "button", "text": _plain("Go"), "action_id": "go", **fields}


def _option(text: str = "One", value: str = "1", **fields) -> dict:
    return {"text": _plain(text), "value": value, **fields}


def _actions(*elements: dict) -> dict:
    return {"type": "actions", "elements": list(elements)}


def _input(element: dict, label: str = "Message") -> dict:
    return {"type": "input", "block_id": "in", "label": _plain(label), "element": element}


def test_blocks_built_with_slack_sdk_at_the_limits_are_accepted(
    fake: FakeSlack, client: WebClient
) -> None:
    from slack_sdk.models.blocks import (
        ActionsBlock,
        ButtonElement,
        CheckboxesElement,
        ContextBlock,
        DividerBlock,
        HeaderBlock,
        InputBlock,
        MarkdownTextObject,
        Option,
        OverflowMenuElement,
        PlainTextInputElement,
        PlainTextObject,
        SectionBlock,
        StaticSelectElement,
    )

    blocks = [
        HeaderBlock(text=_text(150)),
        SectionBlock(
            text=MarkdownTextObject(text=_text(3000)),
            accessory=ButtonElement(text=_text(75), action_id="a" * 255, value=_text(2000)),
            block_id="b" * 255,
        ),
        SectionBlock(fields=[MarkdownTextObject(text=_text(2000)) for _ in range(10)]),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text=f"c{n}") for n in range(10)]),
        ActionsBlock(
            elements=[
                StaticSelectElement(
                    action_id="pick",
                    placeholder=_text(150),
                    options=[
                        Option(text=_text(75), value=_text(150), description=_text(75))
                        for _ in range(100)
                    ],
                ),
                OverflowMenuElement(
                    action_id="more", options=[Option(text="o", value=str(n)) for n in range(5)]
                ),
            ]
        ),
        InputBlock(
            label=PlainTextObject(text=_text(2000)),
            element=CheckboxesElement(
                action_id="ticks", options=[Option(text=_text(75), value=str(n)) for n in range(10)]
            ),
        ),
        InputBlock(
            label="Text",
            element=PlainTextInputElement(action_id="t", placeholder=_text(150), max_length=3000),
        ),
    ]
    blocks += [DividerBlock()] * (50 - len(blocks))
    dicts = [b.to_dict() for b in blocks]

    posted = client.chat_postMessage(channel="C1", text=_text(40_000), blocks=dicts)
    client.chat_update(channel="C1", ts=posted["ts"], text=_text(4000), blocks=dicts)
    assert fake.refusals == []
    assert fake.messages[0].blocks == dicts


MESSAGE_REFUSALS = [
    (
        [_section(_text(3001))],
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        [{"type": "section", "fields": [_mrkdwn("f")] * 11}],
        "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]",
    ),
    (
        [{"type": "section", "fields": [_mrkdwn(_text(2001))]}],
        "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
    ),
    ([{"type": "section"}], "[ERROR] missing required field: text [json-pointer:/blocks/0]"),
    ([_section("")], "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    (
        [{"type": "section", "text": _plain("")}],
        "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        [{"type": "header", "text": _plain(_text(151))}],
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        [{"type": "header", "text": _mrkdwn("*Blast*")}],
        "[ERROR] must be one of [plain_text] [json-pointer:/blocks/0/text/type]",
    ),
    (
        [_actions(_button(text=_plain(_text(76))))],
        "[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
    ),
    (
        [_actions(_button(value=_text(2001)))],
        "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ),
    (
        [_actions(_button(url="https://x.example/" + _text(2983)))],
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/elements/0/url]",
    ),
    (
        [_actions(_button(action_id=_text(256)))],
        "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
    ),
    (
        [_actions(_button(), _button())],
        "[ERROR] duplicate action_id: go [json-pointer:/blocks/0/elements/1/action_id]",
    ),
    (
        [{"type": "divider", "block_id": _text(256)}],
        "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]",
    ),
    (
        [{"type": "divider", "block_id": "d"}, {"type": "divider", "block_id": "d"}],
        "[ERROR] duplicate block_id: d [json-pointer:/blocks/1/block_id]",
    ),
    ([{"type": "sectoin"}], "[ERROR] unsupported type: sectoin [json-pointer:/blocks/0]"),
    ([{"type": "actions"}], "[ERROR] missing required field: elements [json-pointer:/blocks/0]"),
    (
        [{"type": "actions", "elements": []}],
        "[ERROR] must provide at least 1 item [json-pointer:/blocks/0/elements]",
    ),
    (
        [_actions({"type": "plain_text_input", "action_id": "t"})],
        "[ERROR] unsupported type: plain_text_input [json-pointer:/blocks/0/elements/0]",
    ),
    (
        [{"type": "context", "elements": [_mrkdwn("c")] * 11}],
        "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements]",
    ),
    ([{"type": "divider"}] * 51, "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"),
    (
        [_actions({"type": "static_select", "options": [_option(text=_text(76))]})],
        "[ERROR] must be less than 76 characters "
        "[json-pointer:/blocks/0/elements/0/options/0/text/text]",
    ),
    (
        [_actions({"type": "static_select", "options": [_option(value=_text(151))]})],
        "[ERROR] must be less than 151 characters "
        "[json-pointer:/blocks/0/elements/0/options/0/value]",
    ),
    (
        [_actions({"type": "static_select", "options": [_option(text="x")] * 101})],
        "[ERROR] no more than 100 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        [_actions({"type": "static_select", "options": [_option(description=_mrkdwn("*d*"))]})],
        "[ERROR] must be one of [plain_text] "
        "[json-pointer:/blocks/0/elements/0/options/0/description/type]",
    ),
    (
        [_actions({"type": "overflow", "options": [_option()] * 6})],
        "[ERROR] no more than 5 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        [_actions({"type": "checkboxes", "options": [_option()] * 11})],
        "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        [_actions({"type": "radio_buttons", "options": [_option()] * 11})],
        "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements/0/options]",
    ),
    (
        [_input({"type": "plain_text_input", "placeholder": _plain(_text(151))})],
        "[ERROR] must be less than 151 characters "
        "[json-pointer:/blocks/0/element/placeholder/text]",
    ),
    (
        [_input({"type": "plain_text_input"}, label=_text(2001))],
        "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/label/text]",
    ),
    (
        [{"type": "input", "label": _plain("Message")}],
        "[ERROR] missing required field: element [json-pointer:/blocks/0]",
    ),
    (
        [{"type": "input", "element": {"type": "plain_text_input"}}],
        "[ERROR] missing required field: label [json-pointer:/blocks/0]",
    ),
    (
        [_input({"type": "email_text_input", "action_id": "e"})],
        "[ERROR] unsupported type: email_text_input [json-pointer:/blocks/0/element]",
    ),
    (
        [{"type": "table", "rows": [[]]}, {"type": "table", "rows": [[]]}],
        "[ERROR] only one table block is allowed in a message [json-pointer:/blocks]",
    ),
    (
        [{"type": "image", "image_url": "https://x.example/a.png"}],
        "[ERROR] missing required field: alt_text [json-pointer:/blocks/0]",
    ),
]


@pytest.mark.parametrize(("blocks", "problem"), MESSAGE_REFUSALS)
def test_message_breaking_a_block_kit_limit_is_refused(
    fake: FakeSlack, client: WebClient, blocks: list, problem: str
) -> None:
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    answer = err.value.response
    assert answer["error"] == "invalid_blocks"
    assert answer["response_metadata"]["messages"] == [problem]
    assert fake.refusals == [f"chat.postMessage invalid_blocks: {problem}"]
    assert fake.messages == []
    fake.refusals.clear()


@pytest.mark.parametrize("method", ["chat.update", "chat.postEphemeral"])
def test_updates_and_ephemerals_are_checked_too(fake: FakeSlack, client: WebClient, method) -> None:
    ts = client.chat_postMessage(channel="C1", text="x")["ts"]
    blocks = [_section(_text(3001))]
    call = {
        "chat.update": lambda: client.chat_update(channel="C1", ts=ts, text="y", blocks=blocks),
        "chat.postEphemeral": lambda: client.chat_postEphemeral(
            channel="C1", user="U1", text="y", blocks=blocks
        ),
    }[method]
    assert _error(call) == "invalid_blocks"
    assert [r.split(":")[0] for r in fake.refusals] == [f"{method} invalid_blocks"]
    assert fake.messages[0].text == "x" and len(fake.messages) == 1
    fake.refusals.clear()


def test_message_text_limits(fake: FakeSlack, client: WebClient) -> None:
    assert _error(lambda: client.chat_postMessage(channel="C1", text=_text(40_001))) == (
        "msg_too_long"
    )
    ts = client.chat_postMessage(channel="C1", text="short")["ts"]
    assert _error(lambda: client.chat_update(channel="C1", ts=ts, text=_text(4001))) == (
        "msg_too_long"
    )
    assert len(fake.refusals) == 2 and all("msg_too_long" in r for r in fake.refusals)
    assert [m.text for m in fake.messages] == ["short"]
    fake.refusals.clear()


def test_metadata_needs_event_type_and_payload(fake: FakeSlack, client: WebClient) -> None:
    bad = {"event_payload": {"phone": "+14155550100"}}
    assert _error(lambda: client.chat_postMessage(channel="C1", text="x", metadata=bad)) == (
        "invalid_metadata_format"
    )
    fake.refusals.clear()


def _modal(*blocks: dict, **fields) -> dict:
    view = {
        "type": "modal",
        "callback_id": "blast",
        "title": _plain("SMS blast"),
        "submit": _plain("Send"),
        "close": _plain("Cancel"),
        "blocks": list(blocks),
    }
    view.update(fields)
    return view


def _checkbox_input(**option_fields) -> dict:
    element = {"type": "checkboxes", "action_id": "acks", "options": [_option(**option_fields)]}
    return {"type": "input", "block_id": "acks", "label": _plain("I know"), "element": element}


VIEW_REFUSALS = [
    (_modal(title=_plain(_text(25))), "must be less than 25 characters", "/title/text"),
    (_modal(submit=_plain(_text(25))), "must be less than 25 characters", "/submit/text"),
    (_modal(close=_plain(_text(25))), "must be less than 25 characters", "/close/text"),
    (_modal(title=_mrkdwn("SMS")), "must be one of [plain_text]", "/title/type"),
    (
        _modal(private_metadata=_text(3001)),
        "must be less than 3001 characters",
        "/private_metadata",
    ),
    (_modal(callback_id=_text(256)), "must be less than 256 characters", "/callback_id"),
    (_modal(*[{"type": "divider"}] * 101), "no more than 100 items allowed", "/blocks"),
    (
        _modal(_checkbox_input(description=_plain(_text(76)))),
        "must be less than 76 characters",
        "/blocks/0/element/options/0/description/text",
    ),
    (
        _modal(
            {
                "type": "input",
                "label": _plain("Ack"),
                "element": {
                    "type": "checkboxes",
                    "options": [_option(value=str(n)) for n in range(11)],
                },
            }
        ),
        "no more than 10 items allowed",
        "/blocks/0/element/options",
    ),
    (
        {"type": "modal", "title": _plain("T"), "blocks": [_checkbox_input()]},
        "missing required field: submit (the view has input blocks)",
        "",
    ),
    (
        _modal(_section("a"), {"type": "markdown", "text": "b"}),
        "unsupported type: markdown",
        "/blocks/1",
    ),
    (
        _modal(_actions({"type": "workflow_button", "text": _plain("Run"), "workflow": {}})),
        "unsupported type: workflow_button",
        "/blocks/0/elements/0",
    ),
]


@pytest.mark.parametrize(("view", "problem", "pointer"), VIEW_REFUSALS)
def test_view_breaking_a_limit_is_refused(
    fake: FakeSlack, client: WebClient, view: dict, problem: str, pointer: str
) -> None:
    trigger = fake.new_trigger_id()
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view=view)
    answer = err.value.response
    assert answer["error"] == "invalid_arguments"
    assert answer["response_metadata"]["messages"] == [
        f"[ERROR] {problem} [json-pointer:/view{pointer}]"
    ]
    assert fake.refusals == [
        f"views.open invalid_arguments: [ERROR] {problem} [json-pointer:/view{pointer}]"
    ]
    assert fake.check_view(view) == [f"[ERROR] {problem} [json-pointer:{pointer or '/'}]"]
    assert fake.views == {}
    fake.refusals.clear()


def test_views_update_and_push_are_checked(fake: FakeSlack, client: WebClient) -> None:
    good = _modal(
        _checkbox_input(description=_mrkdwn(_text(75))),  # mrkdwn allowed here
        _input({"type": "email_text_input", "action_id": "e"}) | {"block_id": "email"},
    )
    good["blocks"][0]["element"]["options"][0]["text"] = _mrkdwn(_text(75))
    bad = _modal(_checkbox_input(text=_text(76)))
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=good)["view"]
    assert fake.check_view(good) == []

    assert _error(lambda: client.views_update(view_id=opened["id"], view=bad)) == (
        "invalid_arguments"
    )
    assert _error(lambda: client.views_push(trigger_id=fake.new_trigger_id(), view=bad)) == (
        "invalid_arguments"
    )
    assert [r.split(":")[0] for r in fake.refusals] == [
        "views.update invalid_arguments",
        "views.push invalid_arguments",
    ]
    assert fake.views[opened["id"]]["blocks"] == good["blocks"]
    fake.refusals.clear()


def test_a_view_over_250_kb_is_too_large(fake: FakeSlack, client: WebClient) -> None:
    view = _modal(*[_section(_text(2900)) for _ in range(90)])
    assert _error(lambda: client.views_open(trigger_id=fake.new_trigger_id(), view=view)) == (
        "view_too_large"
    )
    fake.refusals.clear()


def test_response_action_views_are_checked(fake: FakeSlack) -> None:
    bad = _modal(_checkbox_input(description=_plain(_text(129))))
    problems = fake.check_interaction_response(
        "view_submission", {"response_action": "update", "view": bad}
    )
    assert problems == [
        "[ERROR] must be less than 76 characters "
        "[json-pointer:/view/blocks/0/element/options/0/description/text]"
    ]
    assert fake.refusals == [f"view_submission response_action=update: {problems[0]}"]
    fake.refusals.clear()

    submitted = _modal(
        _section(
            "Read this",
        )
        | {"block_id": "intro"},
        _checkbox_input(),
    )
    errors = {"response_action": "errors", "errors": {"acks": "Tick it"}}
    assert fake.check_interaction_response("view_submission", errors, submitted) == []
    assert fake.check_interaction_response("view_submission", None, submitted) == []
    assert fake.refusals == []

    # Slack can only show an error under an input block of the submitted view
    for key in ("intro", "message"):
        wrong = {"response_action": "errors", "errors": {key: "Too long"}}
        assert fake.check_interaction_response("view_submission", wrong, submitted) == [
            f"[ERROR] {key} is not the block_id of an input block in the view "
            f"[json-pointer:/errors/{key}]"
        ]
    assert len(fake.refusals) == 2
    fake.refusals.clear()


def test_the_slack_fixture_fails_a_test_that_left_a_refusal(fake: FakeSlack) -> None:
    fail_on_refusals(fake)  # nothing refused: passes
    fake.check_interaction_response("view_submission", {"response_action": "push", "view": {}})
    with pytest.raises(pytest.fail.Exception, match="Slack refused 1 request"):
        fail_on_refusals(fake)
    fake.refusals.clear()


# -- paging -------------------------------------------------------------------------------------


def test_history_pages_newest_first(fake: FakeSlack, client: WebClient) -> None:
    posted = [client.chat_postMessage(channel="C1", text=f"m{n}")["ts"] for n in range(250)]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=posted[0])  # not in history

    first = client.conversations_history(channel="C1")
    assert [m["ts"] for m in first["messages"]] == posted[::-1][:100]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_history(channel="C1", cursor=cursor, limit=120)
    assert [m["ts"] for m in second["messages"]] == posted[::-1][100:220]
    third = client.conversations_history(
        channel="C1", cursor=second["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in third["messages"]] == posted[::-1][220:]
    assert third["has_more"] is False and "response_metadata" not in third

    every = [
        m["ts"]
        for page in client.conversations_history(channel="C1", limit=99)
        for m in page["messages"]
    ]
    assert every == posted[::-1]


def test_history_time_range(fake: FakeSlack, client: WebClient) -> None:
    ts = [client.chat_postMessage(channel="C1", text=f"m{n}")["ts"] for n in range(5)]

    def texts(**args) -> list[str]:
        return [m["text"] for m in client.conversations_history(channel="C1", **args)["messages"]]

    assert texts(oldest=ts[1], latest=ts[3]) == ["m2"]
    assert texts(oldest=ts[1], latest=ts[3], inclusive=True) == ["m3", "m2", "m1"]
    assert texts(oldest=ts[3]) == ["m4"]
    assert texts(latest=ts[1], inclusive=1) == ["m1", "m0"]
    assert _error(lambda: client.conversations_history(channel="C1", oldest="soon")) == (
        "invalid_ts_oldest"
    )
    assert _error(lambda: client.conversations_history(channel="C1", cursor="bm9wZQ==")) == (
        "invalid_cursor"
    )


def test_replies_page_oldest_first_parent_first(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    replies = [
        client.chat_postMessage(channel="C1", text=f"r{n}", thread_ts=parent)["ts"]
        for n in range(250)
    ]

    first = client.conversations_replies(channel="C1", ts=parent)
    assert [m["ts"] for m in first["messages"]] == [parent, *replies[:99]]
    assert first["messages"][0]["reply_count"] == 250
    assert first["has_more"] is True
    rest = client.conversations_replies(
        channel="C1", ts=parent, cursor=first["response_metadata"]["next_cursor"], limit=200
    )
    assert [m["ts"] for m in rest["messages"]] == replies[99:]
    assert rest["has_more"] is False

    window = client.conversations_replies(
        channel="C1", ts=parent, oldest=replies[10], latest=replies[12], inclusive=True
    )
    assert [m["text"] for m in window["messages"]] == ["parent", "r10", "r11", "r12"]
    only = client.conversations_replies(channel="C1", ts=replies[5])
    assert [m["text"] for m in only["messages"]] == ["r5"]


# -- trigger_id ---------------------------------------------------------------------------------


def test_trigger_id_is_single_use_and_expires_after_3_seconds() -> None:
    clock = _Clock()
    with FakeSlack(clock=clock) as fake:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])
        view = _modal(_section("hello"))

        trigger = fake.new_trigger_id()
        clock.now += 2.9
        opened = client.views_open(trigger_id=trigger, view=view)["view"]
        assert _error(lambda: client.views_open(trigger_id=trigger, view=view)) == (
            "exchanged_trigger_id"
        )

        late = fake.new_trigger_id()
        clock.now += 3.1
        assert _error(lambda: client.views_open(trigger_id=late, view=view)) == (
            "expired_trigger_id"
        )
        assert _error(lambda: client.views_push(trigger_id="12.34.abc", view=view)) == (
            "invalid_trigger_id"
        )
        pushed = client.views_push(trigger_id=fake.new_trigger_id(), view=view)["view"]
        assert list(fake.views) == [opened["id"], pushed["id"]]
        assert fake.new_trigger_id() != fake.new_trigger_id()


# -- SlackSender acts for the fake Slack ---------------------------------------------------------


def test_sender_uses_fake_triggers_and_checks_response_views(
    fake: FakeSlack, client: WebClient
) -> None:
    import json

    from flask import Flask, request

    from bot.dev.live import LiveServer, SlackSender

    app = Flask("echo")
    bad_view = _modal(_checkbox_input(description=_plain(_text(129))))

    @app.post("/slack/events")
    def events() -> object:
        if "payload" in request.form:
            payload = json.loads(request.form["payload"])
            if payload["type"] == "view_submission":
                return {"response_action": "update", "view": bad_view}
            return payload["trigger_id"]
        return request.form["trigger_id"]

    server = LiveServer(app)
    try:
        sender = SlackSender(server.url, "secret", slack=fake)
        trigger = sender.command("/sms-blast", "hi", user="USAM", channel="C1").text
        assert client.views_open(trigger_id=trigger, view=_modal(_section("x")))["ok"]
        clicked = sender.interaction({"type": "block_actions", "actions": []}).text
        assert client.views_push(trigger_id=clicked, view=_modal(_section("y")))["ok"]

        sender.interaction({"type": "view_submission", "view": _modal(_section("x"))})
    finally:
        server.stop()
    assert fake.refusals == [
        "view_submission response_action=update: [ERROR] must be less than 76 characters "
        "[json-pointer:/view/blocks/0/element/options/0/description/text]"
    ]
    fake.refusals.clear()


def test_a_large_file_is_served_in_chunks_with_the_token_only(fake: FakeSlack) -> None:
    file = fake.add_large_file("FV", 3 * 1024 * 1024, "video/mp4", "clip.mp4", head=b"\0\0\0 ftyp")
    assert (file["size"], file["mimetype"]) == (3 * 1024 * 1024, "video/mp4")
    with urllib.request.urlopen(file["url_private_download"]) as response:  # no token
        assert response.headers.get_content_type() == "text/html"
    assert fake.bytes_served("FV") == 0
    authed = urllib.request.Request(
        file["url_private_download"], headers={"Authorization": f"Bearer {fake.bot_token}"}
    )
    with urllib.request.urlopen(authed) as response:
        body = response.read()
    assert (len(body), body[:8], set(body[8:])) == (3 * 1024 * 1024, b"\0\0\0 ftyp", {0})
    assert fake.bytes_served("FV") == 3 * 1024 * 1024
    liar = fake.add_large_file("FL", 2048, "image/png", "x.png", listed_size=10)
    assert liar["size"] == 10  # failure injection: not what it serves
