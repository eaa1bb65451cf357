"""The marker vocabulary of docs/markers.md, as the R tests check it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def documented_keys() -> dict[str, set[str]]:
    """Marker name to its keys, read from the tables of docs/markers.md."""
    keys: dict[str, set[str]] = {"": set()}
    section = ""
    for line in (ROOT / "docs" / "markers.md").read_text().splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            section = heading.group(1)
            keys[section] = set()
        row = re.match(r"^\| `(\w+)` \|", line)
        if row:
            keys[section].add(row.group(1))
    common = keys.pop("")
    return {name: common | own for name, own in keys.items()}


def assert_follows_vocabulary(markers: list[dict]) -> None:
    vocabulary = documented_keys()
    for marker in markers:
        assert set(marker) == vocabulary[marker["marker"]], marker
        assert marker["marker_version"] == 1
        assert marker["severity"] in {"INFO", "WARNING", "ERROR"}
        assert isinstance(marker["message"], str) and marker["message"]
