"""The demo export as benchmark input: which entries the log sink passes, and
endless push bodies made of them.

Two readings of the sink filter: in the parser's own terms (structured
markers, a jsonPayload with `marker`; legacy lines that `legacy.read_line`
reads; the `/Jobs.RunJob` completion audit entries; the varlog/system lines),
and the deployed query of handlers/sink_filter.py, evaluated here.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterator

from _server import ROOT, push_bytes

from handlers import legacy
from handlers.parse import SYSTEM_EVENT_LOG, VARLOG_SYSTEM_LOG
from samples.logentries import EXECUTION_LABEL, push_body

KINDS = ("marker", "legacy", "completion", "varlog/system")


def export() -> list[dict]:
    """samples/export.json, newest first as `gcloud logging read` prints it."""
    return json.loads((ROOT / "samples" / "export.json").read_text())


def sink_kind(entry: dict) -> str | None:
    """Which of KINDS the entry is, or None when the sink filter drops it."""
    log_name = entry.get("logName", "")
    text = entry.get("textPayload")
    if isinstance(text, str):
        if log_name.endswith(VARLOG_SYSTEM_LOG):
            return "varlog/system"
        return "legacy" if legacy.read_line(text) is not None else None
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        return "marker" if "marker" in payload else None
    payload = entry.get("protoPayload")
    if isinstance(payload, dict) and log_name.endswith(SYSTEM_EVENT_LOG):
        return "completion" if payload.get("methodName") == "/Jobs.RunJob" else None
    return None


def deployed_kind(entry: dict) -> str | None:
    """Which of KINDS the entry is by the deployed sink's own query
    (handlers/sink_filter.py), evaluated here, or None when it drops the entry.

    The query also names the resource type and the jobs, which every entry of
    the demo export matches.
    """
    log_name = entry.get("logName", "")
    text = entry.get("textPayload")
    if isinstance(text, str):
        if log_name.endswith(VARLOG_SYSTEM_LOG):
            severity = SEVERITIES.index(entry.get("severity", "DEFAULT"))
            return "varlog/system" if severity >= SEVERITIES.index("WARNING") else None
        return "legacy" if _deployed_text().search(text) else None
    return sink_kind(entry)  # markers and completions: the same terms


# LogSeverity, lowest first:
# https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#LogSeverity
SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL",
              "ALERT", "EMERGENCY")  # fmt: skip


@functools.cache
def _deployed_text() -> re.Pattern[str]:
    from handlers.sink_filter import text_terms

    # In the query's double-quoted string a doubled backslash stands for one.
    return re.compile(text_terms().replace("\\\\", "\\"))


def has_deployed_filter() -> bool:
    return (ROOT / "handlers" / "sink_filter.py").is_file()


def executions(entries: list[dict]) -> set[str]:
    return {e["labels"][EXECUTION_LABEL] for e in entries}


def push_bodies(count: int, tag: str) -> list[bytes]:
    """`count` push bodies of the entries the sink passes, oldest first.

    Each pass over the sample renames its executions and gives every entry a
    new insertId, so that no message is a duplicate and the ledger grows as it
    would over many executions.
    """
    entries = itertools.islice(_renamed(tag), count)
    return [push_bytes(push_body(e, f"{tag}-{n}")) for n, e in enumerate(entries)]


def _renamed(tag: str) -> Iterator[dict]:
    passed = [e for e in reversed(export()) if sink_kind(e)]
    copy = 0
    while True:
        suffix = f"{tag}{copy:05d}"
        for entry in passed:
            labels = entry["labels"]
            name = f"{labels[EXECUTION_LABEL]}-{suffix}"
            yield dict(
                entry,
                insertId=f"{entry['insertId']}-{suffix}",
                labels=dict(labels, **{EXECUTION_LABEL: name}),
            )
        copy += 1
