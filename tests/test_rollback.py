"""Rollback: the policy, and the patch of the job through the real run_v2 client."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from google.cloud import run_v2

from handlers import app, jobs, rollback, runapi, sweep
from handlers.config import Settings
from handlers.watchdog import Watchdog
from samples import build
from samples.logentries import PROJECT, push_body
from tests.conftest import ROOT
from tests.fakes.run_api import FakeRunApi

REGION = "europe-west1"
PROD_JOB = f"projects/{PROJECT}/locations/{REGION}/jobs/{build.PROD}"
SAMPLE = json.loads(build.EXPORT.read_text())
STREAK = ["mmm-app-training-k7m8n", "mmm-app-training-p9q2r", "mmm-app-training-s3t4v"]


def training_job(name: str, override: str = "eight") -> dict:
    """A job in the v2 JSON shape with more than a rollback may touch."""
    return {
        "name": name,
        "labels": {"team": "data"},
        "annotations": {"owner": "data-team"},
        "launchStage": "GA",
        "template": {
            "taskCount": 1,
            "parallelism": 1,
            "template": {
                "maxRetries": 0,
                "timeout": "21600s",
                "serviceAccount": f"training@{PROJECT}.iam.gserviceaccount.com",
                "containers": [{
                    "image": "europe-west1-docker.pkg.dev/p/mmm/train:1",
                    "args": ["r/run_all.R"],
                    "env": [{"name": "PARALLELLY_OVERRIDE_CORES", "value": override},
                            {"name": "TRAINING_BUCKET", "value": "mmm-data"}],
                    "resources": {"limits": {"cpu": "8", "memory": "32Gi"}},
                }],
            },
        },
    }  # fmt: skip


@pytest.fixture
def api(function, monkeypatch):
    fake = FakeRunApi(polls_until_done=1).start()
    fake.add_job(training_job(PROD_JOB))
    fake.add_job(training_job(PROD_JOB.replace(build.PROD, build.DEV), "8"))
    monkeypatch.setenv("WATCHDOG_PROJECT", PROJECT)
    monkeypatch.setenv("WATCHDOG_RUN_API_ENDPOINT", fake.url)
    monkeypatch.setenv("WATCHDOG_ROLLBACK_MODE", "env")
    monkeypatch.setenv("WATCHDOG_SWEEP_LOOKBACK_HOURS", "1")
    monkeypatch.setattr(sweep, "_client", None)
    monkeypatch.setattr(runapi, "LIMITS", runapi.CallLimits(total_seconds=1.0))
    app.reset()
    yield fake
    fake.stop()


def deliver_sample(function):
    for n, entry in enumerate(SAMPLE):
        function.push(push_body(entry, str(n)))
    function.settle()


def patches(api) -> int:
    return api.requests_to(f"/v2/{PROD_JOB}", "PATCH")


def as_job(document: dict) -> run_v2.Job:
    return run_v2.Job.from_json(json.dumps(document), ignore_unknown_fields=True)


def override_of(document: dict) -> str:
    env = document["template"]["template"]["containers"][0]["env"]
    return next(
        v.get("value", "") for v in env if v["name"] == "PARALLELLY_OVERRIDE_CORES"
    )


# The policy


def verdict(execution, result, start):
    return {"execution": execution, "verdict": result,
            "start_time": f"2026-11-{start:02d}T06:00:00Z"}  # fmt: skip


def test_a_streak_is_the_failures_at_the_end_in_start_order():
    records = [
        verdict("e5", "missing", 25), verdict("e1", "effective", 21),
        verdict("e3", "inactive", 23), verdict("e2", "ineffective", 22),
        verdict("e4", "inconclusive", 24), verdict("e6", "invalid", 26),
    ]  # fmt: skip

    streak = rollback.failing_streak("job", records, armed_since=0.0)

    assert [v["execution"] for v in streak.verdicts] == ["e2", "e5", "e6"]
    assert streak.key == "job/rollback/e2"


def test_effective_and_forced_end_a_streak():
    for reset in ("effective", "forced"):
        records = [verdict("e1", "missing", 21), verdict("e2", reset, 22),
                   verdict("e3", "invalid", 23)]  # fmt: skip

        streak = rollback.failing_streak("job", records, armed_since=0.0)

        assert [v["execution"] for v in streak.verdicts] == ["e3"]


def test_only_executions_started_after_re_arming_count():
    records = [verdict("e1", "missing", 21), verdict("e2", "missing", 23)]
    armed = build.datetime(2026, 11, 22, tzinfo=build.UTC).timestamp()

    streak = rollback.failing_streak("job", records, armed_since=armed)

    assert [v["execution"] for v in streak.verdicts] == ["e2"]


# Applying it


def test_three_failures_empty_the_override_and_change_nothing_else(
    function, api, capsys
):
    before = copy.deepcopy(api.jobs[PROD_JOB])

    deliver_sample(function)

    after = api.jobs[PROD_JOB]
    assert patches(api) == 1
    annotation = json.loads(after["annotations"].pop(jobs.ANNOTATION))
    assert annotation["mode"] == "env"
    assert all(name in annotation["reason"] for name in STREAK)
    expected = copy.deepcopy(before)
    expected["template"]["template"]["containers"][0]["env"][0]["value"] = ""
    assert as_job({**after, "etag": ""}) == as_job({**expected, "etag": ""})
    assert api.jobs[PROD_JOB.replace(build.PROD, build.DEV)]["etag"] == "etag-1"
    (decision,) = function.watchdog.ledger.decisions(build.PROD)
    assert decision["outcome"] == "applied"
    assert [v["execution"] for v in decision["streak"]] == STREAK
    assert decision["before"]["PARALLELLY_OVERRIDE_CORES"] == "eight"
    assert decision["after"]["PARALLELLY_OVERRIDE_CORES"] == ""
    out = capsys.readouterr().out
    assert "mmm-app-training: rolled back (env)" in out
    assert "terraform apply" in out and "rearm --job mmm-app-training" in out


def test_the_resources_mode_sets_cpu_memory_and_cores(function, api, monkeypatch):
    monkeypatch.setenv("WATCHDOG_ROLLBACK_MODE", "resources")
    app.reset()

    deliver_sample(function)

    container = api.jobs[PROD_JOB]["template"]["template"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert override_of(api.jobs[PROD_JOB]) == "4"
    assert container["env"][1] == {"name": "TRAINING_BUCKET", "value": "mmm-data"}


def test_dry_run_decides_and_reports_but_changes_nothing(function, api, monkeypatch):
    monkeypatch.setenv("WATCHDOG_ROLLBACK_MODE", "dry-run")
    app.reset()

    deliver_sample(function)

    assert patches(api) == 0
    (decision,) = function.watchdog.ledger.decisions(build.PROD)
    assert (decision["outcome"], decision["before"]["cpu"]) == ("dry_run", "8")


def test_off_decides_nothing(function, api, monkeypatch):
    monkeypatch.setenv("WATCHDOG_ROLLBACK_MODE", "off")
    app.reset()

    deliver_sample(function)

    assert (patches(api), function.watchdog.ledger.decisions()) == (0, [])


def test_redelivery_and_ticks_never_patch_twice(function, api):
    deliver_sample(function)
    deliver_sample(function)
    function.tick()
    function.tick()

    assert patches(api) == 1
    assert len(function.watchdog.ledger.decisions(build.PROD)) == 1


def test_a_person_changing_the_override_meanwhile_re_arms_instead(function, api):
    patch_job = api._patch_job

    def changed_first(name, query, body):
        api.jobs[name]["template"]["template"]["containers"][0]["env"][0]["value"] = "6"
        api.jobs[name]["etag"] = "etag-7"
        api._patch_job = patch_job
        return patch_job(name, query, body)

    api._patch_job = changed_first

    deliver_sample(function)

    assert override_of(api.jobs[PROD_JOB]) == "6"
    kinds = [(d["kind"], d["outcome"]) for d in function.watchdog.ledger.decisions()]
    assert kinds == [("rollback", "not_applied"), ("rearm", "rearmed")]


def test_an_etag_conflict_on_another_field_is_read_again_and_kept(function, api):
    patch_job = api._patch_job

    def retagged_first(name, query, body):
        api.jobs[name]["labels"] = {"team": "data", "changed": "by-a-person"}
        api.jobs[name]["etag"] = "etag-7"
        api._patch_job = patch_job
        return patch_job(name, query, body)

    api._patch_job = retagged_first

    deliver_sample(function)

    assert api.jobs[PROD_JOB]["labels"]["changed"] == "by-a-person"
    assert override_of(api.jobs[PROD_JOB]) == ""
    assert patches(api) == 2


def test_a_failed_rollback_is_recorded_and_urgent(function, api, capsys):
    api.fail_next(1000)

    deliver_sample(function)

    (decision,) = function.watchdog.ledger.decisions(build.PROD)
    assert decision["outcome"] == "failed"
    assert "rollback FAILED" in capsys.readouterr().out


def test_a_job_outside_the_watched_list_is_never_touched(function, api):
    settings = function.watchdog.settings

    with pytest.raises(Exception, match="not watched"):
        jobs.roll_back(settings, "someone-elses-job", "8", "test")
    assert sum(api.counts.values()) == 0


def test_a_cooldown_holds_a_second_streak_back(function, api, monkeypatch):
    deliver_sample(function)
    api.jobs[PROD_JOB]["template"]["template"]["containers"][0]["env"][0]["value"] = "8"
    # Started after the rollback, which the settled clock put a minute ahead.
    started = build.datetime.now(build.UTC) + timedelta(minutes=5)
    later = build.Run(build.PROD, "mmm-app-training-later", started)
    entries = later.text("   max_cores  : 2").complete(
        {"PARALLELLY_OVERRIDE_CORES": "8"}
    )
    monkeypatch.setenv("WATCHDOG_ROLLBACK_THRESHOLD", "1")
    dog = function.watchdog
    dog.settings = Settings.from_env()

    for n, entry in enumerate(entries):
        function.push(push_body(entry, f"later-{n}"))
    function.watchdog.clock = lambda: started.timestamp() + 3600
    function.tick()

    assert patches(api) == 1
    kinds = [(d["kind"], d["outcome"]) for d in dog.ledger.decisions(build.PROD)]
    assert kinds == [("rollback", "applied"), ("cooldown", "not_applied")]


def test_two_instances_at_the_threshold_at_once_patch_once(
    function, api, any_ledger_for_instances
):
    first, second = any_ledger_for_instances
    settings = function.watchdog.settings
    for ledger in (first,):
        for record in _failing_records():
            ledger.write_verdict(record, time.time())
    dogs = [Watchdog(settings, first), Watchdog(settings, second)]
    start = threading.Barrier(2)

    def decide(dog):
        start.wait()
        rollback.consider(dog, build.PROD)

    threads = [threading.Thread(target=decide, args=(d,)) for d in dogs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert patches(api) == 1
    assert len(first.decisions(build.PROD)) == 1


def _failing_records():
    return [
        {"job": build.PROD, "execution": name, "verdict": "missing",
         "start_time": f"2026-11-2{n}T06:00:00Z", "override_raw": "eight",
         "causes": ["no_override_marker"]}
        for n, name in enumerate(STREAK)
    ]  # fmt: skip


@pytest.fixture(params=["sqlite", "firestore"])
def any_ledger_for_instances(request, tmp_path):
    """Two ledger clients on one store, as two function instances have."""
    if request.param == "sqlite":
        from handlers.ledger.sqlite import SqliteLedger

        path = str(tmp_path / "shared.sqlite3")
        pair = SqliteLedger(path), SqliteLedger(path)
    else:
        from handlers.ledger.firestore import FirestoreLedger

        project = request.getfixturevalue("firestore_reset")
        pair = FirestoreLedger(project=project), FirestoreLedger(project=project)
    yield pair
    for ledger in pair:
        ledger.close()


def test_rollback_status_and_rearm_on_the_command_line(function, api):
    deliver_sample(function)
    env = dict(os.environ)

    rearmed = _main("rearm", "--job", build.PROD, env=env)
    status = _main("rollback-status", "--job", build.PROD, "--format", "json", env=env)
    table = _main("rollback-status", env=env)

    assert rearmed.returncode == 0, rearmed.stderr
    kinds = {json.loads(line)["kind"] for line in status.stdout.splitlines()}
    assert kinds == {"rollback", "rearm"}
    assert "mmm-app-training-k7m8n" in table.stdout
    assert _main("rearm", "--job", "nope", env=env).returncode == 1


def _main(*args, env):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_streak_is_looked_for_only_in_the_window(function, api, monkeypatch):
    monkeypatch.setenv("WATCHDOG_STREAK_WINDOW_DAYS", "1")
    app.reset()
    dog = function.watchdog
    old = time.time() - 2 * 86400
    for record in _failing_records():
        dog.ledger.write_verdict(record, old)

    assert rollback.consider(dog, build.PROD) is None
    assert patches(api) == 0
