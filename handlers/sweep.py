"""The sweeper: on every scheduler tick, leave no finished execution without verdict.

Some executions log nothing at all, and a completion entry can be lost. The
sweeper asks the Cloud Run Admin API for each watched job's recent executions
and records the completion of those the logs never completed, then writes
every verdict whose grace period is over. When everything is decided it reads
one page of executions per job and one batch of verdict keys, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from handlers import rollback
from handlers.errors import ConfigError
from handlers.log import logger
from handlers.observation import COMPLETION, Observation
from handlers.verdict import Verdict
from handlers.watchdog import Watchdog

_client = None


@dataclass
class Sweep:
    listed: int = 0
    recovered: list[str] = field(default_factory=list)
    written: list[Verdict] = field(default_factory=list)


def sweep(dog: Watchdog) -> Sweep:
    """Finalize what is due, recover silent completions, finalize again."""
    result = Sweep(written=dog.finalize_due())
    if dog.settings.project:
        _recover_completions(dog, result)
        if result.recovered:
            result.written += dog.finalize_due()
    # NOTE: again on every tick, so that a decision an instance could not take
    # (it stopped right after writing a verdict) is taken now; it is idempotent.
    for job in sorted(dog.settings.jobs):
        rollback.consider(dog, job)
    for tick in dog.ticks:
        tick()  # the Slack retries and digest, last: nothing above waits for them
    return result


def _recover_completions(dog: Watchdog, result: Sweep) -> None:
    from handlers import runapi

    since = datetime.fromtimestamp(dog.clock(), UTC) - timedelta(
        hours=dog.settings.sweep_lookback_hours
    )
    for job in sorted(dog.settings.jobs):
        try:
            executions = runapi.recent_executions(_api(dog), dog.settings, job, since)
        except ConfigError as exc:
            # NOTE: one job the API refuses must not keep the others unswept.
            logger.error("sweep of %s skipped: %s", job, exc,
                         extra={"labels": {"job": job}})  # fmt: skip
            continue
        result.listed += len(executions)
        names = {_short_name(e.name): e for e in executions}
        for name in sorted(set(names) - dog.ledger.decided(job, list(names))):
            if _recover(dog, job, name, names[name]):
                result.recovered.append(name)


def _recover(dog: Watchdog, job: str, name: str, execution) -> bool:
    """Record the API's completion of an execution the logs did not complete."""
    from handlers import runapi

    fields = runapi.completion_fields(execution)
    if fields is None:
        return False
    known = dog.ledger.observations(job, name)
    if any(seen.kind == COMPLETION for seen in known):
        return False
    seen = Observation(job, name, f"run-api/{name}", fields["completion_time"],
                       COMPLETION, fields)  # fmt: skip
    seen_at = min(dog.clock(), runapi.completed_at(execution))
    dog.ledger.add(seen, seen_at)
    logger.info(
        "%s %s: completion taken from the Run API (%d log observations)",
        job, name, len(known),
        extra={"labels": {"job": job, "execution": name}},
    )  # fmt: skip
    return True


def _api(dog: Watchdog):
    global _client
    if _client is None:
        from handlers import runapi

        _client = runapi.executions_client(dog.settings)
    return _client


def _short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]
