"""Entries Cloud Run writes itself: exits, kills, timeouts and completions.

The completion entry is the `cloudaudit.googleapis.com/system_event` AuditLog
with `methodName="/Jobs.RunJob"`; its `response` embeds the whole execution in
the Cloud Run v1 shape. That shape comes from observed entries, not from a
documented contract, so every field is read defensively. The embedded env may
hold secrets: only the override variable is kept.
"""

from __future__ import annotations

import re

from handlers import observation as kinds
from handlers.config import OVERRIDE_ENV

_EXIT = re.compile(r"Container called exit\((-?\d+)\)")
_MEMORY = re.compile(r"Memory limit of (\d+) MiB exceeded with (\d+) MiB used")
_TIMEOUT = re.compile(r"maximum timeout of (\d+) seconds")
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

_MEMORY_UNITS = {
    "": 1,
    "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def read_system_line(text: str) -> tuple[str, dict] | None:
    """(kind, fields) for a run.googleapis.com/varlog/system line, or None."""
    if match := _EXIT.search(text):
        return kinds.EXIT_CODE, {"code": int(match[1])}
    if match := _MEMORY.search(text):
        return kinds.MEMORY_EXCEEDED, {
            "limit_mib": int(match[1]),
            "used_mib": int(match[2]),
        }
    if match := _TIMEOUT.search(text):
        return kinds.TIMEOUT, {"seconds": int(match[1])}
    return None


def read_completion(payload: dict) -> tuple[str, dict] | None:
    """(kind, fields) for a /Jobs.RunJob system event, or None for other events."""
    if payload.get("methodName") != "/Jobs.RunJob":
        return None
    execution = _dict(payload.get("response"))
    status = _dict(execution.get("status"))
    message = str(_dict(payload.get("status")).get("message") or "")
    outcome = _outcome(message, status)
    if outcome is None:
        return None
    spec = _dict(execution.get("spec"))
    container = _first_container(spec)
    limits = _dict(_dict(container.get("resources")).get("limits"))
    fields = {
        "outcome": outcome,
        "message": message[:300],
        "start_time": _text(status.get("startTime")),
        "completion_time": _text(status.get("completionTime")),
        "task_count": _count(spec.get("taskCount")) or 1,
        "succeeded_count": _count(status.get("succeededCount")),
        "failed_count": _count(status.get("failedCount")),
        "vcpu": cpu_of(limits.get("cpu")),
        "memory_gib": memory_gib_of(limits.get("memory")),
        "log_uri": _text(status.get("logUri")),
        **_override_of(container),
    }
    name = _dict(execution.get("metadata")).get("name")
    if isinstance(name, str):
        fields["execution"] = name
    return kinds.COMPLETION, fields


def _outcome(message: str, status: dict) -> str | None:
    lowered = message.lower()
    if "completed successfully" in lowered:
        return "succeeded"
    if "failed to complete" in lowered:
        return "failed"
    if "cancel" in lowered:
        return "cancelled"
    if status.get("completionTime"):
        return "failed" if _count(status.get("failedCount")) else "succeeded"
    return None


def _first_container(spec: dict) -> dict:
    task = _dict(_dict(spec.get("template")).get("spec"))
    containers = task.get("containers")
    if isinstance(containers, list) and containers:
        return _dict(containers[0])
    return {}


def _override_of(container: dict) -> dict:
    """The override variable as the execution had it: set, and its value."""
    env = container.get("env")
    if not isinstance(env, list):
        return {"env_known": False, "override_raw": None}
    for var in env:
        if isinstance(var, dict) and var.get("name") == OVERRIDE_ENV:
            value = var.get("value")
            return {
                "env_known": True,
                "override_raw": value[:64] if isinstance(value, str) else "",
            }
    return {"env_known": True, "override_raw": None}


def cpu_of(quantity: object) -> float | None:
    """vCPU of a Kubernetes CPU quantity: "8", "2.5" or "1000m"."""
    match = _QUANTITY.match(str(quantity)) if quantity is not None else None
    if not match or match[2] not in ("", "m"):
        return None
    value = float(match[1])
    return value / 1000 if match[2] == "m" else value


def memory_gib_of(quantity: object) -> float | None:
    """GiB of a Kubernetes memory quantity: "32Gi", "1953Mi", "512M"."""
    match = _QUANTITY.match(str(quantity)) if quantity is not None else None
    if not match or match[2] not in _MEMORY_UNITS:
        return None
    return round(float(match[1]) * _MEMORY_UNITS[match[2]] / 2**30, 4)


def _count(value: object) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}
