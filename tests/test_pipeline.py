"""The whole local pipeline: Pub/Sub emulator push into functions-framework servers
backed by the Firestore emulator, exactly as deployed, minus Google."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from samples import build
from tests.conftest import ROOT
from tests.emulators import free_port

PROJECT = "watchdog-pipeline"


@contextmanager
def serve(target: str, env: dict, output: Path):
    """A functions-framework server for one entry point, as Cloud Functions runs
    it; its output goes to a file, which never fills up as an unread pipe would."""
    port = free_port()
    with output.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--source", "main.py",
             "--target", target, "--signature-type", "cloudevent",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_port(port, server, output)
            yield f"http://127.0.0.1:{port}/"
        finally:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_port(port: int, server: subprocess.Popen, output: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(output.read_text(errors="replace"))
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"functions-framework did not listen on {port}")


def push_to(publisher, subscriber, topic: str, endpoint: str) -> str:
    topic_path = publisher.topic_path(PROJECT, topic)
    publisher.create_topic(name=topic_path)
    subscription = subscriber.subscription_path(PROJECT, f"{topic}-push")
    subscriber.create_subscription(request={
        "name": subscription, "topic": topic_path, "ack_deadline_seconds": 10,
        "push_config": {"push_endpoint": endpoint},
    })  # fmt: skip
    return topic_path


def test_entries_published_to_pub_sub_become_verdicts_in_firestore(
    pubsub_emulator, firestore_reset, monkeypatch, tmp_path
):
    from google.cloud import pubsub_v1

    from handlers.ledger.firestore import FirestoreLedger

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    env = os.environ | {
        "GOOGLE_CLOUD_PROJECT": firestore_reset,
        "WATCHDOG_LEDGER": "firestore",
        "WATCHDOG_GRACE_SECONDS": "1",
    }
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    entries = json.loads(build.EXPORT.read_text())

    with (
        serve("handle_log_entry", env, tmp_path / "logs.out") as logs,
        serve("handle_tick", env, tmp_path / "ticks.out") as ticks,
    ):
        topic = push_to(publisher, subscriber, "training-logs", logs)
        tick_topic = push_to(publisher, subscriber, "watchdog-ticks", ticks)
        futures = [publisher.publish(topic, json.dumps(entry).encode(),
                                     **{"logging.googleapis.com/timestamp":
                                        entry["timestamp"]})
                   for entry in entries]  # fmt: skip
        assert all(f.result(timeout=30) for f in futures)
        ledger = FirestoreLedger(project=firestore_reset)
        verdicts = _wait_for_verdicts(ledger, publisher, tick_topic, 9)

    expected = {"effective": 2, "forced": 1, "ineffective": 2, "missing": 1,
                "invalid": 1, "inactive": 1, "inconclusive": 1}  # fmt: skip
    found: dict[str, int] = {}
    for record in verdicts:
        found[record["verdict"]] = found.get(record["verdict"], 0) + 1
    assert found == expected


def _wait_for_verdicts(ledger, publisher, tick_topic: str, count: int) -> list:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        verdicts = ledger.verdicts()
        if len(verdicts) >= count:
            return verdicts
        time.sleep(1.5)
        publisher.publish(tick_topic, b"{}").result(timeout=10)
    pytest.fail(f"only {len(ledger.verdicts())} of {count} verdicts after 60 s")
