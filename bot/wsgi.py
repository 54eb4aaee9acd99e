"""The gunicorn entry point: ``gunicorn bot.wsgi:app`` (see Procfile)."""

from __future__ import annotations

import logging
import sys

from bot.app import create_app
from bridge.config import Config, ConfigError

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

try:
    app = create_app(Config.from_env())
except ConfigError as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(3) from exc
