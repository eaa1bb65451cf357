"""The observations of one execution, ordered and grouped for the verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from handlers import observation as kinds
from handlers.observation import Observation


class Evidence:
    """What the logs of one execution say, kind by kind, in log order."""

    def __init__(self, observations: Iterable[Observation]):
        self._by_kind: dict[str, list[dict]] = defaultdict(list)
        ordered = sorted(observations, key=lambda o: (o.timestamp, o.key))
        for seen in ordered:
            self._by_kind[seen.kind].append(seen.fields)
        self.count = len(ordered)

    def all(self, kind: str) -> list[dict]:
        return self._by_kind.get(kind, [])

    def last(self, kind: str) -> dict | None:
        found = self._by_kind.get(kind)
        return found[-1] if found else None

    def has_any(self, wanted: Iterable[str]) -> bool:
        return any(self._by_kind.get(kind) for kind in wanted)

    @property
    def completion(self) -> dict:
        return self.last(kinds.COMPLETION) or {}

    @property
    def outcome(self) -> str:
        return self.completion.get("outcome", "unknown")

    def override_value(self) -> int | None:
        """The override value the script's own lines name, if any."""
        for kind in (
            kinds.OVERRIDE_VERIFIED,
            kinds.OVERRIDE_CONFIGURED,
            kinds.OVERRIDE_EXPECTED,
        ):
            for fields in reversed(self.all(kind)):
                if isinstance(fields.get("override"), int):
                    return fields["override"]
        return None
