"""Slack through the function: each message once, retries on ticks, the digest."""

from __future__ import annotations

import functools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import (
    FixedValueRetryIntervalCalculator,
)

from handlers import app, notify, slack_client
from samples.logentries import push_body
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
CHANNEL, ALERTS = "C0123ABCD", "C0ALERTS1"
FAST = FixedValueRetryIntervalCalculator(0.01)
PNG = b"\x89PNG\r\n\x1a\n"
# Tuesday after the sample's week (2026-11-23 to 2026-11-28).
DECEMBER_1 = datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp()


@pytest.fixture
def slack(function, monkeypatch):
    """The function with a Slack token, posting to a local fake of Slack."""
    fake = FakeSlack().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("WATCHDOG_SLACK_API_URL", fake.url)
    monkeypatch.setenv("WATCHDOG_SLACK_CHANNEL", CHANNEL)
    monkeypatch.setenv("WATCHDOG_SLACK_ALERT_CHANNEL", ALERTS)
    monkeypatch.setenv("WATCHDOG_SLACK_ONCALL_GROUP", "S0ONCALL1")
    fast = functools.partial(slack_client.web_client, interval=FAST, jitter=0)
    monkeypatch.setattr(slack_client, "web_client", fast)
    app.reset()
    yield fake
    fake.stop()


def deliver_sample(function, times: int = 1) -> None:
    entries = json.loads((ROOT / "samples" / "export.json").read_text())
    for _ in range(times):
        for n, entry in enumerate(entries):
            assert function.push(push_body(entry, str(n))).status_code == 200


def sent(slack) -> Counter:
    """(channel, first line) of every message Slack accepted."""
    return Counter((m["channel"], m["text"].splitlines()[0]) for m in slack.posted())


def test_redelivery_and_ticks_post_each_message_once(function, slack):
    deliver_sample(function)
    function.settle()
    first = sent(slack)

    deliver_sample(function)
    function.settle()
    function.settle()

    verdicts = function.watchdog.ledger.verdicts()
    assert sent(slack) == first and max(first.values()) == 1
    summaries = [line for c, line in first if c == CHANNEL and "·" in line]
    assert len(summaries) == len(verdicts) == 9
    alerts = [line for c, line in first if c == ALERTS]
    assert any("would roll back" in line for line in alerts)
    assert sum("in a row" in line for line in alerts) == 3  # 1, 2 of 3; dev 1 of 3
    decision = [m for m in slack.posted() if "would roll back" in m["text"]]
    assert "<!subteam^S0ONCALL1>" in json.dumps(decision[0]["blocks"])


def test_a_message_slack_refused_is_posted_again_by_the_tick_once(function, slack):
    slack.faults = [503] * 4  # the first message: every attempt of its call

    deliver_sample(function)
    function.settle()  # writes the verdicts, then retries what failed
    function.settle()

    messages = [r for r in function.watchdog.ledger.decisions()
                if r.get("kind") == notify.MESSAGE]  # fmt: skip
    retried = [r for r in messages if r["attempt"] > 1]
    assert [(r["attempt"], r["outcome"]) for r in retried] == [(2, "posted")]
    assert all(r["outcome"] == "posted" for r in messages)
    assert max(sent(slack).values()) == 1
    assert len(slack.posted()) == len(messages)


def test_a_refused_token_keeps_the_verdicts_and_names_the_fix(function, slack):
    slack.faults = ["invalid_auth"] * 100

    deliver_sample(function)
    assert function.settle().status_code == 200

    assert len(function.watchdog.ledger.verdicts()) == 9
    errors = [line["message"] for line in function.log_lines()
              if line.get("severity") == "ERROR"]  # fmt: skip
    assert any("SLACK_BOT_TOKEN" in m for m in errors)
    assert not any("xoxb-test" in line for line in function._log_stream.getvalue())


def test_the_digest_is_posted_once_by_two_ticks_with_its_chart(function, slack):
    function.watchdog.clock = lambda: DECEMBER_1 - 3600
    deliver_sample(function)
    function.watchdog.clock = lambda: DECEMBER_1

    function.tick()
    function.tick()

    digests = [m for m in slack.posted() if m["text"].startswith("Core-override")]
    assert len(digests) == 1
    assert digests[0]["channel"] == CHANNEL
    assert "9 execution(s)" in json.dumps(digests[0]["blocks"])
    assert "2026-11-23 to 2026-11-29" in digests[0]["text"]
    assert len(slack.posted("files.getUploadURLExternal")) == 1
    completed = slack.posted("files.completeUploadExternal")
    assert [c["channel_id"] for c in completed] == [CHANNEL]
    assert completed[0]["thread_ts"]
    (chart,) = slack.uploads.values()
    assert chart.startswith(PNG)


def test_no_digest_when_its_days_are_zero(function, slack, monkeypatch):
    monkeypatch.setenv("WATCHDOG_DIGEST_DAYS", "0")
    app.reset()
    deliver_sample(function)
    function.watchdog.clock = lambda: DECEMBER_1

    function.tick()

    assert not slack.posted("files.getUploadURLExternal")
    assert not [m for m in slack.posted() if m["text"].startswith("Core-override")]


def test_rollback_status_lists_no_slack_message(function, slack, capsys):
    from handlers.cli import main

    deliver_sample(function)
    function.settle()
    capsys.readouterr()

    assert main(["rollback-status", "--format", "json"]) == 0

    kinds = {json.loads(line)["kind"] for line in capsys.readouterr().out.split("\n")
             if line}  # fmt: skip
    assert kinds == {"rollback"}


def test_without_a_token_the_console_gets_the_summaries(function, capsys):
    deliver_sample(function)
    function.settle()

    out = capsys.readouterr().out
    assert "mmm-app-training-k7m8n: INEFFECTIVE" in out
    assert "would roll back" in out
