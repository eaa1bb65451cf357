"""Offline audit of exported logs: the same reading and the same decisions.

The export is taken as the whole record, so every execution in it gets a
verdict at the end, without waiting for a grace period; one without a
completion entry says so in its causes. Nothing is kept: observations are
grouped in memory, one per entry, as the ledger would keep them.
"""

from __future__ import annotations

import gc
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from handlers.config import Settings
from handlers.errors import BadMessage
from handlers.exports import read_entries
from handlers.intake import check_entry
from handlers.observation import Observation
from handlers.parse import observe
from handlers.verdict import Verdict, decide


@dataclass
class AuditResult:
    verdicts: list[Verdict] = field(default_factory=list)
    entries: int = 0
    skipped: Counter = field(default_factory=Counter)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large export is in memory.

    NOTE: the parsed export holds millions of objects, and every full
    collection walks them all; the audit's own garbage has no cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def audit_files(paths: Iterable[Path], settings: Settings) -> AuditResult:
    with _collector_paused():
        return _audit(paths, settings)


def _audit(paths: Iterable[Path], settings: Settings) -> AuditResult:
    result = AuditResult()
    executions: dict[tuple[str, str], dict[str, Observation]] = defaultdict(dict)
    for path in paths:
        for entry in read_entries(path, result.skipped):
            result.entries += 1
            try:
                check_entry(entry)
                seen = observe(entry, settings.jobs)
            except BadMessage as exc:
                result.skipped[exc.reason] += 1
                continue
            if seen is not None:
                executions[seen.job, seen.execution].setdefault(seen.key, seen)
    result.verdicts = [
        decide(job, execution, observations.values(), settings)
        for (job, execution), observations in executions.items()
    ]
    result.verdicts.sort(key=lambda v: (v.job, v.start_time or "", v.execution))
    return result
