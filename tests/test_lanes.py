"""Lanes never wait for each other: slow picture downloads do not hold back texts, and a Slack
backlog does not hold back a staff reply. The app's own job threads, real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.dev.fake_slack import FakeSlack
from bridge.jobs import BLAST
from bridge.medialinks import parse_host
from tests.conftest import CARS_CHANNEL, PIZZA_CHANNEL, Harness
from tests.test_blasts import start_blast, texts_to
from tests.test_replies import open_thread, sends, staff_reply

JANE, JOE, ANN = "4155550101", "4155550102", "4155550103"


class Drip:
    """A picture host that sends one byte a second (20 at most): a slow-drip MMS link."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.serving = 0
        self._lock = threading.Lock()
        drip = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with drip._lock:
                    drip.serving += 1
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.end_headers()
                    for _ in range(20):
                        if drip.stopping.wait(1.0):
                            return
                        self.wfile.write(b"\xff")
                        self.wfile.flush()
                except OSError:
                    pass
                finally:
                    with drip._lock:
                        drip.serving -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/picture.jpg"

    def wait_serving(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.serving == count:
                return
            time.sleep(0.02)
        raise AssertionError(f"{self.serving} downloads under way, wanted {count}")

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def drip(harness: Harness) -> Iterator[Drip]:
    """The drip server, listed as a picture host (INBOUND_MEDIA_HOSTS)."""
    server = Drip()
    harness.services.poster.media_hosts += (parse_host(server.url.rsplit("/", 1)[0]),)
    yield server
    server.stop()


def parent_texts(slack: FakeSlack) -> list[str]:
    return [m.text for m in slack.top_level(PIZZA_CHANNEL)]


def test_slow_picture_downloads_do_not_hold_back_another_customers_text(
    harness: Harness, drip: Drip
) -> None:
    for phone in (JANE, JOE, ANN):
        harness.sim.add_customer("PIZZA", phone, status=3)
    harness.text("PIZZA", JANE, "my receipt", media=[("image/jpeg", drip.url)])
    harness.text("PIZZA", JOE, "the dent", media=[("image/jpeg", drip.url)])
    harness.services.runner.start()
    drip.wait_serving(2)  # two pictures dripping in, a byte a second
    harness.text("PIZZA", ANN, "Are you open today?")
    harness.slack.wait_for(
        lambda: "Text from (415) 555-0103: Are you open today?" in parent_texts(harness.slack)
    )
    assert drip.serving == 2  # still downloading: the text did not wait for them
    assert sorted(parent_texts(harness.slack)) == [  # different customers: any order
        "Text from (415) 555-0101: my receipt",
        "Text from (415) 555-0102: the dent",
        "Text from (415) 555-0103: Are you open today?",
    ]


def test_a_picture_that_drips_past_the_deadline_is_posted_as_a_link(
    harness: Harness, drip: Drip
) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.services.poster.media_deadline = 2.0
    harness.text("PIZZA", JANE, "my receipt", media=[("image/jpeg", drip.url)])
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)] == [
        "Text from (415) 555-0101: my receipt",
        ":frame_with_picture: Picture 1 could not be uploaded to Slack (it did not arrive "
        f"within 2 seconds): <{drip.url}|open it>",
    ]
    assert harness.slack.calls_to("files.getUploadURLExternal") == []


def test_a_staff_reply_is_texted_while_slack_works_through_a_backlog(harness: Harness) -> None:
    parent = open_thread(harness)
    harness.slack.slow_down("chat.postMessage", 2.0)  # each post takes Slack 2 seconds
    waiting = [f"41555502{n:02d}" for n in range(24)]
    for phone in waiting:
        harness.sim.add_customer("PIZZA", phone, status=3)
        harness.text("PIZZA", phone, "Is the store open?")
    harness.services.runner.start()
    staff_reply(harness, parent, "Yes, your pizza left 5 minutes ago")
    harness.slack.wait_for(lambda: len(sends(harness)) == 1)
    posted = len(harness.slack.top_level(PIZZA_CHANNEL)) - 1
    assert posted < len(waiting)  # the reply did not wait for the Slack backlog
    assert [(d.phone, d.text) for d in harness.sim.outbox if d.kind == "sms"] == [
        ("4155550101", "Yes, your pizza left 5 minutes ago")
    ]


def test_one_customers_texts_reach_their_thread_in_order_while_others_post_in_parallel(
    harness: Harness,
) -> None:
    harness.slack.slow_down("chat.postMessage", 0.3)
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.sim.add_customer("CARS", JOE, status=3)
    for n in range(1, 7):
        harness.text("PIZZA", JANE, f"pizza text {n}")
        harness.text("CARS", JOE, f"cars text {n}")
    harness.services.runner.start()
    harness.slack.wait_for(lambda: len(harness.slack.messages) == 12, timeout=20)
    for channel, phone_label, word in [
        (PIZZA_CHANNEL, "(415) 555-0101", "pizza"),
        (CARS_CHANNEL, "(415) 555-0102", "cars"),
    ]:
        [parent] = harness.slack.top_level(channel)
        assert [m.text for m in harness.slack.thread(channel, parent.ts)] == [
            f"Text from {phone_label}: {word} text 1",
            *[f"{word} text {n}" for n in range(2, 7)],
        ]
    pizza = [
        c.at
        for c in harness.slack.calls_to("chat.postMessage")
        if c.args["channel"] == PIZZA_CHANNEL
    ]
    cars = [
        c.at
        for c in harness.slack.calls_to("chat.postMessage")
        if c.args["channel"] == CARS_CHANNEL
    ]
    assert min(cars) < max(pizza) and min(pizza) < max(cars)  # the two channels interleave


def test_blast_steps_never_call_slack_the_slack_lane_shows_progress(harness: Harness) -> None:
    numbers, blast = start_blast(harness, 5)  # confirmed, first text sent, progress shown
    before = len(harness.slack.calls)
    for _ in range(5):  # four more texts, then the step that finds everyone texted
        harness.clock.advance(seconds=1)
        assert harness.services.runner.run_one([BLAST])
    assert sorted(phone for phone, _ in texts_to(harness)) == numbers
    assert [c.method for c in harness.slack.calls[before:]] == []
    assert harness.services.storage.blasts.get(blast["id"])["status"] == "done"
    harness.drain()  # the Slack lane catches up
    updates = [c.method for c in harness.slack.calls[before:]]  # one, or two if 3 s passed
    assert updates[-1:] == ["chat.update"] and set(updates) == {"chat.update"}
