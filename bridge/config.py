"""Configuration, read from the environment in exactly one place: :meth:`Config.from_env`."""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bridge.medialinks import DEFAULT_INBOUND_MEDIA_HOSTS, parse_hosts

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_CRMTEXT_API_URL = "https://restapi.crmtext.com/smapi/rest"
DEFAULT_DATABASE_URL = "sqlite:///smsbridge.db"


class ConfigError(ValueError):
    """The environment is missing values or has malformed ones; the message names every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"smsbridge cannot start; fix these settings:\n{lines}")


@dataclass(frozen=True)
class Config:
    """Everything smsbridge needs to run. Tests build one directly."""

    slack_bot_token: str
    slack_signing_secret: str
    crmtext_user: str
    crmtext_password: str
    stores: Mapping[str, str]  # KEYWORD -> Slack channel ID
    callback_token: str
    public_url: str
    slack_api_url: str = DEFAULT_SLACK_API_URL
    crmtext_api_url: str = DEFAULT_CRMTEXT_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    blast_admins: frozenset[str] = frozenset()
    ops_channel: str = ""  # Slack channel ID for alerts; empty: DM the blast admins
    port: int = 3000
    # Optional product settings (documented in the README).
    thread_quiet_days: float = 7.0
    signatures: Mapping[str, str] = field(default_factory=dict)  # KEYWORD -> "– Main St Pizza"
    media_ttl_hours: float = 48.0
    price_per_unit: float = 0.0075
    blast_monthly_limit: int = 2
    blast_typed_confirm_over: int = 100
    blast_mode: str = "auto"  # auto | individual | campaign
    run_workers: bool = True
    # Our own pacing of chat.postMessage per channel (Slack allows about 1/s with short
    # bursts); 0 turns it off (the test suite runs on a frozen clock).
    slack_posts_per_second: float = 1.0
    slack_post_burst: int = 3
    # Where customers' pictures (inbound MMS links) may be fetched from: ``host``,
    # ``host:port`` or ``http://host:port`` entries (bridge/medialinks.py).
    inbound_media_hosts: tuple[str, ...] = DEFAULT_INBOUND_MEDIA_HOSTS

    @property
    def sqlite_path(self) -> str:
        """The file behind a ``sqlite:///`` URL (``:memory:`` allowed)."""
        return self.database_url.removeprefix("sqlite:///")

    def channel_for(self, keyword: str) -> str | None:
        return self.stores.get(keyword.upper())

    def keyword_for(self, channel_id: str) -> str | None:
        return next((k for k, c in self.stores.items() if c == channel_id), None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read and validate the environment; raise :class:`ConfigError` naming every problem."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def need(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        token = need("SLACK_BOT_TOKEN")
        if token and not token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        secret = need("SLACK_SIGNING_SECRET")
        user = need("CRMTEXT_USER")
        password = need("CRMTEXT_PASSWORD")
        stores = _parse_pairs("SMS_STORES", need("SMS_STORES"), problems, _CHANNEL)
        callback_token = need("CALLBACK_TOKEN")
        if callback_token and len(callback_token) < 16:
            problems.append(
                "CALLBACK_TOKEN must be at least 16 characters (it guards the callback)"
            )
        public_url = need("PUBLIC_URL").rstrip("/")
        if public_url and not re.match(r"^https?://[^/\s]+", public_url):
            problems.append(f"PUBLIC_URL must be an http(s) URL, got {public_url!r}")
        database_url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        _check_database(database_url, problems)
        slack_api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
        crmtext_api_url = env.get("CRMTEXT_API_URL", "").strip() or DEFAULT_CRMTEXT_API_URL
        for name, url in (("SLACK_API_URL", slack_api_url), ("CRMTEXT_API_URL", crmtext_api_url)):
            if not re.match(r"^https?://[^/\s]+", url):
                problems.append(f"{name} must be an http(s) URL, got {url!r}")
        admins = frozenset(a for a in re.split(r"[\s,]+", env.get("BLAST_ADMINS", "")) if a)
        bad_admins = sorted(a for a in admins if not re.fullmatch(r"[UW][A-Z0-9]{2,}", a))
        if bad_admins:
            problems.append(
                f"BLAST_ADMINS must list Slack user IDs (U…); bad: {', '.join(bad_admins)}"
            )
        ops_channel = env.get("OPS_CHANNEL", "").strip()
        if ops_channel and not _CHANNEL.fullmatch(ops_channel):
            problems.append(
                f"OPS_CHANNEL: {ops_channel!r} is not a Slack channel ID (like C0123ABCD)"
            )
        port = _number("PORT", env.get("PORT", "3000"), problems, int)
        if "PORT must be a number" not in " ".join(problems) and not 1 <= port <= 65535:
            problems.append(f"PORT must be between 1 and 65535, got {port:g}")
        quiet_days = _number(
            "THREAD_QUIET_DAYS", env.get("THREAD_QUIET_DAYS", "7"), problems, float
        )
        if quiet_days == 0 and "THREAD_QUIET_DAYS must" not in " ".join(problems):
            problems.append("THREAD_QUIET_DAYS must be more than 0")
        shared = sorted({c for c in stores.values() if list(stores.values()).count(c) > 1})
        if shared:
            problems.append(
                f"SMS_STORES: each store needs its own channel; shared: {', '.join(shared)}"
            )
        signatures = _parse_pairs(
            "STORE_SIGNATURES", env.get("STORE_SIGNATURES", ""), problems, None, separator=";"
        )
        price = _number(
            "SMS_PRICE_PER_UNIT", env.get("SMS_PRICE_PER_UNIT", "0.0075"), problems, float
        )
        monthly = _number("BLAST_MONTHLY_LIMIT", env.get("BLAST_MONTHLY_LIMIT", "2"), problems, int)
        typed = _number(
            "BLAST_TYPED_CONFIRM_OVER", env.get("BLAST_TYPED_CONFIRM_OVER", "100"), problems, int
        )
        mode = env.get("BLAST_MODE", "auto").strip() or "auto"
        if mode not in ("auto", "individual", "campaign"):
            problems.append(f"BLAST_MODE must be auto, individual or campaign, got {mode!r}")
        unknown_sig = sorted(set(signatures) - set(stores))
        if stores and unknown_sig:
            problems.append(
                f"STORE_SIGNATURES names stores not in SMS_STORES: {', '.join(unknown_sig)}"
            )
        try:
            media_hosts = parse_hosts(env.get("INBOUND_MEDIA_HOSTS", ""))
        except ValueError as exc:
            problems.append(f"INBOUND_MEDIA_HOSTS: {exc}")
            media_hosts = ()
        if problems:
            raise ConfigError(problems)
        return cls(
            slack_bot_token=token,
            slack_signing_secret=secret,
            slack_api_url=slack_api_url,
            crmtext_user=user,
            crmtext_password=password,
            crmtext_api_url=crmtext_api_url,
            stores=stores,
            callback_token=callback_token,
            public_url=public_url,
            database_url=database_url,
            blast_admins=admins,
            ops_channel=ops_channel,
            port=int(port),
            thread_quiet_days=float(quiet_days),
            signatures=signatures,
            price_per_unit=float(price),
            blast_monthly_limit=int(monthly),
            blast_typed_confirm_over=int(typed),
            blast_mode=mode,
            inbound_media_hosts=media_hosts or DEFAULT_INBOUND_MEDIA_HOSTS,
        )


_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")


def _check_database(url: str, problems: list[str]) -> None:
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        if not parts.hostname and "host=" not in parts.query:
            problems.append("DATABASE_URL must name a server, like postgresql://user@host/db")
        elif importlib.util.find_spec("psycopg") is None:
            problems.append(
                "DATABASE_URL is a PostgreSQL URL but psycopg is not installed:"
                " pip install 'smsbridge[postgres]'"
            )
    elif not url.startswith("sqlite:///"):
        problems.append("DATABASE_URL must start with sqlite:/// or postgresql://")
    else:
        path = url.removeprefix("sqlite:///")
        folder = os.path.dirname(path) or "."
        if not path or path.endswith("/"):
            problems.append("DATABASE_URL must name a file, like sqlite:///smsbridge.db")
        elif path != ":memory:" and not os.path.isdir(folder):
            problems.append(f"DATABASE_URL: the folder {folder!r} does not exist")


def _parse_pairs(
    name: str,
    raw: str,
    problems: list[str],
    value_pattern: re.Pattern[str] | None,
    separator: str = ",",
) -> dict[str, str]:
    """Parse ``KEY=VALUE,KEY=VALUE``; keys are CRM Text keywords (upper-cased)."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(separator))):
        key, sep, value = item.partition("=")
        key, value = key.strip().upper(), value.strip()
        if not sep or not key or not value:
            problems.append(f"{name}: {item!r} is not KEYWORD=VALUE")
        elif not re.fullmatch(r"[A-Z0-9]{4,19}", key):
            problems.append(f"{name}: {key!r} is not a CRM Text keyword (4-19 letters or digits)")
        elif value_pattern is not None and not value_pattern.fullmatch(value):
            problems.append(f"{name}: {value!r} is not a Slack channel ID (like C0123ABCD)")
        elif key in pairs:
            problems.append(f"{name}: {key} is listed twice")
        else:
            pairs[key] = value
    return pairs


def _number(name: str, raw: str, problems: list[str], kind: type[int] | type[float]) -> float:
    try:
        value = kind(raw.strip())
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return 0
    if not math.isfinite(value):
        problems.append(f"{name} must be a number, got {raw!r}")
        return 0
    if value < 0:
        problems.append(f"{name} must not be negative")
    return value
