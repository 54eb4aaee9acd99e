"""FakeSlack driven through the real slack_sdk WebClient."""

import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.fakeslack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


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
    view = {"type": "modal", "callback_id": "blast", "title": {"type": "plain_text", "text": "B"}}
    opened = client.views_open(trigger_id="t1", view=view)["view"]
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
