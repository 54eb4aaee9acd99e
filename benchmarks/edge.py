"""Hostile input at the HTTP edge, against real gunicorn as the Procfile runs it (SQLite, one
process): ``python -m benchmarks.edge`` prints one line per finding of issue 10 (asserts
nothing). ``--only NAME`` runs one measurement (names: see ``MEASUREMENTS``).

* ``big``: one unsigned 20 MB POST to /slack/events: status, seconds, worker peak RSS growth
  (VmHWM) and how much the log grew; ``undercap``: the same with 1 MB (just under the cap).
* ``chunked``: a 3 MB callback sent ``Transfer-Encoding: chunked``: status, stored or not.
* ``quadratic``: a callback whose text is ``'a' + '!' * 60000 + 'a'`` (180 KB form-encoded),
  and meanwhile another callback and /healthz: seconds for each.
* ``slow``: 8 connections dripping their headers one byte a second (reconnecting when cut
  off), then GET /healthz;
  ``slowflood``: 40 of them (more than gunicorn's threads).
* ``odd``: signed Slack payloads of odd shapes: how many answered 5xx.
* ``garbage``: unsigned ``{bad``, ``[]``, ``payload=%7Bx``: statuses and content types.
* ``media``: a /media path with an encoded newline: does a forged log line appear.
* ``healthz``: what /healthz tells anyone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = secrets.token_hex(16)
CALLBACK_TOKEN = secrets.token_urlsafe(32)
CRM_USER, CRM_PASSWORD = "bench", secrets.token_urlsafe(16)
JANE = "4155550101"


class Gunicorn:
    """smsbridge under gunicorn (gunicorn.conf.py, as the Procfile runs it) on a free port."""

    def __init__(self, folder: Path, slack: FakeSlack, sim_url: str) -> None:
        self.db = folder / "smsbridge.db"
        self.log_path = folder / "gunicorn.log"
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "CRMTEXT_USER": CRM_USER,
            "CRMTEXT_PASSWORD": CRM_PASSWORD,
            "CRMTEXT_API_URL": f"{sim_url}/smapi/rest",
            "SMS_STORES": "PIZZA=CPIZZA01",
            "CALLBACK_TOKEN": CALLBACK_TOKEN,
            "PUBLIC_URL": "https://bridge.example.com",
            "DATABASE_URL": f"sqlite:///{self.db}",
            "PORT": str(port),
        }
        self.log = self.log_path.open("wb")
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.proc = subprocess.Popen(
            [gunicorn, "bot.wsgi:app"], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()}")
            time.sleep(0.2)

    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the worker, in KiB."""
        status = Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines()
        values = {
            line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith("Vm")
        }
        return values["VmRSS"], values["VmHWM"]

    def stored_texts(self) -> list[str]:
        with sqlite3.connect(self.db) as db:
            return [row[0] for row in db.execute("SELECT text FROM messages")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(call: Callable[[], httpx.Response]) -> tuple[str, float]:
    start = time.monotonic()
    try:
        status = str(call().status_code)
    except httpx.TimeoutException:
        status = "timeout"
    except httpx.TransportError as exc:
        status = type(exc).__name__
    return status, time.monotonic() - start


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    verifier = SignatureVerifier(SIGNING_SECRET)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": verifier.generate_signature(timestamp=timestamp, body=body),
    }


def callback_form(msg_id: str, text: str) -> dict[str, str]:
    return {"keyword": "PIZZA", "mobileNum": JANE, "msgID": msg_id, "message": text}


def measure_big(app: Gunicorn, size: int = 20 * 1024 * 1024 - 100) -> str:
    rss_before, _ = app.memory()
    log_before = app.log_path.stat().st_size
    body = b'{"type":"event_callback","event":{"text":"' + b"x" * size + b'"}}'
    status, seconds = _timed(
        lambda: httpx.post(
            f"{app.url}/slack/events",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
    )
    time.sleep(0.5)
    _, peak = app.memory()
    grown = (app.log_path.stat().st_size - log_before) / 1024
    return (
        f"unsigned {len(body) / 2**20:.1f} MiB to /slack/events: {status} in {seconds:.2f} s; "
        f"worker peak RSS "
        f"+{(peak - rss_before) / 1024:.0f} MiB; log +{grown:.0f} KiB"
    )


def measure_chunked(app: Gunicorn) -> str:
    text = "x" * (3 * 1024 * 1024)
    body = urlencode(callback_form("chunked1", text)).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    status, seconds = _timed(
        lambda: httpx.post(
            f"{app.url}/sms/inbound/{CALLBACK_TOKEN}",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=60,
        )
    )
    stored = max((len(t) for t in app.stored_texts()), default=0)
    return f"3 MB chunked callback: {status} in {seconds:.2f} s; longest stored text {stored}"


def measure_quadratic(app: Gunicorn) -> str:
    text = "a" + "!" * 60000 + "a"
    results: dict[str, tuple[str, float]] = {}

    def slow() -> None:
        results["quadratic"] = _timed(
            lambda: httpx.post(
                f"{app.url}/sms/inbound/{CALLBACK_TOKEN}",
                data=callback_form("quad1", text),
                timeout=120,
            )
        )

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    results["other callback"] = _timed(
        lambda: httpx.post(
            f"{app.url}/sms/inbound/{CALLBACK_TOKEN}",
            data=callback_form("other1", "Is my pizza on the way?"),
            timeout=120,
        )
    )
    results["healthz"] = _timed(lambda: httpx.get(f"{app.url}/healthz", timeout=120))
    thread.join()
    size = len(urlencode(callback_form("quad1", text)))
    parts = ", ".join(f"{name} {s} in {t:.2f} s" for name, (s, t) in results.items())
    return f"quadratic text ({size // 1024} KB callback): {parts}"


def measure_slow(app: Gunicorn, connections: int = 8) -> str:
    host, port = "127.0.0.1", int(app.url.rsplit(":", 1)[1])
    stop = threading.Event()
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"

    def drip() -> None:  # reconnects when the server hangs up, like an attacker would
        while not stop.is_set():
            try:
                with socket.create_connection((host, port)) as sock:
                    for byte in request:
                        if stop.is_set():
                            return
                        sock.sendall(bytes([byte]))
                        stop.wait(1.0)
            except OSError:
                continue

    threads = [threading.Thread(target=drip, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    time.sleep(7)  # past gunicorn's 5 s wait for a first byte
    status, seconds = _timed(lambda: httpx.get(f"{app.url}/healthz", timeout=30))
    stop.set()
    return f"{connections} clients dripping headers: /healthz {status} in {seconds:.2f} s"


def odd_payloads(count: int, seed: int = 7) -> Iterator[tuple[bytes, str]]:
    rng = random.Random(seed)
    atoms: list[Any] = [None, 0, -1, 1.5, "", "x", [], {}, True, "C1", "U1", "1.2"]
    keys = [
        "type",
        "event",
        "user",
        "channel",
        "team",
        "actions",
        "view",
        "text",
        "ts",
        "thread_ts",
        "subtype",
        "command",
        "trigger_id",
        "payload",
        "team_id",
        "bot_id",
        "files",
        "message",
        "container",
        "state",
        "callback_id",
        "private_metadata",
    ]
    types = [
        "event_callback",
        "block_actions",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "url_verification",
        "app_rate_limited",
        "bogus",
    ]

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 2 or roll < 0.4:
            return rng.choice(atoms)
        if roll < 0.7:
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 3))]

    for i in range(count):
        payload = {k: value(1) for k in rng.sample(keys, rng.randint(0, 6))}
        payload["type"] = rng.choice(types)
        if payload["type"] == "event_callback":
            event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
            event["type"] = rng.choice(["message", "app_mention", "member_joined_channel", "x"])
            payload["event"] = event
            payload["event_id"] = f"Ev{i}"
            yield json.dumps(payload).encode(), "application/json"
        elif rng.random() < 0.2:
            form = {k: str(v) for k, v in payload.items()}
            form["command"] = rng.choice(["/sms", "/sms-blast", "/nope"])
            yield urlencode(form).encode(), "application/x-www-form-urlencoded"
        else:
            body = urlencode({"payload": json.dumps(payload)}).encode()
            yield body, "application/x-www-form-urlencoded"


def measure_odd(app: Gunicorn, count: int = 600) -> str:
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:
        for body, content_type in odd_payloads(count):
            response = client.post(
                f"{app.url}/slack/events",
                content=body,
                headers={"Content-Type": content_type, **signed(body)},
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    fives = sum(n for s, n in statuses.items() if s >= 500)
    spread = dict(sorted(statuses.items()))
    return f"{count} signed odd Slack payloads: {fives} answered 5xx ({spread})"


def measure_garbage(app: Gunicorn) -> str:
    parts = []
    for body, content_type in (
        (b"{bad", "application/json"),
        (b"[]", "application/json"),
        (b"payload=%7Bx", "application/x-www-form-urlencoded"),
    ):
        response = httpx.post(
            f"{app.url}/slack/events", content=body, headers={"Content-Type": content_type}
        )
        parts.append(
            f"{body.decode()!r} {response.status_code} {response.headers.get('content-type')}"
        )
    bad = httpx.post(f"{app.url}/sms/inbound/{CALLBACK_TOKEN}", data={"keyword": "<b>x</b>"})
    parts.append(f"callback 400 as {bad.headers.get('content-type')}")
    return "unsigned garbage: " + "; ".join(parts)


def measure_media(app: Gunicorn) -> str:
    before = app.log_path.read_text(errors="replace")
    httpx.get(f"{app.url}/media/1/2/x%0A2026-01-01 00:00:00 ERROR forged: disk full.png")
    time.sleep(0.2)
    new = app.log_path.read_text(errors="replace")[len(before) :]
    forged = [line for line in new.splitlines() if line.startswith("2026-01-01 00:00:00 ERROR")]
    return f"/media path with %0A: forged log lines {len(forged)}"


def measure_healthz(app: Gunicorn) -> str:
    response = httpx.get(f"{app.url}/healthz")
    return f"/healthz to anyone: {response.status_code} {response.text.strip()[:120]!r}"


MEASUREMENTS: dict[str, Callable[[Gunicorn], str]] = {
    "garbage": measure_garbage,
    "media": measure_media,
    "healthz": measure_healthz,
    "big": measure_big,
    "undercap": lambda app: measure_big(app, size=1000 * 1000),
    "chunked": measure_chunked,
    "odd": measure_odd,
    "slow": measure_slow,
    "slowflood": lambda app: measure_slow(app, connections=40),
    "quadratic": measure_quadratic,
}


@contextmanager
def running() -> Iterator[Gunicorn]:
    with tempfile.TemporaryDirectory() as folder, FakeSlack() as slack:
        sim = Simulator(CRM_USER, CRM_PASSWORD, [SimStore("PIZZA", "1001", "Main St Pizza")])
        sim_server = LiveServer(sim.app())
        app = Gunicorn(Path(folder), slack, sim_server.url)
        try:
            yield app
        finally:
            app.stop()
            sim_server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MEASUREMENTS), action="append")
    args = parser.parse_args(argv)
    with running() as app:
        for name, measure in MEASUREMENTS.items():
            if args.only and name not in args.only:
                continue
            print(f"{name:10} {measure(app)}", flush=True)


if __name__ == "__main__":
    main()
