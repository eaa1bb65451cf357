"""The command line: `python main.py COMMAND`, see `--help`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from handlers import log
from handlers.config import Settings
from handlers.errors import ConfigError
from handlers.exports import UnusableExport
from handlers.report import in_order, write_json_lines, write_table


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log.setup(sys.stderr, logging.WARNING)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return args.run(args, settings)
    except BrokenPipeError:
        # NOTE: the reader (e.g. `head`) closed the pipe; that is not an error.
        sys.stdout = None
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Core-override watchdog: verdicts on Cloud Run job executions.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check-config", help="print the effective configuration and check it"
    )
    check.set_defaults(run=check_config)

    audit = commands.add_parser(
        "audit", help="verdicts of the executions in exported log files"
    )
    audit.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="a `gcloud logging read --format=json` export or JSON Lines",
    )
    audit.add_argument(
        "--job",
        action="append",
        metavar="J",
        help="watch this job instead of WATCHDOG_JOBS (repeatable)",
    )
    _add_format(audit)
    audit.set_defaults(run=run_audit)

    status = commands.add_parser(
        "rollback-status", help="rollback decisions kept in the ledger"
    )
    status.add_argument("--job", metavar="J", help="only this job")
    _add_format(status)
    status.set_defaults(run=rollback_status)

    rearm = commands.add_parser(
        "rearm", help="count a job's failures afresh and end its rollback cooldown"
    )
    rearm.add_argument("--job", metavar="J", required=True, help="a watched job")
    rearm.set_defaults(run=rearm_job)

    verdicts = commands.add_parser("verdicts", help="verdicts kept in the ledger")
    verdicts.add_argument("--job", metavar="J", help="only this job")
    _add_format(verdicts)
    verdicts.set_defaults(run=list_verdicts)
    return parser


def _add_format(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table, or one JSON object per execution per line",
    )


def check_config(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.describe()
    width = max(len(name) for name, _, _ in rows)
    for name, value, meaning in rows:
        print(f"{name.ljust(width)}  {value}\n{' ' * width}  ({meaning})")
    print("configuration is usable")
    return 0


def run_audit(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.audit import audit_files

    if args.job:
        settings = dataclasses.replace(settings, jobs=frozenset(args.job))
    try:
        result = audit_files(args.files, settings)
    except UnusableExport as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _say_skipped(result.entries, result.skipped, settings)
    if not result.entries or (not result.verdicts and result.skipped):
        print("error: no usable log entry in the input", file=sys.stderr)
        return 1
    _write([v.to_record() for v in result.verdicts], args.format)
    return 0


def list_verdicts(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as ledger:
        _write(in_order(ledger.verdicts(args.job)), args.format)
    return 0


# The ledger's decisions also hold the Slack messages' claims (handlers/notify.py).
SHOWN = frozenset({"rollback", "rearm", "cooldown"})
DECISION_COLUMNS = (
    ("TIME", "time"),
    ("JOB", "job"),
    ("KIND", "kind"),
    ("MODE", "mode"),
    ("OUTCOME", "outcome"),
    ("EXECUTIONS", "executions"),
    ("REASON", "reason"),
)


def rollback_status(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(settings) as ledger:
        records = [r for r in ledger.decisions(args.job) if r.get("kind") in SHOWN]
    if args.format == "json":
        write_json_lines(records, sys.stdout)
        return 0
    rows = [
        {**r, "executions": ",".join(v["execution"] for v in r.get("streak") or ())}
        for r in records
    ]
    write_table(rows, sys.stdout, DECISION_COLUMNS)
    return 0


def rearm_job(args: argparse.Namespace, settings: Settings) -> int:
    from handlers import rollback

    if args.job not in settings.jobs:
        print(f"error: {args.job!r} is not in WATCHDOG_JOBS", file=sys.stderr)
        return 1
    with _ledger(settings) as ledger:
        record = rollback.rearm(ledger, args.job, by="the command line")
    print(f"{args.job}: re-armed at {record['time']}; failures count from now on")
    return 0


@contextmanager
def _ledger(settings: Settings):
    from handlers.ledger import open_ledger

    ledger = open_ledger(settings.ledger, ttl_days=settings.dedup_ttl_days)
    try:
        yield ledger
    finally:
        ledger.close()


def _write(records: list[dict], form: str) -> None:
    if form == "json":
        write_json_lines(records, sys.stdout)
    else:
        write_table(records, sys.stdout)


def _say_skipped(entries: int, skipped: dict, settings: Settings) -> None:
    if not skipped:
        return
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
    print(
        f"read {entries} entries; skipped {sum(skipped.values())} ({reasons})",
        file=sys.stderr,
    )
    if skipped.get("unwatched_job"):
        jobs = ",".join(sorted(settings.jobs))
        print(f"note: watching {jobs}; use --job to audit other jobs", file=sys.stderr)
