"""The command line: `python main.py COMMAND`, see `--help`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from handlers import log
from handlers.audit_report import COLUMNS as AUDIT_COLUMNS
from handlers.config import Settings
from handlers.errors import ConfigError, TransientError
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
    _add_audit_commands(commands)
    return parser


def _add_audit_commands(commands) -> None:
    replay = commands.add_parser(
        "replay", help="publish a job's logged entries to the audit topic"
    )
    replay.add_argument(
        "--job",
        action="append",
        metavar="J",
        help="a job whose entries to replay (repeatable)",
    )
    replay.add_argument("--since", metavar="T", help="from this time (RFC 3339)")
    replay.add_argument("--until", metavar="T", help="before this time (RFC 3339)")
    replay.add_argument(
        "--resume",
        metavar="REPLAY_ID",
        help="continue an interrupted replay from its checkpoint",
    )
    replay.set_defaults(run=run_replay)  # fmt: skip

    seek = commands.add_parser(
        "seek", help="deliver a subscription's retained messages again"
    )
    seek.add_argument(
        "--subscription",
        metavar="S",
        required=True,
        help="projects/P/subscriptions/S, or S in WATCHDOG_PROJECT",
    )
    target = seek.add_mutually_exclusive_group(required=True)
    target.add_argument("--time", metavar="T", help="messages published from T")
    target.add_argument("--snapshot", metavar="N", help="the state of a snapshot")
    seek.set_defaults(run=run_seek)  # fmt: skip

    report = commands.add_parser(
        "audit-report", help="a replay's verdicts beside the recorded ones"
    )
    report.add_argument("replay_id", metavar="REPLAY_ID")
    _add_format(report)
    report.set_defaults(run=audit_report)


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


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    from handlers import replay

    try:
        checkpoint = _checkpoint(args, settings)
        print(
            f"replay {checkpoint.replay_id}: publishing to {checkpoint.topic}; "
            f"resume with --resume {checkpoint.replay_id}",
            file=sys.stderr,
        )
        replay.run(settings, checkpoint)
    except (ConfigError, TransientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; resume with --resume {checkpoint.replay_id}",
              file=sys.stderr)  # fmt: skip
        return 130
    print(checkpoint.replay_id)
    return 0


def _checkpoint(args: argparse.Namespace, settings: Settings):
    from handlers import replay, times

    if args.resume:
        return replay.Checkpoint.load(replay.CHECKPOINTS, args.resume)
    if not settings.audit_topic or not settings.project:
        raise ConfigError("a replay needs WATCHDOG_AUDIT_TOPIC (projects/P/topics/T) "
                          "and WATCHDOG_PROJECT (where the logs are)")  # fmt: skip
    if not args.job or not args.since:
        raise ConfigError("a replay needs --job J and --since T (or --resume ID)")
    for moment in filter(None, (args.since, args.until)):
        if times.parse(moment) is None:
            raise ConfigError(f"{moment!r}: expected RFC 3339, such as "
                              "2026-12-01T09:00:00Z")  # fmt: skip
    checkpoint = replay.Checkpoint(
        replay.new_replay_id(),
        sorted(set(args.job)),
        args.since,
        args.until,
        settings.audit_topic,
    )
    checkpoint.save(replay.CHECKPOINTS)
    return checkpoint


def run_seek(args: argparse.Namespace, settings: Settings) -> int:
    from handlers import seek

    try:
        name = seek.full_name(args.subscription, "subscriptions", settings.project)
        snapshot = args.snapshot and seek.full_name(
            args.snapshot, "snapshots", settings.project
        )
        request = seek.seek(name, args.time, snapshot)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(seek.describe(request))
    return 0


def audit_report(args: argparse.Namespace, settings: Settings) -> int:
    from handlers.audit_report import compare
    from handlers.ledger import NAMESPACE, namespaced_path

    scheme, _, path = settings.ledger.partition(":")
    unknown = not NAMESPACE.match(args.replay_id) or (
        scheme == "sqlite"
        and path != ":memory:"
        and not Path(namespaced_path(path, args.replay_id)).is_file()
    )
    if unknown:
        print(f"error: no replay {args.replay_id!r} in {settings.ledger}",
              file=sys.stderr)  # fmt: skip
        return 1
    with _ledger(settings) as production, _ledger(settings, args.replay_id) as audit:
        report = compare(args.replay_id, production, audit)
    if not report.rows:
        print(f"error: replay {args.replay_id} has no verdicts (yet)", file=sys.stderr)
        return 1
    if args.format == "json":
        write_json_lines(report.rows, sys.stdout)
        return 0
    print(report.headline())
    write_table(report.rows, sys.stdout, AUDIT_COLUMNS)
    return 0


@contextmanager
def _ledger(settings: Settings, namespace: str = ""):
    from handlers.ledger import open_ledger

    ledger = open_ledger(settings.ledger, ttl_days=settings.dedup_ttl_days,
                         namespace=namespace)  # fmt: skip
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
