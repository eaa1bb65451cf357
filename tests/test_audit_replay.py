"""Replay: the real Logging client against a local fake, into the Pub/Sub emulator.

The last test runs it all as deployed: `python main.py replay` publishes to
the emulator, which pushes to a functions-framework server in audit mode.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import warnings
from collections import Counter

import pytest

from handlers import replay
from handlers.config import Settings
from handlers.ledger.sqlite import SqliteLedger
from handlers.sink_filter import sink_filter
from samples import build
from tests.conftest import ROOT
from tests.fakes.logging_api import FakeLogging
from tests.test_audit_mode import SAMPLE, TAMPERED, record_production
from tests.test_pipeline import serve

PROJECT = "watchdog-replay"
JOBS = [build.DEV, build.PROD]
SINCE = "2026-11-01T00:00:00Z"


@pytest.fixture
def logging_api():
    fake = FakeLogging(SAMPLE).start()
    yield fake
    fake.stop()


@pytest.fixture
def audit_topic(pubsub_emulator, monkeypatch, request):
    """A fresh topic and a pull subscription on it, in the emulator."""
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    name = "t" + request.node.name[-40:].replace("_", "-")
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, name)
    publisher.create_topic(name=topic)
    subscription = subscriber.subscription_path(PROJECT, name)
    subscriber.create_subscription(name=subscription, topic=topic)
    yield topic, subscription
    subscriber.delete_subscription(subscription=subscription)


def settings_for(fake: FakeLogging) -> Settings:
    return Settings.from_env({"WATCHDOG_PROJECT": PROJECT,
                              "WATCHDOG_LOGGING_API_ENDPOINT": fake.url})  # fmt: skip


def pull_all(subscription: str, expected: int = len(SAMPLE) + 1) -> list:
    """Every message: `expected` of them, then whatever else is there at once."""
    from google.cloud import pubsub_v1

    subscriber, messages = pubsub_v1.SubscriberClient(), []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        enough = len(messages) >= expected
        with warnings.catch_warnings():  # return_immediately: deprecated, and apt
            warnings.simplefilter("ignore", DeprecationWarning)
            answer = subscriber.pull(request={"subscription": subscription,
                                              "max_messages": 500,
                                              "return_immediately": enough},
                                     timeout=10)  # fmt: skip
        received = list(answer.received_messages)
        if received:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[m.ack_id for m in received])  # fmt: skip
        messages += [m.message for m in received]
        if enough and not received:
            break
    return messages


def entries_of(messages) -> Counter:
    return Counter(
        m.attributes["insert_id"] for m in messages if "replay_end" not in m.attributes
    )


def test_replay_reads_the_sink_filter_in_large_pages_and_publishes_each_entry(
    logging_api, audit_topic, tmp_path
):
    topic, subscription = audit_topic
    checkpoint = replay.Checkpoint("r-pages", JOBS, SINCE, None, topic)
    progress = tmp_path / "progress.txt"

    with progress.open("w") as out:
        replay.run(settings_for(logging_api), checkpoint, tmp_path, out)

    first = logging_api.requests[0]
    assert first["resourceNames"] == [f"projects/{PROJECT}"]
    assert first["pageSize"] == replay.PAGE_SIZE == 1000
    assert first["orderBy"] == "timestamp asc"
    assert sink_filter(JOBS) in first["filter"]
    assert f'timestamp>="{SINCE}"' in first["filter"]
    messages = pull_all(subscription)
    assert entries_of(messages) == Counter(
        f"{e['logName']}/{e['insertId']}" for e in SAMPLE
    )
    published = {m.attributes["insert_id"]: json.loads(m.data) for m in messages
                 if "replay_end" not in m.attributes}  # fmt: skip
    assert all(published[f"{e['logName']}/{e['insertId']}"] == e for e in SAMPLE)
    ends = [m for m in messages if "replay_end" in m.attributes]
    assert [m.attributes["replay_end"] for m in ends] == ["118"]
    assert {m.attributes["replay_id"] for m in messages} == {"r-pages"}
    assert "118 entries published" in progress.read_text()


def test_replay_pages_with_the_token_and_waits_out_a_few_429s(
    logging_api, audit_topic, tmp_path
):
    topic, subscription = audit_topic
    logging_api.refuse_next(2, after=1)
    waits: list[float] = []
    checkpoint = replay.Checkpoint("r-quota", JOBS, SINCE, "2026-12-01T00:00:00Z",
                                   topic)  # fmt: skip

    replay.run(settings_for(logging_api), checkpoint, tmp_path, io.StringIO(),
               sleep=waits.append, page_size=40)  # fmt: skip

    assert waits == [2.0, 4.0]
    tokens = [r.get("pageToken") for r in logging_api.requests]
    assert tokens[:4] == [None, "40", None, None]  # after a 429: from the last entry
    assert (
        f'timestamp>="{logging_api.entries[39]["timestamp"]}"'
        in logging_api.requests[2]["filter"]
    )
    assert 'timestamp<"2026-12-01T00:00:00Z"' in logging_api.requests[0]["filter"]
    counts = entries_of(pull_all(subscription))
    assert len(counts) == 118 and max(counts.values()) == 1


def test_an_interrupted_replay_resumes_without_publishing_an_entry_twice(
    logging_api, audit_topic, tmp_path
):
    topic, subscription = audit_topic
    logging_api.refuse_next(replay.MAX_RETRIES + 1, after=1)
    settings, quiet = settings_for(logging_api), io.StringIO()
    started = replay.Checkpoint("r-resume", JOBS, SINCE, None, topic)

    with pytest.raises(replay.QuotaExhausted, match="--resume r-resume"):
        replay.run(settings, started, tmp_path, quiet, sleep=lambda s: None,
                   page_size=50)  # fmt: skip
    saved = replay.Checkpoint.load(tmp_path, "r-resume")
    assert (saved.published, saved.ended) == (50, False)
    last = saved.last_timestamp
    resumed = replay.run(settings, saved, tmp_path, quiet, page_size=50)

    assert resumed.published == 118 and resumed.ended
    assert f'timestamp>="{last}"' in logging_api.requests[-1]["filter"]
    messages = pull_all(subscription)
    counts = entries_of(messages)
    assert len(counts) == 118 and max(counts.values()) == 1
    assert [m.attributes["replay_end"] for m in messages
            if "replay_end" in m.attributes] == ["118"]  # fmt: skip


def test_replay_pushed_into_the_function_reports_and_leaves_production_alone(
    pubsub_emulator, logging_api, tmp_path, monkeypatch
):
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    ledger = tmp_path / "ledger.sqlite3"
    recorded = record_production(ledger)
    topic = f"projects/{PROJECT}/topics/watchdog-audit"
    env = os.environ | {
        "PUBSUB_EMULATOR_HOST": pubsub_emulator, "WATCHDOG_PROJECT": PROJECT,
        "WATCHDOG_LEDGER": f"sqlite:{ledger}", "WATCHDOG_AUDIT_TOPIC": topic,
        "WATCHDOG_LOGGING_API_ENDPOINT": logging_api.url,
        "WATCHDOG_ROLLBACK_MODE": "env",  # and no Run API: a patch would fail loudly
    }  # fmt: skip
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    publisher.create_topic(name=topic)
    push = subscriber.subscription_path(PROJECT, "watchdog-audit-push")

    with serve("handle_log_entry", env, tmp_path / "server.log") as url:
        subscriber.create_subscription(request={
            "name": push, "topic": topic, "ack_deadline_seconds": 10,
            "push_config": {"push_endpoint": url},
        })  # fmt: skip
        done = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "replay", "--job", build.PROD,
             "--job", build.DEV, "--since", SINCE],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        replay_id = done.stdout.strip()
        _wait_for_report(tmp_path / f"ledger.audit-{replay_id}.sqlite3")
        subscriber.delete_subscription(subscription=push)

    assert "118 entries published" in done.stderr
    assert (tmp_path / ".watchdog" / "replays" / f"{replay_id}.json").is_file()
    production = SqliteLedger(str(ledger))
    assert production.verdicts() == recorded and production.decisions() == []
    production.close()
    report = subprocess.run(
        [sys.executable, "main.py", "audit-report", replay_id, "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rows = [json.loads(line) for line in report.stdout.splitlines()]
    assert (rows[0]["execution"], rows[0]["status"]) == (TAMPERED, "disagree")
    assert [r["status"] for r in rows[1:]] == ["agree"] * 8
    server = (tmp_path / "server.log").read_text()
    assert f"Audit of replay {replay_id}: 9 executions from 118 entries" in server
    assert "roll back" not in server and "·" not in server  # no alert, no summary


def _wait_for_report(path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            ledger = SqliteLedger(str(path))
            kinds = {d["kind"] for d in ledger.decisions()}
            ledger.close()
            if "audit-report" in kinds:
                return
        time.sleep(0.5)
    pytest.fail(f"no audit report in {path} after {seconds} s")
