"""Running cost: what watching 100 executions a day costs at Cloud Run rates.

Inputs, all printed:
- messages per execution: the entries of samples/export.json that the log sink
  passes (_sample.py: the deployed query of handlers/sink_filter.py, and the
  parser's own terms), against every entry of the jobs' logs (a sink without
  a filter);
- time per message: the warm latency measured by latency_memory.py (`--latency
  FILE`, its --out), or, run alone, a short measurement of its own;
- the function's size: the memory terraform/functions.tf gives the log
  handler, else 256 MiB, and the vCPU Cloud Run functions derive from it
  (https://cloud.google.com/functions/docs/configuring/memory). Below one vCPU
  the concurrency is 1, so every message is billed on its own
  (https://cloud.google.com/run/docs/configuring/services/cpu);
- the rates of request-based billing, Tier 1, below.

The time was measured on a whole core; on a fraction of one the same work
takes up to 1/fraction times as long, so that scaled time is what is billed,
rounded up to 100 ms, and never less than 100 ms a message.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sample import (
    KINDS,
    deployed_kind,
    executions,
    export,
    has_deployed_filter,
    sink_kind,
)
from _server import ROOT

# https://cloud.google.com/run/pricing, "services with CPU only allocated during
# request processing" (request-based billing), Tier 1: $0.00002400 per
# vCPU-second beyond a monthly free tier of 180,000 vCPU-seconds, 360,000
# GiB-seconds and 2 million requests, billed "rounded up to the nearest 100
# millisecond". The copy of that page at hand is cut off before the memory and
# request rates; those two are the published figures as quoted by
# https://cloudwebschool.com/tools/cloud-run-cost-calculator/ and
# https://cloudchipr.com/blog/cloud-run-pricing ($0.00000250 per GiB-second,
# $0.40 per million requests).
CPU_RATE = 0.000024  # USD per vCPU-second
MEMORY_RATE = 0.0000025  # USD per GiB-second
REQUEST_RATE = 0.40 / 1e6  # USD per request
FREE_VCPU_SECONDS = 180_000
FREE_GIB_SECONDS = 360_000
FREE_REQUESTS = 2_000_000

BILLING_STEP = 0.1  # seconds: every message is billed at least this, rounded up
EXECUTIONS_PER_DAY = 100
DAYS_PER_MONTH = 30
TERRAFORM = ROOT / "terraform" / "functions.tf"

# The vCPU Cloud Run functions give a memory size when none is set: the first
# row at or above it (https://cloud.google.com/functions/docs/configuring/memory).
CPU_BY_MEMORY = (
    (128 * 2**20, 0.083), (256 * 2**20, 0.167), (512 * 2**20, 0.333),
    (2**30, 0.583), (2 * 2**30, 1.0), (8 * 2**30, 2.0), (16 * 2**30, 4.0),
    (32 * 2**30, 8.0),
)  # fmt: skip
# Memory quantities as Kubernetes reads them: M is 10**6 bytes, Mi 2**20.
UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


@dataclass(frozen=True)
class Size:
    memory: int  # bytes
    vcpu: float
    source: str

    @property
    def gib(self) -> float:
        return self.memory / 2**30


def deployed_size() -> Size:
    """The log handler's memory and vCPU, from the Terraform when it says."""
    text = TERRAFORM.read_text() if TERRAFORM.is_file() else ""
    found = re.search(
        r'entry_point\s*=\s*"handle_log_entry"[^}]*?memory\s*=\s*"(\d+)([kMG]i?)?"',
        text,
    )
    if found is None:
        return Size(256 * 2**20, 0.167, "256 MiB, Cloud Run functions' default")
    memory = int(found[1]) * int(UNITS[found[2] or ""])
    vcpu = next((cpu for limit, cpu in CPU_BY_MEMORY if memory <= limit), 8.0)
    where = TERRAFORM.relative_to(ROOT)
    return Size(memory, vcpu, f'"{found[1]}{found[2] or ""}" from {where}')


def billed_seconds(seconds: float, size: Size) -> float:
    """One message's billed time: scaled to the vCPU, rounded up, at least 100 ms."""
    steps = math.ceil(round(seconds / min(1.0, size.vcpu) / BILLING_STEP, 9))
    return max(1, steps) * BILLING_STEP


def monthly(per_execution: float, billed: float, size: Size, free: bool) -> dict:
    messages = per_execution * EXECUTIONS_PER_DAY * DAYS_PER_MONTH
    vcpu_s = messages * billed * size.vcpu
    gib_s = messages * billed * size.gib
    requests = messages
    if free:
        vcpu_s = max(0.0, vcpu_s - FREE_VCPU_SECONDS)
        gib_s = max(0.0, gib_s - FREE_GIB_SECONDS)
        requests = max(0.0, messages - FREE_REQUESTS)
    parts = {
        "cpu": vcpu_s * CPU_RATE,
        "memory": gib_s * MEMORY_RATE,
        "requests": requests * REQUEST_RATE,
    }
    return {"messages": messages, **parts, "total": sum(parts.values())}


def latency_figures(path: Path | None) -> list[dict]:
    """The figures of latency_memory.py: read from its --out, or measured now."""
    if path is not None:
        return json.loads(path.read_text())
    import latency_memory
    from _server import clean_env, compile_bytecode, scratch

    print("  (run alone: measuring the SQLite ledger's latency, 1,100 messages)")
    with scratch("cost") as folder:
        pycache = folder / "pycache"
        compile_bytecode(pycache)
        env = clean_env(
            pycache,
            WATCHDOG_LEDGER=f"sqlite:{folder}/ledger.db",
            WATCHDOG_GRACE_SECONDS=latency_memory.NO_VERDICTS,
        )
        bodies = latency_memory.push_bodies(1_100, "cost")
        run = latency_memory.measure(
            "watchdog, SQLite ledger", ROOT / "main.py", env, bodies, folder
        )
    return [run.summary()]


def messages_per_execution() -> tuple[float, float]:
    """Print the sample's counts; (passed by the sink, all) per execution.

    The deployed query decides when the tree has one; else the parser's terms.
    """
    entries = export()
    total, runs = len(entries), len(executions(entries))
    print(f"  samples/export.json: {total} entries of {runs} executions")
    readings = [("the parser's terms", sink_kind)]
    if has_deployed_filter():
        readings.append(("the deployed query (handlers/sink_filter.py)", deployed_kind))
    passed = {}
    for name, kind_of in readings:
        kinds = Counter(kind_of(e) for e in entries)
        passed[name] = sum(kinds[k] for k in KINDS)
        print(
            f"    passed by {name}: {passed[name]} ("
            + ", ".join(f"{kinds[k]} {k}" for k in KINDS)
            + f"), {passed[name] / runs:.1f} per execution"
        )
    name = readings[-1][0]
    filtered, everything = passed[name] / runs, total / runs
    print(
        f"  messages per execution: {filtered:.1f} through {name}, {everything:.1f} "
        f"without a filter (ratio {filtered / everything:.2f})"
    )
    return filtered, everything


def time_per_message(figures: list[dict], size: Size) -> float:
    """Print the measured times; return the one billed (SQLite, mean)."""
    for run in figures:
        mean, p99 = run["mean"], run["p99"]
        print(
            f"  time per message, {run['label']}: mean {mean * 1e3:.2f} ms, "
            f"p99 {p99 * 1e3:.2f} ms; at {size.vcpu} vCPU up to "
            f"{mean / size.vcpu * 1e3:.1f} / {p99 / size.vcpu * 1e3:.1f} ms; billed "
            f"{billed_seconds(mean, size) * 1e3:.0f} / "
            f"{billed_seconds(p99, size) * 1e3:.0f} ms"
        )
    sqlite = [run for run in figures if "SQLite ledger" in run["label"]]
    if not sqlite:
        raise SystemExit("no figure of the SQLite ledger among the latency figures")
    return sqlite[0]["mean"]


def print_cost(filtered: float, everything: float, billed: float, size: Size):
    print(
        f"  inputs: {EXECUTIONS_PER_DAY} executions a day, {DAYS_PER_MONTH} days a "
        f"month; memory {size.source} = {size.gib:.3f} GiB, {size.vcpu} vCPU; "
        f"{billed * 1e3:.0f} ms billed a message (from the SQLite ledger's mean); "
        f"${CPU_RATE:.8f} per vCPU-second, ${MEMORY_RATE:.8f} per GiB-second, "
        f"${REQUEST_RATE * 1e6:.2f} per million requests; free tier "
        f"{FREE_VCPU_SECONDS:,} vCPU-s, {FREE_GIB_SECONDS:,} GiB-s, "
        f"{FREE_REQUESTS:,} requests a month"
    )
    for free in (False, True):
        ours = monthly(filtered, billed, size, free)
        base = monthly(everything, billed, size, free)
        label = "with the free tier" if free else "without the free tier"
        ratio = f"{ours['total'] / base['total']:.2f}" if base["total"] else "-"
        print(
            f"  monthly cost {label}: ${ours['total']:.4f} for "
            f"{ours['messages']:,.0f} messages (CPU ${ours['cpu']:.4f}, memory "
            f"${ours['memory']:.4f}, requests ${ours['requests']:.4f}); without "
            f"a filter ${base['total']:.4f} for {base['messages']:,.0f}; "
            f"ratio {ratio}"
        )
    print(
        f"  at {BILLING_STEP * 1e3:.0f} ms a message at least, a function that did "
        "nothing would cost the same: the bill follows the number of messages"
    )
    print(
        "  not included: the tick function, instance start-ups, Firestore, Pub/Sub "
        "and Cloud Logging"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=Path, help="latency_memory.py --out FILE")
    args = parser.parse_args()

    print("running cost of watching the executions (Cloud Run functions, 2nd gen)")
    size = deployed_size()
    filtered, everything = messages_per_execution()
    mean = time_per_message(latency_figures(args.latency), size)
    print_cost(filtered, everything, billed_seconds(mean, size), size)


if __name__ == "__main__":
    main()
