"""Blast sending throughput: texts per second across 3 stores' blasts, with 1 or 3 workers.

Used by ``python -m benchmarks.table``; asserts nothing.

Three stores each start a one-by-one blast to ``per_store`` customers at once. The CRM Text
simulator (``bot/dev/fake_crmtext.py``) answers every API call ``latency`` seconds late (a
fixed simulated network and service time). Printed: ``sendsmsmsg`` calls per second from the
first to the last, over all three stores. smsbridge paces each blast at 1 text a second
(``preflight.Settings.individual_rate``), so 3 texts/s is the ceiling; what the number shows is
how close the workers get to it and whether more workers help.

Workers: with SQLite the one web process runs the job lanes itself (``run_workers``), so only
the 1-worker case exists; with PostgreSQL each worker is a ``smsbridge worker``-like process
(``python -m benchmarks.blast_throughput worker …``: bot.worker.Worker on its own services).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

STORES = {"S1": "CTHRU001", "S2": "CTHRU002", "S3": "CTHRU003"}
STORE_TIME = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 11 AM in California
TEXT = "{name}: 2 for $20 Friday! Reply STOP to opt out"


def _clock() -> Callable[[], datetime]:
    shift = STORE_TIME - datetime.now(UTC)
    return lambda: datetime.now(UTC) + shift


def _config(database_url: str, slack_url: str, token: str, crm_url: str, workers: bool) -> Any:
    from bridge.config import Config

    return Config(
        slack_bot_token=token,
        slack_signing_secret="bench-signing-secret",
        slack_api_url=slack_url,
        crmtext_user="bench",
        crmtext_password="bench",
        crmtext_api_url=f"{crm_url}/smapi/rest",
        stores=STORES,
        callback_token="bench-callback-token",
        public_url="http://127.0.0.1",
        database_url=database_url,
        blast_admins=frozenset({"UADMIN"}),
        blast_mode="individual",
        run_workers=workers,
    )


class Slow:
    """WSGI middleware: every request answered ``seconds`` late."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        time.sleep(self.seconds)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def worker(database_url: str, slack_url: str, token: str, crm_url: str) -> None:
    """One worker process on the shifted clock: runs the lanes until stdin closes."""
    import logging

    logging.disable(logging.WARNING)
    from bot.services import build_services
    from bot.worker import Worker

    services = build_services(
        _config(database_url, slack_url, token, crm_url, True), clock=_clock()
    )
    running = Worker(services, grace=5.0)
    running.start()
    print("ready", flush=True)
    sys.stdin.read()
    running.shutdown()
    services.close()


@dataclass
class Throughput:
    workers: int
    sent: int
    expected: int
    seconds: float

    @property
    def rate(self) -> float:
        return (self.sent - 1) / self.seconds if self.sent > 1 and self.seconds else 0.0

    def cell(self) -> str:
        missing = f", ONLY {self.sent} of {self.expected} sent" if self.sent < self.expected else ""
        return f"{self.rate:.2f} texts/s ({self.sent} texts in {self.seconds:.1f} s{missing})"


def run(
    database_url: str, *, workers: int, per_store: int, latency: float, timeout: float = 120
) -> Throughput:
    """Three blasts at once on ``database_url`` (an empty database) with ``workers`` workers
    (more than one needs PostgreSQL)."""
    from bot.app import services_of
    from bot.dev.fake_crmtext import SimStore, Simulator
    from bot.dev.fake_slack import FakeSlack
    from bot.dev.live import LiveServer
    from bot.worker import local_app
    from bridge.blasts import BlastEngine
    from bridge.store import OPTED_IN

    clock = _clock()
    sqlite = database_url.startswith("sqlite:")
    if sqlite and workers != 1:
        raise ValueError("with SQLite one process runs the jobs")
    with FakeSlack() as slack:
        sim = Simulator(
            "bench",
            "bench",
            [SimStore(k, str(n + 1), f"Store {n + 1}") for n, k in enumerate(STORES)],
            speed=1000,
            clock=clock,
        )
        for n, keyword in enumerate(STORES):
            for i in range(per_store):
                sim.add_customer(keyword, f"415{n + 2}55{i:04d}", OPTED_IN)
        sim_server = LiveServer(Slow(sim.app(), latency))
        config = _config(database_url, slack.api_url, slack.bot_token, sim_server.url, False)
        app = local_app(config, clock=clock)
        services = services_of(app)
        engine = BlastEngine(config, services.storage, services.crm, clock)
        blasts = []
        for n, keyword in enumerate(STORES):
            engine.sync(keyword)
            blast_id = engine.draft(
                keyword, TEXT.format(name=f"Store {n + 1}"), False, "UADMIN", None
            )
            found = engine.check_blast(services.storage.blasts.get(blast_id))
            acks = {f.code for f in [*found.warnings, *found.blocks]}
            engine.confirm(blast_id, "UADMIN", acks, None, 10**9)
            blasts.append(blast_id)
        children: list[subprocess.Popen[str]] = []
        if sqlite:
            services.close()
            app = local_app(replace(config, run_workers=True), clock=clock)
            services = services_of(app)
        else:
            for _ in range(workers):
                child = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.blast_throughput", "worker", database_url]
                    + [slack.api_url, slack.bot_token, sim_server.url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert child.stdout is not None
                child.stdout.readline()
                children.append(child)
        expected = per_store * len(STORES)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _sends(sim) < expected:
            time.sleep(0.1)
        times = sorted(c["at"] for c in sim.calls if c["method"] == "sendsmsmsg")
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
        for child in children:
            child.wait(30)
        services.close()
        sim_server.stop()
    return Throughput(workers, len(times), expected, times[-1] - times[0] if times else 0.0)


def _sends(sim: Any) -> int:
    return sum(1 for c in list(sim.calls) if c["method"] == "sendsmsmsg")


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"] and len(sys.argv) == 6:
        worker(*sys.argv[2:6])
    else:
        raise SystemExit("usage: python -m benchmarks.blast_throughput worker URL SLACK TOKEN CRM")
