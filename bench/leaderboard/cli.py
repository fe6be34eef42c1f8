"""Argparse of ``bench submit`` and ``bench leaderboard ...`` (serve, migrate, token, hide, unhide, list, export).

Imports nothing heavy at module level: ``bench --help`` builds these parsers. Each command imports the leaderboard
modules (SQLAlchemy, Starlette, uvicorn: the ``leaderboard`` extra) when it runs, and says how to install them when
they are missing.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

DB_HELP = (
    "database: an SQLite file path or a URL (postgresql://user:pw@host/db); "
    "default $BENCH_LEADERBOARD_DB or ./leaderboard.db"
)


def _engine(args: argparse.Namespace, *, migrate: bool = True) -> Any:
    from bench.leaderboard import storage  # a missing extra: bench.cli.main names it (bench.extras)

    engine = storage.make_engine(getattr(args, "db", None))
    if migrate:
        storage.upgrade(engine)
    return engine


def cmd_submit(args: argparse.Namespace) -> int:
    """Send a run to a leaderboard and print its id and URL."""
    from bench.leaderboard.client import TOKEN_ENV, submit

    receipt = submit(args.run, args.to, args.token or os.environ.get(TOKEN_ENV, ""))
    state = "stored" if receipt.created else "already stored (same content hash)"
    print(f"{state}: submission {receipt.id}\n{receipt.url}")
    if receipt.replaced:
        print(
            "replaces submission(s) "
            + ", ".join(str(i) for i in receipt.replaced)
            + ": the earlier document(s) of this run, kept and counted nowhere"
        )
    if receipt.flagged_cells:
        from bench.results import load_results
        from bench.validation import redo_command

        print(
            f"{receipt.flagged_cells} cell(s) flagged (other processes, throttling or temperature): accepted, left "
            f"out of the leaderboard's means; redo them with `{redo_command(load_results(args.run), args.run)}` "
            "and submit the run again (it replaces this submission)"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the leaderboard (migrating its database first unless --no-upgrade)."""
    _engine(args, migrate=False)  # fail early on a missing extra or a bad URL
    from bench.leaderboard.service import Settings, serve

    settings = Settings(
        max_body_bytes=args.max_body_mb * 1024 * 1024,
        rate_limit_per_minute=args.rate_limit,
        public_url=args.public_url,
    )
    serve(getattr(args, "db", None), args.host, args.port, settings, upgrade=not args.no_upgrade, workers=args.workers)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the database schema."""
    from bench.leaderboard import storage

    engine = _engine(args, migrate=False)
    head = storage.upgrade(engine)
    print(f"database at schema revision {head}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Create, revoke or list submitter tokens."""
    from bench.leaderboard import storage

    engine = _engine(args)
    if args.action == "create":
        token = storage.create_token(engine, args.name)
        print(f"token for {args.name!r} (shown once; only its sha256 is stored):\n{token}")
    elif args.action == "revoke":
        storage.revoke_token(engine, args.name)
        print(f"revoked token {args.name!r}")
    else:
        for t in storage.list_tokens(engine):
            state = f"revoked {t['revoked_at']}" if t["revoked_at"] else "active"
            print(f"{t['id']:>4}  {t['name']:<30}  created {t['created_at']}  {state}")
    return 0


def cmd_hide(args: argparse.Namespace) -> int:
    """Hide or show again a submission (it is never deleted)."""
    from bench.leaderboard import storage

    engine = _engine(args)
    storage.set_hidden(engine, args.id, args.command_name == "hide", args.reason)
    print(f"submission {args.id} {'hidden' if args.command_name == 'hide' else 'visible again'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List stored submissions, hidden ones included."""
    from bench.leaderboard import storage

    engine = _engine(args)
    for s in storage.list_submissions(engine, limit=args.limit, include_hidden=True):
        flag = ("  HIDDEN" if s["hidden"] else "") + (f"  REPLACED by {s['replaced_by']}" if s["replaced_by"] else "")
        machine = f"{s['hardware_profile']:<10} {s['gpu_model']:<28}"
        print(f"{s['id']:>6}  {s['submitted_at']}  {machine} {s['run_id']}{flag}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the leaderboard as static files, or (``--format hf-dataset``) as a Hugging Face dataset."""
    if args.format == "hf-dataset":
        from bench.leaderboard.dataset import export_hf_dataset

        rows = export_hf_dataset(_engine(args), args.output)
        print(
            f"wrote {args.output}: Hugging Face dataset, {rows['cells']} cell(s), {rows['runs']} run(s), "
            f"{rows['models']} model row(s) as Parquet, with its card README.md"
        )
        return 0
    from bench.leaderboard.export import export_site

    counts = export_site(_engine(args), args.output)
    print(
        f"wrote {args.output}: {counts['datasets']} data set(s) in {counts['pages']} leaderboard page(s) "
        f"(every sort and page), {counts['submissions']} submission(s)"
    )
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``submit`` and ``leaderboard`` to the ``bench`` subparsers."""
    p = sub.add_parser("submit", help="send a run (results.json + report.html) to a shared leaderboard")
    p.add_argument("run", help="run folder (reports/<run-id>) or its results.json")
    p.add_argument("--to", required=True, metavar="URL", help="the leaderboard's URL")
    p.add_argument("--token", help="your submitter token (default: $BENCH_LEADERBOARD_TOKEN)")
    p.set_defaults(func=cmd_submit)

    lb = sub.add_parser("leaderboard", help="run the shared leaderboard: serve, tokens, hide, export")
    lsub = lb.add_subparsers(dest="leaderboard_command", required=True, metavar="ACTION")

    def with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # Absent unless given (SUPPRESS), so `token --db X create` and `token create --db X` both keep X: a
        # subcommand's default would otherwise overwrite what its parent parsed.
        parser.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)
        return parser

    p = with_db(lsub.add_parser("serve", help="serve the leaderboard (HTTP) with uvicorn"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--rate-limit", type=int, default=30, help="submissions per minute per token (0: no limit)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1); they share the database, the rate limit included",
    )
    p.add_argument("--max-body-mb", type=int, default=32, help="largest submission accepted, MiB (default 32)")
    p.add_argument("--public-url", help="the URL submitters reach this service at (for the URLs in answers)")
    p.add_argument("--no-upgrade", action="store_true", help="refuse to start unless the schema is current")
    p.set_defaults(func=cmd_serve)

    p = with_db(lsub.add_parser("migrate", help="create or upgrade the database schema (serve does it too)"))
    p.set_defaults(func=cmd_migrate)

    # One subcommand per action (not a choices positional and an optional NAME: argparse then refused
    # `token create --db lb.db alice`, options before the name, as "unrecognized arguments: alice").
    p = with_db(lsub.add_parser("token", help="create, revoke or list submitter tokens"))
    tsub = p.add_subparsers(dest="action", required=True, metavar="create|revoke|list")
    for action, text in (("create", "create a token (printed once)"), ("revoke", "revoke a token")):
        t = with_db(tsub.add_parser(action, help=text))
        t.add_argument("name", help="who the token is for")
        t.set_defaults(func=cmd_token)
    with_db(tsub.add_parser("list", help="list tokens (names and dates, never the tokens)")).set_defaults(
        func=cmd_token
    )

    for name, text in (("hide", "hide a submission (kept, not deleted)"), ("unhide", "show a hidden submission")):
        p = with_db(lsub.add_parser(name, help=text))
        p.add_argument("id", type=int, help="submission id")
        p.add_argument("--reason", help="why (kept with the submission)")
        p.set_defaults(func=cmd_hide, command_name=name)

    p = with_db(lsub.add_parser("list", help="list submissions, hidden ones included"))
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_list)

    p = with_db(lsub.add_parser("export", help="write the leaderboard as static files (for a git repository)"))
    p.add_argument("-o", "--output", default="site", help="output folder (default: site)")
    p.add_argument(
        "--format",
        choices=["site", "hf-dataset"],
        default="site",
        help="site: HTML, JSON and CSV (default); hf-dataset: Parquet tables (cells, runs, models) and a dataset card",
    )
    p.set_defaults(func=cmd_export)
