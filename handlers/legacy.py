"""Text lines of images built before the structured markers.

One printed line is one log entry, so each line is read alone. Emoji may be
missing or mis-encoded, so the patterns match words only. The wording drifted
between image versions: a line that mentions the override or the cores but
matches no pattern is `unrecognised`, never success.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from handlers import observation as kinds

_NUMBER = r"(\d+(?:\.\d+)?)"


class _Line(NamedTuple):
    anchor: str  # lower-case words the line must contain, a cheap first test
    pattern: re.Pattern[str]
    kind: str
    names: tuple[str, ...]  # what the pattern's groups hold
    constants: dict


def _line(anchor, pattern, kind, names=(), **constants) -> _Line:
    return _Line(anchor, re.compile(pattern, re.IGNORECASE), kind, names, constants)


# Order matters: the first pattern that matches a line decides what it says.
_LINES = (
    _line("override verification", r"OVERRIDE VERIFICATION:\s*(SUCCESS|FAILED)\b",
          kinds.OVERRIDE_VERIFIED, ("status",)),
    _line("availablecores_fallback",
          r"Setting R_PARALLELLY_AVAILABLECORES_FALLBACK\s*=\s*(\d+)",
          kinds.OVERRIDE_CONFIGURED, ("override",)),
    _line("no parallelly override", r"No parallelly override configured",
          kinds.OVERRIDE_SKIPPED, reason="unset"),
    _line("invalid value",
          r"PARALLELLY_OVERRIDE_CORES set but invalid value:\s*'?(.*?)'?\s*$",
          kinds.OVERRIDE_SKIPPED, ("raw",), reason="invalid"),
    _line("override active", r"PARALLELLY CORE OVERRIDE ACTIVE",
          kinds.OVERRIDE_CONFIGURED),
    _line("override configured", r"Override configured\b", kinds.OVERRIDE_CONFIGURED),
    _line("from override", r"Expected:\s*(\d+)\s+cores?\s*\(from override\)",
          kinds.OVERRIDE_EXPECTED, ("override",)),
    _line("from parallelly", r"Actual:\s*(\d+)\s+cores?\s*\(from parallelly\)",
          kinds.PARALLELLY_REPORTED, ("available_cores",)),
    _line("availablecores()", r"parallelly::availableCores\(\)\s*[=:]\s*(\d+)",
          kinds.PARALLELLY_REPORTED, ("available_cores",)),
    _line("detectcores()", r"parallel::detectCores\(\)\s*[=:]\s*(\d+)",
          kinds.DETECT_CORES, ("detect_cores",)),
    _line("max_cores", r"\bmax_cores\s*:\s*(\d+)", kinds.MAX_CORES, ("cores",)),
    _line("final cores", r"Final cores for training:\s*(\d+)", kinds.CORES_SELECTED,
          ("cores",)),
    _line("robyn_run()", r"Starting robyn_run\(\) with (\d+) cores",
          kinds.TRAINING_STARTED, ("cores",)),
    _line("training completed", r"Training completed in " + _NUMBER + r" minutes?",
          kinds.TRAINING_FINISHED, ("minutes",), status="ok"),
    _line("cgroups cpu quota",
          r"Will ignore the cgroups CPU quota, because it is out of range "
          r"\[1,\s*(\d+)\]:\s*" + _NUMBER,
          kinds.CGROUPS_QUOTA_IGNORED, ("max_cores", "quota")),
)  # fmt: skip

# Lines known to carry nothing to record: rules, headings, the script's claims.
_KNOWN_NOISE = re.compile(
    r"^[\W_]*$"
    r"|Timing:\s*BEFORE"
    r"|Expected:\s*parallelly::availableCores\(\) will return"
    r"|Override source:"
    r"|Cloud Run Job Parameters"
    r"|CORE DETECTION ANALYSIS"
    r"|^\s*Warning messages?:"
    r"|^\s*In getCGroups\w*CpuQuota\(\)",
    re.IGNORECASE,
)

# A line that mentions any of these and matches nothing above is unrecognised.
RELEVANT_WORDS = (
    "override", "parallelly", "availablecores", "detectcores", "cores",
    "verification", "robyn_run", "cgroups", "training completed",
)  # fmt: skip
_RELEVANT = re.compile("|".join(map(re.escape, RELEVANT_WORDS)))


def read_line(text: str) -> tuple[str, dict] | None:
    """(kind, fields) for a legacy line; None for a line that says nothing."""
    lowered = text.lower()
    for line in _LINES:
        if line.anchor in lowered and (match := line.pattern.search(text)):
            values = {
                name: group[:64] if name == "raw" else _value(group)
                for name, group in zip(line.names, match.groups(), strict=True)
            }
            return line.kind, {**line.constants, **values, "legacy": True}
    if not _RELEVANT.search(lowered) or _KNOWN_NOISE.search(text):
        return None
    return kinds.UNRECOGNISED, {"text": text.strip()[:200], "legacy": True}


def _value(text: str) -> object:
    if text.isdigit():
        return int(text)
    upper = text.upper()
    if upper in ("SUCCESS", "FAILED"):
        return upper.lower()
    try:
        return float(text)
    except ValueError:
        return text[:64]
