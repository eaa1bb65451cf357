"""The log sink's filter: which entries reach the watchdog at all.

One definition, used by the replay command and checked against the
Terraform's sink by the tests. Every match is an invocation, so the filter
names the watched jobs and only the kinds of entries the parser reads:
structured markers, the text lines the legacy parser knows or that mention
the override (so that drifted wording still shows as unrecognised), the
completion audit entries, and the platform's warnings and errors.
Query language: https://cloud.google.com/logging/docs/view/logging-query-language
"""

from __future__ import annotations

from collections.abc import Iterable

from handlers.legacy import RELEVANT_WORDS

SYSTEM_EVENT = "cloudaudit.googleapis.com/system_event"
VARLOG_SYSTEM = "run.googleapis.com/varlog/system"


def text_terms() -> str:
    """The case-insensitive RE2 pattern of the text lines the parser reads."""
    return "(?i)" + "|".join(word.replace(" ", "\\\\s+") for word in RELEVANT_WORDS)


def sink_filter(jobs: Iterable[str]) -> str:
    """The Logging query of the sink for these jobs."""
    names = " OR ".join(f'"{job}"' for job in sorted(jobs))
    return "\n".join([
        'resource.type="cloud_run_job"',
        f"resource.labels.job_name=({names})",
        "(",
        "  jsonPayload.marker:*",
        f'  OR textPayload=~"{text_terms()}"',
        f'  OR (log_id("{SYSTEM_EVENT}") AND protoPayload.methodName="/Jobs.RunJob")',
        f'  OR (log_id("{VARLOG_SYSTEM}") AND severity>=WARNING)',
        ")",
    ])  # fmt: skip
