"""RFC 3339 timestamps as Cloud Logging writes them (up to nanoseconds, `Z`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d{6})\d+")


def parse(text: str | None) -> datetime | None:
    """The moment `text` names, or None when it is missing or malformed."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r".\1", text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(start: str | None, end: str | None) -> float | None:
    first, last = parse(start), parse(end)
    if first is None or last is None or last < first:
        return None
    return (last - first).total_seconds()


def iso(moment: float) -> str:
    """RFC 3339 of a Unix time, to the millisecond."""
    stamp = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
