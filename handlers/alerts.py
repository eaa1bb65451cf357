"""What a rollback decision says to people: what changed, why, what next."""

from __future__ import annotations

from handlers.config import OVERRIDE_ENV
from handlers.summary import explain

HEADLINES = {
    "applied": "🚨 {job}: rolled back ({mode})",
    "dry_run": "🟡 {job}: would roll back (dry run: nothing changed)",
    "not_applied": "ℹ️ {job}: rollback not applied",
    "verification_failed": "🆘 {job}: rollback written but not in effect",
    "failed": "🆘 {job}: rollback FAILED",
    "rearmed": "🔁 {job}: re-armed",
}


def alert_text(decision: dict) -> str:
    """The alert for one decision, in plain words."""
    lines = [HEADLINES.get(decision["outcome"], "{job}: {outcome}").format(**decision)]
    if decision.get("reason"):
        lines.append(f"  {decision['reason']}")
    if decision.get("streak"):
        lines.append("  Why: failing executions in a row:")
        lines += [_execution_line(v) for v in decision["streak"]]
    if decision.get("after"):
        lines.append(f"  Before: {_values(decision.get('before'))}")
        lines.append(f"  After:  {_values(decision['after'])}")
    if decision["outcome"] == "applied":
        lines += _next_steps(decision)
    if decision["outcome"] == "dry_run":
        lines.append("  To let the watchdog apply it: WATCHDOG_ROLLBACK_MODE=env or "
                     "resources.")  # fmt: skip
    return "\n".join(lines)


def _execution_line(verdict: dict) -> str:
    causes = "; ".join(explain(c) for c in verdict.get("causes") or ()) or "-"
    return f"  - {verdict['execution']}: {verdict['verdict']} ({causes})"


def _values(values: dict | None) -> str:
    if not values:
        return "unknown (the job was not read)"
    return ", ".join(f"{k}={v!r}" for k, v in values.items() if v is not None)


def _next_steps(decision: dict) -> list[str]:
    job, after = decision["job"], decision.get("after") or {}
    if decision["mode"] == "resources":
        terraform = [
            '    training_cpu       = "{}"'.format(after.get("cpu")),
            '    training_memory    = "{}"'.format(after.get("memory")),
            f'    training_max_cores = "{after.get(OVERRIDE_ENV)}"',
        ]
    else:
        terraform = [f'    env {{ name = "{OVERRIDE_ENV}"  value = "" }}']
    return [
        "  Make it permanent: the next `terraform apply` of the training job "
        "restores the old values. Set in its Terraform:",
        *terraform,
        f"  Re-arm: set {OVERRIDE_ENV} on the job again (the next execution that "
        "has it re-arms the watchdog), or run "
        f"`python main.py rearm --job {job}`.",
    ]
