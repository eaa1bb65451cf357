"""The state the watchdog keeps, behind one small interface.

Every side effect has a key here and happens once: an observation per log
entry, a verdict per execution. `open_ledger` picks the implementation from
`WATCHDOG_LEDGER`.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Protocol

from handlers.observation import Observation

# A replay id names a ledger namespace: a file name part and a Firestore
# collection id part, so it stays short and plain.
NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")


class Ledger(Protocol):
    def add(self, observation: Observation, seen_at: float) -> bool:
        """Keep an observation once per entry; True when it was new.

        A completion observation also marks its execution complete, at the
        first time it was seen.
        """

    def observations(self, job: str, execution: str) -> list[Observation]:
        """Every observation of one execution, in no particular order."""

    def due(self, completed_before: float, job: str | None = None) -> list[tuple]:
        """(job, execution) complete before that time and still without verdict."""

    def undecided(self) -> list[tuple[str, str]]:
        """(job, execution) of every execution without a verdict."""

    def write_verdict(self, record: dict, decided_at: float) -> bool:
        """Write a verdict unless one exists; True only for the writer."""

    def decided(self, job: str, executions: list[str]) -> set[str]:
        """Which of these executions of one job have a verdict."""

    def verdict(self, job: str, execution: str) -> dict | None:
        """The verdict record of one execution, if written."""

    def verdicts(
        self, job: str | None = None, decided_since: float | None = None
    ) -> list[dict]:
        """Verdict records, oldest decision first; only those decided at or
        after `decided_since` when it is given."""

    def claim_decision(self, key: str, record: dict, decided_at: float) -> bool:
        """Keep a decision unless one with this key exists; True for the claimer.

        The key names what may happen once, e.g. one rollback per failure streak.
        """

    def settle_decision(self, key: str, record: dict) -> None:
        """Replace a claimed decision's record with its outcome."""

    def decisions(self, job: str | None = None) -> list[dict]:
        """Decision records, oldest first."""

    def close(self) -> None: ...


def open_ledger(
    url: str, project: str = "", ttl_days: float = 35, namespace: str = ""
) -> Ledger:
    """The ledger a `WATCHDOG_LEDGER` value names (checked by the config).

    Only Firestore uses `project` (empty: the environment's) and `ttl_days`, how
    long its deduplication records are kept (`WATCHDOG_DEDUP_TTL_DAYS`).
    A `namespace` (a replay id) is a ledger of its own beside the production
    one, sharing nothing with it: the SQLite file `NAME.audit-NAMESPACE.EXT`
    next to the production file, or Firestore collections prefixed
    `audit_NAMESPACE_`.
    """
    if namespace and not NAMESPACE.match(namespace):
        raise ValueError(f"bad ledger namespace {namespace!r}: expected [a-z0-9-]")
    scheme, _, rest = url.partition(":")
    if scheme == "sqlite":
        from handlers.ledger.sqlite import SqliteLedger

        return SqliteLedger(namespaced_path(rest, namespace))
    if scheme == "firestore":
        # Imported here: google.cloud.firestore takes half a second to import.
        from handlers.ledger.firestore import FirestoreLedger

        database = rest.removeprefix("//") or None
        return FirestoreLedger(database, project or None, ttl_days, namespace=namespace)
    raise ValueError(f"unknown ledger {url!r}")


def namespaced_path(path: str, namespace: str) -> str:
    """The SQLite file of a namespace: beside the production file, never it."""
    if not namespace or path == ":memory:":
        return path
    file = PurePath(path)
    return str(file.with_name(f"{file.stem}.audit-{namespace}{file.suffix}"))
