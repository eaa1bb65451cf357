"""Structured markers, version 1: the vocabulary of docs/markers.md, checked.

A marker whose version, name or fields the watchdog does not know becomes an
`unrecognised` observation: it shows in the causes and is never evidence of
success.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers import observation as kinds

MARKER_VERSION = 1
MISSING = object()


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a whole number")
    if value != int(value):
        raise TypeError("expected a whole number")
    return int(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value[:200]


def _texts(value: object) -> list[str]:
    if not isinstance(value, list):
        raise TypeError("expected a list of strings")
    return [_text(item) for item in value]


def _counts(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError("expected an object of method to cores")
    return {str(k)[:64]: _number(v) for k, v in value.items()}


def _one_of(*choices: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        if value not in choices:
            raise TypeError(f"expected one of {', '.join(choices)}")
        return value

    return check


# Field name -> (reader, required). An optional field may be null or absent.
Schema = dict[str, tuple[Callable[[object], object], bool]]

SCHEMAS: dict[str, Schema] = {
    kinds.OVERRIDE_CONFIGURED: {
        "override": (_whole, True),
        "parallelly_loaded": (_flag, False),
        "settings": (_texts, False),
    },
    kinds.OVERRIDE_SKIPPED: {
        "reason": (_one_of("unset", "invalid"), True),
        "raw": (_text, False),
        "parallelly_loaded": (_flag, False),
    },
    kinds.OVERRIDE_VERIFIED: {
        "status": (_one_of("success", "forced", "failed"), True),
        "override": (_whole, True),
        "available_cores": (_whole, True),
        "methods": (_counts, False),
        "limited_by": (_text, False),
        "detect_cores": (_whole, False),
        "cgroups_quota": (_number, False),
        "affinity_cores": (_whole, False),
        "oversubscribed": (_flag, False),
    },
    kinds.CORES_SELECTED: {
        "cores": (_whole, True),
        "source": (_text, False),
    },
    kinds.TRAINING_STARTED: {
        "cores": (_whole, True),
        "attempt": (_whole, True),
    },
    kinds.TRAINING_FINISHED: {
        "cores": (_whole, True),
        "attempt": (_whole, True),
        "status": (_one_of("ok", "error"), True),
        "duration_s": (_number, False),
        "error": (_text, False),
    },
}


def read_marker(payload: dict) -> tuple[str, dict] | None:
    """(kind, fields) for a marker payload; None for JSON that is no marker."""
    name = payload.get("marker")
    if name is None:
        return None
    execution = payload.get("execution")
    fields = {"execution": execution} if isinstance(execution, str) else {}
    version = payload.get("marker_version")
    known = isinstance(name, str) and type(version) is int and version == MARKER_VERSION
    schema = SCHEMAS.get(name) if known else None
    if schema is None:
        return _unrecognised(fields, f"marker {name!r} version {version!r}")
    for key, (read, required) in schema.items():
        value = payload.get(key, MISSING)
        if value is MISSING or value is None:
            if required:
                return _unrecognised(fields, f"marker {name!r} without {key!r}")
            fields[key] = None
            continue
        try:
            fields[key] = read(value)
        except TypeError as exc:
            return _unrecognised(fields, f"marker {name!r} field {key!r}: {exc}")
    return name, fields


def _unrecognised(fields: dict, why: str) -> tuple[str, dict]:
    fields["text"] = why[:200]
    return kinds.UNRECOGNISED, fields
