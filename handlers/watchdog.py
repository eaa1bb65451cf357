"""The watchdog's steps, independent of how messages reach it.

Ingest keeps what an entry says; finalize writes an execution's verdict once
it is complete and its markers have had the grace period, then hands the new
verdict to the sinks. A verdict is written once: later markers are kept but
change nothing, and only the instance that wrote it acts on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from handlers import rollback
from handlers.config import Settings
from handlers.errors import BadMessage
from handlers.ledger import Ledger
from handlers.log import logger
from handlers.observation import Observation
from handlers.parse import observe
from handlers.verdict import FAILING, Verdict, decide

Sink = Callable[[Verdict], None]
Alert = Callable[[dict], None]
Tick = Callable[[], None]


class Watchdog:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        sinks: Iterable[Sink] = (),
        clock: Callable[[], float] = time.time,
        alerts: Iterable[Alert] = (),
        ticks: Iterable[Tick] = (),
    ):
        self.settings = settings
        self.ledger = ledger
        self.sinks = list(sinks)
        self.alerts = list(alerts)
        self.ticks = list(ticks)  # run at the end of every sweep
        self.clock = clock

    def ingest(self, entry: dict) -> Observation | None:
        """Keep what one LogEntry says; BadMessage if it can never be used."""
        try:
            seen = observe(entry, self.settings.jobs)
        except BadMessage:
            raise
        except Exception as exc:
            # NOTE: a parser bug must not crash-loop the subscription; the
            # entry is acknowledged and the traceback is logged once.
            logger.exception("entry could not be read")
            raise BadMessage("unreadable_entry", type(exc).__name__) from exc
        if seen is not None and not self.ledger.add(seen, self.clock()):
            logger.debug(
                "entry %s seen before", seen.key, extra={"labels": _labels(seen)}
            )
        return seen

    def finalize_due(self, job: str | None = None) -> list[Verdict]:
        """Write the verdict of every execution whose grace period is over."""
        completed_before = self.clock() - self.settings.grace_seconds
        due = self.ledger.due(completed_before, job)
        return [v for job, execution in due if (v := self.finalize(job, execution))]

    def finalize(self, job: str, execution: str) -> Verdict | None:
        """Decide and write one verdict; None when another writer was first."""
        observations = self.ledger.observations(job, execution)
        verdict = decide(job, execution, observations, self.settings)
        if not self.ledger.write_verdict(verdict.to_record(), self.clock()):
            return None
        logger.info(
            "%s %s: %s (%s)",
            job,
            execution,
            verdict.verdict,
            ", ".join(verdict.causes) or "no causes",
            extra={
                "labels": {"job": job, "execution": execution},
                "fields": {"verdict": verdict.verdict, "causes": verdict.causes},
            },
        )
        for sink in self.sinks:
            sink(verdict)
        if verdict.verdict in FAILING:
            rollback.consider(self, job)
        return verdict


def _labels(seen: Observation) -> dict:
    return {"job": seen.job, "execution": seen.execution}
