"""The per-execution summary in plain words, as people will read it."""

from __future__ import annotations

from handlers.verdict import Verdict

ICONS = {
    "effective": "✅",
    "forced": "⚠️",
    "ineffective": "❌",
    "missing": "❓",
    "invalid": "🚫",
    "inactive": "⏸️",
    "inconclusive": "❔",
}

MEANINGS = {
    "effective": "the override held and the training used the cores",
    "forced": "parallelly disagreed, but the training still used the cores",
    "ineffective": "the training used fewer cores than the override",
    "missing": "the override was configured but the script never mentioned it",
    "invalid": "the override value is not a positive whole number",
    "inactive": "no override was configured",
    "inconclusive": "the execution ended before the cores were known",
}

CAUSES = {
    "no_override_marker": "no override line in the logs (old image or script not "
    "wired)",
    "override_unknown": "neither the execution's env nor its logs tell the override",
    "override_value_unknown": "the logs mention an override without its value",
    "cores_unknown": "no line tells how many cores the training used",
    "cores_from_selection": "cores taken from the core selection line",
    "verification_contradicts_cores": "the verification said SUCCESS but the "
    "training used fewer cores",
    "verification_forced": "parallelly reported fewer cores; the script forced "
    "the override",
    "verification_failed": "the verification failed",
    "verification_missing": "no verification line",
    "override_set_after_parallelly_loaded": "the override was applied after "
    "parallelly had loaded",
    "oversubscribed": "more workers than the CPUs the task may run on",
    "cores_above_vcpu": "more cores used than vCPU allocated",
    "robyn_retry_one_core_less": "Robyn rejected the core count; retried with "
    "one core less",
    "markers_disagree_with_env": "the script's lines disagree with the job's env",
    "memory_limit_exceeded": "the memory limit was exceeded",
    "timeout": "the task reached its timeout",
    "execution_failed": "the execution failed",
    "execution_cancelled": "the execution was cancelled",
    "no_completion_entry": "no completion entry for this execution",
}

NAMED = {
    "limited_by": "parallelly was limited by {}",
    "cgroups_quota_ignored": "parallelly ignored the cgroups CPU quota of {}",
    "parallelly_reported": "parallelly reported {} cores",
    "exit_code": "a task exited with code {}",
    "invalid_override": "override value {}",
    "unrecognised_lines": "{} line(s) the watchdog does not know",
    "training_attempts": "{} training attempts",
    "oversubscribed_workers": "{} workers shared fewer CPUs",
}


def explain(cause: str) -> str:
    """A cause code in plain words."""
    name, _, value = cause.partition("=")
    if value and name in NAMED:
        return NAMED[name].format(value)
    return CAUSES.get(cause, cause)


def summary_text(verdict: Verdict) -> str:
    """Several short lines: the verdict, its causes and figures, the log link."""
    v = verdict
    lines = [
        f"{ICONS.get(v.verdict, '•')} {v.job} · {v.execution}: {v.verdict.upper()}"
        f" ({MEANINGS.get(v.verdict, '')})",
        f"  cores {cores_text(v)}, override {value_text(v.override_cores)},"
        f" outcome {v.outcome}",
        f"  training {_minutes(v.training_minutes)}{_speedup(v.speedup)},"
        f" wall {duration_text(v.wall_seconds)}",
        f"  cost {usd_text(v.cost_usd)}, idle {usd_text(v.idle_cost_usd)}",
    ]
    lines += [f"  - {explain(cause)}" for cause in v.causes]
    if v.log_uri:
        lines.append(f"  logs: {v.log_uri}")
    return "\n".join(lines)


def cores_text(v: Verdict) -> str:
    used = value_text(v.cores_used)
    if v.vcpu is None:
        return f"{used} used"
    share = f" ({v.utilisation:.0%})" if v.utilisation is not None else ""
    return f"{used} of {v.vcpu:g} vCPU{share}"


def value_text(value: object) -> str:
    return "?" if value is None else str(value)


def _minutes(minutes: float | None) -> str:
    return "?" if minutes is None else f"{minutes:.2f} min"


def _speedup(speedup: float | None) -> str:
    return "" if speedup is None else f" ({speedup:.1f}x baseline)"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def usd_text(amount: float | None) -> str:
    return "?" if amount is None else f"${amount:.4f}"
