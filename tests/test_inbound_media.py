"""Customers' pictures (inbound MMS links) are fetched only from the listed media hosts
(INBOUND_MEDIA_HOSTS), every redirect checked again, at most MAX_PICTURES per text, and staff
are told in the thread about each picture that is not shown. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from bridge.medialinks import MAX_PICTURES, parse_host
from tests.conftest import PIZZA_CHANNEL, Harness

JANE = "4155550101"
SECRET_BODY = b"INTERNAL-ONLY: db password hunter2"


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


class PictureHost:
    """A web server on 127.0.0.1 that answers every GET with ``body`` (as ``content_type``),
    or with a redirect to ``redirect_to``; it counts the requests it got."""

    def __init__(
        self,
        body: bytes = SECRET_BODY,
        content_type: str = "image/png",
        redirect_to: str | None = None,
    ) -> None:
        self.body, self.content_type, self.redirect_to = body, content_type, redirect_to
        self.requests: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                host.requests.append(self.path)
                if host.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", host.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", host.content_type)
                self.send_header("Content-Length", str(len(host.body)))
                self.end_headers()
                self.wfile.write(host.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = self.where = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal() -> Iterator[PictureHost]:
    """An internal-only service (say, a metadata endpoint) that must never be fetched."""
    host = PictureHost()
    yield host
    host.stop()


def thread_texts(harness: Harness) -> list[str]:
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    return [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)]


def nothing_of_it_in_slack(harness: Harness) -> None:
    assert harness.slack.calls_to("files.getUploadURLExternal") == []
    assert harness.slack.uploaded == {}
    for call in harness.slack.calls:
        assert "INTERNAL-ONLY" not in repr(call.args)


def test_a_listed_host_redirecting_to_an_unlisted_loopback_port_is_refused(
    harness: Harness, internal: PictureHost
) -> None:
    listed = PictureHost(redirect_to=f"{internal.origin}/latest/meta-data")
    try:
        harness.services.poster.media_hosts += (parse_host(listed.origin),)
        harness.sim.add_customer("PIZZA", JANE, status=3)
        harness.text("PIZZA", JANE, "my receipt", media=[("image/png", f"{listed.origin}/m/1")])
        harness.drain()
    finally:
        listed.stop()

    assert listed.requests == ["/m/1"]
    assert internal.requests == []  # the redirect was checked before it was followed
    nothing_of_it_in_slack(harness)
    assert thread_texts(harness) == [
        "Text from (415) 555-0101: my receipt",
        ":warning: Picture 1 was not shown: smsbridge did not fetch it because its link "
        f"redirected to {internal.where}, which is not one of the picture hosts smsbridge "
        "trusts (INBOUND_MEDIA_HOSTS).",
    ]


def test_a_link_to_an_unlisted_host_is_not_fetched_and_not_shown(
    harness: Harness, internal: PictureHost
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "look", media=[("image/png", f"{internal.origin}/admin")])
    harness.drain()

    assert internal.requests == []
    nothing_of_it_in_slack(harness)
    assert thread_texts(harness) == [
        "Text from (415) 555-0101: look",
        ":warning: Picture 1 was not shown: smsbridge did not fetch it because its address is "
        f"on {internal.where}, which is not one of the picture hosts smsbridge trusts "
        "(INBOUND_MEDIA_HOSTS).",
    ]


def test_a_listed_public_host_that_resolves_to_loopback_is_refused(
    harness: Harness, internal: PictureHost
) -> None:
    """DNS says the provider's host is on this machine (rebinding, a poisoned resolver):
    refused after resolution, nothing fetched."""
    port = internal.server.server_address[1]
    poster = harness.services.poster
    poster.media_hosts += (parse_host(f"http://api.twilio.com:{port}"),)
    poster.resolver = lambda host, port: ["127.0.0.1"]
    harness.sim.add_customer("PIZZA", JANE, status=3)
    link = f"http://api.twilio.com:{port}/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    harness.text("PIZZA", JANE, "box", media=[("image/png", link)])
    harness.drain()

    assert internal.requests == []
    nothing_of_it_in_slack(harness)
    assert thread_texts(harness)[1] == (
        ":warning: Picture 1 was not shown: smsbridge did not fetch it because "
        f"http://api.twilio.com:{port} resolved to a private address (127.0.0.1), which "
        "smsbridge never fetches from."
    )


def test_a_listed_host_redirecting_to_another_listed_host_is_followed(harness: Harness) -> None:
    """Twilio's api.twilio.com redirects to the stored file on another host: each hop is
    checked, and a listed one is followed."""
    store = PictureHost(body=png_bytes())
    front = PictureHost(redirect_to=f"{store.origin}/file.png")
    try:
        harness.services.poster.media_hosts += (
            parse_host(front.origin),
            parse_host(store.origin),
        )
        harness.sim.add_customer("PIZZA", JANE, status=3)
        harness.text("PIZZA", JANE, "here", media=[("image/png", f"{front.origin}/Media/ME1")])
        harness.drain()
    finally:
        front.stop()
        store.stop()

    assert (front.requests, store.requests) == (["/Media/ME1"], ["/file.png"])
    [upload] = [m for m in harness.slack.messages if m.files]
    assert harness.slack.uploaded[upload.files[0]["id"]] == png_bytes()


def test_at_most_ten_pictures_per_text_are_fetched_and_the_thread_says_so(
    harness: Harness,
) -> None:
    pictures = [("image/png", f"{harness.sim.url}/_sim/media/p{n}") for n in range(12)]  # type: ignore[attr-defined]
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "all my receipts", media=pictures)
    harness.drain()

    assert MAX_PICTURES == 10
    assert len(harness.slack.uploaded) == 10
    texts = thread_texts(harness)
    assert texts[0] == "Text from (415) 555-0101: all my receipts"
    assert [t for t in texts if not t.startswith("Picture from")][-1] == (
        ":frame_with_picture: The customer sent 12 pictures in one text; smsbridge shows the "
        "first 10, so the last 2 were not fetched. Ask them to send those again if they matter."
    )


def test_a_picture_job_that_keeps_killing_its_worker_is_given_up_and_the_thread_told(
    harness: Harness,
) -> None:
    """Out of memory while fetching: each claim counts (bridge/store/queue.py); a worker dies
    holding the job three times (its lease runs out), then the job gives up and the thread
    shows the picture's link and why."""
    harness.sim.add_customer("PIZZA", JANE, status=3)
    link = f"{harness.sim.url}/_sim/media/huge"  # type: ignore[attr-defined]
    harness.text("PIZZA", JANE, "the dent", media=[("image/jpeg", link)])
    services = harness.services
    services.runner.run_one(["slack"])  # the text is posted; the picture job waits
    lease = services.runner.lease
    for _ in range(3):  # a worker claims it and is killed (never finishes, never renews)
        assert services.storage.jobs.claim(harness.clock(), lease, ["media"]) is not None
        harness.clock.advance(seconds=lease.total_seconds() + 1)
    harness.drain()

    [job] = [j for j in services.storage.jobs.rows() if j["kind"] == "share_picture"]
    assert (job["status"], job["lost"]) == ("failed", 3)
    assert harness.slack.uploaded == {}
    assert thread_texts(harness) == [
        "Text from (415) 555-0101: the dent",
        ":frame_with_picture: Picture 1 could not be uploaded to Slack (fetching it stopped "
        f"smsbridge's worker 3 times, out of memory?): <{link}|open it>",
    ]
