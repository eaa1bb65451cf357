"""Offline audit of exported logs: the same decisions, on a throwaway ledger.

The export is taken as the whole record, so every execution in it gets a
verdict at the end, without waiting for a grace period; one without a
completion entry says so in its causes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from handlers.config import Settings
from handlers.errors import BadMessage
from handlers.exports import read_entries
from handlers.intake import check_entry
from handlers.ledger.sqlite import SqliteLedger
from handlers.verdict import Verdict
from handlers.watchdog import Watchdog


@dataclass
class AuditResult:
    verdicts: list[Verdict] = field(default_factory=list)
    entries: int = 0
    skipped: Counter = field(default_factory=Counter)


def audit_files(paths: Iterable[Path], settings: Settings) -> AuditResult:
    result = AuditResult()
    ledger = SqliteLedger(":memory:")
    dog = Watchdog(settings, ledger)
    for path in paths:
        for entry in read_entries(path, result.skipped):
            result.entries += 1
            try:
                check_entry(entry)
                dog.ingest(entry)
            except BadMessage as exc:
                result.skipped[exc.reason] += 1
    for job, execution in ledger.undecided():
        result.verdicts.append(dog.finalize(job, execution))
    result.verdicts.sort(key=lambda v: (v.job, v.start_time or "", v.execution))
    ledger.close()
    return result
