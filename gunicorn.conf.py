"""gunicorn settings, read from the working directory by ``gunicorn bot.wsgi:app`` (Procfile).

With PostgreSQL: WEB_CONCURRENCY processes (default 2), each serving only (jobs run in
``smsbridge worker``). With SQLite: one process, which also runs the job workers (a second
one would be refused: see bot/worker.py). On SIGTERM (a deploy, a restart) a process stops
accepting, finishes its requests and gives back or finishes its running jobs within
``graceful_timeout``, before the platform's kill 30 s after SIGTERM (Heroku, Render); the
listening socket belongs to the master, so restarting one worker refuses no callback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# The platform's settings (PORT, WEB_CONCURRENCY) and whether the database is SQLite, which
# decides how many processes may run; the app itself reads its configuration in bridge/config.py.
_sqlite = (
    os.environ.get("DATABASE_URL", "").strip().startswith("sqlite:")
    or not os.environ.get("DATABASE_URL", "").strip()
)

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
workers = 1 if _sqlite else int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread with read deadlines (a slow client cannot hold a thread): see bot/serving.py
worker_class = "bot.serving.DeadlineWorker"
threads = 32
logger_class = "bot.serving.SafeLogger"  # no callback token, no forged line in its logs
timeout = 60
graceful_timeout = 25
keepalive = 5
control_socket_disable = True  # newer gunicorn: no management socket in $HOME


def worker_exit(server: Any, worker: Any) -> None:
    """The worker stopped serving: finish or give back its running jobs, then let go."""
    wsgi = sys.modules.get("bot.wsgi")
    if wsgi is not None:
        wsgi.shutdown()
