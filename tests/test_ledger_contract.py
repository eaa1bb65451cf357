"""The Ledger contract, held by every ledger: SQLite, and Firestore on its emulator.

Each test runs once per ledger (`any_ledger`). The Firestore emulator starts
once per session, on first use, and each test starts from an empty database.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import timedelta

import grpc
import pytest
from google.cloud import firestore

from handlers.errors import ConfigError, TransientError
from handlers.ledger import open_ledger
from handlers.ledger.firestore import (
    COMPLETIONS,
    EXECUTIONS,
    OBSERVATIONS,
    TTL_FIELD,
    VERDICTS,
    FirestoreLedger,
)
from handlers.observation import COMPLETION, Observation
from tests.conftest import ROOT

TTL_DAYS = 35


def seen(kind="training_started", key="k1", execution="e1", job="job", **fields):
    return Observation(job, execution, key, "2026-11-30T06:00:00Z", kind,
                       fields or {"cores": 8, "attempt": 1})  # fmt: skip


def complete(ledger, job: str, execution: str, at: float) -> None:
    ledger.add(seen(COMPLETION, f"c-{execution}", execution, job, outcome="x"), at)


def verdict_of(execution="e1", job="job", verdict="effective") -> dict:
    return {"job": job, "execution": execution, "verdict": verdict}


@pytest.fixture
def firestore_ledger(firestore_reset):
    ledger = FirestoreLedger(project=firestore_reset, ttl_days=TTL_DAYS)
    yield ledger
    ledger.close()


@pytest.fixture(params=["sqlite", "firestore"])
def any_ledger(request):
    """Each ledger in turn, empty: conftest's SQLite one, then Firestore's."""
    name = "ledger" if request.param == "sqlite" else "firestore_ledger"
    return request.getfixturevalue(name)


def in_parallel(*calls) -> list:
    """Run the calls on threads released together; their results, in order."""
    start = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(n):
        start.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_an_entry_is_kept_once(any_ledger):
    assert any_ledger.add(seen(), 1.0) is True
    assert any_ledger.add(seen(), 2.0) is False

    assert any_ledger.observations("job", "e1") == [seen()]


def test_an_entry_key_is_kept_once_per_execution(any_ledger):
    assert any_ledger.add(seen(key="same/key", execution="e1"), 1.0) is True
    assert any_ledger.add(seen(key="same/key", execution="e2"), 1.0) is True

    assert any_ledger.observations("job", "e2") == [seen("training_started",
                                                         "same/key", "e2")]  # fmt: skip
    assert any_ledger.observations("job", "e3") == []


def test_observations_keep_their_fields_as_given(any_ledger):
    fields = {"nested": {"a": [1, 2.5, None, "x"], "b": {"c": True}},
              "float": 0.1 + 0.2, "none": None, "list": ["a", {"b": 1}],
              "text": "caf\u00e9 \u2713", "big": 2**53}  # fmt: skip
    any_ledger.add(seen(key="a", **fields), 1.0)
    any_ledger.add(seen(COMPLETION, "b", outcome="succeeded"), 2.0)

    found = sorted(any_ledger.observations("job", "e1"), key=lambda o: o.key)

    assert found == [seen(key="a", **fields),
                     seen(COMPLETION, "b", outcome="succeeded")]  # fmt: skip


def test_an_execution_is_due_after_its_completion_was_first_seen(any_ledger):
    any_ledger.add(seen(), 1.0)
    assert any_ledger.due(100.0) == []

    any_ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 10.0)
    any_ledger.add(seen(COMPLETION, "c2", outcome="succeeded"), 50.0)

    assert any_ledger.due(9.0) == []
    assert any_ledger.due(10.0) == [("job", "e1")]
    assert any_ledger.due(10.0, job="other") == []


def test_a_repeated_completion_keeps_the_first_time_it_was_seen(any_ledger):
    any_ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 10.0)
    any_ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 5.0)

    assert any_ledger.due(9.0) == []
    assert any_ledger.due(10.0) == [("job", "e1")]


def test_due_executions_come_in_order_of_completion_by_job(any_ledger):
    complete(any_ledger, "a", "late", 30.0)
    complete(any_ledger, "b", "early", 10.0)
    complete(any_ledger, "a", "middle", 20.0)
    complete(any_ledger, "a", "future", 90.0)

    assert any_ledger.due(30.0) == [("b", "early"), ("a", "middle"), ("a", "late")]
    assert any_ledger.due(30.0, job="a") == [("a", "middle"), ("a", "late")]
    assert any_ledger.due(19.9) == [("b", "early")]


def test_a_verdict_is_written_once_and_then_no_longer_due(any_ledger):
    any_ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 10.0)
    record = {"job": "job", "execution": "e1", "verdict": "effective"}

    assert any_ledger.write_verdict(record, 20.0) is True
    assert any_ledger.write_verdict({**record, "verdict": "missing"}, 21.0) is False

    assert any_ledger.verdict("job", "e1") == record
    assert any_ledger.due(100.0) == []
    assert any_ledger.undecided() == []


def test_a_completion_seen_after_the_verdict_does_not_make_it_due(any_ledger):
    any_ledger.write_verdict(verdict_of(verdict="missing"), 20.0)

    complete(any_ledger, "job", "e1", 30.0)

    assert any_ledger.due(100.0) == []
    assert any_ledger.verdict("job", "e1") == verdict_of(verdict="missing")


def test_a_verdict_record_comes_back_whole(any_ledger):
    record = {**verdict_of(), "causes": ["limited_by=cgroups:2"], "cores_used": 7,
              "cost_usd": 0.0123, "speedup": None,
              "figures": {"vcpu": 8.0}}  # fmt: skip

    any_ledger.write_verdict(record, 1.0)

    assert any_ledger.verdict("job", "e1") == record
    assert any_ledger.verdict("job", "e2") is None
    assert any_ledger.verdicts() == [record]


def test_decided_names_the_executions_with_a_verdict(any_ledger):
    any_ledger.write_verdict({"job": "job", "execution": "e1", "verdict": "x"}, 1.0)
    any_ledger.write_verdict({"job": "other", "execution": "e2", "verdict": "x"}, 1.0)

    assert any_ledger.decided("job", ["e1", "e2", "e3"]) == {"e1"}
    assert any_ledger.decided("job", []) == set()


def test_verdicts_come_oldest_decision_first_then_by_job_and_execution(any_ledger):
    any_ledger.write_verdict(verdict_of("e9", "b"), 3.0)
    any_ledger.write_verdict(verdict_of("e2", "b"), 1.0)
    any_ledger.write_verdict(verdict_of("e1", "b"), 1.0)
    any_ledger.write_verdict(verdict_of("e5", "a"), 1.0)
    any_ledger.write_verdict(verdict_of("e0", "a"), 2.0)

    order = [(r["job"], r["execution"]) for r in any_ledger.verdicts()]
    of_a = [(r["job"], r["execution"]) for r in any_ledger.verdicts(job="a")]

    assert order == [("a", "e5"), ("b", "e1"), ("b", "e2"), ("a", "e0"), ("b", "e9")]
    assert of_a == [("a", "e5"), ("a", "e0")]
    assert any_ledger.verdicts(job="c") == []


def test_undecided_lists_every_execution_without_verdict_complete_or_not(any_ledger):
    any_ledger.add(seen(execution="running", job="b"), 1.0)
    complete(any_ledger, "a", "complete", 2.0)
    complete(any_ledger, "a", "decided", 3.0)
    any_ledger.write_verdict(verdict_of("decided", "a"), 4.0)
    any_ledger.write_verdict(verdict_of("silent", "a"), 4.0)

    assert any_ledger.undecided() == [("a", "complete"), ("b", "running")]


def test_concurrent_writers_of_one_verdict_have_one_winner(any_ledger):
    def write():
        return any_ledger.write_verdict(verdict_of(), 1.0)

    assert sorted(in_parallel(write, write)) == [False, True]
    assert any_ledger.verdicts() == [verdict_of()]


def test_concurrent_markers_of_one_execution_are_all_kept(any_ledger):
    def add(first):
        return [
            any_ledger.add(seen(key=f"k{n}"), 1.0) for n in range(first, first + 10)
        ]

    added = in_parallel(lambda: add(0), lambda: add(10))

    assert added == [[True] * 10, [True] * 10]
    assert len(any_ledger.observations("job", "e1")) == 20
    assert any_ledger.undecided() == [("job", "e1")]


def test_deduplication_records_expire_and_verdicts_do_not(
    firestore_ledger, firestore_reset
):
    firestore_ledger.add(seen(), 1000.0)
    firestore_ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 2000.0)
    firestore_ledger.write_verdict(verdict_of(), 3000.0)
    client = firestore.Client(project=firestore_reset)
    ttl = timedelta(days=TTL_DAYS)

    def expiry(group: str) -> list[float]:
        """When each document of the group expires, less the TTL: its seen_at."""
        documents = client.collection_group(group).stream()
        return sorted((d.get(TTL_FIELD) - ttl).timestamp() for d in documents)

    assert expiry(OBSERVATIONS) == [1000.0, 2000.0]
    assert expiry(EXECUTIONS) == [2000.0]
    assert expiry(COMPLETIONS) == [3000.0]
    verdicts = [d.to_dict() for d in client.collection(VERDICTS).stream()]
    assert len(verdicts) == 1
    assert TTL_FIELD not in verdicts[0]


def test_open_ledger_names_the_firestore_database(firestore_reset):
    named = open_ledger("firestore://watchdog-other", firestore_reset, TTL_DAYS)
    default = open_ledger("firestore", firestore_reset, TTL_DAYS)

    record = verdict_of(f"e-{uuid.uuid4().hex}")  # that database is never reset

    assert named.write_verdict(record, 1.0) is True

    assert named.verdict("job", record["execution"]) == record
    assert default.verdicts() == []
    named.close()
    default.close()


def test_an_unreachable_firestore_is_a_transient_error(monkeypatch):
    monkeypatch.setattr("handlers.ledger.firestore.DEADLINE_SECONDS", 0.5)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refused at once
        host, port = closed.getsockname()
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"{host}:{port}")
        ledger = FirestoreLedger(project="watchdog-test")

        with pytest.raises(TransientError, match="could not keep an observation"):
            ledger.add(seen(), 1.0)
        with pytest.raises(TransientError, match="could not list the executions due"):
            ledger.due(1.0)
        ledger.close()


@contextmanager
def firestore_answering(code: grpc.StatusCode) -> Iterator[str]:
    """A local gRPC server that fails every Firestore commit with `code`."""

    def commit(_request, context):
        context.abort(code, "refused by the test server")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "google.firestore.v1.Firestore",
        {"Commit": grpc.unary_unary_rpc_method_handler(commit)},
    )])  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


@pytest.mark.parametrize(
    ("code", "error", "says"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, ConfigError, "roles/datastore.user"),
        (grpc.StatusCode.NOT_FOUND, ConfigError, "create it"),
        (grpc.StatusCode.INVALID_ARGUMENT, ConfigError, "in Native mode"),
        (grpc.StatusCode.FAILED_PRECONDITION, ConfigError, "in Native mode"),
        (grpc.StatusCode.ABORTED, TransientError, "Aborted.*it may pass"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, TransientError, "it may pass"),
    ],
)
def test_a_firestore_error_says_whether_it_may_pass(code, error, says, monkeypatch):
    monkeypatch.setattr("handlers.ledger.firestore.DEADLINE_SECONDS", 0.5)
    with firestore_answering(code) as host:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
        ledger = FirestoreLedger(project="watchdog-test")

        with pytest.raises(error, match=says):
            ledger.write_verdict(verdict_of(), 1.0)
        ledger.close()


def test_the_sqlite_ledger_does_not_import_firestore():
    code = ("import sys; from handlers.ledger import open_ledger; "
            "open_ledger('sqlite::memory:').close(); "
            "print('google.cloud.firestore' in sys.modules)")  # fmt: skip
    answer = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip

    assert answer.stdout.strip() == "False"


def test_a_decision_is_claimed_once_then_settled(any_ledger):
    record = {"job": "job", "key": "job/rollback/e1", "outcome": "pending"}

    assert any_ledger.claim_decision("job/rollback/e1", record, 5.0) is True
    assert any_ledger.claim_decision("job/rollback/e1", record, 6.0) is False
    any_ledger.settle_decision("job/rollback/e1", {**record, "outcome": "applied"})
    any_ledger.claim_decision("other/rearm/1", {"job": "other", "key": "k"}, 1.0)

    assert any_ledger.decisions("job") == [{**record, "outcome": "applied"}]
    assert [d["job"] for d in any_ledger.decisions()] == ["other", "job"]


def test_two_instances_claiming_one_decision_have_one_winner(any_ledger):
    record = {"job": "job", "key": "job/rollback/e1"}

    results = in_parallel(
        lambda: any_ledger.claim_decision("job/rollback/e1", record, 1.0),
        lambda: any_ledger.claim_decision("job/rollback/e1", record, 1.0),
    )

    assert sorted(results) == [False, True]


def test_verdicts_can_be_read_from_a_decision_time_on(any_ledger):
    for n, job in enumerate(["job", "job", "other", "job"]):
        record = {"job": job, "execution": f"e{n}", "verdict": "missing"}
        any_ledger.write_verdict(record, float(n))

    assert [r["execution"] for r in any_ledger.verdicts("job", decided_since=1.0)] == [
        "e1",
        "e3",
    ]
    assert [r["execution"] for r in any_ledger.verdicts(decided_since=2.0)] == [
        "e2",
        "e3",
    ]
