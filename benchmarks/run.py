"""Speed numbers for smsbridge: ``python -m benchmarks.run`` (prints, asserts nothing).

1. Blast preflight for 10,000 recipients (the check the modal, the submit and the start run).
2. Achieved pacing of an individual-mode blast against the bundled simulator, in real time.
3. Inbound callbacks stored per second (callback → stored message + job, HTTP on 127.0.0.1).
4. 300 texts burst into one channel under Slack's per-channel post limit (scaled to 10 msg/s;
   ``python -m benchmarks.slack_burst --help`` for the real 1 msg/s and the unpaced run).

Blast work at store scale (preflight and audience sync at 10,000 and 100,000 customers, the ack
of every blast step) is ``python -m benchmarks.blast_scale``; issue 8's whole table on SQLite
and PostgreSQL is ``python -m benchmarks.table --backend both --scale full``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks import slack_burst
from bot.app import services_of
from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer
from bot.worker import local_app
from bridge import preflight
from bridge.blasts import BlastEngine
from bridge.config import Config
from bridge.store import OPTED_IN, open_store

AREA_CODES = ["415", "305", "212", "512", "206", "312", "617", "702", "808", "405"]


def numbers(n: int) -> list[str]:
    return [f"+1{AREA_CODES[i % len(AREA_CODES)]}55{i:05d}"[:12] for i in range(n)]


def bench_preflight(n: int = 10_000, runs: int = 5) -> None:
    audience = [preflight.Audience(p, OPTED_IN) for p in numbers(n)]
    draft = preflight.Draft(
        "Main St Pizza", "Main St Pizza: 2 for $20 Friday! Reply STOP to opt out"
    )
    now = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = preflight.run(draft, audience, preflight.History(), now)
        times.append(time.perf_counter() - began)
    print(
        f"preflight, {n:,} recipients ({len(result.recipients):,} valid): "
        f"median {statistics.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms "
        f"over {runs} runs"
    )


def bench_preflight_with_storage(n: int = 10_000) -> None:
    """The same check as the bot runs it: audience read from SQLite, history from blasts."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_store("sqlite:///" + str(Path(tmp) / "b.db"))
        storage.migrate()
        storage.stores.sync({"PIZZA": "C1"})
        now = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
        with storage.transaction():
            for phone in numbers(n):
                row = storage.customers.upsert("PIZZA", phone, now=now)
                storage.customers.set_status(row["id"], OPTED_IN, how="bench", now=now)
        config = _config(tmp, "http://127.0.0.1:9", "http://127.0.0.1:9/api/")
        engine = BlastEngine(config, storage, None, lambda: now)  # type: ignore[arg-type]
        began = time.perf_counter()
        engine.check("PIZZA", "Main St Pizza: 2 for $20 Friday! Reply STOP to opt out", False)
        print(
            f"preflight incl. reading {n:,} customers from SQLite: "
            f"{(time.perf_counter() - began) * 1000:.0f} ms"
        )
        storage.close()


def _config(tmp: str, crm: str, slack: str, token: str = "xoxb-test") -> Config:
    return Config(
        slack_bot_token=token,
        slack_signing_secret="s",
        slack_api_url=slack,
        crmtext_user="bench",
        crmtext_password="bench",
        crmtext_api_url=crm,
        stores={"PIZZA": "CBENCH01"},
        callback_token="bench-callback-token",
        public_url="http://127.0.0.1",
        database_url=f"sqlite:///{tmp}/bench.db",
        blast_admins=frozenset({"UADMIN"}),
    )


def bench_pacing(recipients: int = 20) -> None:
    """An individual-mode blast through the real job workers; pacing from the simulator's log."""
    store_time = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    shift = store_time - datetime.now(UTC)

    def clock() -> datetime:
        return datetime.now(UTC) + shift

    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        sim = Simulator(
            "bench", "bench", [SimStore("PIZZA", "1", "Main St Pizza")], speed=1000, clock=clock
        )
        for phone in numbers(recipients):
            sim.add_customer("PIZZA", phone, OPTED_IN)
        sim_server = LiveServer(sim.app())
        app = local_app(_config(tmp, f"{sim_server.url}/smapi/rest", slack.api_url), clock=clock)
        services = services_of(app)
        engine = BlastEngine(services.config, services.storage, services.crm, clock)
        engine.sync("PIZZA")
        blast_id = engine.draft(
            "PIZZA", "Main St Pizza: bench. Reply STOP to opt out", False, "UADMIN", None
        )
        engine.confirm(blast_id, "UADMIN", {"store_name_missing", "opt_out_missing"}, None, 10**9)
        services.runner.wake()
        deadline = time.monotonic() + recipients * 3 + 10
        while (
            time.monotonic() < deadline
            and services.storage.blasts.get(blast_id)["status"] != "done"
        ):
            time.sleep(0.05)
        sends = [c["at"] for c in sim.calls if c["method"] == "sendsmsmsg"]
        gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
        if gaps:
            print(
                f"individual blast, {len(sends)} texts: mean gap {statistics.mean(gaps):.3f} s, "
                f"min {min(gaps):.3f} s, max {max(gaps):.3f} s "
                f"→ {(len(sends) - 1) / (sends[-1] - sends[0]):.3f} texts/s"
            )
        services.close()
        sim_server.stop()


def bench_inbound(count: int = 300) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        config = _config(tmp, "http://127.0.0.1:9/smapi/rest", slack.api_url)
        from dataclasses import replace

        app = local_app(replace(config, run_workers=False))
        server = LiveServer(app)
        url = f"{server.url}/sms/inbound/{config.callback_token}"
        with httpx.Client() as client:
            began = time.perf_counter()
            for i in range(count):
                client.post(
                    url,
                    data={
                        "keyword": "PIZZA",
                        "mobileNum": f"41555{i % 50:05d}",
                        "message": f"hello {i}",
                        "msgID": str(i),
                        "optInStatus": "Opt-in",
                    },
                )
            elapsed = time.perf_counter() - began
        print(
            f"inbound callbacks stored: {count / elapsed:.0f}/s "
            f"({elapsed / count * 1000:.1f} ms each, sequential, HTTP on 127.0.0.1)"
        )
        services_of(app).close()
        server.stop()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    bench_preflight()
    bench_preflight_with_storage()
    bench_inbound()
    bench_pacing()
    slack_burst.main(["--no-unpaced"])
