"""Blast work at store scale: preflight, audience sync and the ack of every blast step.

    python -m benchmarks.blast_scale                  # 10,000 and 100,000 customers, ~3 min
    python -m benchmarks.blast_scale --sizes 10000    # one size only
    python -m benchmarks.blast_scale --no-acks        # preflight and sync only

Prints a table; asserts nothing. Each measurement runs in a fresh Python process, so its peak
RSS is its own: ``peak RSS`` is the process's high-water mark, ``+RSS`` how far it rose above
the process's size just before the measured work began (the work's own memory).

* **preflight**: :meth:`BlastEngine.check` on a SQLite database of N opted-in customers (the
  audience read and every check, as the modal, the submit and the start run it); median of 5,
  wall and CPU time (CPU time is what the work costs when the machine is shared).
* **sync**: :func:`bridge.audience.sync` of N opted-in customers into an empty database from the
  CRM Text simulator (``bot/dev/fake_crmtext.py``, in its own process, 1,000 per page). Printed
  with how much of the time was spent waiting for the simulator's pages (it sorts the whole
  list for every page, so it grows faster than the app) and the app process's own CPU time.
* **acks** (largest size only): the HTTP answer time of ``/sms-blast``, a keystroke in the
  form, the compose submission and the confirm submission, through the real Flask/Bolt endpoint
  with signed requests (``bot/dev/live.py`` SlackSender) against the fake Slack
  (``bot/dev/fake_slack.py``) and the simulator, job workers running. Also printed: how long
  after each ack the background work showed its result in the modal / the database.

Targets (issue 8): preflight at 100,000 customers under 0.5 s; every ack under 1 s; sync memory
flat (``+RSS`` growth ratio near 1, time growth near 10 for 10x the customers).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STORE, CHANNEL, ADMIN = "PIZZA", "CBENCH01", "UADMIN"
SECRET = "bench-signing-secret"
TEXT = "Main St Pizza: 2 for $20 Friday! Reply STOP to opt out"
AREAS = ["415", "305", "212", "512", "206", "312", "617", "702", "808", "405"]
STORE_TIME = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 11 AM in California, 2 PM in Miami


def numbers(n: int) -> list[str]:
    """``n`` distinct 10-digit US numbers spread over 10 area codes (several time zones)."""
    out = []
    for i in range(n):
        rest = i // len(AREAS)
        out.append(f"{AREAS[i % len(AREAS)]}{200 + rest // 10_000}{rest % 10_000:04d}")
    return out


def _memory() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def _clock() -> Callable[[], datetime]:
    shift = STORE_TIME - datetime.now(UTC)
    return lambda: datetime.now(UTC) + shift


def _config(
    db_url: str, crm_url: str, slack_url: str, token: str = "xoxb-bench", **extra: Any
) -> Any:
    from bridge.config import Config

    return Config(
        slack_bot_token=token,
        slack_signing_secret=SECRET,
        slack_api_url=slack_url,
        crmtext_user="bench",
        crmtext_password="bench",
        crmtext_api_url=crm_url,
        stores={STORE: CHANNEL},
        callback_token="bench-callback-token",
        public_url="http://127.0.0.1",
        database_url=db_url,
        blast_admins=frozenset({ADMIN}),
        **extra,
    )


# -- child processes ------------------------------------------------------------------------


def child_build(n: int, db_url: str) -> dict[str, Any]:
    """A database holding ``n`` opted-in customers, located at ingest like the sync does."""
    from bridge.store import OPTED_IN, open_store

    storage = open_store(db_url)
    storage.migrate()
    storage.stores.sync({STORE: CHANNEL})
    storage.customers.add_many(STORE, [(f"+1{p}", "", "") for p in numbers(n)], now=STORE_TIME)
    with storage.transaction():
        storage.db.execute("UPDATE customers SET status = ?", [OPTED_IN])
    storage.close()
    return {}


def child_preflight(db_url: str) -> dict[str, Any]:
    from bridge.blasts import BlastEngine
    from bridge.store import open_store

    storage = open_store(db_url)
    if storage.backend == "postgres":
        storage.db.execute("ANALYZE")
    engine = BlastEngine(_config(db_url, "", ""), storage, None, lambda: STORE_TIME)  # type: ignore[arg-type]
    before, _ = _memory()
    times, cpu, recipients = [], [], 0
    for _ in range(5):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = engine.check(STORE, TEXT, False)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        recipients = len(result.recipients)
    _, peak = _memory()
    return {
        "seconds": statistics.median(times),
        "cpu": statistics.median(cpu),
        "peak": peak,
        "rise": peak - before,
        "recipients": recipients,
    }


def child_serve_sim(n: int) -> None:
    """The CRM Text simulator with ``n`` opted-in customers; prints its URL, serves until
    stdin closes."""
    from bot.dev.fake_crmtext import SimStore, Simulator
    from bot.dev.live import LiveServer
    from bridge.store import OPTED_IN

    sim = Simulator("bench", "bench", [SimStore(STORE, "1", "Main St Pizza")], speed=1000)
    for phone in numbers(n):
        sim.add_customer(STORE, phone, OPTED_IN)
    server = LiveServer(sim.app())
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


def child_sync(crm_url: str, n: int, db_url: str) -> dict[str, Any]:
    """The audience sync into ``db_url`` (an empty migrated database)."""
    from bridge import audience
    from bridge.crmtext import CrmTextClient
    from bridge.phones import locate
    from bridge.store import open_store

    storage = open_store(db_url)
    storage.migrate()
    storage.stores.sync({STORE: CHANNEL})
    crm = CrmTextClient(f"{crm_url}/smapi/rest", "bench", "bench", timeout=120)
    waited = [0.0]
    fetch = crm.customers_by_status

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fetch(*args, **kwargs)
        finally:
            waited[0] += time.perf_counter() - began

    crm.customers_by_status = timed  # type: ignore[method-assign]
    locate("+14155550100")  # phonenumbers loads its time zone data once per process
    before, _ = _memory()
    began, began_cpu = time.perf_counter(), time.process_time()
    changed = audience.sync(storage, crm, STORE, STORE_TIME)
    seconds = time.perf_counter() - began
    cpu = time.process_time() - began_cpu
    _, peak = _memory()
    row = storage.db.one("SELECT count(*) AS n FROM customers")
    stored = row["n"] if row else 0
    storage.close()
    assert stored == n, (stored, n)
    return {
        "seconds": seconds,
        "crm_wait": waited[0],
        "cpu": cpu,
        "peak": peak,
        "rise": peak - before,
        "changed": changed,
    }


def child_acks(db_url: str, crm_url: str) -> dict[str, Any]:
    """The four blast steps through the real endpoint; returns ack and finish times."""
    from bot.app import services_of
    from bot.dev.fake_slack import FakeSlack
    from bot.dev.live import LiveServer, SlackSender
    from bot.worker import local_app

    out: dict[str, Any] = {}
    with FakeSlack() as slack:
        config = _config(
            db_url,
            f"{crm_url}/smapi/rest",
            slack.api_url,
            token=slack.bot_token,
            blast_typed_confirm_over=10**9,
        )
        app = local_app(config, clock=_clock())
        server = LiveServer(app)
        sender = SlackSender(server.url, SECRET, slack=slack)
        storage = services_of(app).storage

        def view() -> dict[str, Any]:
            return dict(slack.views[list(slack.views)[-1]])

        def shown(view_id: str) -> str:
            return json.dumps(slack.views[view_id]["blocks"])

        def wait(what: Callable[[], bool], timeout: float = 120) -> float:
            began = time.perf_counter()
            while not what():
                if time.perf_counter() - began > timeout:
                    raise TimeoutError("background work did not finish")
                time.sleep(0.01)
            return time.perf_counter() - began

        began = time.perf_counter()
        response = sender.command("/sms-blast", TEXT, user=ADMIN, channel=CHANNEL)
        out["/sms-blast"] = time.perf_counter() - began
        assert response.status_code == 200 and response.text == "", response.text
        form = view()
        out["/sms-blast done"] = wait(lambda: "recipients*" in shown(form["id"]))

        values = {
            "message": {"blast_text": {"type": "plain_text_input", "value": TEXT + "!"}},
            "options": {"blast_options": {"type": "checkboxes", "selected_options": []}},
            "image": {"file": {"type": "file_input", "files": []}},
        }
        action = {"action_id": "blast_text", "block_id": "message", "value": TEXT + "!"}
        began = time.perf_counter()
        response = sender.interaction(
            {
                "type": "block_actions",
                "user": {"id": ADMIN},
                "view": {**view(), "state": {"values": values}},
                "actions": [{**action, "type": "plain_text_input"}],
            }
        )
        out["keystroke"] = time.perf_counter() - began
        assert response.status_code == 200
        out["keystroke done"] = wait(lambda: (TEXT + "!") in shown(form["id"]))

        began = time.perf_counter()
        response = sender.interaction(
            {
                "type": "view_submission",
                "user": {"id": ADMIN},
                "view": {**view(), "state": {"values": values}},
            }
        )
        out["compose submit"] = time.perf_counter() - began
        assert response.json()["response_action"] == "update", response.text
        out["compose done"] = wait(
            lambda: slack.views[form["id"]].get("callback_id") == "blast_confirm"
        )

        confirm = view()
        ticks = [
            {"value": o["value"]}
            for b in confirm["blocks"]
            if b.get("block_id") == "acks"
            for o in b["element"]["options"]
        ]
        began = time.perf_counter()
        response = sender.interaction(
            {
                "type": "view_submission",
                "user": {"id": ADMIN},
                "view": {
                    **confirm,
                    "state": {
                        "values": {
                            "acks": {"acks": {"type": "checkboxes", "selected_options": ticks}}
                        }
                    },
                },
            }
        )
        out["confirm submit"] = time.perf_counter() - began
        assert response.status_code == 200 and response.text == "", response.text
        out["confirm done"] = wait(lambda: storage.blasts.rows(STORE)[0]["status"] != "draft")
        out["recipients"] = storage.blasts.rows(STORE)[0]["total"]
        services_of(app).close()
        server.stop()
    return out


# -- the parent -----------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.blast_scale", "--child", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[:1])} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class _Sim:
    """The simulator in its own process (its memory is not the app's)."""

    def __init__(self, n: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.blast_scale", "--child", "serve-sim", str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


class _SimHere:
    """The simulator in this process (the smoke test's tiny sizes: no process start-ups)."""

    def __init__(self, n: int) -> None:
        from bot.dev.fake_crmtext import SimStore, Simulator
        from bot.dev.live import LiveServer
        from bridge.store import OPTED_IN

        sim = Simulator("bench", "bench", [SimStore(STORE, "1", "Main St Pizza")], speed=1000)
        for phone in numbers(n):
            sim.add_customer(STORE, phone, OPTED_IN)
        self.server = LiveServer(sim.app())
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()


def _here(kind: str, *args: str) -> dict[str, Any]:
    """A child's work in this process (its memory numbers are then the whole process's)."""
    return {
        "build": lambda: child_build(int(args[0]), args[1]),
        "preflight": lambda: child_preflight(args[0]),
        "sync": lambda: child_sync(args[0], int(args[1]), args[2]),
        "acks": lambda: child_acks(args[0], args[1]),
    }[kind]()


def measure(
    sizes: list[int],
    new_database: Callable[[], str],
    *,
    acks: bool = True,
    in_process: bool = False,
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]], dict[str, Any]]:
    """Preflight and sync at each size, and the blast step acks at the largest; each in a
    fresh process (``in_process``: all in this one, for a smoke test), on databases made by
    ``new_database`` (a URL, SQLite or PostgreSQL)."""
    run = _here if in_process else _child
    pre: dict[int, dict[str, Any]] = {}
    sync: dict[int, dict[str, Any]] = {}
    steps: dict[str, Any] = {}
    for n in sizes:
        db = new_database()
        run("build", str(n), db)
        pre[n] = run("preflight", db)
        sim = _SimHere(n) if in_process else _Sim(n)
        try:
            sync[n] = run("sync", sim.url, str(n), new_database())
            if n == max(sizes) and acks:
                steps = run("acks", db, sim.url)
        finally:
            sim.close()
    return pre, sync, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="customer counts")
    parser.add_argument("--no-acks", action="store_true", help="skip the blast step acks")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.child:
        logging.disable(logging.WARNING)
        kind, *rest = args.child
        if kind == "serve-sim":
            child_serve_sim(int(rest[0]))
            return
        result = {
            "build": lambda: child_build(int(rest[0]), rest[1]),
            "preflight": lambda: child_preflight(rest[0]),
            "sync": lambda: child_sync(rest[0], int(rest[1]), rest[2]),
            "acks": lambda: child_acks(rest[0], rest[1]),
        }[kind]()
        print(json.dumps(result))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        made = iter(range(10**6))
        pre, sync, acks = measure(
            sizes,
            lambda: f"sqlite:///{Path(tmp) / f'{next(made)}.db'}",
            acks=not args.no_acks,
        )
    _print(sizes, pre, sync, acks)


def _print(
    sizes: list[int],
    pre: dict[int, dict[str, Any]],
    sync: dict[int, dict[str, Any]],
    acks: dict[str, Any],
) -> None:
    small, big = min(sizes), max(sizes)
    heads = [f"{n:,} customers" for n in sizes] + (
        [f"{big // small}x growth"] if big != small else []
    )
    rows: list[tuple[str, list[str], str]] = []

    def add(label: str, values: dict[int, float], fmt: str, target: str = "") -> None:
        cells = [fmt.format(values[n]) for n in sizes]
        if big != small:
            cells.append(f"{values[big] / values[small]:.1f}" if values[small] else "-")
        rows.append((label, cells, target))

    add("preflight time (s)", {n: pre[n]["seconds"] for n in sizes}, "{:.3f}", "< 0.5 s at 100k")
    add("preflight CPU time (s)", {n: pre[n]["cpu"] for n in sizes}, "{:.3f}")
    add("preflight peak RSS (MB)", {n: pre[n]["peak"] for n in sizes}, "{:.0f}")
    add("preflight +RSS (MB)", {n: pre[n]["rise"] for n in sizes}, "{:.1f}")
    add("sync time (s)", {n: sync[n]["seconds"] for n in sizes}, "{:.2f}")
    add("  of which simulator (s)", {n: sync[n]["crm_wait"] for n in sizes}, "{:.2f}")
    add("sync CPU time, app (s)", {n: sync[n]["cpu"] for n in sizes}, "{:.2f}", "linear")
    add("sync peak RSS (MB)", {n: sync[n]["peak"] for n in sizes}, "{:.0f}")
    add("sync +RSS (MB)", {n: sync[n]["rise"] for n in sizes}, "{:.1f}", "flat")
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':<{width}}" + "".join(f"{h:>18}" for h in heads) + "   target")
    for label, cells, target in rows:
        print(f"{label:<{width}}" + "".join(f"{c:>18}" for c in cells) + f"   {target}")
    if acks:
        print(
            f"\nblast steps at {acks['recipients']:,} recipients ({big:,} customers), "
            "through Flask/Bolt with signed requests:"
        )
        print(f"{'step':<18}{'ack (s)':>10}{'finished after (s)':>22}   target")
        for step, done in (
            ("/sms-blast", "/sms-blast done"),
            ("keystroke", "keystroke done"),
            ("compose submit", "compose done"),
            ("confirm submit", "confirm done"),
        ):
            print(f"{step:<18}{acks[step]:>10.3f}{acks[done]:>22.2f}   ack < 1 s")


if __name__ == "__main__":
    main()
