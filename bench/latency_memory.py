"""Latency per message and memory of a warm functions-framework server.

One benchmark process sends push bodies of the demo export's entries (those
the log sink passes; executions renamed and insertIds new on every pass, so
none is a duplicate) over one persistent HTTP connection per server to
`python -m functions_framework` servers, one message at a time, and times each
round trip. The baseline is a no-op function on the same kind of server. The
servers run side by side and take message n in turn, so that other load on
the machine falls on all of them alike.

- Latency: p50 and p99 after WARMUP messages. Goal: the watchdog's p50 with
  the SQLite ledger is at most 3 times the no-op's. That run keeps verdicts
  off this path with a grace period longer than any run (the default, 120 s,
  runs out during a run on a slow or busy machine, and verdicts then start).
  Beside it: a shorter run with no grace period, where completions write
  verdicts, and a shorter run against the Firestore emulator (same grace as
  the main run).
- Memory: VmHWM and VmRSS of the gunicorn worker (the process that answers)
  after MESSAGES messages, and its RSS growth from message 1,000 to the last.
  Goals: under 150 MiB, and no growth per message beyond the no-op's.

`--out FILE` also writes the figures as JSON, for running_cost.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import statistics
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sample import push_bodies
from _server import (
    ROOT,
    Server,
    clean_env,
    compile_bytecode,
    cpu_seconds,
    drop_project,
    firestore_emulator,
    memory,
    mib,
    percentile,
    post,
    running,
    scratch,
    verdict,
    write_function,
)

MESSAGES = 10_000
VERDICT_MESSAGES = 5_100  # the runs beside the goal are shorter
FIRESTORE_MESSAGES = 2_100  # the emulator answers in about 10 ms
NO_VERDICTS = str(24 * 3600)  # grace seconds: no verdict during a run
WARMUP = 100
CHECKPOINT = 1_000
LATENCY_GOAL = 3.0
MEMORY_GOAL = 150 * 2**20
GROWTH_GOAL = 10  # bytes per message, beyond the no-op's: noise, not growth

NOOP = '''\
"""Baseline: a function that does nothing with the message."""
import functions_framework


@functions_framework.cloud_event
def handle_log_entry(cloud_event):
    pass
'''


@dataclass
class Run:
    label: str
    messages: int
    latencies: list[float] = field(repr=False)  # seconds, after the warm-up
    cpu_per_message: float  # worker CPU seconds per message, after the warm-up
    rss: list[tuple[int, int]]  # (messages so far, worker VmRSS bytes)
    final: dict[str, int]  # worker VmHWM, VmRSS, Pss
    master: dict[str, int]
    reconnects: int

    def p(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    def mean(self) -> float:
        return statistics.fmean(self.latencies)

    def summary(self) -> dict:
        fields = asdict(self)
        del fields["latencies"]
        return fields | {"p50": self.p(0.5), "p99": self.p(0.99), "mean": self.mean()}


@dataclass
class Target:
    """A function to serve, and the bodies to send it."""

    label: str
    source: Path
    env: dict
    bodies: list[bytes] = field(repr=False)


class Driver:
    """One server's connection, and what was measured on it."""

    def __init__(self, target: Target, server: Server):
        self.target, self.server = target, server
        self.connection = server.connect()
        self.latencies: list[float] = []
        self.rss: list[tuple[int, int]] = []
        self.reconnects = 0
        self.cpu_start = 0.0

    def send(self, n: int) -> None:
        """Send the n-th body (from 1) and time its round trip."""
        body = self.target.bodies[n - 1]
        started = time.perf_counter()
        try:
            status = post(self.connection, body)
        except (http.client.HTTPException, ConnectionError):
            # NOTE: counted and printed; the server closed the connection.
            self.reconnects += 1
            self.connection.close()
            self.connection = self.server.connect()
            started = time.perf_counter()
            status = post(self.connection, body)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(self.server.failure(f"answered {status} to message {n}"))

        worker = self.server.worker_pid()
        if n > WARMUP:
            self.latencies.append(elapsed)
        elif n == WARMUP:
            self.cpu_start = cpu_seconds(worker)
        if n % CHECKPOINT == 0:
            self.rss.append((n, memory(worker)["VmRSS"]))

    def close(self) -> None:
        self.connection.close()

    def result(self) -> Run:
        worker = self.server.worker_pid()
        cpu = cpu_seconds(worker) - self.cpu_start
        return Run(
            self.target.label, len(self.target.bodies), self.latencies,
            cpu / len(self.latencies), self.rss, memory(worker),
            memory(self.server.process.pid), self.reconnects,
        )  # fmt: skip


def measure_all(targets: list[Target], folder: Path) -> list[Run]:
    """Serve every target at once and send their messages in turn.

    One message is in flight at a time, and message n goes to every server
    before message n + 1 goes to any: load from elsewhere on the machine falls
    on all of them alike, which keeps their ratios steady.
    """
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running(t.source, t.env, folder / f"server-{n}.log"))
            for n, t in enumerate(targets)
        ]
        # Connected once all have started: gunicorn closes a connection idle
        # for 2 s (its keepalive).
        drivers = [Driver(t, s) for t, s in zip(targets, servers, strict=True)]
        for driver in drivers:
            stack.callback(driver.close)
        for n in range(1, max(len(t.bodies) for t in targets) + 1):
            for driver in drivers:
                if n <= len(driver.target.bodies):
                    driver.send(n)
        return [driver.result() for driver in drivers]


def measure(label: str, source: Path, env: dict, bodies: list[bytes], folder) -> Run:
    return measure_all([Target(label, source, env, bodies)], folder)[0]


def watchdog_runs(folder: Path, host: str | None, messages: int) -> list[Run]:
    """The no-op, the watchdog on SQLite, SQLite with no grace, and Firestore."""
    pycache = folder / "pycache"
    compile_bytecode(pycache)
    main = ROOT / "main.py"
    targets = [
        Target("no-op function", write_function(folder, NOOP), clean_env(pycache),
               push_bodies(messages, "noop")),
        Target("watchdog, SQLite ledger (no verdicts on this path)", main,
               clean_env(pycache, WATCHDOG_LEDGER=f"sqlite:{folder}/ledger.db",
                         WATCHDOG_GRACE_SECONDS=NO_VERDICTS),
               push_bodies(messages, "sq")),
        Target("watchdog, SQLite, grace 0 (verdicts on this path)", main,
               clean_env(pycache, WATCHDOG_LEDGER=f"sqlite:{folder}/grace0.db",
                         WATCHDOG_GRACE_SECONDS="0"),
               push_bodies(min(messages, VERDICT_MESSAGES), "g0")),
    ]  # fmt: skip
    if host is None:
        return measure_all(targets, folder)
    project = "bench-latency"
    env = clean_env(
        pycache,
        FIRESTORE_EMULATOR_HOST=host,
        GOOGLE_CLOUD_PROJECT=project,
        WATCHDOG_LEDGER="firestore",
        WATCHDOG_GRACE_SECONDS=NO_VERDICTS,
    )
    bodies = push_bodies(min(messages, FIRESTORE_MESSAGES), "fs")
    targets.append(Target("watchdog, Firestore emulator", main, env, bodies))
    try:
        return measure_all(targets, folder)
    finally:
        drop_project(host, project)


def print_latency(runs: list[Run]) -> None:
    noop = runs[0]
    print(
        "latency per message, warm: one keep-alive HTTP connection, one message at "
        f"a time, after {WARMUP} warm-up messages"
    )
    print(
        f"  {'':52} {'messages':>8} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>7} "
        f"{'CPU ms':>7}  (CPU: the worker's, per message)"
    )
    for run in runs:
        print(
            f"  {run.label:52} {len(run.latencies):8,} {run.p(0.5) * 1e3:7.2f} "
            f"{run.p(0.99) * 1e3:7.2f} {run.mean() * 1e3:7.2f} "
            f"{run.cpu_per_message * 1e3:7.2f}"
        )
    for run in runs[1:]:
        ratio = run.p(0.5) / noop.p(0.5)
        goal = (
            f"(goal: at most {LATENCY_GOAL:.2f}) {verdict(ratio, LATENCY_GOAL)}"
            if run is runs[1]
            else "(no goal)"
        )
        print(
            f"  p50 ratio {run.label} / no-op: {ratio:.2f} {goal}; "
            f"p99 ratio {run.p(0.99) / noop.p(0.99):.2f}"
        )
    for run in runs[:2]:
        first = percentile(run.latencies[:CHECKPOINT], 0.5)
        last = percentile(run.latencies[-CHECKPOINT:], 0.5)
        print(
            f"  drift, {run.label}: p50 of the first {CHECKPOINT:,} measured "
            f"{first * 1e3:.2f} ms, of the last {CHECKPOINT:,} {last * 1e3:.2f} ms"
        )
    if any(run.reconnects for run in runs):
        print("  reconnects: " + ", ".join(f"{r.label} {r.reconnects}" for r in runs))


def print_memory(runs: list[Run], ledger: Path) -> None:
    noop, ours = runs[0], runs[1]
    print("memory of the gunicorn worker, the process that answers (/proc/PID)")
    for run in runs:
        print(
            f"  {run.label:52} after {run.messages:6,}: "
            f"VmHWM {mib(run.final['VmHWM'])}, VmRSS {mib(run.final['VmRSS'])}; "
            f"master VmRSS {mib(run.master['VmRSS'])}; worker + master PSS "
            f"{mib(run.final.get('Pss', 0) + run.master.get('Pss', 0))}"
        )
    peak = ours.final["VmHWM"]
    within = "OK" if peak < MEMORY_GOAL else "OVER GOAL"
    print(
        f"  peak RSS of the watchdog's worker (SQLite, {ours.messages:,} messages): "
        f"{mib(peak)}, {peak / noop.final['VmHWM']:.2f} times the no-op's "
        f"(goal: under {mib(MEMORY_GOAL)}) {within}"
    )
    for run in runs:
        print(f"  growth, {run.label}: {_growth(run)}")
    extra = _per_message(ours) - _per_message(noop)
    print(
        f"  growth per message from message {ours.rss[0][0]:,} to "
        f"{ours.rss[-1][0]:,}, watchdog (SQLite) minus no-op: {extra:+.1f} bytes "
        f"(goal: none, at most {GROWTH_GOAL} bytes) "
        f"{verdict(extra, GROWTH_GOAL)}"
    )
    late = _per_message(ours, half=True) - _per_message(noop, half=True)
    print(f"    the same over the second half of the run: {late:+.1f} bytes")
    print(f"    SQLite's page cache may take up to {_page_cache()} per connection")
    if ledger.exists():
        print(
            f"  SQLite ledger file after {ours.messages:,} messages: "
            f"{mib(ledger.stat().st_size)} (on Cloud Run's in-memory disk it "
            "would count as memory)"
        )


def _page_cache() -> str:
    """SQLite's default page cache limit (PRAGMA cache_size: pages, or -KiB)."""
    with closing(sqlite3.connect(":memory:")) as db:
        size = db.execute("PRAGMA cache_size").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    return mib(-size * 1024 if size < 0 else size * page)


def _growth(run: Run) -> str:
    if len(run.rss) < 2:
        return "one checkpoint only"
    (n0, first), (n1, last) = run.rss[0], run.rss[-1]
    points = " ".join(f"{rss / 2**20:.1f}" for _, rss in run.rss)
    return (
        f"VmRSS {mib(first)} after {n0:,}, {mib(last)} after {n1:,}: "
        f"{_per_message(run):+.1f} bytes per message, linear fit "
        f"{_slope(run):+.1f}; MiB every {CHECKPOINT:,}: {points}"
    )


def _per_message(run: Run, half: bool = False) -> float:
    """RSS growth per message between two checkpoints: the first (or the one
    halfway) and the last."""
    first = run.rss[len(run.rss) // 2 - 1] if half else run.rss[0]
    last = run.rss[-1]
    return (last[1] - first[1]) / max(1, last[0] - first[0])


def _slope(run: Run) -> float:
    xs, ys = zip(*run.rss, strict=True)
    return statistics.linear_regression(xs, ys).slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    args = parser.parse_args()

    with scratch("latency") as folder, firestore_emulator() as host:
        runs = watchdog_runs(folder, host, args.messages)
        print_latency(runs)
        print_memory(runs, folder / "ledger.db")
    if args.out:
        args.out.write_text(json.dumps([run.summary() for run in runs], indent=1))


if __name__ == "__main__":
    main()
