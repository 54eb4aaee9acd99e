"""manifest.yml is valid against Slack's schema and matches what the app listens to."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from bot import manifest
from tests.conftest import Harness

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"


def load() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_yml_is_valid_against_slacks_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(load(), schema)


def test_manifest_yml_is_the_rendered_manifest() -> None:
    assert load() == manifest.build()


def test_manifest_url_fills_every_request_url() -> None:
    built = yaml.safe_load(manifest.render("https://bridge.example.org/"))
    settings = built["settings"]
    assert settings["event_subscriptions"]["request_url"] == (
        "https://bridge.example.org/slack/events"
    )
    assert settings["interactivity"]["request_url"] == "https://bridge.example.org/slack/events"
    for command in built["features"].get("slash_commands", []):
        assert command["url"] == "https://bridge.example.org/slack/events"


def test_every_manifest_event_and_command_has_a_listener_and_the_reverse(harness: Harness) -> None:
    declared = load()
    events = {
        name.split(".")[0] for name in declared["settings"]["event_subscriptions"]["bot_events"]
    }
    commands = {c["command"] for c in declared["features"].get("slash_commands", [])}
    registered = harness.services.listeners
    assert registered.events == events
    assert registered.commands == commands


def test_every_manifest_event_is_answered_200_through_bolt(harness: Harness) -> None:
    samples = {
        "message.channels": {
            "type": "message",
            "channel": "CPIZZA01",
            "channel_type": "channel",
            "user": "USAM",
            "text": "hello",
            "ts": "1.000001",
        },
        "message.groups": {
            "type": "message",
            "channel": "GPRIVATE1",
            "channel_type": "group",
            "user": "USAM",
            "text": "hello",
            "ts": "1.000002",
        },
        "reaction_added": {
            "type": "reaction_added",
            "user": "USAM",
            "reaction": "tada",
            "item": {"type": "message", "channel": "CPIZZA01", "ts": "1.0"},
        },
        "member_joined_channel": {
            "type": "member_joined_channel",
            "user": "UALEX",
            "channel": "CPIZZA01",
            "channel_type": "C",
            "team": "T1",
        },
        "tokens_revoked": {"type": "tokens_revoked", "tokens": {"oauth": ["UALEX"], "bot": []}},
        "app_uninstalled": {"type": "app_uninstalled"},
    }
    for name in load()["settings"]["event_subscriptions"]["bot_events"]:
        response = harness.sender.event(samples[name])
        assert response.status_code == 200, (name, response.text)


def test_scopes_cover_the_methods_the_app_calls() -> None:
    scopes = set(load()["oauth_config"]["scopes"]["bot"])
    assert {
        "chat:write",
        "channels:history",
        "groups:history",
        "files:write",
        "reactions:read",
        "chat:write.customize",
    } <= scopes
