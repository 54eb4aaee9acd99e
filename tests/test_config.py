"""Configuration from the environment: defaults, and one message naming every problem."""

from __future__ import annotations

import pytest

from bridge.config import Config, ConfigError

GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "8f42a73054b5a2d6e7c1f09b3d8e6a41",
    "CRMTEXT_USER": "user",
    "CRMTEXT_PASSWORD": "pass",
    "SMS_STORES": "pizza=C0123ABCD, CARS=G0456EFGH",
    "CALLBACK_TOKEN": "cb-Xq7vT2mK9pL4wR8nZ3yB6cF1",
    "PUBLIC_URL": "https://bridge.example.com/",
}


def test_defaults_and_parsing() -> None:
    config = Config.from_env({**GOOD, "BLAST_ADMINS": "U111, U222"})
    assert config.stores == {"PIZZA": "C0123ABCD", "CARS": "G0456EFGH"}
    assert config.slack_api_url == "https://slack.com/api/"
    assert config.crmtext_api_url == "https://restapi.crmtext.com/smapi/rest"
    assert config.database_url == "sqlite:///smsbridge.db"
    assert config.sqlite_path == "smsbridge.db"
    assert config.public_url == "https://bridge.example.com"
    assert config.blast_admins == frozenset({"U111", "U222"})
    assert config.port == 3000
    assert config.channel_for("pizza") == "C0123ABCD"
    assert config.keyword_for("G0456EFGH") == "CARS"


def test_empty_blast_admins_means_nobody() -> None:
    assert Config.from_env(GOOD).blast_admins == frozenset()


def test_every_problem_is_named_in_one_message() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxp-user-token",
        "SMS_STORES": "PIZZA=not-a-channel,BAD",
        "CALLBACK_TOKEN": "short",
        "PUBLIC_URL": "ftp://x",
        "PORT": "eighty",
        "DATABASE_URL": "mysql://x",
        "BLAST_ADMINS": "sam",
        "SLACK_API_URL": "slack.com/api",
        "THREAD_QUIET_DAYS": "nan",
    }
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    assert caught.value.problems == [
        "SLACK_BOT_TOKEN must be a bot token starting with xoxb-",
        "SLACK_SIGNING_SECRET is not set",
        "CRMTEXT_USER is not set",
        "CRMTEXT_PASSWORD is not set",
        "SMS_STORES: 'not-a-channel' is not a Slack channel ID (like C0123ABCD)",
        "SMS_STORES: 'BAD' is not KEYWORD=VALUE",
        "CALLBACK_TOKEN must be at least 20 characters: generate one with:"
        ' python -c "import secrets; print(secrets.token_urlsafe(32))"',
        "PUBLIC_URL must be an http(s) URL, got 'ftp://x'",
        "DATABASE_URL must start with sqlite:/// or postgresql://",
        "SLACK_API_URL must be an http(s) URL, got 'slack.com/api'",
        "BLAST_ADMINS must list Slack user IDs (U…); bad: sam",
        "PORT must be a number, got 'eighty'",
        "THREAD_QUIET_DAYS must be a number, got 'nan'",
    ]
    assert str(caught.value).startswith("smsbridge cannot start; fix these settings:\n  - ")


@pytest.mark.parametrize(
    "url", ["postgres://u:p@db.example.com:5432/d", "postgresql://u@127.0.0.1/smsbridge"]
)
def test_postgres_urls_are_accepted(url: str) -> None:
    """Heroku sets postgres://, Render postgresql://: both work as given."""
    assert Config.from_env({**GOOD, "DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("PORT", "99999", "PORT must be between 1 and 65535, got 99999"),
        (
            "DATABASE_URL",
            "sqlite:///",
            "DATABASE_URL must name a file, like sqlite:///smsbridge.db",
        ),
        (
            "DATABASE_URL",
            "sqlite:////no/such/dir/x.db",
            "DATABASE_URL: the folder '/no/such/dir' does not exist",
        ),
        (
            "DATABASE_URL",
            "postgresql:///db",
            "DATABASE_URL must name a server, like postgresql://user@host/db",
        ),
    ],
)
def test_values_that_would_fail_later_are_caught_at_start(
    name: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**GOOD, name: value})
    assert caught.value.problems == [problem]


def test_signatures_are_separated_by_semicolons() -> None:
    config = Config.from_env(
        {**GOOD, "STORE_SIGNATURES": "PIZZA=– {name}, Main St Pizza; CARS=– Bay Cars"}
    )
    assert config.signatures == {"PIZZA": "– {name}, Main St Pizza", "CARS": "– Bay Cars"}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"PORT": "0"}, "PORT must be between 1 and 65535, got 0"),
        ({"THREAD_QUIET_DAYS": "0"}, "THREAD_QUIET_DAYS must be more than 0"),
        (
            {"SMS_STORES": "PIZZA=C0123ABCD,CARS=C0123ABCD"},
            "SMS_STORES: each store needs its own channel; shared: C0123ABCD",
        ),
    ],
)
def test_values_that_would_misroute_are_refused(extra: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**GOOD, **extra})
    assert caught.value.problems == [problem]


def test_ops_channel_is_optional_and_must_be_a_channel_id() -> None:
    assert Config.from_env(GOOD).ops_channel == ""
    assert Config.from_env({**GOOD, "OPS_CHANNEL": " C0OPS1234 "}).ops_channel == "C0OPS1234"
    with pytest.raises(ConfigError) as caught:
        Config.from_env({**GOOD, "OPS_CHANNEL": "#ops"})
    assert caught.value.problems == [
        "OPS_CHANNEL: '#ops' is not a Slack channel ID (like C0123ABCD)"
    ]
