"""One verdict per execution: did the training get the cores it pays for?

The ground truth is the number of cores the training used, backed by the
evidence in the logs, never the presence of one success line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from handlers import costs, diagnosis
from handlers import observation as kinds
from handlers.config import Settings
from handlers.evidence import Evidence
from handlers.observation import Observation
from handlers.times import seconds_between

EFFECTIVE = "effective"
FORCED = "forced"
INEFFECTIVE = "ineffective"
MISSING = "missing"
INVALID = "invalid"
INACTIVE = "inactive"
INCONCLUSIVE = "inconclusive"

VERDICTS = (EFFECTIVE, FORCED, INEFFECTIVE, MISSING, INVALID, INACTIVE, INCONCLUSIVE)
FAILING = frozenset({INEFFECTIVE, MISSING, INVALID})
RESETTING = frozenset({EFFECTIVE, FORCED})


@dataclass(frozen=True)
class Verdict:
    job: str
    execution: str
    verdict: str
    causes: tuple[str, ...]
    override_cores: int | None
    override_raw: str | None
    cores_used: int | None
    vcpu: float | None
    memory_gib: float | None
    training_minutes: float | None
    wall_seconds: float | None
    cost_usd: float | None
    idle_cost_usd: float | None
    utilisation: float | None
    speedup: float | None
    outcome: str
    start_time: str | None
    completion_time: str | None
    log_uri: str | None

    def to_record(self) -> dict:
        record = {name: getattr(self, name) for name in FIELDS}
        record["causes"] = list(self.causes)
        return record

    @classmethod
    def from_record(cls, record: dict) -> Verdict:
        known = {name: record.get(name) for name in cls.__dataclass_fields__}
        known["causes"] = tuple(record.get("causes") or ())
        return cls(**known)


FIELDS = tuple(f.name for f in fields(Verdict))


def decide(
    job: str, execution: str, observations: Iterable[Observation], settings: Settings
) -> Verdict:
    """The verdict of one finished execution from everything logged about it."""
    evidence = Evidence(observations)
    override = diagnosis.override_of(evidence)
    training = diagnosis.training_of(evidence)
    verdict, found = _classify(evidence, override, training, settings)
    figures = _figures(evidence, training, settings)
    causes = [
        *found,
        *override.causes,
        *diagnosis.parallelly_causes(evidence, override.value),
        *training.causes,
        *diagnosis.ending_causes(evidence),
    ]
    vcpu = figures["vcpu"]
    if training.cores is not None and vcpu and training.cores > vcpu:
        causes.append("cores_above_vcpu")
    completion = evidence.completion
    return Verdict(
        job=job,
        execution=execution,
        verdict=verdict,
        causes=tuple(dict.fromkeys(causes)),
        override_cores=override.value,
        override_raw=override.raw,
        cores_used=training.cores,
        outcome=evidence.outcome,
        start_time=completion.get("start_time"),
        completion_time=completion.get("completion_time"),
        log_uri=completion.get("log_uri"),
        **figures,
    )


def _classify(
    evidence: Evidence,
    override: diagnosis.Override,
    training: diagnosis.Training,
    settings: Settings,
) -> tuple[str, list[str]]:
    if override.state == diagnosis.UNSET:
        return INACTIVE, []
    if override.state == diagnosis.INVALID:
        return INVALID, []
    if override.state == diagnosis.UNKNOWN:
        return INCONCLUSIVE, ["override_unknown"]
    if not evidence.has_any(kinds.OVERRIDE_EVIDENCE):
        # A run that failed before the script spoke says nothing of the script.
        if evidence.outcome in ("failed", "cancelled"):
            return INCONCLUSIVE, ["no_override_marker"]
        return MISSING, ["no_override_marker"]
    if override.value is None:
        return INCONCLUSIVE, ["override_value_unknown"]
    if training.cores is None:
        return INCONCLUSIVE, ["cores_unknown"]
    status = diagnosis.verification_status(evidence)
    if training.cores < override.value - settings.tolerance_cores:
        contradiction = (
            ["verification_contradicts_cores"] if status == "success" else []
        )
        return INEFFECTIVE, contradiction
    if status == "success":
        return EFFECTIVE, []
    return FORCED, [f"verification_{status or 'missing'}"]


def _figures(evidence: Evidence, training: diagnosis.Training, settings: Settings):
    """Resources, times and costs of the execution, as far as they are known."""
    completion = evidence.completion
    vcpu, memory = completion.get("vcpu"), completion.get("memory_gib")
    wall = seconds_between(
        completion.get("start_time"), completion.get("completion_time")
    )
    tasks = completion.get("task_count") or 1
    rates = costs.Rates(settings.cpu_rate_usd, settings.memory_rate_usd)
    priced = None not in (vcpu, memory, wall)
    cores, minutes = training.cores, training.minutes
    return {
        "vcpu": vcpu,
        "memory_gib": memory,
        "training_minutes": _round(minutes, 3),
        "wall_seconds": _round(wall, 1),
        "cost_usd": _round(
            costs.execution_cost(rates, vcpu, memory, wall, tasks) if priced else None,
            6,
        ),
        "idle_cost_usd": _round(
            costs.idle_cost(rates, vcpu, cores, wall, tasks)
            if priced and cores is not None
            else None,
            6,
        ),
        "utilisation": _round(cores / vcpu, 3) if cores is not None and vcpu else None,
        "speedup": _round(settings.baseline_training_minutes / minutes, 2)
        if minutes
        else None,
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
