"""Staff attachments have a budget: Slack's size and type are checked before downloading, the
download stops at a cap, a picture's pixels are checked before decoding, and what reaches the
customer is re-encoded without metadata. Staff are told in the thread why a file was not sent.
Bolt + fake Slack + the CRM Text simulator, real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest
from PIL import Image

from bot.sending import _capped_body
from bridge.media import MAX_FILE_BYTES, MediaError
from tests.conftest import Harness
from tests.test_media import WEBP_BOMB, encode, gps_exif, no_metadata, noise
from tests.test_replies import open_thread, sends, staff_reply, thread_texts

MB = 1024 * 1024


def test_a_video_is_refused_from_its_type_without_being_downloaded(harness: Harness) -> None:
    parent = open_thread(harness)
    video = harness.slack.add_large_file("FVID", 40 * MB, "video/mp4", "clip.mp4")
    staff_reply(harness, parent, "Here is how to fold the box", files=[video])
    harness.drain()

    assert harness.slack.calls_to("file.download") == []
    assert harness.slack.bytes_served("FVID") == 0
    [call] = sends(harness)
    assert (call["params"]["message"], call["params"].get("mmsurl")) == (
        "Here is how to fold the box",
        None,
    )
    assert thread_texts(harness, parent)[1] == (
        ":x: clip.mp4 was not sent: That file is not a picture we can text. "
        "Please attach a JPEG, PNG or GIF."
    )


def test_a_picture_file_over_the_size_cap_is_refused_without_being_downloaded(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    huge = harness.slack.add_large_file("FBIG", 40 * MB, "image/jpeg", "huge.jpg")
    staff_reply(harness, parent, "", files=[huge])
    harness.drain()

    assert harness.slack.bytes_served("FBIG") == 0
    assert sends(harness) == []
    assert thread_texts(harness, parent)[1:] == [
        ":x: huge.jpg was not sent: That file is too big to send (40 MB; the most is 25 MB). "
        "Please attach a smaller picture.",
        ":x: Not sent: there was nothing to text.",
    ]


def test_a_file_bigger_than_slack_said_is_not_read_past_the_cap(harness: Harness) -> None:
    parent = open_thread(harness)
    liar = harness.slack.add_large_file(
        "FLIE", 60 * MB, "image/png", "big.png", listed_size=900_000
    )
    staff_reply(harness, parent, "pic", files=[liar])
    harness.drain()

    assert len(harness.slack.calls_to("file.download")) == 1
    assert harness.slack.bytes_served("FLIE") < 30 * MB  # not the 60 MB it has
    assert thread_texts(harness, parent)[1] == (
        ":x: big.png was not sent: That file is too big to send (60 MB; the most is 25 MB). "
        "Please attach a smaller picture."
    )


def chunked(total: int) -> Iterator[bytes]:
    piece = bytes(MB)
    for _ in range(total // MB):
        yield piece


def test_a_download_without_a_length_stops_at_the_cap() -> None:
    pulled: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            for piece in chunked(100 * MB):
                pulled.append(len(piece))
                yield piece

        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=body())

    with (
        httpx.Client(transport=httpx.MockTransport(answer)) as http,
        http.stream("GET", "https://files.slack.com/x") as response,
    ):
        assert "content-length" not in response.headers
        with pytest.raises(MediaError) as caught:
            _capped_body(response)
    assert str(caught.value) == (
        "That file is too big to send (over 25 MB; the most is 25 MB). "
        "Please attach a smaller picture."
    )
    assert sum(pulled) <= MAX_FILE_BYTES + MB


def test_a_decompression_bomb_attached_in_slack_is_refused_and_staff_are_told(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    bomb = harness.slack.add_file("FBOMB", WEBP_BOMB, "image/webp", "bomb.webp")
    staff_reply(harness, parent, "our logo", files=[bomb])
    harness.drain()

    [call] = sends(harness)
    assert call["params"].get("mmsurl") is None
    assert thread_texts(harness, parent)[1] == (
        ":x: bomb.webp was not sent: That picture is too large to process (9,400 × 9,400 "
        "pixels; the most is 24 million). Please attach a smaller one."
    )


def test_exif_gps_and_owner_are_gone_from_the_picture_the_customer_gets(
    harness: Harness,
) -> None:
    parent = open_thread(harness)
    photo = encode(noise((320, 240)), "JPEG", exif=gps_exif(), quality=90)
    assert b"Jane Owner" in photo and len(photo) < 450_000  # small: once sent byte for byte
    file = harness.slack.add_file("FGPS", photo, "image/jpeg", "IMG_0042.jpg")
    staff_reply(harness, parent, "Your order", files=[file])
    harness.drain()

    [call] = sends(harness)
    served = httpx.get(harness.server.url + urlparse(call["params"]["mmsurl"]).path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    no_metadata(served.content)
    assert Image.open(io.BytesIO(served.content)).size == (320, 240)


def test_a_reply_whose_picture_keeps_killing_the_worker_is_given_up_and_the_thread_told(
    harness: Harness,
) -> None:
    """Out of memory while preparing a staff picture: attempts count at claim
    (bridge/store/queue.py); after the third worker died holding it (its lease ran out) the
    reply is not tried again and the thread says so in plain words."""
    parent = open_thread(harness)
    file = harness.slack.add_file("FOOM", encode(noise((64, 64)), "PNG"), "image/png", "a.png")
    reply = staff_reply(harness, parent, "Here you go", files=[file])
    services = harness.services
    lease = services.runner.lease
    for _ in range(3):  # a worker claims it and is killed (never finishes, never renews)
        assert services.storage.jobs.claim(harness.clock(), lease, ["crm"]) is not None
        harness.clock.advance(seconds=lease.total_seconds() + 1)
    harness.drain()

    [job] = [j for j in services.storage.jobs.rows() if j["kind"] == "send_reply"]
    assert (job["status"], job["lost"]) == ("failed", 3)
    assert sends(harness) == []
    assert [m.reactions for m in harness.slack.messages if m.ts == reply.ts] == [["x"]]
    assert thread_texts(harness, parent)[1:] == [
        ":x: Not sent: smsbridge stopped 3 times while preparing this reply (out of memory? "
        "a picture may be too large), so it was not tried again. Send it again, with a "
        "smaller picture if it had one."
    ]
