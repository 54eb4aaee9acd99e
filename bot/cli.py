"""The ``smsbridge`` command: demo, serve, worker, migrate, db copy, doctor, blasts, consent
(opt-out, export), set-callback, manifest, simulator, text."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge import logsafe
from bridge.config import Config, ConfigError


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(3) from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply database migrations (the Procfile's release step)."""
    from bridge.store import open_store

    config = _config()
    storage = open_store(config.database_url)
    applied = storage.migrate()
    storage.stores.sync(dict(config.stores))
    storage.close()
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def cmd_db_copy(args: argparse.Namespace) -> int:
    """Copy this install's database (DATABASE_URL) into an empty one (``--to``)."""
    from bridge.store import open_store
    from bridge.store.copy import TargetNotEmpty, copy_database

    source, target = open_store(_config().database_url), open_store(args.to)
    try:
        copied = copy_database(source, target)
    except TargetNotEmpty as exc:
        print(f"nothing copied: {exc}", file=sys.stderr)
        return 2
    finally:
        source.close()
        target.close()
    print("copied " + ", ".join(f"{n} {table}" for table, n in copied.items()))
    return 0


def cmd_set_callback(args: argparse.Namespace) -> int:
    """Register PUBLIC_URL/sms/inbound/<CALLBACK_TOKEN> with CRM Text for every store."""
    from bridge.crmtext import CrmTextClient, CrmTextError, CrmTextUnavailable

    config = _config()
    url = f"{config.public_url}/sms/inbound/{config.callback_token}"
    crm = CrmTextClient(config.crmtext_api_url, config.crmtext_user, config.crmtext_password)
    failures = 0
    for keyword in config.stores:
        try:
            crm.set_callback(keyword, url)
            print(f"{keyword}: callback set to {config.public_url}/sms/inbound/…")
        except (CrmTextError, CrmTextUnavailable) as exc:
            failures += 1
            print(f"{keyword}: FAILED: {exc}", file=sys.stderr)
    crm.close()
    return 1 if failures else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the live configuration; print each problem with its fix (exit 1 if any)."""
    import os

    from bot.doctor import run

    return run(os.environ, sys.stdout)


def cmd_manifest(args: argparse.Namespace) -> int:
    """Print the Slack app manifest with this deployment's URL."""
    from bot.manifest import render

    if not args.url.startswith("https://"):
        print("Slack needs an https URL for events, interactivity and commands.", file=sys.stderr)
        return 2
    sys.stdout.write(render(args.url))
    return 0


def cmd_blasts(args: argparse.Namespace) -> int:
    """List every blast: who, when, what, and how it went."""
    from bridge.store import open_store

    storage = open_store(_config().database_url)
    storage.migrate()
    store = args.store.upper() if args.store else None
    if store and store not in _config().stores:
        print(f"{store} is not a store in SMS_STORES", file=sys.stderr)
        return 2
    rows = storage.blasts.rows(store)
    if not rows:
        print("no blasts yet")
    for blast in rows:
        counts = storage.blasts.recipient_counts(blast["id"])
        when = (blast["started_at"] or blast["created_at"] or "")[:16].replace("T", " ")
        print(
            f"#{blast['id']} {blast['store']} {when} UTC {blast['status']:<9} "
            f"by {blast['confirmed_by'] or blast['created_by']} · {blast['mode'] or '-'} · "
            f"{counts.get('sent', 0)} sent, {counts.get('failed', 0)} failed, "
            f"{counts.get('skipped', 0)} skipped, {counts.get('pending', 0)} pending of "
            f"{blast['total']}\n    {blast['final_text'] or blast['text']!r}"
        )
    storage.close()
    return 0


def _consent_store(args: argparse.Namespace) -> tuple[Config, str] | None:
    """The configuration and the store keyword named by ``--store`` (None after saying why)."""
    config = _config()
    store = args.store.upper()
    if store not in config.stores:
        print(f"{store} is not a store in SMS_STORES ({', '.join(config.stores)})", file=sys.stderr)
        return None
    return config, store


def cmd_consent_opt_out(args: argparse.Namespace) -> int:
    """Record an opt-out a customer asked for by phone, e-mail or in person."""
    from bot.blocks import escape
    from bot.consent import HOW, record_opt_out
    from bridge.phones import InvalidPhone, parse_us, pretty
    from bridge.store import open_store, utcnow

    found = _consent_store(args)
    if found is None:
        return 2
    config, store = found
    try:
        phone = parse_us(args.phone)
    except InvalidPhone as exc:
        print(exc, file=sys.stderr)
        return 2
    if not args.by.strip():
        print("--by must name who recorded it", file=sys.stderr)
        return 2
    if args.how == "other" and not args.note.strip():
        print("--note must say how they asked when --how is other", file=sys.stderr)
        return 2
    storage = open_store(config.database_url)
    try:
        if storage.pending_migrations():
            print("the database is not migrated: run `smsbridge migrate` first", file=sys.stderr)
            return 3
        now = utcnow()
        customer = storage.customers.upsert(store, phone, now=now)
        thread = storage.conversations.latest_thread(customer["id"])
        recorded = record_opt_out(
            storage,
            customer,
            how=args.how,
            note=args.note,
            actor=args.by.strip(),
            who=escape(args.by.strip()),
            thread_id=thread["id"] if thread else None,
            now=now,
            cli=True,
        )
    finally:
        storage.close()
    if not recorded:
        print(f"{pretty(phone)} was already opted out at {store}; nothing changed.")
        return 0
    print(
        f"{pretty(phone)} is opted out at {store}: recorded by {args.by.strip()} "
        f"({HOW[args.how]}). CRM Text is told by the running smsbridge (job crm_opt_out)"
        + ("; the customer's thread says so." if thread else ".")
    )
    return 0


def cmd_consent_export(args: argparse.Namespace) -> int:
    """Write every consent event of a store as CSV (stdout or --out)."""
    from bridge.consent_export import export, parse_since
    from bridge.store import open_store

    found = _consent_store(args)
    if found is None:
        return 2
    config, store = found
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    storage = open_store(config.database_url)
    try:
        if args.out:
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                count = export(storage, store, out, since)
        else:
            count = export(storage, store, sys.stdout, since)
    finally:
        storage.close()
    print(f"{count} consent event(s) of {store}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the app with Flask's server (development; production uses gunicorn, see Procfile)."""
    from bot.app import create_app
    from bot.services import build_services
    from bot.worker import DatabaseInUse, Worker, hold_database, migrate

    config = _config()
    try:
        lock = hold_database(config)
    except DatabaseInUse as exc:
        print(exc, file=sys.stderr)
        return 3
    services = build_services(config)
    if lock is not None:
        migrate(services)
    if config.run_workers:
        Worker(services).start()
    create_app(config, services=services).run(host="0.0.0.0", port=config.port, threaded=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the job lanes (Slack, CRM Text, media, blasts) in this process until SIGTERM."""
    from bot.worker import run_worker

    return run_worker(_config(), grace=args.grace)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.dev.demo import run_demo

    return run_demo(verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsbridge", description="Text with your store's customers from Slack."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="offline story against the bundled simulators")
    demo.add_argument("--verbose", action="store_true", help="show the app's log lines")
    demo.set_defaults(func=cmd_demo)
    commands.add_parser("serve", help="run the app (development server)").set_defaults(
        func=cmd_serve
    )
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    db = commands.add_parser("db", help="database tools").add_subparsers(required=True)
    copy = db.add_parser("copy", help="copy DATABASE_URL's data into an empty database")
    copy.add_argument("--to", required=True, help="target URL, like postgresql://…")
    copy.set_defaults(func=cmd_db_copy)
    worker = commands.add_parser("worker", help="run the background jobs (Procfile worker:)")
    worker.add_argument(
        "--grace",
        type=float,
        default=20.0,
        help="seconds running jobs may take to finish after SIGTERM before they are given back",
    )
    worker.set_defaults(func=cmd_worker)
    blasts = commands.add_parser("blasts", help="list blasts (who, when, text, counts)")
    blasts.add_argument("--store", help="only this store keyword")
    blasts.set_defaults(func=cmd_blasts)
    consent = commands.add_parser(
        "consent", help="consent records: staff-recorded opt-outs, the ledger as CSV"
    ).add_subparsers(required=True)
    opt_out = consent.add_parser(
        "opt-out", help="record an opt-out asked for by phone, e-mail or in person"
    )
    opt_out.add_argument("--store", required=True, help="store keyword")
    opt_out.add_argument("--phone", required=True, help="the customer's number")
    opt_out.add_argument("--how", required=True, choices=["phone", "email", "in-person", "other"])
    opt_out.add_argument("--note", default="", help="what they said, when, who took it")
    opt_out.add_argument("--by", required=True, help="who records it (your name)")
    opt_out.set_defaults(func=cmd_consent_opt_out)
    export = consent.add_parser("export", help="every consent event of a store as CSV")
    export.add_argument("--store", required=True, help="store keyword")
    export.add_argument("--since", help="from this date (YYYY-MM-DD, UTC) or ISO time")
    export.add_argument("--out", help="write to this file instead of standard output")
    export.set_defaults(func=cmd_consent_export)
    commands.add_parser(
        "set-callback", help="register this app's callback URL with CRM Text"
    ).set_defaults(func=cmd_set_callback)
    commands.add_parser(
        "doctor", help="check the configuration: database, Slack, CRM Text, callback"
    ).set_defaults(func=cmd_doctor)
    manifest = commands.add_parser("manifest", help="print the Slack app manifest")
    manifest.add_argument("--url", required=True, help="public base URL of this app")
    manifest.set_defaults(func=cmd_manifest)
    for name, text in [
        ("simulator", "run the CRM Text simulator (smsbridge simulator --help)"),
        ("text", "make a simulated customer text a store (smsbridge text --help)"),
        ("fake-slack", "run the local Slack Web API stand-in (smsbridge fake-slack --help)"),
    ]:
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logsafe.configure("%(levelname)s %(name)s: %(message)s")
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in PASSTHROUGH:  # these parse their own options
        return PASSTHROUGH[words[0]](words[1:])
    args = build_parser().parse_args(words)
    return int(args.func(args))


def _simulator(argv: list[str]) -> int:
    from bot.dev.fake_crmtext import main as simulator_main

    return simulator_main(argv)


def _text(argv: list[str]) -> int:
    from bot.dev.fake_crmtext import text_main

    return text_main(argv)


def _fake_slack(argv: list[str]) -> int:
    from bot.dev.fake_slack import serve_main

    return serve_main(argv)


PASSTHROUGH = {"simulator": _simulator, "text": _text, "fake-slack": _fake_slack}


if __name__ == "__main__":
    raise SystemExit(main())
