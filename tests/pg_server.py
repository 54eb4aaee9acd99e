"""A throwaway PostgreSQL for tests: initdb into a temp dir, on a free port on 127.0.0.1.

Used by the test fixtures (tests/conftest.py) and by .ci/run::

    python -m tests.pg_server start      # prints "URL DIR"
    python -m tests.pg_server stop DIR

The server runs as a non-root user (initdb refuses root): the current user, or, as root,
``SMSBRIDGE_PG_USER`` / ``smsbridge-pg`` / ``nobody``. Durability is off (fsync, synchronous
commit, full-page writes): the data dies with the test run anyway.

Each test gets its own database, copied from a migrated template (``CREATE DATABASE …
TEMPLATE``), which takes milliseconds.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found. Install them with"
    " `apt-get install -y postgresql` (or set SMSBRIDGE_TEST_POSTGRES_URL to a server the"
    " tests may create databases on)."
)


def bin_dir() -> Path:
    """The folder holding initdb and pg_ctl (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(INSTALL_HINT)


def _version(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def _run_as() -> str | None:
    """The user to run PostgreSQL as, or None for the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("SMSBRIDGE_PG_USER", ""), "smsbridge-pg", "nobody"):
        if name:
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
    raise RuntimeError("running as root and no non-root user to run PostgreSQL as")


def _command(user: str | None, *args: str) -> list[str]:
    return ["runuser", "-u", user, "--", *args] if user else list(args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start() -> tuple[str, Path]:
    """Start a server; return its URL (user postgres, database postgres) and its folder."""
    binaries, user = bin_dir(), _run_as()
    folder = Path(tempfile.mkdtemp(prefix="smsbridge-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data = folder / "data"
    subprocess.run(
        _command(
            user,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--locale=C",
            "--encoding=UTF8",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = (
        f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=300"
    )
    result = subprocess.run(
        _command(
            user,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", folder


def stop(folder: Path) -> None:
    """Stop the server started in ``folder`` and delete it."""
    data = folder / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            _command(
                _run_as(), str(bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"
            ),
            capture_output=True,
        )
    shutil.rmtree(folder, ignore_errors=True)


# -- one server and a migrated template per test session ---------------------------------------

_lock = threading.Lock()
_server: dict[str, str] = {}


def server_url() -> str:
    """The session's server: SMSBRIDGE_TEST_POSTGRES_URL, or one started now (and stopped at
    exit)."""
    with _lock:
        if "url" not in _server:
            url = os.environ.get("SMSBRIDGE_TEST_POSTGRES_URL", "").strip()
            if not url:
                url, folder = start()
                atexit.register(stop, folder)
            _server["url"] = url
        return _server["url"]


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def template_name() -> str:
    """A migrated database that test databases are copied from (made once per session)."""
    with _lock:
        name = _server.get("template")
    if name:
        return name
    from bridge.store import open_store

    name = f"smsbridge_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _admin(f'CREATE DATABASE "{name}"')
    store = open_store(_with_database(server_url(), name))
    store.migrate()
    store.close()
    atexit.register(_drop, name)
    with _lock:
        _server["template"] = name
    return name


def fresh_database() -> str:
    """The URL of a new, migrated, empty database."""
    template = template_name()
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    if os.environ.get("SMSBRIDGE_TEST_POSTGRES_URL"):  # a server we do not throw away
        atexit.register(_drop, name)
    return _with_database(server_url(), name)


def empty_database() -> str:
    """The URL of a new database with no tables at all."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    _admin(f'CREATE DATABASE "{name}"')
    return _with_database(server_url(), name)


def reset_database(url: str) -> None:
    """Drop the database behind ``url`` and make it again, migrated and empty (a lost disk)."""
    name = url.rpartition("/")[2]
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name()}"')


def _drop(name: str) -> None:
    try:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # the server may be gone already  # noqa: BLE001
        pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["start"]:
        started_url, started_folder = start()
        print(started_url, started_folder)
    elif sys.argv[1:2] == ["stop"] and len(sys.argv) == 3:
        stop(Path(sys.argv[2]))
    else:
        raise SystemExit("usage: python -m tests.pg_server start | stop DIR")
