"""A burst of customer texts into ONE store channel against Slack's per-channel post limit.

    python -m benchmarks.slack_burst                 # 300 texts, limit 10 msg/s (scaled), ~1 min
    python -m benchmarks.slack_burst --rate 1        # Slack's real 1 msg/s: ~5 min per run
    python -m benchmarks.slack_burst --no-unpaced    # only the paced run

The fake Slack answers ``chat.postMessage`` with HTTP 429 + ``Retry-After`` once a channel goes
over ``--rate`` messages per second after a burst of ``--fake-burst`` (a token bucket, like
Slack's "about 1 per second, short bursts tolerated"). smsbridge paces its own posts at the same
rate with a burst of ``--burst`` (one less than the fake tolerates: the spare token absorbs
network jitter). Scaling ``--rate`` scales both sides together, so the ratios below mean the
same at 1 msg/s; only the absolute times shrink.

All texts are stored first (callbacks through the simulator, no worker running), then the job
workers start, as after a burst during a restart. Printed per run: share of chat.postMessage
calls answered 429 (target <= 1 %), drain time / ideal time (texts / rate; 1.00 = as fast as
Slack allows), whether every customer's texts appear in their thread in the order sent, and
losses (texts whose post was given up) and duplicates.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.app import services_of
from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer
from bot.worker import local_app
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.store import OPTED_IN

CHANNEL = "CBURST01"


@dataclass
class Result:
    label: str
    texts: int
    post_calls: int
    rate_limited: int
    drain_seconds: float
    ideal_seconds: float
    in_order: bool
    missing: int
    lost: int
    duplicates: int

    def line(self) -> str:
        share = self.rate_limited / self.post_calls if self.post_calls else 0.0
        return (
            f"{self.label}: {self.texts} texts, {self.post_calls} chat.postMessage calls, "
            f"{self.rate_limited} answered 429 ({share:.1%}); drained in "
            f"{self.drain_seconds:.1f} s = {self.drain_seconds / self.ideal_seconds:.2f} x the "
            f"ideal {self.ideal_seconds:.0f} s; every customer's texts in order: "
            f"{'yes' if self.in_order else 'NO'}; lost {self.lost}; duplicated {self.duplicates}"
            + (f"; NOT POSTED BY THE DEADLINE {self.missing}" if self.missing else "")
        )


def _now() -> datetime:
    return datetime.now(UTC)


def run(
    *,
    texts: int,
    customers: int,
    rate: float,
    fake_burst: int,
    burst: int,
    paced: bool,
    seed: int = 7,
    database_url: str | None = None,
) -> Result:
    """One drain; on ``database_url`` (an empty database) or a temporary SQLite file."""
    phones = [f"415555{n:04d}" for n in range(customers)]
    # Every customer's texts in their order, customers interleaved at random.
    order = [p for p in phones for _ in range(texts // customers)]
    random.Random(seed).shuffle(order)
    sent: dict[str, list[str]] = {p: [] for p in phones}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        slack.rate_limit("chat.postMessage", per_second=rate, burst=fake_burst)
        sim = Simulator(
            "bench", "bench", [SimStore("PIZZA", "1", "Main St Pizza")], speed=1000, clock=_now
        )
        for phone in phones:
            sim.add_customer("PIZZA", phone, OPTED_IN)
        sim_server = LiveServer(sim.app())
        config = Config(
            slack_bot_token=slack.bot_token,
            slack_signing_secret="s",
            slack_api_url=slack.api_url,
            crmtext_user="bench",
            crmtext_password="bench",
            crmtext_api_url=f"{sim_server.url}/smapi/rest",
            stores={"PIZZA": CHANNEL},
            callback_token="bench-callback-token",
            public_url="http://127.0.0.1",
            database_url=database_url or f"sqlite:///{tmp}/bench.db",
            run_workers=False,
            slack_posts_per_second=rate if paced else 0,
            slack_post_burst=burst,
        )
        app = local_app(config, clock=_now)
        app_server = LiveServer(app)
        CrmTextClient(config.crmtext_api_url, "bench", "bench").set_callback(
            "PIZZA", f"{app_server.url}/sms/inbound/{config.callback_token}"
        )
        for phone in order:
            text = f"text {len(sent[phone]) + 1} from {phone[-4:]}"
            sent[phone].append(text)
            assert sim.customer_texts("PIZZA", phone, text)["callback_status"] == 200
        services = services_of(app)
        before = len(slack.calls_to("chat.postMessage"))
        began = time.monotonic()
        services.runner.start()
        deadline = began + texts / rate * 4 + 60
        while time.monotonic() < deadline and _posted(slack) < texts:
            time.sleep(0.05)
        drained = time.monotonic() - began
        services.runner.stop()
        threads = _threads(slack)
        posted = [t for thread in threads.values() for t in thread]
        result = Result(
            label=f"paced (ours {rate:g}/s, burst {burst})" if paced else "unpaced (pacing off)",
            texts=texts,
            post_calls=len(slack.calls_to("chat.postMessage")) - before,
            rate_limited=slack.rate_limited_calls,
            drain_seconds=drained,
            ideal_seconds=texts / rate,
            in_order=all(threads.get(p[-4:], []) == sent[p] for p in phones),
            missing=sum(1 for p in phones for t in sent[p] if t not in posted),
            lost=len(
                [j for j in services.storage.jobs.rows("failed") if j["kind"] == "post_inbound"]
            ),
            duplicates=len(posted) - len(set(posted)),
        )
        services.close()
        app_server.stop()
        sim_server.stop()
    return result


def _posted(slack: FakeSlack) -> int:
    """Texts shown so far (a combined post carries several, one per line)."""
    return sum(len(texts) for texts in _threads(slack).values())


def _threads(slack: FakeSlack) -> dict[str, list[str]]:
    """Each customer's thread as the texts it shows, in Slack's order, by number suffix."""
    threads: dict[str, list[str]] = {}
    for parent in slack.top_level(CHANNEL):
        first = parent.text.split(": ", 1)[1]
        # The bench's texts have no line breaks: a combined post's fallback has one per line.
        replies = [t for m in slack.thread(CHANNEL, parent.ts)[1:] for t in m.text.split("\n")]
        threads[first.rsplit(" ", 1)[1]] = [first, *replies]
    return threads


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10.0, help="Slack's msg/s per channel")
    parser.add_argument("--fake-burst", type=int, default=4, help="burst the fake tolerates")
    parser.add_argument("--burst", type=int, default=3, help="our burst (SLACK_POST_BURST)")
    parser.add_argument("--no-unpaced", action="store_true", help="skip the unpaced run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(
        f"{args.texts} texts from {args.customers} customers into one channel; fake Slack "
        f"allows {args.rate:g} msg/s per channel after a burst of {args.fake_burst}"
    )
    runs = [True] if args.no_unpaced else [True, False]
    for paced in runs:
        result = run(
            texts=args.texts,
            customers=args.customers,
            rate=args.rate,
            fake_burst=args.fake_burst,
            burst=args.burst,
            paced=paced,
        )
        print(result.line(), flush=True)


if __name__ == "__main__":
    main()
