"""``smsbridge demo``: the whole bridge, offline, in one command.

Starts the CRM Text simulator and a stand-in for the Slack Web API on 127.0.0.1, runs the real
app against them on a fresh SQLite file, plays a short story and prints what staff see in Slack.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.app import Services, services_of
from bot.dev.fake_crmtext import SimStore, Simulator
from bot.dev.fake_slack import FakeSlack
from bot.dev.live import LiveServer, SlackSender
from bot.worker import local_app
from bridge.config import Config
from bridge.phones import pretty
from bridge.store import OPTED_IN

STORE, CHANNEL = "PIZZA", "CDEMOPIZZA"
JANE, BOB = "4155550101", "3055550102"
BLAST_LIST = ["4155550103", "3105550104", "6195550105"]
BLAST_TEXT = "Main St Pizza: 2 large pizzas for $20 this Friday!"


def store_clock() -> Callable[[], datetime]:
    """Real time, shifted to 11:00 AM on a Tuesday in California, so the story never runs into
    quiet hours whenever it is played."""
    now = datetime.now(UTC)
    start = datetime(2026, 11, 24, 11, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    shift = start - now
    return lambda: datetime.now(UTC) + shift


def wait_idle(services: Services, timeout: float = 20.0) -> None:
    """Wait until the job queue has nothing left to do now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not services.storage.jobs.rows("pending"):
            return
        time.sleep(0.05)
    raise TimeoutError("jobs still pending after the demo's wait")


def say(line: str) -> None:
    print(line, flush=True)


def run_demo(verbose: bool = False) -> int:
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("werkzeug", "slack_bolt", "httpx"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="smsbridge-demo-") as workdir:
        return _run(Path(workdir))


def _run(workdir: Path) -> int:
    slack = FakeSlack().start()
    slack.add_user("USAM", "Sam", "Sam Rivera")
    clock = store_clock()
    sim = Simulator(
        "demo", "demo", [SimStore(STORE, "1001", "Main St Pizza")], speed=50, clock=clock
    )
    sim_server = LiveServer(sim.app())
    config = Config(
        slack_bot_token=slack.bot_token,
        slack_signing_secret="demo-signing-secret",
        slack_api_url=slack.api_url,
        crmtext_user="demo",
        crmtext_password="demo",
        crmtext_api_url=f"{sim_server.url}/smapi/rest",
        stores={STORE: CHANNEL},
        callback_token="demo-callback-token-0001",
        public_url="http://127.0.0.1",
        database_url=f"sqlite:///{workdir / 'smsbridge.db'}",
        blast_admins=frozenset({"USAM"}),
        inbound_media_hosts=(sim_server.url,),  # the simulator's /_sim/media pictures
    )
    app = local_app(config, clock=clock)
    app_server = LiveServer(app)
    services = services_of(app)
    sender = SlackSender(app_server.url, config.slack_signing_secret, slack=slack)
    services.crm.set_callback(STORE, f"{app_server.url}/sms/inbound/{config.callback_token}")
    say("smsbridge demo: the CRM Text simulator, a stand-in for Slack and the app are running")
    say("on 127.0.0.1, with a fresh SQLite database. Store: Main St Pizza (keyword PIZZA).\n")
    try:
        play_story(sim, sim_server.url, services, sender, slack)
        say(f"\n=== What staff see in Slack (the store channel, {CHANNEL}) ===\n")
        say(slack.transcript(CHANNEL))
        say("\n=== What reached the customers' phones ===\n")
        for delivery in sim.outbox:
            text = delivery.text.replace("\n", " ⏎ ")
            say(f"  to {delivery.phone} ({delivery.kind}): {text}")
    finally:
        services.close()
        app_server.stop()
        sim_server.stop()
        slack.stop()
    del sender
    return 0


def play_story(
    sim: Simulator, sim_url: str, services: Services, sender: SlackSender, slack: FakeSlack
) -> None:
    sim.add_customer(STORE, JANE, OPTED_IN, "Jane Doe")
    sim.add_customer(STORE, BOB, OPTED_IN, "")
    steps = [
        (JANE, "Hi! Is the large pepperoni still on special?", None),
        (BOB, "Do you deliver to Elm St?", None),
        (JANE, "Is this coupon still good?", [("image/png", f"{sim_url}/_sim/media/coupon")]),
        (BOB, "STOP", None),
    ]
    for phone, text, media in steps[:2]:
        customer_texts(sim, services, phone, text, media)
    jane_thread = slack.top_level(CHANNEL)[0].ts
    staff_replies(services, sender, slack, jane_thread, "Yes! $12.99 until Sunday. Want one?")
    staff_replies(services, sender, slack, jane_thread, "note: she orders every Friday")
    for phone, text, media in steps[2:]:
        customer_texts(sim, services, phone, text, media)
    staff_replies(services, sender, slack, jane_thread, "It is! Show it at pickup.")
    blast_story(sim, services, sender, slack)


def blast_story(sim: Simulator, services: Services, sender: SlackSender, slack: FakeSlack) -> None:
    """Sam blasts the store's opted-in customers: preflight, confirmation, progress."""
    for phone in BLAST_LIST:
        sim.add_customer(STORE, phone, OPTED_IN, "")
    say(f"\nSam types: /sms-blast {BLAST_TEXT}")
    sender.command("/sms-blast", BLAST_TEXT, user="USAM", channel=CHANNEL)
    wait_idle(services)  # the audience is synced from CRM Text and the preflight refreshed
    view = list(slack.views.values())[-1]
    say("  The blast modal's preflight:")
    for line in section_lines(view):
        say(f"    {line}")
    say("Sam ticks “Append Reply STOP to opt out” and presses Review.")
    values = {
        "message": {"blast_text": {"type": "plain_text_input", "value": BLAST_TEXT}},
        "options": {
            "blast_options": {
                "type": "checkboxes",
                "selected_options": [{"value": "append_opt_out"}],
            }
        },
        "image": {"file": {"type": "file_input", "files": []}},
    }
    submit_view(sender, view, values)  # answered at once with "checking…"
    wait_idle(services)  # the checks run, then the modal becomes the confirmation
    confirm = slack.views[view["id"]]
    say("  The confirmation:")
    for line in section_lines(confirm):
        say(f"    {line}")
    acks = [
        o["value"]
        for b in confirm["blocks"]
        if b.get("block_id") == "acks"
        for o in b["element"]["options"]
    ]
    if acks:
        say(f"Sam ticks the {len(acks)} warning(s) to acknowledge them and presses Send.")
    else:
        say("Nothing left to acknowledge; Sam presses Send.")
    submit_view(
        sender,
        {**confirm, "id": view["id"]},
        {
            "acks": {
                "acks": {"type": "checkboxes", "selected_options": [{"value": a} for a in acks]}
            }
        },
    )
    started = time.monotonic()
    wait_idle(services, timeout=60)
    say(f"  …sent in {time.monotonic() - started:.1f} s (paced at 1 text per second)")


def section_lines(view: dict[str, Any]) -> list[str]:
    text = "\n".join(b["text"]["text"] for b in view["blocks"] if b["type"] == "section")
    return text.splitlines()


def submit_view(sender: SlackSender, view: dict[str, Any], values: dict[str, Any]) -> Any:
    response = sender.interaction(
        {
            "type": "view_submission",
            "user": {"id": "USAM"},
            "view": {**view, "state": {"values": values}},
        }
    )
    return json.loads(response.text) if response.text else {}


def customer_texts(
    sim: Simulator, services: Services, phone: str, text: str, media: list[tuple[str, str]] | None
) -> None:
    label = f"{text} [+ picture]" if media else text
    say(f"customer {pretty('+1' + phone)} texts: {label}")
    sim.customer_texts(STORE, phone, text, media)
    wait_idle(services)


def staff_replies(
    services: Services, sender: SlackSender, slack: FakeSlack, thread_ts: str, text: str
) -> None:
    """Sam types in the thread: Slack holds the message and sends the app a signed event."""
    say(f"Sam replies in the thread: {text}")
    message = slack.add_message(CHANNEL, text, user="USAM", thread_ts=thread_ts)
    sender.event(
        {
            "type": "message",
            "channel": CHANNEL,
            "channel_type": "channel",
            "user": "USAM",
            "text": text,
            "ts": message.ts,
            "thread_ts": thread_ts,
            "event_ts": message.ts,
        }
    )
    wait_idle(services)
