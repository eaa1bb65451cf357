"""Seek: retained messages delivered again to production change nothing.

The Pub/Sub emulator keeps acknowledged messages (`retain_acked_messages`);
`python main.py seek` marks them unacknowledged again; they are pulled and
delivered to the function a second time, as a push subscription would.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ROOT
from tests.test_audit_mode import SAMPLE, patches
from tests.test_audit_mode import effects as effects  # the fixture
from tests.test_audit_replay import pull_all

PROJECT = "watchdog-seek"


def deliver(function, subscription: str) -> int:
    """Pull every message and push it into the function; how many."""
    messages = pull_all(subscription, expected=len(SAMPLE))
    for message in messages:
        body = {"message": {"data": base64.b64encode(message.data).decode(),
                            "attributes": dict(message.attributes),
                            "messageId": message.message_id},
                "subscription": subscription}  # fmt: skip
        assert function.push(body).status_code == 200
    function.settle()
    return len(messages)


def state(function, slack, api) -> tuple:
    ledger = function.watchdog.ledger
    posted = Counter((m["channel"], m["text"]) for m in slack.posted())
    return ledger.verdicts(), ledger.decisions(), posted, patches(api)


@pytest.mark.usefixtures("effects")
def test_a_seek_replay_changes_no_verdict_and_repeats_no_action(
    function, request, pubsub_emulator, monkeypatch
):
    from google.cloud import pubsub_v1

    slack, api = request.getfixturevalue("effects")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, "training-logs")
    subscription = subscriber.subscription_path(PROJECT, "training-logs-sub")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={
        "name": subscription, "topic": topic, "retain_acked_messages": True,
    })  # fmt: skip
    before_publishing = datetime.now(UTC) - timedelta(seconds=5)
    for entry in SAMPLE:
        publisher.publish(topic, _json(entry)).result(timeout=30)

    assert deliver(function, subscription) == len(SAMPLE)
    first = state(function, slack, api)
    sought = _seek(pubsub_emulator, subscription, before_publishing)
    again = deliver(function, subscription)
    subscriber.delete_subscription(subscription=subscription)

    assert sought.returncode == 0, sought.stderr
    assert "delivered again" in sought.stdout
    assert again == len(SAMPLE)
    verdicts, _, posted, patched = first
    assert len(verdicts) == 9 and patched == 1
    assert max(posted.values()) == 1
    assert any("subteam" in str(m["blocks"]) for m in slack.posted())
    assert state(function, slack, api) == first


def test_seek_needs_a_time_or_a_snapshot_and_names_a_bad_one():
    env = os.environ | {"WATCHDOG_PROJECT": PROJECT}
    neither = _main("seek", "--subscription", "s", env=env)
    bad = _main("seek", "--subscription", "s", "--time", "yesterday", env=env)

    assert neither.returncode == 2 and "--time" in neither.stderr
    assert bad.returncode == 1 and "RFC 3339" in bad.stderr


def test_importing_main_loads_neither_logging_nor_pubsub_clients():
    modules = ("google.cloud.logging_v2", "google.cloud.pubsub_v1")
    code = f"import sys, main; print(*(m in sys.modules for m in {modules}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip

    assert done.stdout.split() == ["False", "False"]


def _seek(host: str, subscription: str, moment: datetime):
    env = os.environ | {"PUBSUB_EMULATOR_HOST": host, "WATCHDOG_PROJECT": PROJECT}
    stamp = moment.isoformat().replace("+00:00", "Z")
    name = subscription.rsplit("/", 1)[-1]  # a short name, in WATCHDOG_PROJECT
    return _main("seek", "--subscription", name, "--time", stamp, env=env)


def _main(*args, env):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def _json(entry: dict) -> bytes:
    return json.dumps(entry).encode()
