"""The SQLite ledger: idempotent by entry and by execution, across threads."""

import threading

from handlers.observation import Observation


def seen(kind="training_started", key="k1", execution="e1", **fields):
    return Observation("job", execution, key, "2026-11-30T06:00:00Z", kind,
                       fields or {"cores": 8, "attempt": 1})  # fmt: skip


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


def test_opening_the_file_while_another_process_writes_waits_its_turn(tmp_path):
    import sqlite3
    import time

    from handlers.ledger.sqlite import SqliteLedger

    path = str(tmp_path / "busy.sqlite3")
    SqliteLedger(path).close()
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO decisions VALUES ('k', 'job', '{}', 1.0)")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()

    started = time.monotonic()
    second = SqliteLedger(path)

    assert time.monotonic() - started >= 0.2
    assert second.decisions("job") == [{}]
    release.join()
    second.close()
    writer.close()
