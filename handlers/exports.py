"""Reading exported logs: `gcloud logging read --format=json` or JSON Lines.

A partly bad file still yields every entry it can; what was skipped is
counted by reason so that the caller can say so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from handlers.errors import WatchdogError


class UnusableExport(WatchdogError):
    """A file from which no entry at all can be read."""


def read_entries(path: Path, skipped: Counter) -> Iterator[object]:
    """Every entry of one export file, in file order."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise UnusableExport(f"{path}: cannot read: {exc.strerror}") from None
    stripped = text.lstrip()
    if not stripped:
        raise UnusableExport(f"{path}: empty file, expected a JSON array or lines")
    if stripped.startswith("["):
        yield from _array(text, path, skipped)
    else:
        yield from _lines(text, path, skipped)


def _array(text: str, path: Path, skipped: Counter) -> Iterator[object]:
    try:
        document = json.loads(text)
    except ValueError:
        yield from _salvage(text, path, skipped)
        return
    if not isinstance(document, list):
        raise UnusableExport(f"{path}: expected a JSON array of log entries")
    yield from document


def _salvage(text: str, path: Path, skipped: Counter) -> Iterator[object]:
    """The entries before the point where a broken array stops making sense."""
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    found = 0
    while True:
        position = _skip(text, position, " \t\r\n,")
        if position >= len(text) or text[position] == "]":
            return
        try:
            entry, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            if not found:
                raise UnusableExport(f"{path}: not JSON ({exc})") from None
            skipped["broken_json_tail"] += 1
            return
        found += 1
        yield entry


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _lines(text: str, path: Path, skipped: Counter) -> Iterator[object]:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            skipped["bad_json_line"] += 1
