"""Findings behind a verdict: the override, the cores used, and why.

Each finding is a short machine-readable cause, `name` or `name=value`, so that
scripts can match on it and people can read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers import observation as kinds
from handlers.evidence import Evidence

SET = "set"
UNSET = "unset"
INVALID = "invalid"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Override:
    state: str
    value: int | None = None
    causes: list[str] = field(default_factory=list)
    raw: str | None = None  # the variable's value as the execution had it


@dataclass(frozen=True)
class Training:
    cores: int | None
    minutes: float | None
    causes: list[str] = field(default_factory=list)


def parse_override(raw: str | None) -> Override:
    """The state of a raw PARALLELLY_OVERRIDE_CORES value."""
    text = (raw or "").strip()
    if not text:
        return Override(UNSET, raw=raw)
    if text.isascii() and text.isdigit() and int(text) > 0:
        return Override(SET, int(text), raw=raw)
    return Override(INVALID, causes=[f"invalid_override={text[:32]!r}"], raw=raw)


def override_of(evidence: Evidence) -> Override:
    """The override the execution had: its env first, else the script's lines."""
    told = _override_from_lines(evidence)
    completion = evidence.completion
    if not completion.get("env_known"):
        return told
    configured = parse_override(completion.get("override_raw"))
    if told.state not in (UNKNOWN, configured.state) or (
        told.value not in (None, configured.value)
    ):
        configured.causes.append("markers_disagree_with_env")
    return configured


def _override_from_lines(evidence: Evidence) -> Override:
    skipped = evidence.last(kinds.OVERRIDE_SKIPPED)
    if skipped and skipped.get("reason") == "invalid":
        return parse_override(skipped.get("raw") or "?")
    if skipped:
        return Override(UNSET)
    if evidence.has_any(
        (kinds.OVERRIDE_CONFIGURED, kinds.OVERRIDE_VERIFIED, kinds.OVERRIDE_EXPECTED)
    ):
        value = evidence.override_value()
        return Override(SET, value, raw=None if value is None else str(value))
    return Override(UNKNOWN)


def verification_status(evidence: Evidence) -> str | None:
    verified = evidence.last(kinds.OVERRIDE_VERIFIED)
    return verified.get("status") if verified else None


def training_of(evidence: Evidence) -> Training:
    """The cores the training really used, and how long it took.

    Workers beyond the CPUs the task may run on (its affinity) add no cores:
    the training used at most that many.
    """
    training = _training_as_logged(evidence)
    verified = evidence.last(kinds.OVERRIDE_VERIFIED) or {}
    cpus = verified.get("affinity_cores")
    if training.cores is None or not cpus or training.cores <= cpus:
        return training
    causes = [*training.causes, f"oversubscribed_workers={training.cores}"]
    return Training(cpus, training.minutes, causes)


def _training_as_logged(evidence: Evidence) -> Training:
    starts = evidence.all(kinds.TRAINING_STARTED)
    finished = [
        f for f in evidence.all(kinds.TRAINING_FINISHED) if f.get("status") == "ok"
    ]
    causes = _retry_causes(starts)
    done = finished[-1] if finished else None
    minutes = _minutes(done)
    if done and isinstance(done.get("cores"), int):
        return Training(done["cores"], minutes, causes)
    if starts:
        return Training(_last_attempt(starts)["cores"], minutes, causes)
    selected = evidence.last(kinds.CORES_SELECTED)
    if selected and evidence.outcome == "succeeded":
        return Training(selected["cores"], minutes, ["cores_from_selection"])
    return Training(None, minutes, causes)


def _last_attempt(starts: list[dict]) -> dict:
    if all(isinstance(s.get("attempt"), int) for s in starts):
        return max(starts, key=lambda s: s["attempt"])
    return starts[-1]


def _retry_causes(starts: list[dict]) -> list[str]:
    if len(starts) < 2:
        return []
    first, last = starts[0]["cores"], _last_attempt(starts)["cores"]
    if last == first - 1:
        return ["robyn_retry_one_core_less"]
    return [f"training_attempts={len(starts)}"]


def _minutes(finished: dict | None) -> float | None:
    if not finished:
        return None
    if isinstance(finished.get("duration_s"), int | float):
        return finished["duration_s"] / 60
    if isinstance(finished.get("minutes"), int | float):
        return float(finished["minutes"])
    return None


def parallelly_causes(evidence: Evidence, override: int | None) -> list[str]:
    """What parallelly said and why it may have said less than the override."""
    causes = []
    configured = evidence.last(kinds.OVERRIDE_CONFIGURED) or {}
    if configured.get("parallelly_loaded"):
        causes.append("override_set_after_parallelly_loaded")
    ignored = evidence.last(kinds.CGROUPS_QUOTA_IGNORED)
    if ignored:
        causes.append(f"cgroups_quota_ignored={ignored.get('quota')}")
    verified = evidence.last(kinds.OVERRIDE_VERIFIED) or {}
    method = verified.get("limited_by")
    if method:
        cores = (verified.get("methods") or {}).get(method)
        causes.append(f"limited_by={method}:{_number(cores)}")
    if verified.get("oversubscribed"):
        causes.append("oversubscribed")
    reported = evidence.last(kinds.PARALLELLY_REPORTED)
    if reported and override and reported["available_cores"] < override:
        causes.append(f"parallelly_reported={reported['available_cores']}")
    unknown = len(evidence.all(kinds.UNRECOGNISED))
    if unknown:
        causes.append(f"unrecognised_lines={unknown}")
    return causes


def ending_causes(evidence: Evidence) -> list[str]:
    """How the execution ended, when it did not end well."""
    causes = []
    if evidence.all(kinds.MEMORY_EXCEEDED):
        causes.append("memory_limit_exceeded")
    if evidence.all(kinds.TIMEOUT):
        causes.append("timeout")
    codes = sorted({f["code"] for f in evidence.all(kinds.EXIT_CODE) if f["code"]})
    causes.extend(f"exit_code={code}" for code in codes)
    if evidence.outcome in ("failed", "cancelled"):
        causes.append(f"execution_{evidence.outcome}")
    if not evidence.completion:
        causes.append("no_completion_entry")
    return causes


def _number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
