"""The Firestore ledger: the SQLite ledger's contract, shared by many instances.

Idempotence rests on `create()`, which fails with AlreadyExists when the
document is there: an observation per (execution, entry), a completion and a
verdict per execution. No transaction is needed, so instances never wait on
each other. Document ids are hashes, because names may contain "/":

    watchdog_executions/{execution}                 job, execution, expire_at
      watchdog_observations/{entry}                 key, timestamp, kind, fields,
                                                    seen_at, expire_at
    watchdog_completions/{execution}                job, execution, completed_at,
                                                    due_at, expire_at
    watchdog_verdicts/{execution}                   job, execution, verdict,
                                                    record, decided_at, writer
    watchdog_decisions/{key}                        key, job, record, decided_at

A namespace (an audit replay) prefixes the top-level collections with
`audit_{namespace}_`; its observations stay `watchdog_observations` under its
own executions, so that the TTL policy of that collection group covers them.

`due_at` exists only while an execution is complete and undecided. A verdict
removes it in the same commit, creating the completion document if need be, so
that a completion entry seen later changes nothing; `due` is then a range query
on a single field.
Deduplication records carry `expire_at` for a TTL policy per collection group
(https://cloud.google.com/firestore/docs/ttl); verdicts never expire.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as api
from google.api_core import retry as retries
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import firestore

from handlers.errors import ConfigError, TransientError
from handlers.observation import COMPLETION, Observation

EXECUTIONS = "watchdog_executions"
OBSERVATIONS = "watchdog_observations"
COMPLETIONS = "watchdog_completions"
VERDICTS = "watchdog_verdicts"
DECISIONS = "watchdog_decisions"
TTL_FIELD = "expire_at"
# The collection groups whose documents carry TTL_FIELD: one TTL policy each.
EXPIRING = (EXECUTIONS, OBSERVATIONS, COMPLETIONS)
# None: every query filters and orders on one field (single-field indexes are
# automatic), and verdicts are sorted here rather than by the server.
INDEXES: tuple = ()

# Every call gives up after this long, so that an outage becomes a
# TransientError (and a redelivery) instead of a hang until the function's timeout.
DEADLINE_SECONDS = 10.0
_TRANSIENT = (
    api.ServiceUnavailable,
    api.DeadlineExceeded,
    api.Aborted,
    api.InternalServerError,
    api.TooManyRequests,  # ResourceExhausted too
    api.Unknown,
    api.RetryError,  # the client's own retries ran out of time
)
_BATCH_GET = 300


class FirestoreLedger:
    def __init__(
        self,
        database: str | None = None,
        project: str | None = None,
        ttl_days: float = 35,
        client=None,
        namespace: str = "",
    ):
        prefix = f"audit_{namespace}_" if namespace else ""
        self._owns_client = client is None
        self._client = client or _connect(project, database)
        self._ttl = timedelta(days=ttl_days)
        self._where = (
            f"Firestore database {database or '(default)'} "
            f"of project {self._client.project}"
        )
        # Retries what may pass (unavailable, overloaded), briefly.
        retry = retries.Retry(initial=0.1, maximum=2.0, timeout=DEADLINE_SECONDS)
        self._call = {"retry": retry, "timeout": DEADLINE_SECONDS}
        self._executions = self._client.collection(prefix + EXECUTIONS)
        self._completions = self._client.collection(prefix + COMPLETIONS)
        self._verdicts = self._client.collection(prefix + VERDICTS)
        self._decisions = self._client.collection(prefix + DECISIONS)

    def add(self, observation: Observation, seen_at: float) -> bool:
        o = observation
        execution = self._executions.document(_id(o.job, o.execution))
        batch = self._client.batch()
        batch.create(
            execution.collection(OBSERVATIONS).document(_id(o.key)),
            {"key": o.key, "timestamp": o.timestamp, "kind": o.kind,
             "fields": o.to_json(), "seen_at": seen_at, **self._expiry(seen_at)},
        )  # fmt: skip
        batch.set(
            execution,
            {"job": o.job, "execution": o.execution, **self._expiry(seen_at)},
            merge=True,
        )
        with self._failing("keep an observation"):
            added = self._committed(batch)
            if o.kind == COMPLETION:
                # NOTE: tried even for a duplicate entry, in case the instance
                # that kept it first stopped before marking the completion.
                self._mark_complete(o, seen_at)
        return added

    def _mark_complete(self, o: Observation, seen_at: float) -> None:
        """Make the execution due from seen_at, unless it was complete before."""
        batch = self._client.batch()
        batch.create(
            self._completions.document(_id(o.job, o.execution)),
            {"job": o.job, "execution": o.execution, "completed_at": seen_at,
             "due_at": seen_at, **self._expiry(seen_at)},
        )  # fmt: skip
        self._committed(batch)

    def observations(self, job: str, execution: str) -> list[Observation]:
        parent = self._executions.document(_id(job, execution))
        with self._failing("read observations"):
            found = parent.collection(OBSERVATIONS).stream(**self._call)
            documents = [d.to_dict() for d in found]
        return [
            Observation(job, execution, d["key"], d["timestamp"], d["kind"],
                        json.loads(d["fields"]))
            for d in documents
        ]  # fmt: skip

    def due(self, completed_before: float, job: str | None = None) -> list[tuple]:
        query = self._completions.where(
            filter=firestore.FieldFilter("due_at", "<=", completed_before)
        ).order_by("due_at")
        with self._failing("list the executions due"):
            documents = [d.to_dict() for d in query.stream(**self._call)]
        # NOTE: the job is filtered here, not by the server: the query would
        # otherwise need a composite index, and few executions are due at once.
        return [
            (d["job"], d["execution"])
            for d in documents
            if job is None or d["job"] == job
        ]

    def undecided(self) -> list[tuple[str, str]]:
        # NOTE: reads every execution kept (ttl_days of them): for audits and
        # tests, not for the path of every message.
        with self._failing("list the executions without verdict"):
            documents = self._executions.select(["job", "execution"])
            known = {d.id: (d.get("job"), d.get("execution")) for d in
                     documents.stream(**self._call)}  # fmt: skip
            decided = self._existing([self._verdicts.document(i) for i in known])
        return sorted(pair for i, pair in known.items() if i not in decided)

    def write_verdict(self, record: dict, decided_at: float) -> bool:
        job, execution = record["job"], record["execution"]
        writer = uuid.uuid4().hex
        verdict = self._verdicts.document(_id(job, execution))
        batch = self._client.batch()
        batch.create(
            verdict,
            {"job": job, "execution": execution, "verdict": record["verdict"],
             "record": json.dumps(record, sort_keys=True), "decided_at": decided_at,
             "writer": writer},
        )  # fmt: skip
        batch.set(
            self._completions.document(verdict.id),
            {"job": job, "execution": execution, "due_at": firestore.DELETE_FIELD,
             **self._expiry(decided_at)},
            merge=True,
        )  # fmt: skip
        with self._failing("write a verdict"):
            if self._committed(batch):
                return True
            # NOTE: the client retries a commit whose answer was lost; when the
            # first attempt landed, the retry finds our own verdict there.
            return verdict.get(["writer"], **self._call).get("writer") == writer

    def decided(self, job: str, executions: list[str]) -> set[str]:
        names = {_id(job, execution): execution for execution in executions}
        with self._failing("check which executions have a verdict"):
            found = self._existing([self._verdicts.document(i) for i in names])
        return {names[i] for i in found}

    def verdict(self, job: str, execution: str) -> dict | None:
        document = self._verdicts.document(_id(job, execution))
        with self._failing("read a verdict"):
            snapshot = document.get(["record"], **self._call)
        return json.loads(snapshot.get("record")) if snapshot.exists else None

    def verdicts(
        self, job: str | None = None, decided_since: float | None = None
    ) -> list[dict]:
        query = self._verdicts.select(["job", "execution", "record", "decided_at"])
        if decided_since is not None:
            # NOTE: the job is then filtered here: an equality on it beside a
            # range on decided_at would need a composite index.
            since = firestore.FieldFilter("decided_at", ">=", decided_since)
            query = query.where(filter=since)
        elif job is not None:
            query = query.where(filter=firestore.FieldFilter("job", "==", job))
        with self._failing("list verdicts"):
            documents = [d.to_dict() for d in query.stream(**self._call)]
        if job is not None:
            documents = [d for d in documents if d["job"] == job]
        # NOTE: sorted here: ordering on three fields would need a composite index.
        documents.sort(key=lambda d: (d["decided_at"], d["job"], d["execution"]))
        return [json.loads(d["record"]) for d in documents]

    def claim_decision(self, key: str, record: dict, decided_at: float) -> bool:
        batch = self._client.batch()
        document = self._decisions.document(_id(key))
        batch.create(document, _decision(key, record, decided_at))
        with self._failing("claim a decision"):
            return self._committed(batch)

    def settle_decision(self, key: str, record: dict) -> None:
        document = self._decisions.document(_id(key))
        with self._failing("settle a decision"):
            document.update({"record": json.dumps(record, sort_keys=True)},
                            **self._call)  # fmt: skip

    def decisions(self, job: str | None = None) -> list[dict]:
        query = self._decisions.select(["key", "record", "decided_at"])
        if job is not None:
            query = query.where(filter=firestore.FieldFilter("job", "==", job))
        with self._failing("list decisions"):
            documents = [d.to_dict() for d in query.stream(**self._call)]
        documents.sort(key=lambda d: (d["decided_at"], d["key"]))
        return [json.loads(d["record"]) for d in documents]

    def close(self) -> None:
        # NOTE: google-cloud-firestore's Client has no close(); its gRPC channel
        # belongs to the API client it builds on first use.
        api_client = getattr(self._client, "_firestore_api_internal", None)
        if self._owns_client and api_client is not None:
            api_client.transport.close()

    def _existing(self, documents: list) -> set[str]:
        """Ids of those documents that exist, read a few hundred at a time."""
        found = set()
        for start in range(0, len(documents), _BATCH_GET):
            chunk = documents[start : start + _BATCH_GET]
            snapshots = self._client.get_all(chunk, field_paths=["job"], **self._call)
            found.update(s.id for s in snapshots if s.exists)
        return found

    def _committed(self, batch) -> bool:
        """Commit a batch that creates a document; False if it was there already."""
        try:
            batch.commit(**self._call)
        except api.AlreadyExists:
            return False
        return True

    def _expiry(self, seen_at: float) -> dict:
        return {TTL_FIELD: datetime.fromtimestamp(seen_at, UTC) + self._ttl}

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Turn the client's errors into a TransientError or a ConfigError."""
        try:
            yield
        except _TRANSIENT as exc:
            raise TransientError(
                f"could not {what} in {self._where} ({_reason(exc)}); it may pass"
            ) from exc
        except api.PermissionDenied as exc:
            raise ConfigError(
                f"{self._where} refused to {what} ({_reason(exc)}): grant the "
                "function's service account roles/datastore.user there"
            ) from exc
        except api.NotFound as exc:
            raise ConfigError(
                f"{self._where} not found ({_reason(exc)}): create it, or point "
                "WATCHDOG_LEDGER and WATCHDOG_PROJECT at one that exists"
            ) from exc
        except (api.InvalidArgument, api.FailedPrecondition) as exc:
            raise ConfigError(
                f"{self._where} cannot {what} ({_reason(exc)}): check that "
                "WATCHDOG_LEDGER and WATCHDOG_PROJECT name a Firestore database "
                "in Native mode"
            ) from exc


def _connect(project: str | None, database: str | None):
    try:
        return firestore.Client(project=project, database=database)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google credentials for the Firestore ledger ({exc}): run on "
            "Google Cloud, run `gcloud auth application-default login`, or set "
            "FIRESTORE_EMULATOR_HOST"
        ) from exc


def _decision(key: str, record: dict, decided_at: float) -> dict:
    return {"key": key, "job": record["job"], "decided_at": decided_at,
            "record": json.dumps(record, sort_keys=True)}  # fmt: skip


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'message', str(exc)) or 'no detail'}"


def _id(*names: str) -> str:
    """A document id for names that may hold any character, "/" included."""
    return hashlib.sha256("\0".join(names).encode()).hexdigest()[:40]
