"""Chaos: at-least-once, unordered delivery with faults, for each ledger.

More than a hundred executions; every message delivered one to four times in
random order, with garbage between them; the ledger and the Run API failing
now and then. Pub/Sub's part is played by a loop that delivers a message again
whenever the function answers 500. The verdicts must be those of one clean
ordered delivery, one per execution.
"""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections import Counter

import pytest

from handlers import app, log, sweep
from handlers.audit import audit_files
from handlers.errors import TransientError
from samples.build import sample_entries
from samples.logentries import PROJECT, push_body
from tests.conftest import Function
from tests.fakes.run_api import FakeRunApi, execution, job

COPIES = 12
REGION = "europe-west1"
LABEL = "run.googleapis.com/execution_name"
LEDGER_FAULT_RATE = 0.04
API_FAULT_RATE = 0.2


def executions_of(entries):
    """Rename the sample's executions, one set per copy."""
    renamed = []
    for copy in range(COPIES):
        for entry in entries:
            name = f"{entry['labels'][LABEL]}-c{copy:02d}"
            labels = dict(entry["labels"], **{LABEL: name})
            renamed.append(
                dict(entry, insertId=f"{entry['insertId']}-{copy}", labels=labels)
            )
    return renamed


def api_execution(completion_entry: dict) -> dict:
    """The Run API's view of an execution whose completion entry is given."""
    response = completion_entry["protoPayload"]["response"]
    status = response["status"]
    container = response["spec"]["template"]["spec"]["containers"][0]
    job = completion_entry["resource"]["labels"]["job_name"]
    return execution(
        f"projects/{PROJECT}/locations/{REGION}/jobs/{job}",
        completion_entry["labels"][LABEL],
        created=status["startTime"],
        completed=status["completionTime"],
        succeeded=int(status.get("succeededCount", 0)),
        failed=int(status.get("failedCount", 0)),
        cpu=container["resources"]["limits"]["cpu"],
        memory=container["resources"]["limits"]["memory"],
        env={var["name"]: var["value"] for var in container["env"]},
    )


def silent(job: str, name: str, succeeded: bool) -> dict:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    return execution(
        f"projects/{PROJECT}/locations/{REGION}/jobs/{job}", name, created=stamp,
        completed=stamp, failed=0 if succeeded else 1,
        env={"PARALLELLY_OVERRIDE_CORES": "8"},
    )  # fmt: skip


class FlakyLedger:
    """The real ledger, failing transiently now and then: before a call, or
    after it succeeded (the reply was lost), which tests idempotence."""

    METHODS = ("add", "observations", "due", "decided", "write_verdict")

    def __init__(self, ledger, rng: random.Random):
        self._ledger, self._rng, self.faults = ledger, rng, 0
        for name in self.METHODS:
            setattr(self, name, self._flaky(getattr(ledger, name)))

    def __getattr__(self, name):
        return getattr(self._ledger, name)

    def _flaky(self, method):
        def call(*args, **kwargs):
            roll = self._rng.random()
            if roll < LEDGER_FAULT_RATE / 2:
                self.faults += 1
                raise TransientError("injected: ledger unavailable")
            result = method(*args, **kwargs)
            if roll < LEDGER_FAULT_RATE:
                self.faults += 1
                raise TransientError("injected: ledger reply lost")
            return result

        return call


@pytest.fixture(params=["sqlite", "firestore"])
def chaos(request, tmp_path, monkeypatch):
    api = FakeRunApi().start()
    if request.param == "firestore":
        project = request.getfixturevalue("firestore_reset")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
        monkeypatch.setenv("WATCHDOG_LEDGER", "firestore")
    else:
        monkeypatch.setenv("WATCHDOG_LEDGER", f"sqlite:{tmp_path}/ledger.sqlite3")
    monkeypatch.setenv("WATCHDOG_PROJECT", PROJECT)
    monkeypatch.setenv("WATCHDOG_RUN_API_ENDPOINT", api.url)
    monkeypatch.setenv("WATCHDOG_GRACE_SECONDS", "60")
    monkeypatch.setenv("WATCHDOG_SWEEP_LOOKBACK_HOURS", str(24 * 365))
    stream = io.StringIO()
    log.setup(stream, logging.INFO)
    app.reset()
    monkeypatch.setattr(sweep, "_client", None)
    yield request.param, Function(stream), api
    app.reset()
    api.stop()


def deliver_until_acknowledged(post, bodies, rng, limit):
    """Pub/Sub's part: deliver, and deliver again what was not acknowledged."""
    queue, counts = list(bodies), Counter()
    while queue:
        counts["deliveries"] += 1
        assert counts["deliveries"] < limit, "deliveries do not converge"
        body = queue.pop(0)
        status = post(body).status_code
        assert status in (200, 500), status
        if status == 500:
            counts["redelivered"] += 1
            queue.insert(rng.randrange(len(queue) + 1), body)
    return counts


def test_chaos_gives_one_clean_verdict_per_execution(chaos, tmp_path, capsys):
    ledger_kind, function, api = chaos
    rng = random.Random(2026)
    entries = executions_of(sample_entries())
    export = tmp_path / "clean.json"
    export.write_text(json.dumps(entries))
    settings = function.watchdog.settings
    expected = {
        v.execution: v.verdict for v in audit_files([export], settings).verdicts
    }

    completions = [e for e in entries if "protoPayload" in e]
    for name in ("mmm-app-training", "mmm-app-dev-training"):
        api.add_job(job(f"projects/{PROJECT}/locations/{REGION}/jobs/{name}"))
    api.add_execution(*map(api_execution, completions))
    lost = set(rng.sample([e["labels"][LABEL] for e in completions], 4))
    delivered = [
        e for e in entries if not ("protoPayload" in e and e["labels"][LABEL] in lost)
    ]
    for n, succeeded in enumerate([True, True, True, False, False, False]):
        name = f"mmm-app-training-silent{n}"
        api.add_execution(silent("mmm-app-training", name, succeeded))
        expected[name] = "missing" if succeeded else "inconclusive"

    bodies = [push_body(e, f"m{n}") for n, e in enumerate(delivered)]
    bodies = [b for b in bodies for _ in range(rng.randint(1, 4))]
    garbage = [{"message": {"data": rng.choice(["%%%", "e30=", "WzFd"]),
                            "messageId": f"garbage-{n}"}, "subscription": "s"}
               for n in range(40)]  # fmt: skip
    bodies += garbage
    rng.shuffle(bodies)
    flaky = FlakyLedger(function.watchdog.ledger, rng)
    function.watchdog.ledger = flaky
    api.fail_randomly(API_FAULT_RATE, seed=7)

    counts = deliver_until_acknowledged(function.push, bodies, rng, 20 * len(bodies))
    function.watchdog.clock = lambda: time.time() + 61
    ticks = Counter()
    while flaky.undecided() or len(flaky.verdicts()) < len(expected):
        ticks["ticks"] += 1
        assert ticks["ticks"] < 60, "ticks do not converge"
        ticks["failed"] += function.tick().status_code == 500

    verdicts = flaky.verdicts()
    assert len(verdicts) == len({v["execution"] for v in verdicts}) == len(expected)
    assert {v["execution"]: v["verdict"] for v in verdicts} == expected
    lines = function.log_lines()
    retried = [line for line in lines if line.get("reason") == "transient"]
    assert len(retried) == counts["redelivered"] + ticks["failed"]
    assert not [line for line in lines if line.get("reason") == "unreadable_entry"]
    rejected = {line["logging.googleapis.com/labels"]["message_id"]
                for line in lines if line.get("reason") in
                ("not_base64", "not_json", "not_log_entry")}  # fmt: skip
    assert {g["message"]["messageId"] for g in garbage} <= rejected
    out = capsys.readouterr().out
    summaries = Counter(name for name in expected if f"· {name}:" in out)
    announced = sum(out.count(f"· {name}:") for name in expected)
    assert announced == len(summaries), "a verdict was announced twice"

    with capsys.disabled():
        print(
            f"\nchaos [{ledger_kind}]: {len(expected)} executions, "
            f"{len(delivered)} entries, {len(bodies)} messages "
            f"({len(bodies) - len(garbage) - len(delivered)} duplicates, "
            f"{len(garbage)} garbage), {counts['deliveries']} deliveries, "
            f"{counts['redelivered']} redelivered after 500, "
            f"{flaky.faults} ledger faults, "
            f"{sum(v for k, v in api.counts.items() if 'executions' in k)} Run API "
            f"calls ({API_FAULT_RATE:.0%} failing), {ticks['ticks']} ticks "
            f"({ticks['failed']} retried), {len(verdicts)} verdicts, "
            f"{len(summaries)} summaries ({len(expected) - len(summaries)} lost to "
            f"a fault after the verdict was written)"
        )
