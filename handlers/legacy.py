"""Text lines of images built before the structured markers.

One printed line is one log entry, so each line is read alone. Emoji may be
missing or mis-encoded, so the patterns match words only. The wording drifted
between image versions: a line that mentions the override or the cores but
matches no pattern is `unrecognised`, never success.
"""

from __future__ import annotations

import re

from handlers import observation as kinds

_NUMBER = r"(\d+(?:\.\d+)?)"

# Order matters: the first pattern that matches a line decides what it says.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...], dict], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind, names, constants)
    for pattern, kind, names, constants in (
        (
            r"OVERRIDE VERIFICATION:\s*(SUCCESS|FAILED)\b",
            kinds.OVERRIDE_VERIFIED,
            ("status",),
            {},
        ),
        (
            r"Setting R_PARALLELLY_AVAILABLECORES_FALLBACK\s*=\s*(\d+)",
            kinds.OVERRIDE_CONFIGURED,
            ("override",),
            {},
        ),
        (
            r"No parallelly override configured",
            kinds.OVERRIDE_SKIPPED,
            (),
            {"reason": "unset"},
        ),
        (
            r"PARALLELLY_OVERRIDE_CORES set but invalid value:\s*'?(.*?)'?\s*$",
            kinds.OVERRIDE_SKIPPED,
            ("raw",),
            {"reason": "invalid"},
        ),
        (r"PARALLELLY CORE OVERRIDE ACTIVE", kinds.OVERRIDE_CONFIGURED, (), {}),
        (r"Override configured\b", kinds.OVERRIDE_CONFIGURED, (), {}),
        (
            r"Expected:\s*(\d+)\s+cores?\s*\(from override\)",
            kinds.OVERRIDE_EXPECTED,
            ("override",),
            {},
        ),
        (
            r"Actual:\s*(\d+)\s+cores?\s*\(from parallelly\)",
            kinds.PARALLELLY_REPORTED,
            ("available_cores",),
            {},
        ),
        (
            r"parallelly::availableCores\(\)\s*[=:]\s*(\d+)",
            kinds.PARALLELLY_REPORTED,
            ("available_cores",),
            {},
        ),
        (
            r"parallel::detectCores\(\)\s*[=:]\s*(\d+)",
            kinds.DETECT_CORES,
            ("detect_cores",),
            {},
        ),
        (r"\bmax_cores\s*:\s*(\d+)", kinds.MAX_CORES, ("cores",), {}),
        (r"Final cores for training:\s*(\d+)", kinds.CORES_SELECTED, ("cores",), {}),
        (
            r"Starting robyn_run\(\) with (\d+) cores",
            kinds.TRAINING_STARTED,
            ("cores",),
            {},
        ),
        (
            r"Training completed in " + _NUMBER + r" minutes?",
            kinds.TRAINING_FINISHED,
            ("minutes",),
            {"status": "ok"},
        ),
        (
            r"Will ignore the cgroups CPU quota, because it is out of range "
            r"\[1,\s*(\d+)\]:\s*" + _NUMBER,
            kinds.CGROUPS_QUOTA_IGNORED,
            ("max_cores", "quota"),
            {},
        ),
    )
)

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
_RELEVANT = re.compile(
    r"override|parallelly|availablecores|detectcores|cores|verification|robyn_run"
    r"|cgroups|training completed",
    re.IGNORECASE,
)


def read_line(text: str) -> tuple[str, dict] | None:
    """(kind, fields) for a legacy line; None for a line that says nothing."""
    if not _RELEVANT.search(text):
        return None
    for pattern, kind, names, constants in _PATTERNS:
        match = pattern.search(text)
        if match:
            values = {
                name: text[:64] if name == "raw" else _value(text)
                for name, text in zip(names, match.groups(), strict=True)
            }
            return kind, {**constants, **values, "legacy": True}
    if _KNOWN_NOISE.search(text):
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
