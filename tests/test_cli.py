"""The smsbridge command: manifest, migrate, set-callback and the offline demo."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.dev.fake_crmtext import Simulator
from tests import pg_server
from tests.conftest import (
    CALLBACK_TOKEN,
    CRM_PASSWORD,
    CRM_USER,
    PIZZA_CHANNEL,
    SIGNING_SECRET,
    Harness,
)


def env_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, crm_url: str) -> None:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CRMTEXT_USER": CRM_USER,
        "CRMTEXT_PASSWORD": CRM_PASSWORD,
        "CRMTEXT_API_URL": crm_url,
        "SMS_STORES": "PIZZA=C0123ABCD,CARS=C0456EFGH",
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": "https://bridge.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_manifest_command_prints_urls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--url", "https://sms.store.example"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["settings"]["event_subscriptions"]["request_url"] == (
        "https://sms.store.example/slack/events"
    )


def test_migrate_applies_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_for(monkeypatch, tmp_path, "http://127.0.0.1:9/smapi/rest")
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("applied ") and ": m001_initial, m002_media" in out[0]
    assert out[1] == "applied 0 migration(s): none pending"


def test_missing_configuration_stops_with_every_problem(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["migrate"])
    assert caught.value.code == 3
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN is not set" in err and "SMS_STORES is not set" in err


def test_set_callback_registers_every_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sim: Simulator
) -> None:
    env_for(monkeypatch, tmp_path, f"{sim.url}/smapi/rest")  # type: ignore[attr-defined]
    assert main(["set-callback"]) == 0
    assert sim.callbacks == {
        "PIZZA": f"https://bridge.example.com/sms/inbound/{CALLBACK_TOKEN}",
        "CARS": f"https://bridge.example.com/sms/inbound/{CALLBACK_TOKEN}",
    }


def test_demo_prints_what_staff_see(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "- bot: :speech_balloon: *Jane Doe · (415) 555-0101*" in out
    assert "    - Jane Doe · (415) 555-0101: Is this coupon still good?" in out
    assert "[file] mms-" in out
    assert "    - (305) 555-0102: STOP" in out
    assert "to 3055550102 (template): Main St Pizza: You are now opted out" in out
    assert "    - Sam: Yes! $12.99 until Sunday. Want one?\n      [reactions] :outbox_tray:" in out
    assert "    - Sam: note: she orders every Friday\n      [reactions] :memo:" in out
    assert "  to 4155550101 (sms): Yes! $12.99 until Sunday. Want one?" in out
    assert "  to 4155550101 (sms): It is! Show it at pickup." in out
    assert "note: she orders" not in out.split("reached the customers' phones")[1]
    assert "Sam types: /sms-blast Main St Pizza: 2 large pizzas for $20 this Friday!" in out
    assert ":warning: *No opt-out instructions*" in out
    assert "> Reply STOP to opt out" in out
    assert "— done\n  `▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓` 4 sent · 0 failed · 0 skipped · 0 to go, of 4" in out
    assert out.count("(sms): Main St Pizza: 2 large pizzas for $20 this Friday! ⏎ Reply STOP") == 4


def test_manifest_needs_an_https_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--url", "http://insecure.example"]) == 2
    assert "https" in capsys.readouterr().err


def test_passthrough_commands_take_their_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulator", "--help"])
    assert caught.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_db_copy_moves_an_install_and_it_carries_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``smsbridge db copy --to postgresql://…``: after the move, the customer's next text
    lands in the same Slack thread and their consent is what it was."""
    harness.sim.add_customer("PIZZA", "4155550101", status=3, name="Jane Doe")
    harness.text("PIZZA", "4155550101", "Is my pizza on the way?")
    harness.drain()
    harness.stop()
    target = pg_server.empty_database()
    monkeypatch.setenv("DATABASE_URL", harness.config.database_url)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CRMTEXT_USER": CRM_USER,
        "CRMTEXT_PASSWORD": CRM_PASSWORD,
        "SMS_STORES": "PIZZA=C0123ABCD",
        "CALLBACK_TOKEN": CALLBACK_TOKEN,
        "PUBLIC_URL": "https://bridge.example.com",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["db", "copy", "--to", target]) == 0
    assert capsys.readouterr().out.startswith("copied 2 stores, 1 customers, 1 consent, 1 threads")
    assert main(["db", "copy", "--to", target]) == 2
    assert capsys.readouterr().err == (
        "nothing copied: the target database already has rows in stores\n"
    )
    harness.config = replace(harness.config, database_url=target)
    harness.start()
    harness.text("PIZZA", "4155550101", "Thanks!")
    harness.drain()
    [parent] = harness.slack.top_level(PIZZA_CHANNEL)
    assert [m.text for m in harness.slack.thread(PIZZA_CHANNEL, parent.ts)[1:]] == ["Thanks!"]
    customer = harness.services.storage.customers.find("PIZZA", "+14155550101")
    assert customer["status"] == 3 and customer["id"] == 1
    added = harness.services.storage.customers.upsert("PIZZA", "+14155550199", now=harness.clock())
    assert added["id"] > 1  # new ids continue after the copied ones
