"""Scratch review tests (to be deleted)."""
from __future__ import annotations
import json
from datetime import timedelta
from bridge.crmtext import CrmTextUnavailable
from bridge.storage import OPTED_OUT
from tests.conftest import PIZZA_CHANNEL, Harness
from tests.test_replies import open_thread, staff_reply, sends, noisy_png, JANE
from tests.test_blasts import seed, compose, confirm, send_all, delivered, MESSAGE, texts_to


def test_image_only_reply_to_opted_out_customer_reaches_crm(harness: Harness) -> None:
    parent = open_thread(harness)
    st = harness.services.storage
    c = st.find_customer("PIZZA", "+1" + JANE)
    st.set_status(c["id"], OPTED_OUT, how="test", now=harness.clock())
    file = harness.slack.add_file("F9", noisy_png((100, 100)), "image/png", "x.png")
    staff_reply(harness, parent, "", files=[file])
    harness.drain()
    print("SENDS", sends(harness))
    assert sends(harness) == []


def test_campaign_timeout_leaves_blast_stuck(harness: Harness, monkeypatch) -> None:
    numbers = [f"41555{n:05d}" for n in range(10000, 10701)]
    seed(harness, numbers)
    view = compose(harness, MESSAGE, append=False)
    assert confirm(harness, view, typed="701").text == ""
    crm = harness.services.crm
    real = crm.send_campaign
    calls = {"n": 0}
    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            raise CrmTextUnavailable("ReadTimeout")
        return real(*a, **k)
    monkeypatch.setattr(crm, "send_campaign", flaky)
    for _ in range(10):
        harness.drain(); harness.clock.advance(seconds=30)
    blast = harness.services.storage.blasts("PIZZA")[0]
    print("STATUS", blast["status"], "campaign calls", calls["n"], harness.services.storage.jobs())
    assert calls["n"] == 2


def test_individual_outage_kills_blast(harness: Harness) -> None:
    seed(harness)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()  # start + first step
    harness.sim.fail_next(200)
    for _ in range(20):
        harness.drain(); harness.clock.advance(minutes=6)
    st = harness.services.storage
    blast = st.blasts("PIZZA")[0]
    print("STATUS", blast["status"], st.recipient_counts(blast["id"]), [ (j["kind"], j["status"]) for j in st.jobs() if j["kind"].startswith("blast")])
    harness.sim._outage = []
    for _ in range(20):
        harness.drain(); harness.clock.advance(minutes=6)
    blast = st.blasts("PIZZA")[0]
    print("AFTER", blast["status"], st.recipient_counts(blast["id"]))
    assert blast["status"] == "done"


def test_pause_resume_double_chain(harness: Harness) -> None:
    numbers = [f"41555502{n:02d}" for n in range(10)]
    seed(harness, numbers)
    confirm(harness, compose(harness, MESSAGE, append=False))
    harness.drain()
    blast = harness.services.storage.blasts("PIZZA")[0]
    def press(action):
        harness.sender.interaction({"type": "block_actions", "user": {"id": "USAM"},
            "channel": {"id": PIZZA_CHANNEL},
            "actions": [{"action_id": action, "value": str(blast["id"]), "type": "button"}]})
    press("blast_pause"); press("blast_resume")
    n0 = len(delivered(harness))
    seq = []
    for _ in range(4):
        harness.clock.advance(seconds=1.0)
        harness.drain()
        seq.append(len(delivered(harness)))
    print("sent", n0, "->", seq)
    print([(j["id"], j["kind"], j["status"], j["dedupe_key"], j["run_at"][11:23]) for j in harness.services.storage.jobs() if j["kind"]=="blast_step"])
    assert seq[-1] - n0 <= 4


def test_button_after_end_opts_out_twice(harness: Harness) -> None:
    harness.sim.add_customer("PIZZA", JANE, status=3)
    harness.text("PIZZA", JANE, "please stop texting me")
    harness.drain()
    st = harness.services.storage
    msg = [m for m in st.thread_messages(1)][0]
    for user in ("USAM", "UALEX"):
        harness.sender.interaction({"type": "block_actions", "user": {"id": user},
            "channel": {"id": PIZZA_CHANNEL},
            "container": {"type": "message", "channel_id": PIZZA_CHANNEL, "message_ts": "1"},
            "actions": [{"action_id": "opt_out_customer", "value": str(msg["id"]), "type": "button"}]})
    harness.drain()
    outs = [c for c in harness.sim.calls if c["method"] == "optoutcustomer"]
    print("OPTOUT calls", len(outs), [d.text for d in harness.sim.outbox if d.phone == JANE])
    assert len(outs) == 1


def test_blast_command_views_open_failure(harness: Harness) -> None:
    seed(harness)
    harness.slack.fail_next("views.open", status=200, error="expired_trigger_id")
    r = harness.sender.command("/sms-blast", MESSAGE, user="USAM", channel=PIZZA_CHANNEL)
    print("STATUS", r.status_code, r.text[:200])
    assert r.status_code == 200


def test_deep_json_mms(harness: Harness) -> None:
    import httpx
    r = httpx.post(harness.callback_url(), data={"keyword": "PIZZA", "msgID": "m1", "mobileNum": "4155550100", "message": "hi", "mms": "[" * 60000}, timeout=10)
    print("DEEP", r.status_code, r.text[:100])
    r = httpx.post(harness.callback_url(), data={"keyword": "PIZZA", "msgID": "m2", "mobileNum": "4155550100", "message": "hi", "mms": '{"0": {"URL": "https://x/y"}, "1": 5}'}, timeout=10)
    print("NONDICT", r.status_code)
    r = httpx.post(harness.callback_url(), data={"keyword": "PIZZA", "msgID": "m3", "mobileNum": "4155550100", "message": "hi\x00"}, timeout=10)
    print("NUL", r.status_code)
