"""Slack: the real slack_sdk client against a local fake, and the messages.

Golden Block Kit files are in tests/golden/slack/. After a deliberate change
to a message, write them again with `WATCHDOG_WRITE_GOLDEN=1 pytest
tests/test_slack.py`, then read the diff before keeping it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import (
    FixedValueRetryIntervalCalculator,
)

from handlers import blocks
from handlers.config import Settings
from handlers.errors import ConfigError, TransientError
from handlers.slack_client import MAX_RETRIES, call, web_client
from handlers.verdict import Verdict
from tests.fakes.slack import DROP, FakeSlack

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "slack"
FAST = FixedValueRetryIntervalCalculator(0.01)
CHANNEL, ALERTS = "C0123ABCD", "C0ALERTS1"
LOGS = ("https://console.cloud.google.com/logs/viewer?project=p&advancedFilter="
        "labels.execution%3D%22mmm-app-training-k7m8n%22")  # fmt: skip


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(slack):
    return web_client("xoxb-test", slack.url, FAST, jitter=0)


def post(client):
    return call("a test post", client.chat_postMessage, channel=CHANNEL, text="hi")


def a_verdict(**changes) -> Verdict:
    fields = dict(
        job="mmm-app-training", execution="mmm-app-training-k7m8n",
        verdict="ineffective",
        causes=("verification_contradicts_cores", "cgroups_quota_ignored=8.342",
                "parallelly_reported=2"),
        override_cores=8, override_raw="8", cores_used=2, vcpu=8.0, memory_gib=32.0,
        training_minutes=2.3, wall_seconds=140.3, cost_usd=0.029203,
        idle_cost_usd=0.015163, utilisation=0.25, speedup=1.0, outcome="succeeded",
        start_time="2026-11-27T06:00:00Z", completion_time="2026-11-27T06:02:20Z",
        log_uri=LOGS,
    )  # fmt: skip
    return Verdict(**(fields | changes))


def a_decision(outcome: str, mode: str = "env") -> dict:
    streak = [
        {"execution": "mmm-app-training-k7m8n", "verdict": "ineffective",
         "causes": ["parallelly_reported=2"]},
        {"execution": "mmm-app-training-p9q2r", "verdict": "missing",
         "causes": ["no_override_marker"]},
        {"execution": "mmm-app-training-s3t4v", "verdict": "invalid",
         "causes": ["invalid_override='eight'"]},
    ]  # fmt: skip
    record = {"kind": "rollback", "key": "mmm-app-training/rollback/k7m8n",
              "job": "mmm-app-training", "mode": mode, "outcome": outcome,
              "decided_at": 1.0, "streak": streak,
              "reason": "3 failing verdicts in a row"}  # fmt: skip
    if outcome in ("applied", "dry_run"):
        record |= {"before": {"PARALLELLY_OVERRIDE_CORES": "8"},
                   "after": {"PARALLELLY_OVERRIDE_CORES": ""}}  # fmt: skip
    return record


# -- the client: bounded retries against the fake ---------------------------


def test_429_502_504_and_a_dropped_connection_are_retried(slack, client):
    slack.faults = [429, 502, DROP]

    response = post(client)

    assert response["ok"]
    assert [r.api for r in slack.requests] == ["chat.postMessage"] * 4
    assert len(slack.posted()) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_server_that_keeps_failing_is_a_transient_error(slack, client, status):
    slack.faults = [status] * 10

    with pytest.raises(TransientError, match=str(status)):
        post(client)

    assert len(slack.requests) == 1 + MAX_RETRIES


def test_a_dropped_connection_every_time_is_a_transient_error(slack, client):
    slack.faults = [DROP] * 10

    with pytest.raises(TransientError):
        post(client)

    assert len(slack.requests) == 1 + MAX_RETRIES


def test_a_refused_token_is_not_retried_and_names_the_fix(slack, client):
    slack.faults = ["invalid_auth"]

    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN") as error:
        post(client)

    assert len(slack.requests) == 1
    assert "xoxb-test" not in str(error.value)


def test_a_retry_after_beyond_the_cap_is_not_waited_for(slack, client, monkeypatch):
    original = slack.answer

    def long_wait(request):
        status, headers, body = original(request)
        return (status, {"Retry-After": "3600"} if status == 429 else headers, body)

    monkeypatch.setattr(slack, "answer", long_wait)
    slack.faults = [429]
    started = time.monotonic()

    with pytest.raises(TransientError, match="429"):
        post(client)

    assert time.monotonic() - started < 2
    assert len(slack.requests) == 1


def test_the_token_is_sent_as_a_bearer_header_and_nowhere_else(slack, client):
    post(client)

    request = slack.requests[0]
    assert request.headers["Authorization"] == "Bearer xoxb-test"
    assert b"xoxb-test" not in request.body


# -- the messages: golden Block Kit ------------------------------------------


def messages() -> dict[str, dict]:
    v = a_verdict()
    recovered = a_verdict(execution="mmm-app-training-v1w2x", verdict="effective",
                          causes=(), cores_used=7, utilisation=0.875, speedup=3.3,
                          training_minutes=0.7, idle_cost_usd=0.0008)  # fmt: skip
    stats = {
        "start": "2026-11-23", "end": "2026-11-29", "executions": 9,
        "verdicts": {"effective": 2, "forced": 1, "ineffective": 2, "missing": 1,
                     "invalid": 1, "inactive": 1, "inconclusive": 1},
        "cost_usd": 0.19, "idle_cost_usd": 0.06,
        "median_minutes": {2: 2.3, 7: 0.71, 8: 0.65},
        "rollbacks": [a_decision("dry_run", "dry-run")],
    }  # fmt: skip
    return {
        "summary": blocks.summary(v, CHANNEL),
        "streak_notice": blocks.streak_notice(v, 2, 3, ALERTS),
        "rollback_applied": blocks.decision(a_decision("applied"), ALERTS, "S0ONCALL1"),
        "rollback_dry_run": blocks.decision(
            a_decision("dry_run", "dry-run"), ALERTS, "S0ONCALL1"
        ),
        "rollback_failed": blocks.decision(a_decision("failed"), ALERTS, "S0ONCALL1"),
        "recovery": blocks.recovery(recovered, 3, ALERTS),
        "digest": blocks.digest(stats, CHANNEL),
    }


@pytest.mark.parametrize("kind", sorted(messages()))
def test_each_message_matches_its_golden_block_kit(kind):
    message = messages()[kind]
    path = GOLDEN / f"{kind}.json"
    if os.environ.get("WATCHDOG_WRITE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(message, indent=2, ensure_ascii=False) + "\n")

    assert message == json.loads(path.read_text())


@pytest.mark.parametrize("kind", sorted(messages()))
def test_each_message_stays_within_block_kit_limits(kind):
    message = messages()[kind]

    assert 1 <= len(message["blocks"]) <= 50
    assert message["text"]
    assert "parse" not in message and "link_names" not in message
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        assert len(block.get("fields", ())) <= 10


def test_only_escalations_mention_the_on_call_group():
    mentioned = {k for k, m in messages().items() if "<!subteam^S0ONCALL1>" in str(m)}

    assert mentioned == {"rollback_applied", "rollback_dry_run", "rollback_failed"}
    assert "URGENT" in str(messages()["rollback_failed"])
    assert "URGENT" not in str(messages()["rollback_applied"])


def test_text_from_logs_cannot_mention_or_link():
    evil = "<!channel> <https://evil|x> & <@U123>"
    v = a_verdict(execution=f"run-{evil}", override_raw=evil,
                  causes=(f"invalid_override={evil}", f"exit_code={evil}", evil),
                  log_uri="https://evil.example/<!here>")  # fmt: skip
    decision = a_decision("failed") | {"reason": evil}
    decision["streak"][0] |= {"execution": evil, "causes": [evil]}
    sent = [
        blocks.summary(v, CHANNEL),
        blocks.streak_notice(v, 1, 3, ALERTS),
        blocks.recovery(v, 1, ALERTS),
        blocks.decision(decision, ALERTS),
    ]

    for message in sent:
        wire = json.dumps(message, ensure_ascii=False)
        assert "<!channel>" not in wire and "<!here>" not in wire
        assert "<https://evil" not in wire and "<@U123>" not in wire
        assert "&lt;!channel&gt;" in wire
        assert "&amp;" in wire


def test_a_long_cause_list_is_cut_with_the_log_link():
    causes = tuple(f"exit_code={n}" * 20 for n in range(200))

    message = blocks.summary(a_verdict(causes=causes), CHANNEL)

    texts = [b["text"]["text"] for b in message["blocks"] if "text" in b]
    cut = [t for t in texts if t.endswith("|logs>)")]
    assert cut and all(len(t) <= 3000 for t in texts)


# -- configuration and import cost ---------------------------------------------


def test_a_token_without_a_channel_is_unusable():
    with pytest.raises(ConfigError, match="WATCHDOG_SLACK_CHANNEL"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"})


def test_the_alert_channel_defaults_to_the_channel():
    settings = Settings.from_env({"WATCHDOG_SLACK_CHANNEL": CHANNEL})

    assert (settings.slack_alert_channel, settings.digest_days) == (CHANNEL, 7)


@pytest.mark.parametrize(
    ("name", "value"),
    [("WATCHDOG_SLACK_CHANNEL", "#general"), ("WATCHDOG_SLACK_ONCALL_GROUP", "oncall"),
     ("WATCHDOG_SLACK_API_URL", "localhost"), ("WATCHDOG_DIGEST_DAYS", "-1")],
)  # fmt: skip
def test_an_unusable_slack_value_names_its_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_check_config_never_prints_the_token():
    env = os.environ | {"SLACK_BOT_TOKEN": "xoxb-secret-42",
                        "WATCHDOG_SLACK_CHANNEL": CHANNEL}  # fmt: skip
    command = [sys.executable, "main.py", "check-config"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    assert "WATCHDOG_SLACK_CHANNEL" in done.stdout
    assert "xoxb-secret-42" not in done.stdout + done.stderr


MODULES = ("slack_sdk", "matplotlib")


def test_importing_main_loads_neither_slack_sdk_nor_matplotlib():
    code = f"import sys, main; print(*(m in sys.modules for m in {MODULES}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip

    assert done.stdout.split() == ["False", "False"]
