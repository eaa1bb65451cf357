"""Builders of LogEntries in the shapes Cloud Run jobs produce.

The shapes follow the LogEntry JSON representation
(https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry) and the
entries described in the project's log-format notes. Tests, the demo sample and
the benchmarks build their fixtures here, so that every part reads the same
shapes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

PROJECT = "example-mmm-project"
LOCATION = "europe-west1"
EXECUTION_LABEL = "run.googleapis.com/execution_name"


def at(base: datetime, seconds: float) -> str:
    """RFC 3339 timestamp `seconds` after `base`, as Cloud Logging writes it."""
    moment = base + timedelta(seconds=seconds)
    return (
        moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def _insert_id(*parts: object) -> str:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()
    return digest[:14]


def _entry(job: str, execution: str, log_id: str, timestamp: str, **fields) -> dict:
    entry = {
        "insertId": _insert_id(job, execution, log_id, timestamp, fields),
        "logName": f"projects/{PROJECT}/logs/{log_id.replace('/', '%2F')}",
        "resource": {
            "type": "cloud_run_job",
            "labels": {"project_id": PROJECT, "job_name": job, "location": LOCATION},
        },
        "labels": {
            EXECUTION_LABEL: execution,
            "run.googleapis.com/task_index": "0",
            "run.googleapis.com/task_attempt": "0",
            "instanceId": "00f46b9285" + _insert_id(execution) * 4,
        },
        "timestamp": timestamp,
        "receiveTimestamp": timestamp,
    }
    entry.update(fields)
    return entry


def text_line(
    job: str, execution: str, timestamp: str, text: str, stream: str = "stdout"
) -> dict:
    """One printed line of the training script (`cat()` or `message()`)."""
    return _entry(
        job, execution, f"run.googleapis.com/{stream}", timestamp, textPayload=text
    )


def marker(
    job: str,
    execution: str,
    timestamp: str,
    name: str,
    message: str,
    severity: str = "INFO",
    **fields,
) -> dict:
    """A structured marker line as Cloud Logging stores it (severity lifted)."""
    payload = {"marker": name, "marker_version": 1, "message": message, **fields}
    return _entry(
        job,
        execution,
        "run.googleapis.com/stdout",
        timestamp,
        severity=severity,
        jsonPayload=payload,
    )


def system_line(
    job: str, execution: str, timestamp: str, text: str, severity: str = "INFO"
) -> dict:
    """A platform line in run.googleapis.com/varlog/system."""
    return _entry(
        job,
        execution,
        "run.googleapis.com/varlog/system",
        timestamp,
        severity=severity,
        textPayload=text,
    )


def completion(
    job: str,
    execution: str,
    *,
    start: str,
    end: str,
    succeeded: bool = True,
    cpu: str = "8",
    memory: str = "32Gi",
    env: dict[str, str] | None = None,
    task_count: int = 1,
) -> dict:
    """The system_event audit entry that says an execution has finished."""
    if succeeded:
        message = f"Execution {execution} has completed successfully."
        counts = {"succeededCount": float(task_count)}
    else:
        message = (
            f"Execution {execution} has failed to complete, "
            f"0/{task_count} tasks were a success."
        )
        counts = {"failedCount": float(task_count)}
    env_list = [{"name": k, "value": v} for k, v in (env or {}).items()]
    log_uri = (
        f"https://console.cloud.google.com/logs/viewer?project={PROJECT}"
        "&advancedFilter=resource.type%3D%22cloud_run_job%22%0A"
        f"labels.%22run.googleapis.com/execution_name%22%3D%22{execution}%22"
    )
    response = {
        "@type": "type.googleapis.com/google.cloud.run.v1.Execution",
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Execution",
        "metadata": {
            "name": execution,
            "namespace": "123456789012",
            "labels": {
                "run.googleapis.com/job": job,
                "cloud.googleapis.com/location": LOCATION,
            },
            "creationTimestamp": start,
        },
        "spec": {
            "parallelism": 1.0,
            "taskCount": float(task_count),
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "training",
                            "image": f"{LOCATION}-docker.pkg.dev/{PROJECT}/mmm/train:1",
                            "env": env_list,
                            "resources": {"limits": {"cpu": cpu, "memory": memory}},
                        }
                    ],
                    "maxRetries": 0.0,
                    "timeoutSeconds": "21600",
                    "serviceAccountName": f"training@{PROJECT}.iam.gserviceaccount.com",
                }
            },
        },
        "status": {
            "observedGeneration": 1.0,
            "conditions": [
                {
                    "type": "Completed",
                    "status": "True" if succeeded else "False",
                    "lastTransitionTime": end,
                }
            ],
            "startTime": start,
            "completionTime": end,
            "logUri": log_uri,
            **counts,
        },
    }
    payload = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {"message": message} | ({} if succeeded else {"code": 10}),
        "serviceName": "run.googleapis.com",
        "methodName": "/Jobs.RunJob",
        "resourceName": f"namespaces/{PROJECT}/executions/{execution}",
        "response": response,
    }
    return _entry(
        job,
        execution,
        "cloudaudit.googleapis.com/system_event",
        end,
        severity="INFO" if succeeded else "ERROR",
        protoPayload=payload,
    )


def push_body(entry: dict, message_id: str, subscription: str = "training-logs"):
    """The body Pub/Sub push sends for one exported entry."""
    import base64

    data = base64.b64encode(json.dumps(entry).encode()).decode()
    return {
        "message": {
            "data": data,
            "attributes": {"logging.googleapis.com/timestamp": entry["timestamp"]},
            "messageId": message_id,
            "publishTime": entry.get("receiveTimestamp", entry["timestamp"]),
        },
        "subscription": f"projects/{PROJECT}/subscriptions/{subscription}",
    }


def container_line(
    job: str, execution: str, timestamp: str, line: str, stream: str = "stdout"
) -> dict:
    """Wrap one line a container printed the way Cloud Run's logging agent does.

    A line holding a single JSON object becomes `jsonPayload`, with `severity`
    lifted into the entry; anything else becomes `textPayload`.
    """
    try:
        payload = json.loads(line)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return text_line(job, execution, timestamp, line.rstrip("\n"), stream)
    severity = str(payload.pop("severity", "DEFAULT")).upper()
    return _entry(
        job,
        execution,
        f"run.googleapis.com/{stream}",
        timestamp,
        severity=severity,
        jsonPayload=payload,
    )
