"""Audit mode of the function: replayed messages decided apart, then one report."""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import sys

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent
from slack_sdk.http_retry.builtin_interval_calculators import (
    FixedValueRetryIntervalCalculator,
)

from handlers import app, audit_report, runapi, slack_client, sweep
from handlers.audit import audit_files
from handlers.config import Settings
from handlers.ledger import namespaced_path, open_ledger
from handlers.ledger.sqlite import SqliteLedger
from handlers.watchdog import Watchdog
from samples import build
from samples.logentries import PROJECT
from tests.conftest import ROOT
from tests.fakes.run_api import FakeRunApi
from tests.fakes.slack import FakeSlack
from tests.test_rollback import PROD_JOB, training_job

SAMPLE = json.loads(build.EXPORT.read_text())
REPLAY = "r-test-1"
AUDIT_TOPIC = f"projects/{PROJECT}/topics/watchdog-audit"
CHANNEL, ALERTS, AUDITS = "C0123ABCD", "C0ALERTS1", "C0AUDITS1"
# An execution the replay finds ineffective, recorded in production as effective.
TAMPERED = "mmm-app-training-k7m8n"
FAST_RETRIES = FixedValueRetryIntervalCalculator(0.01)


def replay_body(entry: dict, n: int, replay_id: str = REPLAY) -> dict:
    """A push body of the audit subscription, as `main.py replay` publishes."""
    key = f"{entry['logName']}/{entry['insertId']}"
    return _body(json.dumps(entry), f"r{n}",
                 {"replay_id": replay_id, "insert_id": key})  # fmt: skip


def end_body(count: int, replay_id: str = REPLAY, published: str = "") -> dict:
    body = _body(json.dumps({"replay_id": replay_id, "count": count}), "end",
                 {"replay_id": replay_id, "replay_end": str(count)})  # fmt: skip
    if published:
        body["message"]["publishTime"] = published
    return body


def _body(data: str, message_id: str, attributes: dict) -> dict:
    return {
        "message": {"data": base64.b64encode(data.encode()).decode(),
                    "attributes": attributes, "messageId": message_id},
        "subscription": f"projects/{PROJECT}/subscriptions/watchdog-audit-push",
    }  # fmt: skip


def record_production(path, tampered: str = TAMPERED) -> list[dict]:
    """Production's verdicts of the sample, one of them recorded otherwise."""
    settings = Settings.from_env({})
    ledger = SqliteLedger(str(path))
    for v in audit_files([build.EXPORT], settings).verdicts:
        record = v.to_record()
        if v.execution == tampered:
            record |= {"verdict": "effective", "causes": []}
        ledger.write_verdict(record, 1.0)
    records = ledger.verdicts()
    ledger.close()
    return records


@pytest.fixture
def effects(function, monkeypatch):
    """The function with Slack, an on-call group, and rollback in `env` mode."""
    slack, api = FakeSlack().start(), FakeRunApi(polls_until_done=1).start()
    api.add_job(training_job(PROD_JOB))
    api.add_job(training_job(PROD_JOB.replace(build.PROD, build.DEV), "8"))
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test", "WATCHDOG_SLACK_API_URL": slack.url,
        "WATCHDOG_SLACK_CHANNEL": CHANNEL, "WATCHDOG_SLACK_ALERT_CHANNEL": ALERTS,
        "WATCHDOG_SLACK_AUDIT_CHANNEL": AUDITS,
        "WATCHDOG_SLACK_ONCALL_GROUP": "S0ONCALL1", "WATCHDOG_PROJECT": PROJECT,
        "WATCHDOG_RUN_API_ENDPOINT": api.url, "WATCHDOG_ROLLBACK_MODE": "env",
        "WATCHDOG_SWEEP_LOOKBACK_HOURS": "1", "WATCHDOG_AUDIT_TOPIC": AUDIT_TOPIC,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    fast = functools.partial(slack_client.web_client, jitter=0, interval=FAST_RETRIES)
    monkeypatch.setattr(slack_client, "web_client", fast)
    monkeypatch.setattr(sweep, "_client", None)
    monkeypatch.setattr(runapi, "LIMITS", runapi.CallLimits(total_seconds=1.0))
    app.reset()
    yield slack, api
    slack.stop()
    api.stop()


def patches(api) -> int:
    return api.requests_to(f"/v2/{PROD_JOB}", "PATCH")


def replay_sample(function, replay_id: str = REPLAY) -> None:
    for n, entry in enumerate(SAMPLE):
        assert function.push(replay_body(entry, n, replay_id)).status_code == 200
    assert function.push(end_body(len(SAMPLE), replay_id)).status_code == 200


def test_a_replay_has_no_effect_but_one_report_in_the_audit_channel(
    function, effects, monkeypatch
):
    slack, api = effects
    monkeypatch.setenv("WATCHDOG_DIGEST_DAYS", "0")  # a tick's digest is production's
    app.reset()

    replay_sample(function)
    function.push(end_body(len(SAMPLE)))  # the end, delivered again
    function.settle()

    production = function.watchdog.ledger
    assert production.verdicts() == [] and production.undecided() == []
    assert production.decisions() == []
    assert patches(api) == 0
    posted = slack.posted()
    assert [m["channel"] for m in posted] == [AUDITS]
    assert "subteam" not in json.dumps(posted)
    assert posted[0]["text"].startswith(f"Audit of replay {REPLAY}: 9 executions")
    assert len(app.replay(REPLAY).dog.ledger.verdicts()) == 9


def test_the_same_entries_in_production_act_as_before(function, effects):
    """The control: without replay_id, the sample posts and rolls back."""
    slack, api = effects

    for n, entry in enumerate(SAMPLE):
        function.push(_body(json.dumps(entry), str(n), {}))
    function.settle()

    assert patches(api) == 1
    assert {m["channel"] for m in slack.posted()} == {CHANNEL, ALERTS}


def test_the_end_waits_for_the_entries_still_on_their_way(function, capsys):
    first, rest = SAMPLE[:50], SAMPLE[50:]
    for n, entry in enumerate(first):
        function.push(replay_body(entry, n))

    early = function.push(end_body(len(SAMPLE), published=_now()))
    for n, entry in enumerate(rest, start=50):
        function.push(replay_body(entry, n))
    for n, entry in enumerate(first):  # redelivered: counted once
        function.push(replay_body(entry, n))
    late = function.push(end_body(len(SAMPLE), published=_now()))

    assert early.status_code == 500 and late.status_code == 200
    out = capsys.readouterr().out
    assert f"Audit of replay {REPLAY}: 9 executions from 118 entries" in out
    assert "incomplete" not in out


def test_an_end_that_waited_long_enough_reports_what_it_has(function, capsys):
    for n, entry in enumerate(SAMPLE[:60]):
        function.push(replay_body(entry, n))

    response = function.push(end_body(len(SAMPLE), published="2020-01-01T00:00:00Z"))

    assert response.status_code == 200
    assert "60 of 118 entries (incomplete)" in capsys.readouterr().out


def test_a_message_of_the_audit_topic_without_replay_id_is_refused(
    function, monkeypatch
):
    monkeypatch.setenv("WATCHDOG_AUDIT_TOPIC", AUDIT_TOPIC)
    app.reset()
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/{AUDIT_TOPIC}",
        "id": "7",
    }
    event = CloudEvent(attributes, _body(json.dumps(SAMPLE[0]), "7", {}))
    headers, body = to_structured(event)

    response = function.logs.post("/", headers=headers, data=body)

    assert response.status_code == 200
    assert function.watchdog.ledger.undecided() == []
    reasons = [line.get("reason") for line in function.log_lines()]
    assert "no_replay_id" in reasons


def test_the_report_lists_disagreements_first_with_their_causes(
    function, tmp_path, capsys
):
    record_production(tmp_path / "ledger.sqlite3")

    replay_sample(function)

    report = audit_report.compare(
        REPLAY, function.watchdog.ledger, app.replay(REPLAY).dog.ledger
    )
    first = report.rows[0]
    assert (first["execution"], first["status"]) == (TAMPERED, "disagree")
    assert (first["recorded"], first["replayed"]) == ("effective", "ineffective")
    assert first["why"].startswith("+") and first["replayed_causes"]
    assert [r["status"] for r in report.rows[1:]] == ["agree"] * 8
    out = capsys.readouterr().out
    assert f"disagree: mmm-app-training {TAMPERED}: recorded effective" in out


def test_audit_report_prints_a_table_or_json_lines(function, tmp_path):
    record_production(tmp_path / "ledger.sqlite3")
    replay_sample(function)
    app.reset()
    env = {"WATCHDOG_LEDGER": f"sqlite:{tmp_path}/ledger.sqlite3"}

    table = _main("audit-report", REPLAY, env=env)
    lines = _main("audit-report", REPLAY, "--format", "json", env=env)
    missing = _main("audit-report", "r-nothing", env=env)

    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].startswith(f"Audit of replay {REPLAY}: 9 executions")
    assert rows[1].split()[:3] == ["STATUS", "JOB", "EXECUTION"]
    assert rows[2].split()[:5] == ["disagree", "mmm-app-training", TAMPERED,
                                   "effective", "ineffective"]  # fmt: skip
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["status"] for r in records] == ["disagree"] + ["agree"] * 8
    assert records[0].keys() >= {"recorded", "replayed", "recorded_causes",
                                 "replayed_causes"}  # fmt: skip
    assert missing.returncode == 1 and "no replay" in missing.stderr
    assert not (tmp_path / "ledger.audit-r-nothing.sqlite3").exists()


def test_each_replay_has_a_ledger_namespace_of_its_own(tmp_path):
    assert namespaced_path("/x/ledger.sqlite3", "r-1") == "/x/ledger.audit-r-1.sqlite3"
    assert namespaced_path("/x/ledger.sqlite3", "") == "/x/ledger.sqlite3"
    with pytest.raises(ValueError, match="namespace"):
        open_ledger(f"sqlite:{tmp_path}/l.sqlite3", namespace="../escape")


def test_a_firestore_namespace_shares_nothing_with_production(firestore_reset):
    production = open_ledger("firestore", project=firestore_reset)
    audit = open_ledger("firestore", project=firestore_reset, namespace="r-fs-1")
    settings = Settings.from_env({})
    replayed = Watchdog(settings, audit, clock=lambda: 2e9)

    for entry in SAMPLE:
        replayed.ingest(entry)
    decided = [replayed.finalize(job, e) for job, e in audit.undecided()]
    audit.claim_decision("report", {"job": "x"}, 1.0)

    assert len(decided) == len(audit.verdicts()) == 9
    assert production.verdicts() == production.decisions() == []
    assert production.undecided() == []
    production.close()
    audit.close()


def _main(*args, env):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**env, "PATH": "/usr/bin:/bin"})  # fmt: skip


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
