"""Every benchmark, one after the other, as one report (`make bench`).

Each benchmark runs as its own process, as it would alone; their output is
printed under a heading, then the goal lines again together, then the chaos
test's reliability counts. One Firestore emulator serves the benchmarks that
need it (the chaos test starts its own). Goals are printed, never asserted:
the exit status is not zero only when a benchmark could not run.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _server import ROOT, firestore_emulator, firestore_missing, scratch

BENCH = Path(__file__).resolve().parent
CHAOS = ["-m", "pytest", "tests/test_chaos.py", "-q", "-s", "-p", "no:cacheprovider"]
TIMEOUT = 600


def run(title: str, args: list[str], env: dict | None = None) -> tuple[list, bool]:
    """Run `python ARGS` from the repository's root, echoing its output."""
    print(f"\n== {title} ==", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            print(line, end="", flush=True)
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    ok = process.returncode == 0
    status = "" if ok else f", FAILED with exit status {process.returncode}"
    print(f"({title}: {time.monotonic() - started:.1f} s{status})", flush=True)
    return lines, ok


def chaos() -> tuple[list[str], bool]:
    """The chaos test of both ledgers; its `chaos [...]` lines, or why not."""
    missing = firestore_missing()
    if missing:
        print(f"\nthe chaos test's Firestore half will skip: missing {missing}")
    lines, ok = run("reliability: tests/test_chaos.py", CHAOS)
    counts = [line for line in lines if line.startswith("chaos [")]
    skipped = [line for line in lines if "SKIPPED" in line]
    return counts + skipped or ["no chaos counts were printed"], ok


def header() -> None:
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    print(
        f"benchmarks of the core-override watchdog, {time.strftime('%Y-%m-%d %H:%M')}"
        f"\nPython {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load} (other work on the machine makes figures noisier)"
    )


def main() -> int:
    started = time.monotonic()
    header()
    outputs, failed = [], []
    with scratch("bench") as folder:
        latency = folder / "latency.json"
        with firestore_emulator() as host:
            env = os.environ | ({"FIRESTORE_EMULATOR_HOST": host} if host else {})
            plan = [
                ("cold start", [str(BENCH / "cold_start.py")]),
                ("latency and memory",
                 [str(BENCH / "latency_memory.py"), "--out", str(latency)]),
            ]  # fmt: skip
            for title, args in plan:
                lines, ok = run(title, args, env)
                outputs += lines
                failed += [] if ok else [title]
        cost_args = [str(BENCH / "running_cost.py")]
        if latency.exists():
            cost_args += ["--latency", str(latency)]
        for title, args in [
            ("running cost", cost_args),
            ("audit throughput", [str(BENCH / "audit_throughput.py")]),
        ]:
            lines, ok = run(title, args)
            outputs += lines
            failed += [] if ok else [title]
    counts, ok = chaos()
    failed += [] if ok else ["chaos test"]

    print("\n== goals ==")
    for line in outputs:
        if "(goal:" in line:
            print("  " + re.sub(r"^\s+", "", line))
    print("\n== reliability ==")
    for line in counts:
        print("  " + line)
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s; load average {load}")
    if failed:
        print("could not run: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
