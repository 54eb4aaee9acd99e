"""The gunicorn entry point: ``gunicorn bot.wsgi:app`` (settings in gunicorn.conf.py).

With SQLite this process is the only one (it takes the database lock, migrates, and runs the
job workers itself unless RUN_WORKERS is off); with PostgreSQL it only serves: migrations are
the release step and jobs run in ``smsbridge worker`` processes.
"""

from __future__ import annotations

import sys

from bot.app import create_app
from bot.services import build_services
from bot.worker import DatabaseInUse, Worker, hold_database, migrate, uses_sqlite
from bridge import logsafe
from bridge.config import Config, ConfigError

logsafe.configure("%(asctime)s %(levelname)s %(name)s: %(message)s")

try:
    config = Config.from_env()
    lock = hold_database(config)
except (ConfigError, DatabaseInUse) as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(3) from exc

services = build_services(config)
worker: Worker | None = None
if lock is not None:
    migrate(services)
if uses_sqlite(config) and config.run_workers:
    worker = Worker(services, grace=15.0)  # within gunicorn's graceful_timeout (25 s)
    worker.start()
app = create_app(config, services=services)


def shutdown() -> None:
    """gunicorn's worker_exit hook: finish or give back running jobs, then let go."""
    if worker is not None:
        worker.shutdown()
    services.close()
    if lock is not None:
        lock.release()
