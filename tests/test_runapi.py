"""The real run_v2 client, over REST, against the local fake of the Run Admin API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions as api
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from handlers import runapi, times
from handlers.config import Settings
from handlers.errors import ConfigError, TransientError
from tests.fakes.run_api import FakeRunApi, execution, job

ROOT = Path(__file__).resolve().parent.parent
JOB = "projects/p/locations/europe-west1/jobs/train"
LISTING = f"/v2/{JOB}/executions"
SINCE = datetime(2026, 11, 30, tzinfo=UTC)
# Small enough that a test of the API being down ends within seconds.
QUICK = runapi.CallLimits(
    total_seconds=1.0, attempt_seconds=0.5, min_attempt_seconds=0.2, first_wait=0.05
)


@pytest.fixture
def fake():
    server = FakeRunApi().start()
    server.add_job(job(JOB, env={"PARALLELLY_OVERRIDE_CORES": "8"}))
    yield server
    server.stop()


@pytest.fixture
def api_settings(fake) -> Settings:
    return Settings.from_env(
        {"WATCHDOG_PROJECT": "p", "WATCHDOG_RUN_API_ENDPOINT": fake.url}
    )


@pytest.fixture
def client(api_settings):
    return runapi.executions_client(api_settings)


def at(hours: float) -> str:
    """RFC 3339 of SINCE plus `hours`."""
    return (SINCE + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def add_hourly(fake: FakeRunApi, count: int, first_hour: float = 0) -> None:
    """`count` finished executions created an hour apart from SINCE + first_hour."""
    for i in range(count):
        hour = first_hour + i
        fake.add_execution(
            execution(JOB, f"train-{i:04d}", created=at(hour), completed=at(hour + 0.5))
        )


def only(fake, client, document: dict) -> run_v2.Execution:
    """The execution `document` as the client reads it back from the fake."""
    fake.add_execution(document)
    return client.get_execution(name=document["name"])


# Listing


def test_recent_executions_are_those_created_since_oldest_first(
    fake, client, api_settings
):
    add_hourly(fake, 120, first_hour=-60)

    found = runapi.recent_executions(client, api_settings, "train", SINCE)

    created = [e.create_time for e in found]
    assert len(found) == 60
    assert created == sorted(created)
    assert created[0] == SINCE


@pytest.mark.parametrize(
    ("recent", "pages"),
    [(0, 1), (30, 1), (49, 1), (50, 2), (60, 2), (150, 4), (200, 4)],
)
def test_the_listing_stops_after_the_page_that_reaches_before_since(
    fake, client, api_settings, recent, pages
):
    add_hourly(fake, 200, first_hour=recent - 200)

    found = runapi.recent_executions(client, api_settings, "train", SINCE)

    assert len(found) == recent
    assert fake.requests_to(LISTING) == pages
    assert all(query["pageSize"] == ["50"] for _, _, query in fake.log)


def test_an_oldest_first_listing_is_read_to_the_end_instead_of_missing_the_newest(
    fake, client, api_settings
):
    add_hourly(fake, 200, first_hour=-190)
    fake.newest_first = False

    found = runapi.recent_executions(client, api_settings, "train", SINCE)

    assert len(found) == 10
    assert fake.requests_to(LISTING) == 4


def test_a_since_without_time_zone_is_taken_as_utc(fake, client, api_settings):
    add_hourly(fake, 5, first_hour=-2)

    found = runapi.recent_executions(
        client, api_settings, "train", SINCE.replace(tzinfo=None)
    )

    assert len(found) == 3


# Completion fields


@pytest.mark.parametrize("name", ["completion_succeeded", "completion_failed"])
def test_completion_fields_equal_those_of_the_audit_entry_of_the_same_execution(
    fake, client, name
):
    golden = json.loads((ROOT / "tests" / "golden" / f"{name}.json").read_text())
    expected = golden["expected"]["fields"]
    spec = golden["entry"]["protoPayload"]["response"]["spec"]
    limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
    document = execution(
        JOB,
        golden["expected"]["execution"],
        created=expected["start_time"],
        completed=expected["completion_time"],
        succeeded=expected["succeeded_count"],
        failed=expected["failed_count"],
        cpu=limits["cpu"],
        memory=limits["memory"],
        env={"PARALLELLY_OVERRIDE_CORES": expected["override_raw"]},
    )
    document["logUri"] = expected["log_uri"]

    fields = runapi.completion_fields(only(fake, client, document))

    moments = ("start_time", "completion_time")
    assert [times.parse(fields[k]) for k in moments] == [
        times.parse(expected[k]) for k in moments
    ]
    assert {k: v for k, v in fields.items() if k not in moments} == {
        **{k: v for k, v in expected.items() if k not in moments},
        "source": "run_api",
    }


@pytest.mark.parametrize(
    ("counts", "outcome", "message"),
    [
        ({"tasks": 3}, "succeeded", "Execution e1 has completed successfully."),
        ({"tasks": 3, "failed": 1}, "failed",
         "Execution e1 has failed to complete, 2/3 tasks were a success."),
        ({"tasks": 3, "succeeded": 1, "cancelled": 2}, "cancelled",
         "Execution e1 was cancelled, 1/3 tasks were a success."),
    ],
)  # fmt: skip
def test_the_outcome_follows_the_task_counts(fake, client, counts, outcome, message):
    document = execution(JOB, "e1", created=at(0), completed=at(1), **counts)

    fields = runapi.completion_fields(only(fake, client, document))

    assert (fields["outcome"], fields["message"]) == (outcome, message)
    assert fields["task_count"] == 3
    assert fields["failed_count"] == counts.get("failed", 0)


def test_a_running_execution_has_no_completion(fake, client):
    running = only(fake, client, execution(JOB, "e1", created=at(0)))

    assert runapi.completion_fields(running) is None
    assert runapi.completed_at(running) == 0.0


def test_completed_at_is_the_unix_time_of_the_completion(fake, client):
    document = execution(JOB, "e1", created=at(0), completed="2026-11-30T06:01:36.25Z")

    finished = only(fake, client, document)

    moment = datetime(2026, 11, 30, 6, 1, 36, 250000, tzinfo=UTC)
    assert runapi.completed_at(finished) == moment.timestamp()
    assert times.parse(runapi.completion_fields(finished)["completion_time"]) == moment


def test_milli_cpu_and_mebibytes_are_read_as_vcpu_and_gib(fake, client):
    document = execution(
        JOB, "e1", created=at(0), completed=at(1), cpu="1000m", memory="1953Mi"
    )

    fields = runapi.completion_fields(only(fake, client, document))

    assert (fields["vcpu"], fields["memory_gib"]) == (1.0, 1.9072)


def test_only_the_override_is_kept_of_the_env(fake, client):
    env = {"DB_PASSWORD": "hunter2", "PARALLELLY_OVERRIDE_CORES": "8"}
    document = execution(JOB, "e1", created=at(0), completed=at(1), env=env)
    secret_ref = {"secretKeyRef": {"secret": "api-key", "version": "latest"}}
    document["template"]["containers"][0]["env"].append(
        {"name": "API_KEY", "valueSource": secret_ref}
    )

    fields = runapi.completion_fields(only(fake, client, document))

    assert (fields["env_known"], fields["override_raw"]) == (True, "8")
    assert "hunter2" not in json.dumps(fields)
    assert "api-key" not in json.dumps(fields)


@pytest.mark.parametrize(
    ("env", "containers", "known", "raw"),
    [
        ({}, True, True, None),
        ({"PARALLELLY_OVERRIDE_CORES": ""}, True, True, ""),
        ({"PARALLELLY_OVERRIDE_CORES": "x" * 100}, True, True, "x" * 64),
        ({}, False, False, None),
    ],
)
def test_the_override_is_known_from_the_env_of_the_first_container(
    fake, client, env, containers, known, raw
):
    document = execution(JOB, "e1", created=at(0), completed=at(1), env=env)
    if not containers:
        document["template"] = {}

    fields = runapi.completion_fields(only(fake, client, document))

    assert (fields["env_known"], fields["override_raw"]) == (known, raw)


# Faults


@pytest.mark.parametrize("status", [503, 500, 429, 504])
def test_a_passing_fault_is_retried(fake, client, api_settings, status):
    add_hourly(fake, 3)
    fake.fail_next(1, status)

    found = runapi.recent_executions(client, api_settings, "train", SINCE, limits=QUICK)

    assert len(found) == 3
    assert fake.requests_to(LISTING) == 2


def test_an_api_that_stays_down_gives_a_transient_error_in_bounded_time(
    fake, client, api_settings
):
    fake.fail_next(1000, 503)

    started = time.monotonic()
    with pytest.raises(TransientError, match=r"list_executions .*jobs/train.*503"):
        runapi.recent_executions(client, api_settings, "train", SINCE, limits=QUICK)
    elapsed = time.monotonic() - started

    assert elapsed < QUICK.total_seconds + QUICK.min_attempt_seconds + 0.5
    assert fake.requests_to(LISTING) >= 3


def test_an_api_that_comes_back_is_read_again(fake, client, api_settings, monkeypatch):
    monkeypatch.setattr(runapi, "LIMITS", QUICK)
    add_hourly(fake, 3)
    fake.fail_next(1000, 500)
    with pytest.raises(TransientError, match="500 InternalServerError"):
        runapi.recent_executions(client, api_settings, "train", SINCE)

    fake.heal()
    found = runapi.recent_executions(client, api_settings, "train", SINCE)

    assert len(found) == 3


def test_a_stalled_api_gives_a_transient_error_in_bounded_time(
    fake, client, api_settings
):
    fake.stall_next(1000, seconds=5)

    started = time.monotonic()
    with pytest.raises(TransientError, match="no usable answer within 1 s"):
        runapi.recent_executions(client, api_settings, "train", SINCE, limits=QUICK)
    elapsed = time.monotonic() - started

    assert elapsed < QUICK.total_seconds + QUICK.min_attempt_seconds + 0.5


def test_a_refused_connection_is_transient():
    closed = FakeRunApi()
    closed.stop()
    settings = Settings.from_env(
        {"WATCHDOG_PROJECT": "p", "WATCHDOG_RUN_API_ENDPOINT": closed.url}
    )

    with pytest.raises(TransientError, match="ConnectionError"):
        runapi.recent_executions(
            runapi.executions_client(settings), settings, "train", SINCE, limits=QUICK
        )


def test_random_faults_are_ridden_out_across_pages(fake, client, api_settings):
    add_hourly(fake, 180, first_hour=-20)
    fake.fail_randomly(0.3, seed=7)

    found = runapi.recent_executions(client, api_settings, "train", SINCE)

    assert len(found) == 160
    assert fake.requests_to(LISTING) > 4


def test_an_unknown_job_is_a_config_error_naming_the_variables(client, api_settings):
    with pytest.raises(ConfigError) as caught:
        runapi.recent_executions(client, api_settings, "nope", SINCE)

    message = str(caught.value)
    assert "jobs/nope" in message
    assert all(name in message for name in ("WATCHDOG_PROJECT", "WATCHDOG_REGION"))
    assert "WATCHDOG_JOBS" in message


def test_permission_denied_is_a_config_error_naming_the_role_and_not_retried(
    fake, client, api_settings
):
    fake.fail_next(1, 403)

    with pytest.raises(ConfigError, match=r"roles/run\.viewer"):
        runapi.recent_executions(client, api_settings, "train", SINCE)

    assert fake.requests_to(LISTING) == 1


def test_missing_default_credentials_are_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))

    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        runapi.executions_client(Settings.from_env({"WATCHDOG_PROJECT": "p"}))


def test_importing_the_function_does_not_import_run_v2():
    code = "import sys, main; print('google.cloud.run_v2' in sys.modules)"

    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )

    assert done.stdout.strip() == "False", done.stderr


# The fake's job endpoints, with the client the rollback will use


@pytest.fixture
def jobs(fake):
    return run_v2.JobsClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": fake.url},
    )


def test_an_update_with_a_stale_etag_is_refused(fake, jobs):
    current = jobs.get_job(name=JOB)
    current.etag = "etag-0"

    with pytest.raises(api.Conflict) as caught:
        jobs.update_job(job=current)

    assert caught.value.code == 409
    assert "ABORTED" in caught.value.response.text
    assert fake.jobs[JOB]["etag"] == "etag-1"


def test_an_update_with_the_current_etag_returns_the_job_when_done(fake, jobs):
    current = jobs.get_job(name=JOB)
    current.template.template.containers[0].env[0].value = "4"

    updated = jobs.update_job(job=current).result(timeout=10)

    assert isinstance(updated, run_v2.Job)
    assert updated.template.template.containers[0].env[0].value == "4"
    assert updated.etag == fake.jobs[JOB]["etag"] == "etag-2"
    assert sum(n for call, n in fake.counts.items() if "/operations/" in call) == 2
