"""``smsbridge doctor`` against the fake Slack and the CRM Text simulator over real HTTP, with a
good configuration and broken ones; the exact lines a person reads, and the exit status."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlite_utils import Database

from bot.cli import main
from bot.dev.fake_crmtext import Simulator
from bot.dev.fake_slack import FakeSlack
from bot.slackcalls import REINSTALL
from bridge.store import open_store
from bridge.store.schema import migrations
from tests import pg_server
from tests.conftest import (
    CALLBACK_TOKEN,
    CARS_CHANNEL,
    CRM_PASSWORD,
    CRM_USER,
    PIZZA_CHANNEL,
    SIGNING_SECRET,
)

PUBLIC_URL = "https://bridge.example.com"
MIGRATE_FIX = (
    "      fix: Run `smsbridge migrate` (on Heroku the release phase runs it, on Render the "
    "pre-deploy command; both run it on every deploy)."
)
CALLBACK_FIX = (
    "      fix: Run `smsbridge set-callback` (it registers PUBLIC_URL/sms/inbound/… for every "
    "store)."
)
CONFIG_OK = f"ok    config: loaded; stores PIZZA → {PIZZA_CHANNEL}, CARS → {CARS_CHANNEL}"
SLACK_OK = [
    "ok    slack: the token works (bot user UBOT)",
    "ok    slack: the token has every scope manifest.yml asks for",
    f"ok    slack: the bot is in the PIZZA store channel ({PIZZA_CHANNEL})",
    f"ok    slack: the bot is in the CARS store channel ({CARS_CHANNEL})",
]
CRM_OK = [
    "ok    crmtext PIZZA: CRM Text accepts the credentials",
    "ok    crmtext PIZZA: callback registered (PUBLIC_URL/sms/inbound/…)",
    "ok    crmtext CARS: CRM Text accepts the credentials",
    "ok    crmtext CARS: callback registered (PUBLIC_URL/sms/inbound/…)",
]
ALL_PASSED = "doctor: all checks passed"


def problems_found(count: int) -> str:
    return f"doctor: {count} problem(s) found; fix them and run `smsbridge doctor` again"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "smsbridge.db"
    storage = open_store("sqlite:///" + str(path))
    storage.migrate()
    storage.close()
    return path


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, sim: Simulator, db_path: Path
) -> pytest.MonkeyPatch:
    """A good configuration in the environment, the callback registered with every store."""
    for name, value in {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "CRMTEXT_USER": CRM_USER,
        "CRMTEXT_PASSWORD": CRM_PASSWORD,
        "CRMTEXT_API_URL": f"{sim.url}/smapi/rest",  # type: ignore[attr-defined]
        "SMS_STORES": f"PIZZA={PIZZA_CHANNEL},CARS={CARS_CHANNEL}",
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": PUBLIC_URL,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "PORT": "3000",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("OPS_CHANNEL", "BLAST_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["set-callback"]) == 0
    return monkeypatch


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["doctor"])
    return code, capsys.readouterr().out.splitlines()


def test_all_well(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_path: Path):
    code, lines = doctor(capsys)
    assert lines == [
        CONFIG_OK,
        f"ok    database: the SQLite file {db_path} is reachable and migrated",
        *SLACK_OK,
        *CRM_OK,
        ALL_PASSED,
    ]
    assert code == 0


def test_revoked_slack_token(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack, db_path: Path
):
    slack.set_token_state("revoked")
    code, lines = doctor(capsys)
    assert lines == [
        CONFIG_OK,
        f"ok    database: the SQLite file {db_path} is reachable and migrated",
        "FAIL  slack: Slack revoked smsbridge's bot token (token_revoked): the app was removed "
        "or reinstalled. Nothing can be posted to Slack.",
        f"      fix: {REINSTALL}",
        *CRM_OK,
        problems_found(1),
    ]
    assert code == 1


def test_bot_not_in_a_store_channel(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack
):
    slack.set_channel_state(CARS_CHANNEL, "not_member")
    code, lines = doctor(capsys)
    assert lines[2:7] == [
        *SLACK_OK[:3],
        "FAIL  slack: The bot is not in the CARS store channel #ccars001 (CCARS001) "
        "(not_in_channel): that store's texts cannot be posted.",
        "      fix: Invite it: type /invite @smsbridge in the CARS store channel #ccars001 "
        "(CCARS001). Parked texts are then posted in order.",
    ]
    assert lines[7:] == [*CRM_OK, problems_found(1)]
    assert code == 1


def test_ops_channel_is_checked_too(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack
):
    env.setenv("OPS_CHANNEL", "COPS0001")
    slack.set_channel_state("COPS0001", "archived")
    code, lines = doctor(capsys)
    assert lines[6:8] == [
        "FAIL  slack: The ops channel (OPS_CHANNEL) #cops0001 (COPS0001) is archived "
        "(is_archived): that store's texts cannot be posted.",
        "      fix: Unarchive the ops channel (OPS_CHANNEL) #cops0001 (COPS0001) and invite the "
        "bot again (/invite @smsbridge), or point SMS_STORES at a new channel and restart "
        "smsbridge.",
    ]
    assert lines[-1] == problems_found(1)
    assert code == 1


def test_token_without_a_manifest_scope(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack
):
    slack.remove_scope("reactions:write")
    code, lines = doctor(capsys)
    assert lines[2:5] == [
        SLACK_OK[0],
        "FAIL  slack: smsbridge's Slack token lacks the scope(s) reactions:write that "
        "manifest.yml asks for.",
        "      fix: Update the app from manifest.yml (api.slack.com/apps → smsbridge → App "
        "Manifest), reinstall it, put the new token in SLACK_BOT_TOKEN and restart smsbridge.",
    ]
    assert lines[-1] == problems_found(1)
    assert code == 1


def test_token_that_cannot_read_channels(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack
):
    slack.remove_scope("channels:read")
    code, lines = doctor(capsys)
    assert lines[2:10] == [
        SLACK_OK[0],
        "FAIL  slack: smsbridge's Slack token lacks the scope(s) channels:read that "
        "manifest.yml asks for.",
        "      fix: Update the app from manifest.yml (api.slack.com/apps → smsbridge → App "
        "Manifest), reinstall it, put the new token in SLACK_BOT_TOKEN and restart smsbridge.",
        f"note  slack: could not check the PIZZA store channel ({PIZZA_CHANNEL}): the token "
        "lacks the scope to read it.",
        "      fix: Fix the scopes (above), then run doctor again.",
        f"note  slack: could not check the CARS store channel ({CARS_CHANNEL}): the token "
        "lacks the scope to read it.",
        "      fix: Fix the scopes (above), then run doctor again.",
        CRM_OK[0],
    ]
    assert lines[-1] == problems_found(1)
    assert code == 1


def test_wrong_crmtext_password(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    env.setenv("CRMTEXT_PASSWORD", "not-the-password")
    code, lines = doctor(capsys)
    assert lines[2:6] == SLACK_OK
    assert lines[6:] == [
        "FAIL  crmtext PIZZA: CRM Text refused the credentials (401 Invalid auth string).",
        "      fix: Check CRMTEXT_USER and CRMTEXT_PASSWORD, and that PIZZA is the store's "
        "primary keyword (CRM Text's auth string is user:password:KEYWORD).",
        "FAIL  crmtext CARS: CRM Text refused the credentials (401 Invalid auth string).",
        "      fix: Check CRMTEXT_USER and CRMTEXT_PASSWORD, and that CARS is the store's "
        "primary keyword (CRM Text's auth string is user:password:KEYWORD).",
        problems_found(2),
    ]
    assert code == 1


def test_keyword_that_is_not_a_crmtext_store(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    env.setenv("SMS_STORES", f"PIZZA={PIZZA_CHANNEL},TACOS={CARS_CHANNEL}")
    code, lines = doctor(capsys)
    assert lines[-4:] == [
        "ok    crmtext PIZZA: callback registered (PUBLIC_URL/sms/inbound/…)",
        "FAIL  crmtext TACOS: CRM Text refused the credentials (401 Invalid auth string).",
        "      fix: Check CRMTEXT_USER and CRMTEXT_PASSWORD, and that TACOS is the store's "
        "primary keyword (CRM Text's auth string is user:password:KEYWORD).",
        problems_found(1),
    ]
    assert code == 1


def test_callback_not_registered_or_registered_elsewhere(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sim: Simulator
):
    del sim.callbacks["PIZZA"]
    sim.callbacks["CARS"] = "https://old-host.example.net/sms/inbound/old-secret-token"
    code, lines = doctor(capsys)
    assert lines[6:] == [
        "ok    crmtext PIZZA: CRM Text accepts the credentials",
        "FAIL  crmtext PIZZA: no callback URL is registered: customers' texts do not reach "
        "smsbridge.",
        CALLBACK_FIX,
        "ok    crmtext CARS: CRM Text accepts the credentials",
        "FAIL  crmtext CARS: the callback is registered at another URL "
        "(https://old-host.example.net/…): customers' texts do not reach this app.",
        CALLBACK_FIX,
        problems_found(2),
    ]
    assert code == 1


def test_crmtext_answer_that_names_no_callback_is_said_honestly(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sim: Simulator
):
    """getcallback's answer is undocumented: if the live API names no URL, doctor cannot tell."""
    env.setattr(sim, "_api_getcallback", lambda store, params: ("ok", []))
    code, lines = doctor(capsys)
    assert lines[6:9] == [
        "ok    crmtext PIZZA: CRM Text accepts the credentials",
        "note  crmtext PIZZA: cannot tell whether the callback is registered: CRM Text's "
        "getcallback answer names no URL (that answer is undocumented).",
        CALLBACK_FIX,
    ]
    assert lines[-1] == ALL_PASSED
    assert code == 0


def test_crmtext_down(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sim: Simulator):
    sim.fail_next(2, status=503)
    code, lines = doctor(capsys)
    assert lines[6:] == [
        "FAIL  crmtext PIZZA: CRM Text did not answer (CRM Text getcallback: HTTP 503).",
        "      fix: Check CRMTEXT_API_URL (default https://restapi.crmtext.com/smapi/rest); if "
        "it is right, CRM Text is down: run doctor again later.",
        "FAIL  crmtext CARS: CRM Text did not answer (CRM Text getcallback: HTTP 503).",
        "      fix: Check CRMTEXT_API_URL (default https://restapi.crmtext.com/smapi/rest); if "
        "it is right, CRM Text is down: run doctor again later.",
        problems_found(2),
    ]
    assert code == 1


def test_database_missing_or_not_migrated(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    missing = tmp_path / "nowhere.db"
    env.setenv("DATABASE_URL", f"sqlite:///{missing}")
    code, lines = doctor(capsys)
    assert lines[1:3] == [f"FAIL  database: the SQLite file {missing} does not exist", MIGRATE_FIX]
    assert not missing.exists()  # doctor changes nothing
    assert code == 1

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    env.setenv("DATABASE_URL", f"sqlite:///{empty}")
    code, lines = doctor(capsys)
    names = [m.name for m in migrations.pending(Database(empty))]
    assert names[:2] == ["m001_initial", "m002_media"]
    assert lines[1:3] == [
        f"FAIL  database: {len(names)} migration(s) not applied: {', '.join(names)}",
        MIGRATE_FIX,
    ]
    assert lines[-1] == problems_found(1)
    assert code == 1


def test_configuration_that_does_not_load(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], slack: FakeSlack
):
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv("CALLBACK_TOKEN", "short")
    code, lines = doctor(capsys)
    fix = (
        "      fix: Set it in the app's environment (.env.example and the README's "
        "Configuration table say what each variable means)."
    )
    assert lines == [
        "FAIL  config: SLACK_BOT_TOKEN is not set",
        fix,
        "FAIL  config: CALLBACK_TOKEN must be at least 20 characters: generate one with:"
        ' python -c "import secrets; print(secrets.token_urlsafe(32))"',
        fix,
        problems_found(2),
    ]
    assert code == 1
    assert slack.calls_to("auth.test") == []


def test_postgres_database_named_without_its_password(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The test server trusts 127.0.0.1, so the password is accepted and ignored: doctor
    must still never print it."""
    url = pg_server.fresh_database().replace("://postgres@", "://postgres:pw-s3cr%2Ft@")
    parts = urlsplit(url)
    env.setenv("DATABASE_URL", url)
    code, lines = doctor(capsys)
    assert lines[1] == (
        f"ok    database: the PostgreSQL database {parts.path[1:]} on 127.0.0.1:{parts.port} "
        "as postgres is reachable and migrated"
    )
    assert lines[-1] == ALL_PASSED
    assert code == 0
    assert "s3cr" not in capsys.readouterr().out + "\n".join(lines)


def test_postgres_database_not_migrated(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    url = pg_server.empty_database()
    env.setenv("DATABASE_URL", url)
    code, lines = doctor(capsys)
    assert lines[1:3] == [
        "FAIL  database: 7 migration(s) not applied: m007_baseline, m008_indexes, "
        "m009_customer_location, m010_job_leases, m012_recipient_caps, m013_held_replies, "
        "m015_process_state",
        MIGRATE_FIX,
    ]
    assert lines[-1] == problems_found(1)
    assert code == 1


def test_postgres_server_unreachable(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.setenv("DATABASE_URL", f"postgresql://bridge:hunter2-pw@127.0.0.1:{port}/smsbridge")
    code, lines = doctor(capsys)
    assert lines[1:3] == [
        f"FAIL  database: cannot reach the PostgreSQL database smsbridge on 127.0.0.1:{port} as "
        f'bridge (connection failed: connection to server at "127.0.0.1", port {port} failed: '
        "Connection refused)",
        "      fix: Check DATABASE_URL (server, port, user, password, database name) and that "
        "the server accepts connections from this app.",
    ]
    assert "hunter2" not in "\n".join(lines)
    assert code == 1
