"""The SQLite ledger: idempotent by entry and by execution, across threads."""

import threading

from handlers.observation import COMPLETION, Observation


def seen(kind="training_started", key="k1", execution="e1", **fields):
    return Observation("job", execution, key, "2026-11-30T06:00:00Z", kind,
                       fields or {"cores": 8, "attempt": 1})  # fmt: skip


def test_an_entry_is_kept_once(ledger):
    assert ledger.add(seen(), 1.0) is True
    assert ledger.add(seen(), 2.0) is False

    assert ledger.observations("job", "e1") == [seen()]


def test_an_execution_is_due_after_its_completion_was_first_seen(ledger):
    ledger.add(seen(), 1.0)
    assert ledger.due(100.0) == []

    ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 10.0)
    ledger.add(seen(COMPLETION, "c2", outcome="succeeded"), 50.0)

    assert ledger.due(9.0) == []
    assert ledger.due(10.0) == [("job", "e1")]
    assert ledger.due(10.0, job="other") == []


def test_a_verdict_is_written_once_and_then_no_longer_due(ledger):
    ledger.add(seen(COMPLETION, "c1", outcome="succeeded"), 10.0)
    record = {"job": "job", "execution": "e1", "verdict": "effective"}

    assert ledger.write_verdict(record, 20.0) is True
    assert ledger.write_verdict({**record, "verdict": "missing"}, 21.0) is False

    assert ledger.verdict("job", "e1") == record
    assert ledger.due(100.0) == []
    assert ledger.undecided() == []


def test_concurrent_writers_of_one_verdict_have_one_winner(ledger):
    record = {"job": "job", "execution": "e1", "verdict": "effective"}
    results = []
    barrier = threading.Barrier(8)

    def write():
        barrier.wait()
        results.append(ledger.write_verdict(record, 1.0))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]


def test_concurrent_markers_of_one_execution_are_all_kept(ledger):
    def add(start):
        for n in range(start, start + 50):
            ledger.add(seen(key=f"k{n}"), 1.0)

    threads = [threading.Thread(target=add, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ledger.observations("job", "e1")) == 200


def test_two_processes_share_one_file(tmp_path):
    from handlers.ledger.sqlite import SqliteLedger

    path = str(tmp_path / "shared.sqlite3")
    first, second = SqliteLedger(path), SqliteLedger(path)
    record = {"job": "job", "execution": "e1", "verdict": "effective"}

    assert first.write_verdict(record, 1.0) is True
    assert second.write_verdict(record, 1.0) is False
    assert second.verdicts() == [record]


def test_decided_names_the_executions_with_a_verdict(ledger):
    ledger.write_verdict({"job": "job", "execution": "e1", "verdict": "x"}, 1.0)
    ledger.write_verdict({"job": "other", "execution": "e2", "verdict": "x"}, 1.0)

    assert ledger.decided("job", ["e1", "e2", "e3"]) == {"e1"}
    assert ledger.decided("job", []) == set()
