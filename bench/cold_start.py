"""Cold start: from starting functions-framework to its first handled log message.

Each run starts `python -m functions_framework --source main.py --target
handle_log_entry ...` on a free loopback port, with a fresh ledger, and times
until a real push body (an entry of samples/export.json) is answered 200. The
baseline is a function in a temporary folder that imports only
functions-framework and the ledger's client and writes once. Runs alternate
between the two; the median of RUNS is printed, after one warm-up run each.
Goal: the watchdog's cold start is at most 1.2 times the baseline's.

It also lists which heavy libraries `import main` loads: a library needed only
on some paths should be imported on those paths.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sample import export
from _server import (
    ROOT,
    clean_env,
    drop_project,
    firestore_emulator,
    median,
    post,
    push_bytes,
    running,
    scratch,
    verdict,
    write_function,
)

from samples.logentries import push_body

RUNS = 7
GOAL = 1.2
HEAVY = (
    "google.cloud.run_v2",
    "google.cloud.firestore",
    "google.cloud.pubsub_v1",
    "slack_sdk",
    "matplotlib",
)

SQLITE_BASELINE = '''\
"""Baseline: functions-framework and sqlite3, one insert per message."""
import os
import sqlite3

import functions_framework

_db = None


@functions_framework.cloud_event
def handle_log_entry(cloud_event):
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ["BASELINE_DB"], isolation_level=None)
        _db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY)")
    _db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (cloud_event["id"],))
'''

FIRESTORE_BASELINE = '''\
"""Baseline: functions-framework and google.cloud.firestore, one create."""
import os

import functions_framework
from google.cloud import firestore

_client = None


@functions_framework.cloud_event
def handle_log_entry(cloud_event):
    global _client
    if _client is None:
        _client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    _client.collection("baseline").document(cloud_event["id"]).create({"n": 1})
'''


def sample_entry() -> dict:
    """The first structured marker of the demo export: the commonest kind."""
    return next(e for e in export() if "marker" in e.get("jsonPayload", {}))


def first_message(source: Path, env: dict, body: bytes, log: Path) -> float:
    """Seconds from starting the server to the first message answered 200."""
    with running(source, env, log) as server:
        connection = server.connect()
        try:
            status = post(connection, body)
            elapsed = time.perf_counter() - server.started
        finally:
            connection.close()
        if status != 200:
            raise RuntimeError(server.failure(f"answered {status}"))
    return elapsed


@dataclass(frozen=True)
class Side:
    """One of the two functions compared: its source, and its env for run n."""

    source: Path
    env: Callable[[int], dict]
    tag: str


def compare(ours: Side, baseline: Side, entry: dict, log: Path) -> tuple[list, list]:
    """Alternate runs of the two sides, after one warm-up run of each."""
    times: tuple[list, list] = ([], [])
    for n in range(RUNS + 1):
        for side, found in zip((ours, baseline), times, strict=True):
            body = message(entry, f"{side.tag}{n}")
            elapsed = first_message(side.source, side.env(n), body, log)
            if n > 0:  # run 0 warms the page cache and the bytecode cache
                found.append(elapsed)
    return times


def message(entry: dict, tag: str) -> bytes:
    """A push body of `entry` under a new insertId and message id."""
    fresh = dict(entry, insertId=f"{entry['insertId']}-{tag}")
    return push_bytes(push_body(fresh, f"cold-{tag}"))


def sqlite_sides(folder: Path) -> tuple[Side, Side]:
    """The watchdog with a new SQLite ledger each run, and its baseline."""
    pycache = folder / "pycache"
    ours = Side(
        ROOT / "main.py",
        lambda n: clean_env(pycache, WATCHDOG_LEDGER=f"sqlite:{folder}/ours-{n}.db"),
        "s",
    )
    baseline = Side(
        write_function(folder, SQLITE_BASELINE),
        lambda n: clean_env(pycache, BASELINE_DB=f"{folder}/baseline-{n}.db"),
        "b",
    )
    return ours, baseline


def firestore_sides(folder: Path, host: str, projects: list[str]):
    """Both sides against the emulator, each run in a project of its own."""

    def env(project: str) -> dict:
        projects.append(project)
        return clean_env(
            folder / "pycache",
            FIRESTORE_EMULATOR_HOST=host,
            GOOGLE_CLOUD_PROJECT=project,
            WATCHDOG_LEDGER="firestore",
        )

    ours = Side(ROOT / "main.py", lambda n: env(f"bench-cold-ours-{n}"), "fs")
    baseline = Side(
        write_function(folder, FIRESTORE_BASELINE),
        lambda n: env(f"bench-cold-base-{n}"),
        "fb",
    )
    return ours, baseline


def report(label: str, baseline_label: str, times: tuple[list, list]) -> None:
    ours, base = median(times[0]), median(times[1])
    ratio = ours / base
    print(f"  {label}")
    print(f"    watchdog:  {ours:.3f} s   runs {_runs(times[0])}")
    print(f"    baseline:  {base:.3f} s   runs {_runs(times[1])}")
    print(f"               ({baseline_label})")
    print(
        f"    cold start {label}: ratio {ratio:.3f} "
        f"(goal: at most {GOAL:.2f}) {verdict(ratio, GOAL)}"
    )


def _runs(times: list[float]) -> str:
    return " ".join(f"{t:.3f}" for t in times)


PROBE = (
    "import json, sys, main; "
    f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
)


def import_check(pycache: Path) -> None:
    """Which heavy libraries `import main` loads, and what the import costs."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE],
        cwd=ROOT,
        env=clean_env(pycache),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout)
    cumulative = _import_times(done.stderr)
    total, framework = cumulative["main"], cumulative["functions_framework"]
    print(
        f"  import main: {total / 1000:.0f} ms, of which functions_framework "
        f"{framework / 1000:.0f} ms and the watchdog's own modules "
        f"{(total - framework) / 1000:.0f} ms (-X importtime, one run)"
    )
    imported = [m for m in HEAVY if loaded[m]]
    for module in HEAVY:
        print(f"    {module:24} {'IMPORTED' if loaded[module] else 'not imported'}")
    print(
        "  heavy libraries imported by `import main`: "
        f"{', '.join(imported) or 'none'} (goal: none) "
        f"{'OK' if not imported else 'OVER GOAL'}"
    )


def _import_times(stderr: str) -> dict[str, int]:
    """Cumulative microseconds per module, first occurrence, from -X importtime."""
    found: dict[str, int] = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s+(\S+)", line)
        if match:
            found.setdefault(match[2], int(match[1]))
    return found


def main() -> None:
    entry = sample_entry()
    print(
        "cold start: start of functions-framework to the first message answered "
        f"200, median of {RUNS} runs after one warm-up"
    )
    with scratch("cold") as folder:
        log = folder / "server.log"
        report(
            "with the SQLite ledger",
            "functions_framework + sqlite3, one insert",
            compare(*sqlite_sides(folder), entry, log),
        )
        with firestore_emulator() as host:
            if host is not None:
                projects: list[str] = []
                try:
                    times = compare(
                        *firestore_sides(folder, host, projects), entry, log
                    )
                finally:
                    for project in projects:
                        drop_project(host, project)
                report(
                    "with Firestore (emulator)",
                    "functions_framework + google.cloud.firestore, one create",
                    times,
                )
        import_check(folder / "pycache")


if __name__ == "__main__":
    main()
