"""From a LogEntry to an Observation: which execution it is about and what it says.

Three kinds of entries matter (structured markers, legacy text lines and
platform entries); everything else gives `None` and is acknowledged.
"""

from __future__ import annotations

import hashlib
import json

from handlers import legacy, markers, platform
from handlers.errors import BadMessage
from handlers.observation import Observation

EXECUTION_LABEL = "run.googleapis.com/execution_name"
SYSTEM_EVENT_LOG = "cloudaudit.googleapis.com%2Fsystem_event"
VARLOG_SYSTEM_LOG = "run.googleapis.com%2Fvarlog%2Fsystem"


def observe(entry: dict, jobs: frozenset[str]) -> Observation | None:
    """Read one LogEntry (already shape-checked) of a watched job.

    Raises BadMessage for an entry that is not about a watched job's execution.
    """
    job = watched_job(entry, jobs)
    log_name = entry["logName"]
    found = _read_payload(entry, log_name)
    if found is None:
        return None
    kind, fields = found
    return Observation(
        job=job,
        execution=execution_of(entry, fields),
        key=entry_key(entry, log_name),
        timestamp=str(entry.get("timestamp") or entry.get("receiveTimestamp") or ""),
        kind=kind,
        fields=fields,
    )


def watched_job(entry: dict, jobs: frozenset[str]) -> str:
    resource = entry["resource"]
    labels = resource.get("labels")
    job = labels.get("job_name") if isinstance(labels, dict) else None
    if (
        resource.get("type") != "cloud_run_job"
        or not isinstance(job, str)
        or (job not in jobs)
    ):
        raise BadMessage(
            "unwatched_job",
            f"resource {resource.get('type')!r} job {job!r} is not watched",
        )
    return job


def _read_payload(entry: dict, log_name: str) -> tuple[str, dict] | None:
    text = entry.get("textPayload")
    if isinstance(text, str):
        if log_name.endswith(VARLOG_SYSTEM_LOG):
            return platform.read_system_line(text)
        return legacy.read_line(text)
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        return markers.read_marker(payload)
    payload = entry.get("protoPayload")
    if isinstance(payload, dict) and log_name.endswith(SYSTEM_EVENT_LOG):
        return platform.read_completion(payload)
    return None


def execution_of(entry: dict, fields: dict) -> str:
    fallback = fields.pop("execution", None)
    labels = entry.get("labels")
    name = labels.get(EXECUTION_LABEL) if isinstance(labels, dict) else None
    name = name or fallback
    if not isinstance(name, str) or not name:
        raise BadMessage("no_execution", "entry names no Cloud Run execution")
    return name


def entry_key(entry: dict, log_name: str) -> str:
    """The identity of a log entry across redeliveries."""
    insert_id = entry.get("insertId")
    if isinstance(insert_id, str) and insert_id:
        return f"{log_name}/{insert_id}"
    blob = json.dumps(entry, sort_keys=True, default=str).encode()
    return "sha256/" + hashlib.sha256(blob).hexdigest()[:32]
