"""Media budgets: what a hostile attachment or picture link costs the process.

    python -m benchmarks.media_budget            # every scenario, about 10 s after the fix
    python -m benchmarks.media_budget bombs      # one scenario

Each scenario runs in a fresh child process (so one's memory does not hide another's) against
servers on 127.0.0.1, calling the real code paths: a staff attachment goes through
``Sender._store_picture`` (Slack download, checks, re-encoding, storage), an inbound picture
link through ``ThreadPoster._download``. Printed per scenario: extra peak memory of the process
(max RSS after minus before), wall and CPU seconds, and what happened.

* ``video``: a staff member attaches a 300 MB video (Slack's file object says video/mp4).
* ``bombs``: three 38-byte lossless WebP files of 9400 × 9400 pixels.
* ``exif``: a 320 × 240 JPEG carrying EXIF GPS and the camera owner: does the picture the
  customer gets still carry them?
* ``redirect``: a listed picture host redirects to an internal-only service on another
  127.0.0.1 port: is the internal service fetched?

The same file runs against older code too (it only uses what both have), e.g. from a checkout
of main: ``PYTHONPATH=. python /path/to/benchmarks/media_budget.py``.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from PIL import Image

MB = 1024 * 1024
WEBP_BOMB = (
    b"RIFF\x1e\x00\x00\x00WEBPVP8L\x11\x00\x00\x00/\xb7\xe4-\t\x07\xd0\xff\xfe\xf7\xbf"
    b"\xff\x81\x88\xe8\x7f\x00\x00"
)


class Files:
    """127.0.0.1 server: /video (300 MB, in chunks), /bomb, /photo, /redirect, /internal."""

    def __init__(self, photo: bytes) -> None:
        self.hits: list[str] = []
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                files.hits.append(self.path)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"{files.other}/internal")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, kind, size = {
                    "/video": (b"", "video/mp4", 300 * MB),
                    "/bomb": (WEBP_BOMB, "image/webp", len(WEBP_BOMB)),
                    "/photo": (photo, "image/jpeg", len(photo)),
                    "/internal": (b"\x89PNG INTERNAL-ONLY", "image/png", 18),
                }[self.path]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    if body:
                        self.wfile.write(body)
                        return
                    chunk = bytes(MB)
                    for _ in range(size // MB):
                        self.wfile.write(chunk)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
        for server in self.servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url, self.other = (f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers)


def photo_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "Jane Owner"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (37.0, 46.0, 29.0)
    out = io.BytesIO()
    Image.new("RGB", (320, 240), "teal").save(out, "JPEG", exif=exif)
    return out.getvalue()


def _now() -> datetime:
    return datetime.now(UTC)


def _parts(tmp: str, files: Files) -> tuple[Any, Any]:
    from slack_sdk import WebClient

    from bot.sending import Sender
    from bot.threads import ThreadPoster
    from bridge.config import Config
    from bridge.store import open_store

    config = Config(
        slack_bot_token="xoxb-bench",
        slack_signing_secret="bench-signing-secret",
        slack_api_url=f"{files.url}/api/",  # its host counts as a Slack host
        crmtext_user="bench",
        crmtext_password="bench",
        stores={"PIZZA": "CPIZZA01"},
        callback_token="bench-callback-token",
        public_url="http://127.0.0.1",
        database_url=f"sqlite:///{tmp}/bench.db",
        run_workers=False,
    )
    storage = open_store(config.database_url)
    storage.migrate()
    http = httpx.Client(timeout=30)
    client = WebClient(token=config.slack_bot_token, base_url=config.slack_api_url)
    poster = ThreadPoster(storage, client, http, _now)
    sender = Sender(config, storage, client, None, http, _now, poster)  # type: ignore[arg-type]
    return sender, poster


def _file(files: Files, path: str, name: str, kind: str, size: int) -> dict[str, Any]:
    url = f"{files.url}{path}"
    return {
        "id": f"F{path.strip('/').upper()}",
        "name": name,
        "mimetype": kind,
        "size": size,
        "is_external": False,
        "url_private": url,
        "url_private_download": url,
    }


def _attach(sender: Any, item: dict[str, Any]) -> str:
    try:
        sender._store_picture(0, item)
    except Exception as exc:  # the outcome is what is measured
        return f"refused: {exc}"
    return "accepted and stored"


def scenario(name: str, tmp: str) -> str:
    photo = photo_with_gps()
    files = Files(photo)
    sender, poster = _parts(tmp, files)
    if name == "video":
        outcome = _attach(sender, _file(files, "/video", "clip.mp4", "video/mp4", 300 * MB))
        return f"{outcome} (downloads of the video: {files.hits.count('/video')})"
    if name == "bombs":
        item = _file(files, "/bomb", "bomb.webp", "image/webp", len(WEBP_BOMB))
        outcomes = [_attach(sender, item) for _ in range(3)]
        return f"3 x {outcomes[0]}" if len(set(outcomes)) == 1 else "; ".join(outcomes)
    if name == "exif":
        sender._store_picture(0, _file(files, "/photo", "p.jpg", "image/jpeg", len(photo)))
        [row] = sender.storage.db.all("SELECT data FROM media")
        data = bytes(row["data"])
        return "EXIF GPS/owner reach the customer" if b"Jane Owner" in data else "no EXIF"
    if name == "redirect":
        listed = files.url
        if hasattr(poster, "media_hosts"):
            from bridge.medialinks import parse_host

            poster.media_hosts = (parse_host(listed),)
        try:
            data, _ = poster._download(f"{listed}/redirect", 1)
            outcome = f"fetched {len(data)} bytes"
        except Exception as exc:
            outcome = f"refused: {exc}"
        return f"{outcome}; internal service requested: {'/internal' in files.hits}"
    raise SystemExit(f"unknown scenario {name}")


def child(name: str) -> None:
    import bot.sending  # noqa: F401  # imported before measuring
    import bot.threads  # noqa: F401
    import bridge.store  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = scenario(name, tmp)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"extra_mib": (after - before) / 1024, "wall": wall, "cpu": cpu, "out": outcome})
    )


SCENARIOS = ("video", "bombs", "exif", "redirect")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1])
        return 0
    names = argv or list(SCENARIOS)
    print(f"{'scenario':<9} {'extra peak MiB':>14} {'wall s':>7} {'CPU s':>6}  outcome")
    run: Callable[[str], subprocess.CompletedProcess[str]] = lambda n: subprocess.run(  # noqa: E731
        [sys.executable, __file__, "--child", n], capture_output=True, text=True, check=False
    )
    for name in names:
        done = run(name)
        if done.returncode != 0:
            print(f"{name:<9} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:<9} {r['extra_mib']:>14.0f} {r['wall']:>7.2f} {r['cpu']:>6.2f}  {r['out']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
