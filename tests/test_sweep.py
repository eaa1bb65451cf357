"""The sweeper: silent executions get verdicts, and a second tick changes nothing."""

from __future__ import annotations

import time

import pytest

from handlers import app, runapi, sweep
from samples import build
from samples.logentries import PROJECT, push_body
from tests.fakes.run_api import FakeRunApi, execution, job

REGION = "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{REGION}/jobs"


def stamp(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


@pytest.fixture
def api(function, monkeypatch):
    fake = FakeRunApi().start()
    for name in sorted(function.watchdog.settings.jobs):
        fake.add_job(job(f"{PARENT}/{name}"))
    monkeypatch.setenv("WATCHDOG_PROJECT", PROJECT)
    monkeypatch.setenv("WATCHDOG_RUN_API_ENDPOINT", fake.url)
    monkeypatch.setattr(sweep, "_client", None)
    app.reset()
    yield fake
    fake.stop()


def add(api, name, *, completed_ago=None, succeeded=True, override="8"):
    done = stamp(completed_ago) if completed_ago is not None else None
    api.add_execution(execution(
        f"{PARENT}/{build.PROD}", name, created=stamp(3600), completed=done,
        failed=0 if succeeded or done is None else 1,
        env={"PARALLELLY_OVERRIDE_CORES": override},
    ))  # fmt: skip


def verdicts(function):
    return {r["execution"]: r["verdict"] for r in function.watchdog.ledger.verdicts()}


def list_calls(api):
    return sum(n for key, n in api.counts.items() if key.endswith("/executions"))


def test_silent_executions_get_a_verdict_after_their_grace_period(function, api):
    add(api, "mmm-app-training-quiet1", completed_ago=600)
    add(api, "mmm-app-training-quiet2", completed_ago=600, succeeded=False)
    add(api, "mmm-app-training-quiet3", completed_ago=600, override="")
    add(api, "mmm-app-training-recent", completed_ago=5)
    add(api, "mmm-app-training-running")

    assert function.tick().status_code == 200

    assert verdicts(function) == {
        "mmm-app-training-quiet1": "missing",
        "mmm-app-training-quiet2": "inconclusive",
        "mmm-app-training-quiet3": "inactive",
    }


def test_a_second_tick_changes_nothing_and_reads_little(function, api, capsys):
    add(api, "mmm-app-training-quiet1", completed_ago=600)
    function.tick()
    first = verdicts(function)
    calls = dict(api.counts)

    function.tick()

    assert verdicts(function) == first
    assert list_calls(api) == 2 * list_calls_from(calls)
    assert not [k for k in api.counts if "/executions/" in k]
    assert capsys.readouterr().out.count("quiet1: MISSING") == 1


def list_calls_from(counts: dict) -> int:
    return sum(n for key, n in counts.items() if key.endswith("/executions"))


def test_a_completion_from_the_logs_is_not_taken_again_from_the_api(function, api):
    entries = build.effective(build.datetime(2026, 12, 1, 6, 0, tzinfo=build.UTC))
    for n, entry in enumerate(entries):
        function.push(push_body(entry, str(n)))
    add(api, "mmm-app-training-a1b2c", completed_ago=600)
    function.watchdog.clock = lambda: time.time() + 3600

    function.tick()

    ledger = function.watchdog.ledger
    kinds = [o.kind for o in ledger.observations(build.PROD, "mmm-app-training-a1b2c")]
    assert kinds.count("completion") == 1
    assert verdicts(function) == {"mmm-app-training-a1b2c": "effective"}


def test_an_unavailable_api_makes_the_tick_retry(function, api, monkeypatch):
    quick = runapi.CallLimits(total_seconds=1.0, first_wait=0.05)
    monkeypatch.setattr(runapi, "LIMITS", quick)
    add(api, "mmm-app-training-quiet1", completed_ago=600)
    api.fail_next(1000)

    assert function.tick().status_code == 500
    api.heal()
    assert function.tick().status_code == 200
    assert verdicts(function) == {"mmm-app-training-quiet1": "missing"}


def test_a_job_the_api_does_not_know_leaves_the_others_swept(function, api):
    api.jobs.pop(f"{PARENT}/{build.DEV}")
    add(api, "mmm-app-training-quiet1", completed_ago=600)

    assert function.tick().status_code == 200

    assert verdicts(function) == {"mmm-app-training-quiet1": "missing"}
    errors = [line for line in function.log_lines() if line["severity"] == "ERROR"]
    assert "mmm-app-dev-training" in errors[0]["message"]


def test_without_a_project_the_sweeper_asks_no_api(function):
    assert function.tick().status_code == 200
    assert sweep._client is None
