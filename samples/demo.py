"""The watchdog at work on the sample export, as Pub/Sub push would feed it.

Every entry of samples/export.json is posted to `handle_log_entry` through
functions-framework as a raw push body, shuffled, some twice, with a few
messages no sink would send. After the grace period a scheduler tick writes
the verdicts, and the summaries that would go to Slack are printed. A late
marker then shows that a written verdict does not change.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GRACE_SECONDS = 2


def main() -> None:
    workdir = tempfile.mkdtemp(prefix="watchdog-demo-")
    os.environ.update(
        WATCHDOG_LEDGER=f"sqlite:{workdir}/ledger.sqlite3",
        WATCHDOG_GRACE_SECONDS=str(GRACE_SECONDS),
    )
    from functions_framework import create_app

    from handlers import app, log
    from samples.logentries import push_body

    log.setup(sys.stdout, logging.WARNING)
    source = str(ROOT / "main.py")
    logs = create_app("handle_log_entry", source, "cloudevent").test_client()
    ticks = create_app("handle_tick", source, "cloudevent").test_client()
    entries = json.loads((ROOT / "samples" / "export.json").read_text())

    bodies = [push_body(e, str(1000 + n)) for n, e in enumerate(entries)]
    rng = random.Random(7)
    redelivered = rng.sample(bodies, k=len(bodies) // 5)
    deliveries = bodies + redelivered + _garbage()
    rng.shuffle(deliveries)
    _section(
        f"Delivering {len(deliveries)} messages: {len(entries)} entries, "
        f"{len(redelivered)} redelivered, {len(_garbage())} bad, shuffled"
    )
    started = time.monotonic()
    statuses = [logs.post("/", json=body).status_code for body in deliveries]
    elapsed = time.monotonic() - started
    print(
        f"HTTP statuses: {sorted(set(statuses))}, "
        f"{1000 * elapsed / len(deliveries):.1f} ms per message"
    )
    print(f"verdicts before the grace period: {len(app.watchdog().ledger.verdicts())}")

    _section(f"Waiting {GRACE_SECONDS} s of grace, then a scheduler tick")
    time.sleep(GRACE_SECONDS + 0.1)
    ticks.post("/", json=_tick())

    _section("A marker arriving after its verdict is kept and changes nothing")
    ledger = app.watchdog().ledger
    late = dict(entries[-1], insertId="late-marker-1")
    job, execution = late["resource"]["labels"]["job_name"], _execution(late)
    before = len(ledger.observations(job, execution))
    logs.post("/", json=push_body(late, "9999"))
    print(
        f"{execution}: {before} -> {len(ledger.observations(job, execution))} "
        f"observations kept, verdict still {ledger.verdict(job, execution)['verdict']}"
    )

    _section("Verdicts in the ledger (python main.py verdicts)")
    from handlers.report import in_order, write_table

    records = in_order(ledger.verdicts())
    write_table(records, sys.stdout)
    _streaks(records)


def _execution(entry: dict) -> str:
    return entry["labels"]["run.googleapis.com/execution_name"]


def _garbage() -> list[dict]:
    message = {"messageId": "bad-1", "publishTime": "2026-11-30T00:00:00Z"}
    return [
        {"message": {**message, "data": "not base64 at all!"}, "subscription": "s"},
        {
            "message": {**message, "messageId": "bad-2", "data": "e30="},
            "subscription": "s",
        },
    ]


def _tick() -> dict:
    return {
        "message": {
            "data": "",
            "messageId": "tick-1",
            "publishTime": "2026-12-01T00:00:00Z",
        },
        "subscription": "projects/example/subscriptions/watchdog-ticks",
    }


def _streaks(verdicts: list[dict]) -> None:
    from handlers.verdict import FAILING, RESETTING

    by_job: dict[str, int] = {}
    for record in verdicts:
        job, verdict = record["job"], record["verdict"]
        if verdict in FAILING:
            by_job[job] = by_job.get(job, 0) + 1
        elif verdict in RESETTING:
            by_job[job] = 0
    print()
    for job, streak in sorted(by_job.items()):
        print(f"{job}: {streak} failing verdict(s) in a row")


def _section(title: str) -> None:
    print(f"\n=== {title}\n", flush=True)


if __name__ == "__main__":
    main()
