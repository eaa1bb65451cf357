"""Applying a rollback to the Cloud Run job: read it whole, change what the mode
names, write it back under its etag, wait, and read it again to verify.

UpdateJob has no field mask: the body replaces the job, so it must be the job
just read (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/patch).
The etag makes a concurrent change fail with 409 instead of being overwritten;
the job is then read again and the decision taken again.
"""

from __future__ import annotations

import json
import time

from handlers.config import OVERRIDE_ENV, Settings
from handlers.errors import ConfigError

ANNOTATION = "core-override-watchdog/rollback"
ATTEMPTS = 3


def roll_back(settings: Settings, job: str, override_seen: str | None,
              reason: str) -> dict:  # fmt: skip
    """Apply the rollback mode to one watched job; the outcome and the values."""
    if job not in settings.jobs:
        raise ConfigError(f"job {job!r} is not watched; the watchdog leaves it alone")
    wanted = wanted_values(settings)
    if not settings.project:
        return {"outcome": "dry_run", "before": None, "after": wanted,
                "reason": "no WATCHDOG_PROJECT: the job was not read"}  # fmt: skip
    # Imported here: run_v2 costs half a second, and a dry run without a
    # project never asks the API.
    from google.api_core import exceptions as api

    from handlers import runapi

    client, name = runapi.jobs_client(settings), runapi.job_path(settings, job)
    for _ in range(ATTEMPTS):
        current = _get(client, name, settings)
        before = values_of(current, settings)
        if before.get(OVERRIDE_ENV) != (override_seen or ""):
            return {"outcome": "not_applied", "before": before, "rearmed": True,
                    "reason": "the override was changed since the failing "
                    "executions ran: the job is re-armed instead"}  # fmt: skip
        if _holds(before, wanted):
            return {"outcome": "not_applied", "before": before,
                    "reason": "the job already has the rollback values"}  # fmt: skip
        if settings.rollback_mode == "dry-run":
            return {"outcome": "dry_run", "before": before, "after": wanted}
        _patch(current, settings, wanted, reason)
        try:
            _update(client, current, name, settings)
        except (api.Conflict, api.Aborted, api.FailedPrecondition):
            continue  # someone changed the job: read it and decide again
        after = values_of(_get(client, name, settings), settings)
        outcome = "applied" if _holds(after, wanted) else "verification_failed"
        return {"outcome": outcome, "before": before, "after": after}
    reason = f"the job changed under every one of {ATTEMPTS} attempts"
    return {"outcome": "failed", "reason": reason}


def wanted_values(settings: Settings) -> dict:
    """The values the mode gives the job (env values and resource limits)."""
    if settings.rollback_mode == "resources":
        cores = str(settings.rollback_cores)
        return {"cpu": settings.rollback_cpu, "memory": settings.rollback_memory,
                **dict.fromkeys(settings.rollback_core_vars, cores)}  # fmt: skip
    return {OVERRIDE_ENV: ""}


def values_of(job, settings: Settings) -> dict:
    """The job's values that a rollback may change, from its training container."""
    container = _training_container(job, settings)
    env = {var.name: var.value for var in container.env}
    limits = container.resources.limits
    names = {OVERRIDE_ENV, *settings.rollback_core_vars}
    return {"cpu": limits.get("cpu"), "memory": limits.get("memory"),
            **{name: env.get(name) for name in sorted(names)}}  # fmt: skip


def _holds(values: dict, wanted: dict) -> bool:
    return all(values.get(key) == value for key, value in wanted.items())


def _training_container(job, settings: Settings):
    """The container that has a core-count variable, else the first."""
    containers = list(job.template.template.containers)
    names = {OVERRIDE_ENV, *settings.rollback_core_vars}
    for container in containers:
        if any(var.name in names for var in container.env):
            return container
    return containers[0]


def _patch(job, settings: Settings, wanted: dict, reason: str) -> None:
    """Change only what the mode names, and say so in our annotation."""
    from google.cloud import run_v2

    container = _training_container(job, settings)
    for key, value in wanted.items():
        if key in ("cpu", "memory"):
            container.resources.limits[key] = value
            continue
        found = [var for var in container.env if var.name == key]
        for var in found:
            var.value = value
        if not found:
            container.env.append(run_v2.EnvVar(name=key, value=value))
    job.annotations[ANNOTATION] = json.dumps(
        {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "mode": settings.rollback_mode, "values": wanted, "reason": reason},
        sort_keys=True,
    )  # fmt: skip


def _get(client, name: str, settings: Settings):
    from handlers import runapi

    limits = runapi.LIMITS
    with runapi.api_errors("get_job", name, settings, limits):
        return client.get_job(name=name, retry=limits.retry("get_job"),
                              timeout=limits.timeout())  # fmt: skip


def _update(client, job, name: str, settings: Settings) -> None:
    from handlers import runapi

    limits = runapi.LIMITS
    with runapi.api_errors("update_job", name, settings, limits):
        operation = client.update_job(job=job, timeout=limits.attempt_seconds)
        operation.result(timeout=settings.rollback_timeout_seconds)
