"""``smsbridge doctor``: check a live configuration and print each problem with its fix.

Read-only: it records nothing, parks nothing and alerts nobody (the app's start-up check does
that). In order: the configuration loads; the database is reachable and migrated; Slack takes
the token, the token has the manifest's scopes, and the bot is in every store channel (and the
ops channel); for each store, CRM Text takes the credentials and reports this app's callback
URL. CRM Text's ``getcallback`` answer is undocumented: when it does not name a URL, doctor
says it cannot tell instead of guessing. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from slack_sdk import WebClient

from bot.slack_health import ask_slack, check_channel, missing_scopes, store_channels
from bot.slackcalls import TOKEN_ERRORS, describe
from bridge.config import Config, ConfigError
from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable

MIGRATE = (
    "Run `smsbridge migrate` (on Heroku the release phase runs it, on Render the pre-deploy "
    "command; both run it on every deploy)."
)
SET_CALLBACK = (
    "Run `smsbridge set-callback` (it registers PUBLIC_URL/sms/inbound/… for every store)."
)
TIMEOUT = 10  # seconds, for each Slack and CRM Text call


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok``, ``FAIL`` (with its fix) or ``note`` (cannot tell)."""

    status: str
    what: str
    fix: str = ""


def ok(what: str) -> Finding:
    return Finding("ok", what)


def fail(what: str, fix: str) -> Finding:
    return Finding("FAIL", what, fix)


def note(what: str, fix: str) -> Finding:
    return Finding("note", what, fix)


def run(env: Mapping[str, str], out: TextIO) -> int:
    """Run every check against ``env``, print the report to ``out``; return the exit status."""
    failed = 0

    def show(finding: Finding) -> None:
        nonlocal failed
        failed += finding.status == "FAIL"
        print(f"{finding.status:<5} {finding.what}", file=out)
        if finding.fix:
            print(f"      fix: {finding.fix}", file=out)

    try:
        config = Config.from_env(env)
    except ConfigError as exc:
        for problem in exc.problems:
            show(
                fail(
                    f"config: {problem}",
                    "Set it in the app's environment (.env.example and the README's "
                    "Configuration table say what each variable means).",
                )
            )
        config = None
    if config is not None:
        stores = ", ".join(f"{k} → {c}" for k, c in config.stores.items())
        show(ok(f"config: loaded; stores {stores}"))
        for check in (check_database, check_slack, check_crmtext):
            for finding in check(config):
                show(finding)
    print(
        "doctor: all checks passed"
        if not failed
        else f"doctor: {failed} problem(s) found; fix them and run `smsbridge doctor` again",
        file=out,
    )
    return 1 if failed else 0


# -- database ----------------------------------------------------------------------------------


def check_database(config: Config) -> list[Finding]:
    """Reachable, and no migration pending."""
    from bridge.schema import migrations
    from bridge.storage import Storage

    path = config.sqlite_path
    where = f"SQLite file {path}"
    if path != ":memory:" and not os.path.exists(path):
        return [fail(f"database: the {where} does not exist", MIGRATE)]
    try:
        storage = Storage(path)
        try:
            pending = [m.name for m in migrations.pending(storage.db)]
        finally:
            storage.close()
    except sqlite3.Error as exc:
        return [
            fail(
                f"database: cannot read the {where} ({exc})",
                "Check DATABASE_URL and that the file is a smsbridge database this process "
                "may read and write.",
            )
        ]
    if pending:
        return [
            fail(
                f"database: {len(pending)} migration(s) not applied: {', '.join(pending)}",
                MIGRATE,
            )
        ]
    return [ok(f"database: the {where} is reachable and migrated")]


# -- Slack -------------------------------------------------------------------------------------


def check_slack(config: Config) -> list[Finding]:
    """The start-up check's pieces (bot/slack_health.py), reported instead of recorded."""
    client = WebClient(token=config.slack_bot_token, base_url=config.slack_api_url, timeout=TIMEOUT)
    auth = ask_slack(client)
    if auth.error in TOKEN_ERRORS:
        dead = describe(auth.error, needed=auth.needed)
        return [fail(f"slack: {dead.problem}", dead.fix)]
    if auth.error:
        return [
            fail(
                f"slack: auth.test did not answer ({auth.error}).",
                "Check SLACK_API_URL (default https://slack.com/api/) and that this machine "
                "reaches it, then run doctor again.",
            )
        ]
    findings = [ok(f"slack: the token works (bot user {auth.user_id})")]
    scopes = missing_scopes(auth)
    if scopes is not None:
        findings.append(fail(f"slack: {scopes.problem}", scopes.fix))
    else:
        findings.append(ok("slack: the token has every scope manifest.yml asks for"))
    for label, channel in store_channels(config):
        problem, unknown = check_channel(client, label, channel)
        if problem is not None:
            findings.append(fail(f"slack: {problem.problem}", problem.fix))
        elif unknown == "missing_scope":
            findings.append(
                note(
                    f"slack: could not check {label} ({channel}): the token lacks the scope "
                    "to read it.",
                    "Fix the scopes (above), then run doctor again.",
                )
            )
        elif unknown:
            findings.append(
                fail(
                    f"slack: could not check {label} ({channel}): conversations.info answered "
                    f"{unknown}.",
                    "Run doctor again; if it persists, check the channel ID in SMS_STORES.",
                )
            )
        else:
            findings.append(ok(f"slack: the bot is in {label} ({channel})"))
    return findings


# -- CRM Text ----------------------------------------------------------------------------------


def check_crmtext(config: Config) -> list[Finding]:
    """Per store: ``getcallback`` (an authenticated call that changes nothing) proves the
    credentials and says where CRM Text posts the store's texts."""
    expected = f"{config.public_url}/sms/inbound/{config.callback_token}"
    crm = CrmTextClient(
        config.crmtext_api_url, config.crmtext_user, config.crmtext_password, timeout=TIMEOUT
    )
    findings: list[Finding] = []
    try:
        for keyword in config.stores:
            findings.extend(_check_store(crm, keyword, expected))
    finally:
        crm.close()
    return findings


def _check_store(crm: CrmTextClient, keyword: str, expected: str) -> list[Finding]:
    where = f"crmtext {keyword}"
    try:
        url = crm.get_callback(keyword)
    except CrmTextUnavailable as exc:
        return [
            fail(
                f"{where}: CRM Text did not answer ({exc}).",
                "Check CRMTEXT_API_URL (default https://restapi.crmtext.com/smapi/rest); if it "
                "is right, CRM Text is down: run doctor again later.",
            )
        ]
    except CrmTextError as exc:
        if exc.status == 401:
            return [
                fail(
                    f"{where}: CRM Text refused the credentials ({exc.status} {exc.message}).",
                    f"Check CRMTEXT_USER and CRMTEXT_PASSWORD, and that {keyword} is the "
                    "store's primary keyword (CRM Text's auth string is user:password:KEYWORD).",
                )
            ]
        return [
            ok(f"{where}: CRM Text accepts the credentials"),
            note(
                f"{where}: cannot tell whether the callback is registered: getcallback "
                f"answered {exc.status} {exc.message}.",
                SET_CALLBACK,
            ),
        ]
    findings = [ok(f"{where}: CRM Text accepts the credentials")]
    if url is None:
        findings.append(
            note(
                f"{where}: cannot tell whether the callback is registered: CRM Text's "
                "getcallback answer names no URL (that answer is undocumented).",
                SET_CALLBACK,
            )
        )
    elif url == expected:
        findings.append(ok(f"{where}: callback registered (PUBLIC_URL/sms/inbound/…)"))
    elif not url:
        findings.append(
            fail(
                f"{where}: no callback URL is registered: customers' texts do not reach smsbridge.",
                SET_CALLBACK,
            )
        )
    else:
        elsewhere = urlsplit(url)
        findings.append(
            fail(
                f"{where}: the callback is registered at another URL ({elsewhere.scheme}://"
                f"{elsewhere.netloc}/…): customers' texts do not reach this app.",
                SET_CALLBACK,
            )
        )
    return findings
