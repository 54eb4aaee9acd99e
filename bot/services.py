"""The composition root: ``build_services(config)`` wires storage, clients, engines and the job
table. No Flask here (bot/app.py puts the web on top), and no side effects: nothing is migrated,
deleted or started (that is for ``smsbridge migrate``, the worker and the process entry points).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from slack_sdk import WebClient

from bot.blasts import Blasts
from bot.commands import SmsCommand
from bot.decisions import show_decision_handler
from bot.first_texter import offering_opt_in
from bot.identity import BotIdentity
from bot.interactive import interactive_client
from bot.listeners import Registered
from bot.pacing import Pacer
from bot.sending import Sender
from bot.slack_health import SlackHealth
from bot.slackcalls import web_client
from bot.threads import ThreadPoster
from bridge.blasts import BlastEngine
from bridge.config import Config
from bridge.crmtext import CrmTextClient
from bridge.inbound import Inbound
from bridge.jobs import Job, JobRunner, lost_worker
from bridge.medialinks import media_hosts
from bridge.optout import opt_out_handler, status_check_handler
from bridge.store import ClaimedJob, Row, Store, open_store, utcnow

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a running smsbridge is made of; the web app, the worker, tests and the CLI share it.

    ``listeners`` is filled in by ``create_app`` (what Bolt was given)."""

    config: Config
    storage: Store
    crm: CrmTextClient
    slack: WebClient
    http: httpx.Client
    identity: BotIdentity
    health: SlackHealth
    runner: JobRunner
    poster: ThreadPoster
    sender: Sender
    sms: SmsCommand
    blasts: Blasts
    inbound: Inbound
    clock: Callable[[], datetime]
    listeners: Registered = field(default_factory=Registered)

    def housekeeping(self) -> dict[str, int]:
        """Drop expired pictures and old finished jobs (the worker's chore, not start-up's)."""
        removed = self.storage.housekeeping(
            self.clock(),
            media_age=timedelta(hours=self.config.media_ttl_hours + 24),
            keep=timedelta(days=30),
        )
        log.info("housekeeping removed %s", removed)
        return removed

    def close(self) -> None:
        self.runner.stop()
        self.crm.close()
        self.http.close()
        self.storage.close()


def job_table(
    storage: Store,
    crm: CrmTextClient,
    slack: WebClient,
    clock: Callable[[], datetime],
    poster: ThreadPoster,
    sender: Sender,
    sms: SmsCommand,
    blasts: Blasts,
    post_alert: Callable[[Row], None],
    recheck: Callable[[Row], None],
) -> list[Job]:
    """Every kind of job, declared once: handler, limits, and who hears when it gives up (its
    lane is bridge.jobs.LANES[kind]). ``patient`` jobs are retried for as long as it takes:
    nothing they carry may be lost."""
    return [
        # showing things in Slack
        Job("post_inbound", poster.post_inbound, patient=True),
        Job("post_notice", poster.post_notice),
        Job("thread_resolved", poster.thread_resolved),
        Job("refresh_thread", poster.refresh_thread),
        Job("mark_note", sender.mark_note),
        Job("blast_progress", blasts.progress),
        Job("ops_alert", post_alert),
        # the Slack check again: Slack was busy at start-up, or a store channel was unarchived
        Job("slack_recheck", recheck, patient=True),
        # what the person who used /sms (or its buttons) should see, apart from the work
        Job("command_answer", sms.post_answer),
        Job("reply_feedback", sender.feedback, patient=True),
        Job("post_outbound", poster.post_outbound, patient=True),
        Job("recover_reply", poster.recover_reply, patient=True),
        Job("show_decision", show_decision_handler(storage, slack, poster)),
        Job("offer_opt_in", poster.offer_opt_in),  # a first texter: the opt-in request button
        Job("blast_preview", blasts.preview),  # the blast form's preflight as the admin types
        Job("blast_compose", blasts.compose),  # the form's full checks, then its confirmation
        # texting customers and telling CRM Text about consent
        Job("send_reply", sender.send_reply, max_attempts=8, on_give_up=sender.gave_up),
        Job("crm_opt_out", opt_out_handler(storage, crm, clock), patient=True),
        Job("crm_opt_in", sms.opt_in),
        Job(
            "crm_status_check",
            offering_opt_in(status_check_handler(storage, crm, clock), storage, clock),
        ),
        # a reply held for a customer who has not opted in: its time is up (patient: it waits
        # a whole hold period before it first runs)
        Job("held_expire", sender.expire_held, patient=True),
        Job("sms_command", sms.run),
        # an inbound MMS picture: downloaded (with a deadline) and shared in its thread
        Job("share_picture", poster.share_picture, patient=True, on_give_up=poster.picture_gave_up),
        # blasts
        Job("blast_sync", blasts.sync),
        Job("blast_confirm", blasts.confirm),  # an admin's Send: launch the blast (durable)
        Job("blast_start", blasts.start, max_attempts=10, on_give_up=blasts.gave_up),
        Job("blast_step", blasts.step, max_attempts=10, on_give_up=blasts.gave_up),
    ]


class _Wake:
    """Late-bound ``runner.wake`` for parts built before the runner."""

    runner: JobRunner | None = None

    def __call__(self) -> None:
        if self.runner is not None:
            self.runner.wake()


def build_services(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    crm: CrmTextClient | None = None,
) -> Services:
    """Store, clients, engines and the job table. Asks Slack who the bot is (one auth.test,
    shared with Bolt: see bot/identity.py); changes nothing."""
    storage = open_store(config.database_url)
    crm = crm or CrmTextClient(config.crmtext_api_url, config.crmtext_user, config.crmtext_password)
    pacer = (
        Pacer(storage, config.slack_posts_per_second, config.slack_post_burst)
        if config.slack_posts_per_second > 0
        else None
    )
    slack = web_client(config.slack_bot_token, config.slack_api_url, pacer)
    http = httpx.Client(timeout=15, headers={"User-Agent": "smsbridge"})
    poster = ThreadPoster(
        storage, slack, http, clock, media_hosts=media_hosts(config.inbound_media_hosts)
    )
    sender = Sender(config, storage, slack, crm, http, clock, poster)
    wake = _Wake()
    sms = SmsCommand(config, storage, slack, crm, clock, wake)
    blasts = Blasts(
        config, storage, BlastEngine(config, storage, crm, clock), slack, sender, clock, wake
    )
    health: SlackHealth | None = None

    def post_alert(payload: Row) -> None:
        assert health is not None
        health.post_alert(payload)

    def recheck(payload: Row) -> None:
        assert health is not None
        health.recheck(payload)

    def report(job: ClaimedJob, error: str) -> None:
        """A job that will not be retried and has nobody of its own to tell."""
        if job.kind == "crm_opt_out":  # still blocked here, and still not at CRM Text
            storage.customers.crm_push_failed(job.payload["customer_id"], error)
        log.error(
            "gave up on %s job %s after %s attempt(s): %s", job.kind, job.id, job.attempts, error
        )
        if health is not None and error == lost_worker(job.lost):
            health.alert(f":warning: smsbridge gave up on a `{job.kind}` job (#{job.id}): {error}")

    runner = JobRunner(
        storage,
        job_table(storage, crm, slack, clock, poster, sender, sms, blasts, post_alert, recheck),
        clock=clock,
        on_give_up=report,
    )
    health = SlackHealth(config, storage, slack, runner, clock)
    runner.on_park = health.on_park
    wake.runner = runner
    identity = BotIdentity(  # the app's clock, so Retry-After waits follow it (and tests' clock)
        interactive_client(config.slack_bot_token, config.slack_api_url),
        clock=lambda: clock().timestamp(),
    )
    identity.check()
    inbound = Inbound(
        storage, config.stores, quiet=timedelta(days=config.thread_quiet_days), clock=clock
    )
    return Services(
        config=config,
        storage=storage,
        crm=crm,
        slack=slack,
        http=http,
        identity=identity,
        health=health,
        runner=runner,
        poster=poster,
        sender=sender,
        sms=sms,
        blasts=blasts,
        inbound=inbound,
        clock=clock,
    )
