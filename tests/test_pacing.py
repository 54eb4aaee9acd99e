"""Pacing chat.postMessage per channel: slots shared through the database, 429s rare."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack
from bot.pacing import Pacer
from bridge.jobs import Retry, running
from bridge.store import Store, open_store
from tests.conftest import PIZZA_CHANNEL, Clock, Harness, make_config


class RealClock(Clock):
    """Pacing is about real seconds: these tests run the app on the wall clock."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@pytest.fixture
def clock() -> Clock:
    return RealClock()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Store]:
    store = open_store("sqlite:///" + str(tmp_path / "pacing.db"))
    store.migrate()
    yield store
    store.close()


def _reserve_many(path: str, count: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = open_store("sqlite:///" + str(path))
    out.put([store.slack.reserve_slot("C1", None, 100.0, 1.0, 2) for _ in range(count)])
    store.close()


def test_processes_sharing_the_database_share_one_allowance(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    open_store("sqlite:///" + str(path)).migrate()
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_reserve_many, args=(path, 25, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    slots = sorted(out.get(timeout=30) + out.get(timeout=30) + out.get(timeout=30))
    for worker in workers:
        worker.join(timeout=10)
    # 75 posts: a burst of 2, then one a second; no two processes got the same later slot.
    assert slots == [100.0, 100.0] + [100.0 + n for n in range(1, 74)]


def test_in_a_job_a_near_turn_is_slept_and_a_far_one_frees_the_worker(storage: Store) -> None:
    now = [100.0]
    slept: list[float] = []
    pacer = Pacer(storage, 1.0, 1, max_sleep=1.5, now=lambda: now[0], sleep=slept.append)
    with running(1, "post_inbound"):
        pacer.wait_turn("C1")
        pacer.posted("C1")
    with running(2, "post_inbound"):
        pacer.wait_turn("C1")  # one second away: slept in the worker
        pacer.posted("C1")
    assert slept == [1.0]
    with running(3, "post_inbound"), pytest.raises(Retry) as caught:
        pacer.wait_turn("C1")  # two seconds away: run the job again then
    assert caught.value.free and caught.value.delay == 2.0
    now[0] = 102.0
    with running(4, "post_inbound"):
        pacer.wait_turn("C1")  # another job meanwhile queues behind job 3's slot
    assert slept == [1.0, 1.0]
    with running(3, "post_inbound"):
        pacer.wait_turn("C1")  # job 3 comes back at its slot and posts at once
        pacer.posted("C1")
    assert slept == [1.0, 1.0]
    with running(5, "send_reply"):
        pacer.wait_turn("C1")  # a text already went out: its note waits here, not again
    assert slept == [1.0, 1.0, 2.0]


def test_outside_a_job_nothing_sleeps(storage: Store) -> None:
    slept: list[float] = []
    pacer = Pacer(storage, 1.0, 1, now=lambda: 100.0, sleep=slept.append)
    for _ in range(3):
        pacer.wait_turn("C1")
    assert slept == []


def test_a_429_holds_the_channel_for_everyone(storage: Store) -> None:
    pacer = Pacer(storage, 1.0, 3, now=lambda: 100.0, sleep=lambda _: None)
    pacer.hold("C1", 30)
    assert storage.slack.reserve_slot("C1", None, 100.0, 1.0, 3) == 130.0
    assert storage.slack.reserve_slot("C1", None, 100.0, 1.0, 3) == 131.0


def _burst(harness: Harness, customers: int, texts: int) -> list[tuple[str, list[str]]]:
    phones = [f"41555502{n:02d}" for n in range(customers)]
    for phone in phones:
        harness.sim.add_customer("PIZZA", phone, status=3)
    for n in range(texts):
        for phone in phones:
            harness.text("PIZZA", phone, f"text {n + 1}")
    return [(p, [f"text {n + 1}" for n in range(texts)]) for p in phones]


def _posted(slack: FakeSlack) -> int:
    return sum(len(slack.thread(PIZZA_CHANNEL, p.ts)) for p in slack.top_level(PIZZA_CHANNEL))


@pytest.mark.parametrize("paced", [True, False])
def test_a_burst_into_one_channel_stays_within_slacks_limit_when_paced(
    tmp_path: Path, slack: FakeSlack, sim: Simulator, clock: Clock, paced: bool
) -> None:
    slack.rate_limit("chat.postMessage", per_second=20, burst=4)
    config = make_config(
        tmp_path,
        slack,
        sim,
        # Half of Slack's allowance: a loaded machine can bunch two requests that left their
        # slots on time, so the test holds the margin a real deployment would not need.
        slack_posts_per_second=10 if paced else 0,
        slack_post_burst=2,
    )
    harness = Harness(config, sim, slack, clock)
    try:
        expected = _burst(harness, customers=4, texts=4)  # stored while no worker runs
        harness.services.runner.start()
        slack.wait_for(lambda: _posted(slack) == 16, timeout=20)
        threads = slack.top_level(PIZZA_CHANNEL)
        assert len(threads) == 4
        for phone, texts in expected:
            [parent] = [m for m in threads if f"({phone[:3]}) {phone[3:6]}-{phone[6:]}" in m.text]
            replies = [m.text for m in slack.thread(PIZZA_CHANNEL, parent.ts)[1:]]
            assert [parent.text.rsplit(": ", 1)[1], *replies] == texts
        if paced:
            assert slack.rate_limited_calls == 0
        else:
            assert slack.rate_limited_calls > 0  # the fake's limit is real
    finally:
        harness.stop()
