"""What the watchdog keeps of one log entry: an observation about an execution."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Kinds shared with the structured marker vocabulary (docs/markers.md).
OVERRIDE_CONFIGURED = "override_configured"
OVERRIDE_SKIPPED = "override_skipped"
OVERRIDE_VERIFIED = "override_verified"
CORES_SELECTED = "cores_selected"
TRAINING_STARTED = "training_started"
TRAINING_FINISHED = "training_finished"
MARKERS = frozenset(
    {
        OVERRIDE_CONFIGURED,
        OVERRIDE_SKIPPED,
        OVERRIDE_VERIFIED,
        CORES_SELECTED,
        TRAINING_STARTED,
        TRAINING_FINISHED,
    }
)

# Kinds only legacy text lines give.
PARALLELLY_REPORTED = "parallelly_reported"
OVERRIDE_EXPECTED = "override_expected"
MAX_CORES = "max_cores"
DETECT_CORES = "detect_cores"
CGROUPS_QUOTA_IGNORED = "cgroups_quota_ignored"

# Kinds of platform entries.
COMPLETION = "completion"
EXIT_CODE = "exit_code"
MEMORY_EXCEEDED = "memory_exceeded"
TIMEOUT = "timeout"

# A line that looks related but that the parser does not know: never success.
UNRECOGNISED = "unrecognised"

OVERRIDE_EVIDENCE = frozenset(
    {OVERRIDE_CONFIGURED, OVERRIDE_SKIPPED, OVERRIDE_VERIFIED, OVERRIDE_EXPECTED}
)


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about one execution, taken from one log entry.

    `key` identifies the entry it came from (its log name and insertId), so the
    same entry delivered twice is stored once.
    """

    job: str
    execution: str
    key: str
    timestamp: str
    kind: str
    fields: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.fields, separators=(",", ":"), sort_keys=True)
