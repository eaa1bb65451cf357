"""Verdicts as a table for people or JSON Lines for scripts and auditors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

# Keys every JSON line carries; scripts and auditors rely on them.
KEYS = (
    "job", "execution", "verdict", "causes", "override_cores", "cores_used",
    "vcpu", "memory_gib", "training_minutes", "wall_seconds", "cost_usd",
    "idle_cost_usd", "outcome",
)  # fmt: skip

COLUMNS = (
    ("EXECUTION", "execution"),
    ("VERDICT", "verdict"),
    ("CORES", "cores"),
    ("OVERRIDE", "override_cores"),
    ("TRAIN MIN", "training_minutes"),
    ("WALL S", "wall_seconds"),
    ("COST $", "cost_usd"),
    ("IDLE $", "idle_cost_usd"),
    ("OUTCOME", "outcome"),
    ("CAUSES", "causes"),
)


def in_order(records: Iterable[dict]) -> list[dict]:
    """Records by job, then by when the execution started."""
    return sorted(
        records, key=lambda r: (r["job"], r.get("start_time") or "", r["execution"])
    )


def write_json_lines(records: Iterable[dict], out: TextIO) -> None:
    for record in records:
        print(json.dumps(record, sort_keys=False), file=out)


def write_table(records: Iterable[dict], out: TextIO, columns: tuple = COLUMNS) -> None:
    rows = [tuple(_cell(record, key) for _, key in columns) for record in records]
    header = tuple(title for title, _ in columns)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _cell(record: dict, key: str) -> str:
    if key == "cores":
        used, vcpu = record.get("cores_used"), record.get("vcpu")
        return f"{_plain(used)}/{_plain(vcpu)}"
    if key == "causes":
        return ", ".join(record.get("causes") or ()) or "-"
    return _plain(record.get(key))


def _plain(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if value >= 0.01 or value == 0 else f"{value:.6f}"
    return str(value)
