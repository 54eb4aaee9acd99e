"""A worker process for tests: ``python -m tests.worker_process`` runs the real job table and
the real runner (``bot.worker.serve``: lanes, heartbeat, SIGTERM), configured from the
environment like ``smsbridge worker``, with chosen kinds' handlers swapped for ones that
misbehave: ``--crash KIND`` kills the process (``os._exit``, as the out-of-memory killer
would), ``--hang KIND`` never finishes. ``--clock-offset SECONDS`` shifts the process's clock
(every test process shares one shifted time, so a blast's quiet hours do not depend on when
the test runs); ``--blast-rate N`` sends N blast texts a second instead of one."""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.services import build_services
from bot.worker import serve
from bridge.config import Config
from bridge.store import utcnow


def crash(payload: dict[str, Any]) -> None:
    print(f"crashing on {payload}", flush=True)
    os._exit(137)


def hang(payload: dict[str, Any]) -> None:
    print(f"running {payload}", flush=True)
    time.sleep(600)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crash", action="append", default=[])
    parser.add_argument("--hang", action="append", default=[])
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=20.0)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--blast-rate", type=float, default=0.0)
    args = parser.parse_args()
    offset = timedelta(seconds=args.clock_offset)

    def clock() -> datetime:
        return utcnow() + offset

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    services = build_services(Config.from_env(), clock=clock)
    if args.blast_rate:
        engine = services.blasts.engine
        engine.settings = replace(engine.settings, individual_rate=args.blast_rate)
    runner = services.runner
    runner.lease = timedelta(seconds=args.lease)
    for kind in args.crash:
        runner.jobs[kind] = replace(runner.jobs[kind], handler=crash)
    for kind in args.hang:
        runner.jobs[kind] = replace(runner.jobs[kind], handler=hang)
    print("ready", flush=True)
    return serve(runner, grace=args.grace)


if __name__ == "__main__":
    raise SystemExit(main())
