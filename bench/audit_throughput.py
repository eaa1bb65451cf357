"""Audit throughput against bare `json.loads` of the same export, in one run.

Generates an export of at least 200,000 entries (copies of the sample
executions under new names, newest first), then times `python main.py audit`'s
work in process and plain `json.loads` of the file; prints both and the ratio.
Goal: the audit takes at most 2 times as long as bare parsing.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.audit import audit_files
from handlers.config import Settings
from samples.build import sample_entries

MIN_ENTRIES = 200_000
LABEL = "run.googleapis.com/execution_name"


def generate(path: Path) -> tuple[int, int]:
    """Write the export; return (entries, executions)."""
    template = sample_entries()
    copies = -(-MIN_ENTRIES // len(template))
    executions = {e["labels"][LABEL] for e in template}
    with path.open("w") as out:
        out.write("[\n")
        for copy in range(copies):
            for n, entry in enumerate(template):
                clone = dict(entry, insertId=f"{entry['insertId']}{copy:05d}")
                name = f"{entry['labels'][LABEL]}-{copy:05d}"
                clone["labels"] = dict(entry["labels"], **{LABEL: name})
                last = copy == copies - 1 and n == len(template) - 1
                out.write(json.dumps(clone) + ("\n" if last else ",\n"))
        out.write("]\n")
    return copies * len(template), copies * len(executions)


def best_of(runs: int, work) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="watchdog-bench-"))
    export = folder / "export.json"
    entries, executions = generate(export)
    size = export.stat().st_size
    settings = Settings.from_env({})

    parse_s, _ = best_of(3, lambda: json.loads(export.read_text()))
    audit_s, result = best_of(3, lambda: audit_files([export], settings))

    assert len(result.verdicts) == executions, "every execution needs a verdict"
    print(
        f"export: {entries:,} entries, {executions:,} executions, "
        f"{size / 2**20:.1f} MiB"
    )
    print(f"json.loads:  {parse_s:.3f} s  ({entries / parse_s:,.0f} entries/s)")
    print(f"audit:       {audit_s:.3f} s  ({entries / audit_s:,.0f} entries/s)")
    ratio = audit_s / parse_s
    print(
        f"ratio audit / json.loads: {ratio:.2f} (goal: at most 2.00) "
        f"{'OK' if ratio <= 2 else 'OVER GOAL'}"
    )
    export.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
