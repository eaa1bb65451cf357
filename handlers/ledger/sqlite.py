"""The embedded ledger: one SQLite file, safe across threads and processes.

Idempotence rests on primary keys: an observation per (execution, entry), a
verdict per execution. Writes that find the row there already change nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from handlers.errors import TransientError
from handlers.observation import COMPLETION, Observation

# NOTE: IMMEDIATE takes the write lock first, so a second process opening the
# file waits its turn; a deferred BEGIN would fail at once under WAL.
SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS observations (
    job TEXT NOT NULL, execution TEXT NOT NULL, key TEXT NOT NULL,
    ts TEXT NOT NULL, kind TEXT NOT NULL, fields TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (job, execution, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executions (
    job TEXT NOT NULL, execution TEXT NOT NULL, completed_at REAL,
    PRIMARY KEY (job, execution)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS verdicts (
    job TEXT NOT NULL, execution TEXT NOT NULL, verdict TEXT NOT NULL,
    record TEXT NOT NULL, decided_at REAL NOT NULL,
    PRIMARY KEY (job, execution)
);
CREATE INDEX IF NOT EXISTS verdicts_by_decision ON verdicts (decided_at);
CREATE TABLE IF NOT EXISTS decisions (
    key TEXT PRIMARY KEY, job TEXT NOT NULL, record TEXT NOT NULL,
    decided_at REAL NOT NULL
);
PRAGMA user_version = 1;
COMMIT;
"""


class SqliteLedger:
    def __init__(self, path: str):
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=10, isolation_level=None, check_same_thread=False
        )
        try:
            # NOTE: a small page cache keeps an instance's memory flat (the
            # default grows to 2 MiB); WAL with synchronous=NORMAL survives a
            # crash of the process, which is what a function instance has.
            self._db.execute("PRAGMA cache_size = -512")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            raise TransientError(f"SQLite ledger {path!r} unavailable: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic step; a locked or failing database is a transient error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise TransientError(f"SQLite ledger unavailable: {exc}") from exc

    def add(self, observation: Observation, seen_at: float) -> bool:
        o = observation
        with self._transaction() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO observations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (o.job, o.execution, o.key, o.timestamp, o.kind, o.to_json(), seen_at),
            ).rowcount
            db.execute(
                "INSERT OR IGNORE INTO executions VALUES (?, ?, NULL)",
                (o.job, o.execution),
            )
            if o.kind == COMPLETION:
                db.execute(
                    "UPDATE executions SET completed_at = ? "
                    "WHERE job = ? AND execution = ? AND completed_at IS NULL",
                    (seen_at, o.job, o.execution),
                )
        return added == 1

    def observations(self, job: str, execution: str) -> list[Observation]:
        rows = self._query(
            "SELECT key, ts, kind, fields FROM observations "
            "WHERE job = ? AND execution = ?",
            (job, execution),
        )
        return [
            Observation(job, execution, key, ts, kind, json.loads(fields))
            for key, ts, kind, fields in rows
        ]

    def due(self, completed_before: float, job: str | None = None) -> list[tuple]:
        return self._query(
            "SELECT e.job, e.execution FROM executions e "
            "LEFT JOIN verdicts v ON v.job = e.job AND v.execution = e.execution "
            "WHERE e.completed_at <= ? AND v.verdict IS NULL "
            "AND (? IS NULL OR e.job = ?) ORDER BY e.completed_at",
            (completed_before, job, job),
        )

    def undecided(self) -> list[tuple[str, str]]:
        return self._query(
            "SELECT e.job, e.execution FROM executions e "
            "LEFT JOIN verdicts v ON v.job = e.job AND v.execution = e.execution "
            "WHERE v.verdict IS NULL ORDER BY e.job, e.execution",
            (),
        )

    def write_verdict(self, record: dict, decided_at: float) -> bool:
        with self._transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                    (
                        record["job"],
                        record["execution"],
                        record["verdict"],
                        json.dumps(record, sort_keys=True),
                        decided_at,
                    ),
                ).rowcount
                == 1
            )

    def decided(self, job: str, executions: list[str]) -> set[str]:
        if not executions:
            return set()
        marks = ",".join("?" * len(executions))
        rows = self._query(
            f"SELECT execution FROM verdicts WHERE job = ? AND execution IN ({marks})",
            (job, *executions),
        )
        return {execution for (execution,) in rows}

    def verdict(self, job: str, execution: str) -> dict | None:
        rows = self._query(
            "SELECT record FROM verdicts WHERE job = ? AND execution = ?",
            (job, execution),
        )
        return json.loads(rows[0][0]) if rows else None

    def verdicts(
        self, job: str | None = None, decided_since: float | None = None
    ) -> list[dict]:
        rows = self._query(
            "SELECT record FROM verdicts WHERE (? IS NULL OR job = ?) "
            "AND decided_at >= ? ORDER BY decided_at, job, execution",
            (job, job, decided_since or 0.0),
        )
        return [json.loads(record) for (record,) in rows]

    def claim_decision(self, key: str, record: dict, decided_at: float) -> bool:
        with self._transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO decisions VALUES (?, ?, ?, ?)",
                    (key, record["job"], json.dumps(record, sort_keys=True),
                     decided_at),
                ).rowcount
                == 1
            )  # fmt: skip

    def settle_decision(self, key: str, record: dict) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE decisions SET record = ? WHERE key = ?",
                (json.dumps(record, sort_keys=True), key),
            )

    def decisions(self, job: str | None = None) -> list[dict]:
        rows = self._query(
            "SELECT record FROM decisions WHERE (? IS NULL OR job = ?) "
            "ORDER BY decided_at, key",
            (job, job),
        )
        return [json.loads(record) for (record,) in rows]

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                raise TransientError(f"SQLite ledger unavailable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
