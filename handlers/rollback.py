"""Rollback policy: when a job's override keeps failing, undo it, once per streak.

A streak is the run of failing verdicts (`ineffective`, `missing`, `invalid`)
at the end of a job's executions in start order; `effective` and `forced` end
it, `inactive` and `inconclusive` are passed over. Only executions started
after the job's last applied rollback or re-arm count, so setting the override
again re-arms the job by itself. The decision is claimed in the ledger under
the streak's first execution: however many instances and redeliveries reach
the threshold, one of them decides, and the job is patched at most once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from handlers import times
from handlers.errors import ConfigError, TransientError
from handlers.log import logger
from handlers.verdict import FAILING, RESETTING

ROLLBACK = "rollback"
REARM = "rearm"
COOLDOWN = "cooldown"


@dataclass(frozen=True)
class Streak:
    job: str
    verdicts: list[dict]  # failing verdict records, oldest first

    @property
    def key(self) -> str:
        return f"{self.job}/{ROLLBACK}/{self.verdicts[0]['execution']}"

    @property
    def override_raw(self) -> str | None:
        """The override the latest failing execution ran with."""
        return self.verdicts[-1].get("override_raw")


def failing_streak(job: str, verdicts: list[dict], armed_since: float) -> Streak:
    """The failing verdicts at the end of the job's executions since re-arming."""
    ordered = sorted(
        verdicts, key=lambda r: (r.get("start_time") or "", r["execution"])
    )
    streak: list[dict] = []
    for record in reversed(ordered):
        started = times.parse(record.get("start_time"))
        if started is not None and started.timestamp() <= armed_since:
            break
        if record["verdict"] in RESETTING:
            break
        if record["verdict"] in FAILING:
            streak.append(record)
    return Streak(job, streak[::-1])


def armed_since(decisions: list[dict]) -> float:
    """When the job was last rolled back or re-armed (0 if never)."""
    return max((d["decided_at"] for d in decisions if _resets_streaks(d)), default=0.0)


def _resets_streaks(decision: dict) -> bool:
    if decision["kind"] == REARM:
        return True
    return decision["kind"] == ROLLBACK and decision.get("outcome") == "applied"


def recent_verdicts(ledger, settings, job: str, now: float) -> list[dict]:
    """The job's verdicts of the streak window: a streak is looked for there,
    so that the reads stay bounded however long the job has run."""
    since = now - settings.streak_window_days * 86400
    return ledger.verdicts(job, decided_since=since)


def consider(dog, job: str) -> dict | None:
    """Decide whether the job's failures call for a rollback, and act once."""
    settings = dog.settings
    if settings.rollback_mode == "off":
        return None
    decisions = dog.ledger.decisions(job)
    verdicts = recent_verdicts(dog.ledger, settings, job, dog.clock())
    streak = failing_streak(job, verdicts, armed_since(decisions))
    if len(streak.verdicts) < settings.rollback_threshold:
        return None
    now = dog.clock()
    record = _record(ROLLBACK, streak.key, job, now, settings.rollback_mode)
    record["streak"] = [_brief(v) for v in streak.verdicts]
    if _cooling(decisions, now, settings.rollback_cooldown_hours):
        return _note_cooldown(dog, streak, record)
    if not dog.ledger.claim_decision(streak.key, record, now):
        return None
    record |= _act(dog, job, streak)
    dog.ledger.settle_decision(streak.key, record)
    if record.get("rearmed"):
        rearm(dog.ledger, job, "a change of the override on the job", dog.clock())
    _announce(dog, record)
    return record


def _act(dog, job: str, streak: Streak) -> dict:
    """Apply the mode to the job and say how it went; never raises."""
    from handlers import jobs

    try:
        return jobs.roll_back(dog.settings, job, streak.override_raw, _reason(streak))
    except (TransientError, ConfigError) as exc:
        return {"outcome": "failed", "reason": str(exc)[:500]}


def _cooling(decisions: list[dict], now: float, hours: float) -> bool:
    applied = [d["decided_at"] for d in decisions
               if d["kind"] == ROLLBACK and d.get("outcome") == "applied"]  # fmt: skip
    return bool(applied) and now - max(applied) < hours * 3600


def _note_cooldown(dog, streak: Streak, record: dict) -> dict | None:
    """Say once per streak that the cooldown holds the rollback back."""
    key = streak.key.replace(f"/{ROLLBACK}/", f"/{COOLDOWN}/")
    reason = "a rollback of this job was applied within the cooldown"
    record |= {"kind": COOLDOWN, "key": key, "outcome": "not_applied", "reason": reason}
    if not dog.ledger.claim_decision(key, record, record["decided_at"]):
        return None
    _announce(dog, record)
    return record


def rearm(ledger, job: str, by: str, now: float | None = None) -> dict:
    """Count failures of the job afresh from now on, and end its cooldown."""
    now = time.time() if now is None else now
    record = _record(REARM, f"{job}/{REARM}/{now:.3f}", job, now, None)
    record |= {"outcome": "rearmed", "reason": f"re-armed by {by}"}
    ledger.claim_decision(record["key"], record, now)
    return record


def _record(kind: str, key: str, job: str, now: float, mode: str | None) -> dict:
    return {"kind": kind, "key": key, "job": job, "mode": mode, "decided_at": now,
            "time": times.iso(now), "outcome": "pending"}  # fmt: skip


def _brief(verdict: dict) -> dict:
    keys = ("execution", "verdict", "causes", "override_raw", "cores_used", "vcpu",
            "start_time")  # fmt: skip
    return {key: verdict.get(key) for key in keys}


def _reason(streak: Streak) -> str:
    names = ", ".join(v["execution"] for v in streak.verdicts)
    return f"{len(streak.verdicts)} failing verdicts in a row: {names}"


def _announce(dog, record: dict) -> None:
    severity = "error" if record["outcome"] == "failed" else "warning"
    getattr(logger, severity)(
        "rollback decision for %s: %s %s",
        record["job"],
        record["outcome"],
        record.get("reason", ""),
        extra={"labels": {"job": record["job"]},
               "fields": {"decision": record["key"], "outcome": record["outcome"]}},
    )  # fmt: skip
    for alert in dog.alerts:
        alert(record)
