"""Lanes: a staff reply during a Slack backlog, and posting across many channels.

    python -m benchmarks.lanes                  # both, about a minute
    python -m benchmarks.lanes --channels 20    # fewer channels

1. Staff reply latency during a 300-text drain: 300 customer texts wait for one store channel
   (the fake Slack allows ``--rate`` posts a second per channel and answers each call
   ``--latency`` seconds late); while the job workers drain them, staff reply in a thread once
   a second. Printed: the time from Slack's event to the text reaching CRM Text (p50, max;
   target < 1 s) and how many texts were still waiting for Slack at the last reply.
2. Posting across ``--channels`` channels, each allowed 1 post a second by the fake Slack (a
   burst of 4, like Slack), with ``--latency``: posts per second over the drain divided by the
   channel count (1.0 = every channel at Slack's allowance; target >= 0.9).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.app import services_of
from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer, SlackSender
from bot.worker import local_app
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.store import OPTED_IN


def _now() -> datetime:
    return datetime.now(UTC)


def _config(slack: FakeSlack, sim_url: str, database_url: str, stores: dict[str, str]) -> Config:
    return Config(
        slack_bot_token=slack.bot_token,
        slack_signing_secret="s",
        slack_api_url=slack.api_url,
        crmtext_user="bench",
        crmtext_password="bench",
        crmtext_api_url=f"{sim_url}/smapi/rest",
        stores=stores,
        callback_token="bench-callback-token",
        public_url="http://127.0.0.1",
        database_url=database_url,
        run_workers=False,
        slack_posts_per_second=1.0,
        slack_post_burst=3,
    )


@dataclass
class ReplyLatency:
    texts: int
    rate: float
    latency: float
    waits: list[float]
    waiting: int

    def line(self) -> str:
        return (
            f"staff reply during a {self.texts}-text drain (Slack {self.rate:g} posts/s per "
            f"channel, {self.latency * 1000:.0f} ms per call): p50 "
            f"{statistics.median(self.waits) * 1000:.0f} ms, max {max(self.waits) * 1000:.0f} ms"
            f" (target < 1000 ms); {self.waiting} texts still waiting for Slack at the last reply"
        )


@dataclass
class ChannelRate:
    channels: int
    per_channel: int
    latency: float
    posted: int
    elapsed: float
    rate_limited: int

    @property
    def share(self) -> float:
        """Posts per second over the drain / the channels' combined allowance (1 msg/s each)."""
        return self.posted / self.elapsed / self.channels

    def line(self) -> str:
        rate = self.posted / self.elapsed
        return (
            f"posting across {self.channels} channels ({self.per_channel} texts each, Slack 1 "
            f"post/s per channel, {self.latency * 1000:.0f} ms per call): {self.posted} posts in "
            f"{self.elapsed:.1f} s = {rate:.1f}/s; / {self.channels} msg/s = {self.share:.2f} "
            f"(target >= 0.9); {self.rate_limited} answered 429"
        )


def staff_reply_latency(
    texts: int,
    rate: float,
    latency: float,
    *,
    replies: int = 10,
    database_url: str | None = None,
) -> ReplyLatency:
    channel = "CLANES01"
    phones = [f"415555{n:04d}" for n in range(60)]
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=rate, burst=4)
        slack.slow_down("chat.postMessage", latency)
        slack.add_user("USAM", "Sam", "Sam Rivera")
        sim = Simulator(
            "bench", "bench", [SimStore("PIZZA", "1", "Main St Pizza")], speed=1000, clock=_now
        )
        for phone in [*phones, "4155559999"]:
            sim.add_customer("PIZZA", phone, OPTED_IN)
        sim_server = LiveServer(sim.app())
        config = replace(
            _config(
                slack,
                sim_server.url,
                database_url or f"sqlite:///{tmp}/bench.db",
                {"PIZZA": channel},
            ),
            slack_posts_per_second=rate,
        )
        app = local_app(config, clock=_now)
        app_server = LiveServer(app)
        services = services_of(app)
        CrmTextClient(config.crmtext_api_url, "bench", "bench").set_callback(
            "PIZZA", f"{app_server.url}/sms/inbound/{config.callback_token}"
        )
        sim.customer_texts("PIZZA", "4155559999", "Where is my order?")
        services.runner.drain()
        parent = slack.top_level(channel)[0]
        for n in range(texts):
            sim.customer_texts("PIZZA", phones[n % len(phones)], f"text {n}")
        sender = SlackSender(app_server.url, "s", slack=slack)
        services.runner.start()
        waits: list[float] = []
        waiting = 0
        for n in range(replies):
            message = slack.add_message(channel, f"reply {n}", user="USAM", thread_ts=parent.ts)
            began = time.time()
            sender.event(
                {
                    "type": "message",
                    "channel": channel,
                    "channel_type": "channel",
                    "user": "USAM",
                    "text": f"reply {n}",
                    "ts": message.ts,
                    "thread_ts": parent.ts,
                    "event_ts": message.ts,
                }
            )
            while not [d for d in sim.outbox if d.text == f"reply {n}"]:
                time.sleep(0.005)
            waits.append(time.time() - began)
            waiting = len(
                [j for j in services.storage.jobs.rows("pending") if j["kind"] == "post_inbound"]
            )
            time.sleep(max(0.0, 1.0 - waits[-1]))
        services.close()
        app_server.stop()
        sim_server.stop()
    return ReplyLatency(texts, rate, latency, waits, waiting)


def posting_across_channels(
    channels: int, per_channel: int, latency: float, *, database_url: str | None = None
) -> ChannelRate:
    stores = {f"S{n:03d}": f"CLANE{n:03d}" for n in range(channels)}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=1.0, burst=4)
        slack.slow_down("chat.postMessage", latency)
        sim = Simulator(
            "bench",
            "bench",
            [SimStore(k, str(n), f"Store {n}") for n, k in enumerate(stores)],
            speed=1000,
            clock=_now,
        )
        sim_server = LiveServer(sim.app())
        config = _config(slack, sim_server.url, database_url or f"sqlite:///{tmp}/bench.db", stores)
        app = local_app(config, clock=_now)
        app_server = LiveServer(app)
        services = services_of(app)
        crm = CrmTextClient(config.crmtext_api_url, "bench", "bench")
        for keyword in stores:
            crm.set_callback(keyword, f"{app_server.url}/sms/inbound/{config.callback_token}")
        for n in range(per_channel):
            for s, keyword in enumerate(stores):
                phone = f"4155{s:03d}{n:03d}"
                sim.add_customer(keyword, phone, OPTED_IN)
                sim.customer_texts(keyword, phone, f"hello {n}")
        total = channels * per_channel
        before = len(slack.messages)
        began = time.monotonic()
        services.runner.start()
        deadline = began + per_channel * 4 + 60
        while time.monotonic() < deadline and len(slack.messages) - before < total:
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        posted = len(slack.messages) - before
        result = ChannelRate(
            channels, per_channel, latency, posted, elapsed, slack.rate_limited_calls
        )
        services.close()
        app_server.stop()
        sim_server.stop()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="Slack's posts/s per channel")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per Slack call")
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--per-channel", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(staff_reply_latency(args.texts, args.rate, args.latency).line(), flush=True)
    print(posting_across_channels(args.channels, args.per_channel, args.latency).line())


if __name__ == "__main__":
    main()
