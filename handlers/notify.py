"""Slack messages, each posted once per execution or decision and kind.

`SlackNotifier.summary` is a Watchdog sink and `SlackNotifier.decision` an
alert; `tick` runs at the end of every sweep. Escalation follows the job's
failing streak (rollback.failing_streak): a failing verdict below the
threshold gets a quiet notice in the alert channel; reaching it is the
rollback decision's alert, which mentions the on-call group; an effective or
forced verdict after failures says the job recovered.

Once only. Each message has a key (`slack/summary/{job}/{execution}`, …) and
is claimed in the ledger with `claim_decision`, create-if-absent in both
ledgers, *before* it is posted: whoever loses the claim (a redelivery, a
replay, another instance) posts nothing. Posting first and claiming after
would let two instances both post. The claim starts as `posting` and is
settled `posted` with Slack's `ts`, or `failed` when Slack could not be
reached after the client's retries. A failure never raises into the
watchdog: a Slack outage must not hold back the verdicts or the rollback,
and a Pub/Sub redelivery could not help anyway, since a written verdict does
not reach the sinks again. Instead every tick tries the failed messages
again, up to MAX_ATTEMPTS; each new attempt is claimed under `{key}#{n}`, so
concurrent ticks retry it once. A claim still `posting` after STALE_SECONDS
(its instance stopped between claim and post, or between post and settle)
is retried the same way: the first case would otherwise lose the message,
the second, a window of milliseconds, posts it twice. A lost rollback alert
is worse than a rare duplicate.
"""

from __future__ import annotations

import time

from handlers import blocks, digest, times
from handlers.errors import ConfigError, TransientError
from handlers.log import logger
from handlers.rollback import armed_since, failing_streak, recent_verdicts
from handlers.verdict import FAILING, RESETTING, Verdict

MESSAGE = "message"
ATTEMPT = "message_attempt"
MAX_ATTEMPTS = 5
STALE_SECONDS = 600


class SlackNotifier:
    def __init__(self, settings, ledger, client, clock=time.time):
        self.settings = settings
        self.ledger = ledger
        self.client = client
        self.clock = clock

    def summary(self, verdict: Verdict) -> None:
        """The verdict's summary, then a streak notice or a recovery if due."""
        v, channel = verdict, self.settings.slack_channel
        self.send(f"slack/summary/{v.job}/{v.execution}", v.job, "summary",
                  blocks.summary(v, channel))  # fmt: skip
        if v.verdict in FAILING:
            self._notice_streak(v)
        elif v.verdict in RESETTING:
            self._notice_recovery(v)

    def decision(self, record: dict) -> None:
        """A rollback decision's alert, which mentions the on-call group."""
        s = self.settings
        message = blocks.decision(record, s.slack_alert_channel, s.slack_oncall_group)
        self.send(f"slack/decision/{record['key']}", record["job"], "decision", message)

    def tick(self) -> None:
        """Retry what failed, then post the digest when one is due."""
        self.retry_failed()
        digest.post_if_due(self)

    def send(self, key: str, job: str, name: str, message: dict) -> bool:
        """Claim the message's key and post it; False when it was claimed before."""
        now = self.clock()
        record = {"kind": MESSAGE, "key": key, "job": job, "message": name,
                  "decided_at": now, "time": times.iso(now), "attempted_at": now,
                  "outcome": "posting", "attempt": 1, **message}  # fmt: skip
        if not self.ledger.claim_decision(key, record, now):
            logger.debug("slack %s posted before", key, extra={"labels": {"job": job}})
            return False
        self._deliver(record)
        return True

    def retry_failed(self) -> int:
        """Post again each message that failed or was left `posting`; how many."""
        now, retried = self.clock(), 0
        for record in self.ledger.decisions():
            if record.get("kind") != MESSAGE or not _retry_due(record, now):
                continue
            attempt = record["attempt"] + 1
            key = f"{record['key']}#{attempt}"
            claim = {"kind": ATTEMPT, "key": key, "job": record["job"],
                     "decided_at": now, "outcome": "claimed"}  # fmt: skip
            if not self.ledger.claim_decision(key, claim, now):
                continue
            record |= {"attempt": attempt, "attempted_at": now, "outcome": "posting"}
            self.ledger.settle_decision(record["key"], record)
            self._deliver(record)
            retried += 1
        return retried

    def _deliver(self, record: dict) -> None:
        """Post a claimed message and settle its claim; never raises for Slack."""
        key, labels = record["key"], {"job": record["job"]}
        try:
            if record["message"] == digest.DIGEST:
                record |= digest.deliver(self, record)
            else:
                record["ts"] = self.post_message(record)
        except (TransientError, ConfigError) as exc:
            last = record["attempt"] >= MAX_ATTEMPTS or isinstance(exc, ConfigError)
            record |= {"outcome": "failed", "error": str(exc)[:500]}
            self.ledger.settle_decision(key, record)
            giving_up = last and record["attempt"] >= MAX_ATTEMPTS
            (logger.error if last else logger.warning)(
                "slack %s not posted (attempt %d)%s: %s", key, record["attempt"],
                "; giving up" if giving_up else "; a later tick tries again", exc,
                extra={"labels": labels, "fields": {"reason": "slack"}},
            )  # fmt: skip
            return
        record["outcome"] = "posted"
        # NOTE: the content is dropped once posted: the ledger keeps only what
        # identifies the message, and stays small.
        record.pop("blocks", None)
        self.ledger.settle_decision(key, record)
        logger.debug("slack %s posted", key, extra={"labels": labels})

    def post_message(self, record: dict) -> str:
        """chat.postMessage of a claimed message; Slack's ts of it."""
        from handlers.slack_client import call

        response = call(
            f"chat.postMessage of {record['key']}",
            self.client.chat_postMessage,
            channel=record["channel"],
            text=record["text"],
            blocks=record["blocks"],
            unfurl_links=False,
            unfurl_media=False,
        )
        return response.get("ts")

    def _notice_streak(self, v: Verdict) -> None:
        s = self.settings
        decisions = self.ledger.decisions(v.job)
        verdicts = recent_verdicts(self.ledger, s, v.job, self.clock())
        streak = failing_streak(v.job, verdicts, armed_since(decisions))
        names = [r["execution"] for r in streak.verdicts]
        if v.execution not in names:
            return
        if len(names) == s.rollback_threshold and s.rollback_mode != "off":
            return  # the rollback decision's alert says it, with the mention
        message = blocks.streak_notice(v, len(names), s.rollback_threshold,
                                       s.slack_alert_channel)  # fmt: skip
        self.send(f"slack/streak/{v.job}/{v.execution}", v.job, "streak", message)

    def _notice_recovery(self, v: Verdict) -> None:
        verdicts = recent_verdicts(self.ledger, self.settings, v.job, self.clock())
        failures = failures_before(verdicts, v.execution)
        if failures:
            message = blocks.recovery(v, failures, self.settings.slack_alert_channel)
            self.send(f"slack/recovery/{v.job}/{v.execution}", v.job, "recovery",
                      message)  # fmt: skip


def failures_before(verdicts: list[dict], execution: str) -> int:
    """Failing verdicts in a row just before this execution, in start order."""
    ordered = sorted(
        verdicts, key=lambda r: (r.get("start_time") or "", r["execution"])
    )
    names = [r["execution"] for r in ordered]
    if execution not in names:
        return 0
    failures = 0
    for record in reversed(ordered[: names.index(execution)]):
        if record["verdict"] in RESETTING:
            break
        failures += record["verdict"] in FAILING
    return failures


def _retry_due(record: dict, now: float) -> bool:
    if record["attempt"] >= MAX_ATTEMPTS:
        return False
    if record["outcome"] == "failed":
        return True
    stale = now - record.get("attempted_at", record["decided_at"]) > STALE_SECONDS
    return record["outcome"] == "posting" and stale
