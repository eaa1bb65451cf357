"""Audit mode: replayed messages decided apart from production, then reported.

A message is a replay's when it carries a `replay_id` attribute; one that
arrives from WATCHDOG_AUDIT_TOPIC without it is refused, never taken for
production. Each replay keeps its state in a ledger namespace of its own
(handlers/ledger), and its watchdog has no sinks, no alerts and rollback
`off`: the same intake, ingest and finalize as production, with no effect
outside that namespace except the one audit report.

Every entry message is counted once per insertId (a claim in the namespace).
The end-of-replay message (attribute `replay_end`, the number of entries
published) finalizes every execution at once, without the grace period, as
the offline audit does, once all the entries have arrived; while some are
missing it raises, so that Pub/Sub delivers it again, for END_WAIT_SECONDS
after it was published, then reports what it has and says it is incomplete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers import intake, times
from handlers.audit_report import AuditReport, compare
from handlers.errors import BadMessage, TransientError
from handlers.ledger import NAMESPACE
from handlers.log import logger
from handlers.watchdog import Watchdog

REPLAY_ID = "replay_id"
REPLAY_END = "replay_end"
INSERT_ID = "insert_id"
ENTRIES = "replay-entries"  # the pseudo job of the entry claims
REPORT = "audit-report"
END_WAIT_SECONDS = 600


@dataclass
class Replay:
    """One replay's watchdog (in its namespace) and where its report goes."""

    replay_id: str
    dog: Watchdog
    announce: Callable[[AuditReport], None]


def replay_of(event, audit_topic: str) -> str | None:
    """The replay id of a message, None for production; BadMessage if unusable."""
    attributes = intake.message_of(event.data).get("attributes") or {}
    replay_id = attributes.get(REPLAY_ID) if isinstance(attributes, dict) else None
    source = str(_attribute(event, "source") or "")
    from_audit_topic = bool(audit_topic) and source.endswith(audit_topic)
    if replay_id is None:
        if from_audit_topic:
            raise BadMessage("no_replay_id", f"a message of {audit_topic} without "
                             "replay_id is never taken for production")  # fmt: skip
        return None
    if not isinstance(replay_id, str) or not NAMESPACE.match(replay_id):
        raise BadMessage("bad_replay_id", f"expected [a-z0-9-], got {replay_id!r}")
    return replay_id


def handle(replay: Replay, production, event, message_id: str) -> None:
    """One message of a replay: an entry to keep, or the end to report."""
    message = intake.message_of(event.data)
    attributes = message.get("attributes") or {}
    if REPLAY_END in attributes:
        finish(replay, production, _count(attributes[REPLAY_END]),
               times.parse(message.get("publishTime")))  # fmt: skip
        return
    key = attributes.get(INSERT_ID) or message_id
    claim = {"kind": "replay_entry", "key": key, "job": ENTRIES}
    replay.dog.ledger.claim_decision(f"entry/{key}", claim, replay.dog.clock())
    delivery = intake.decode(
        event.data, replay.dog.settings.max_entry_bytes, message_id
    )
    replay.dog.ingest(delivery.entry)


def finish(replay: Replay, production, expected: int, published_at=None) -> None:
    """Decide every execution of the replay and report once all entries are in."""
    dog, now = replay.dog, replay.dog.clock()
    received = len(dog.ledger.decisions(ENTRIES))
    waited = now - published_at.timestamp() if published_at else END_WAIT_SECONDS
    if received < expected and waited < END_WAIT_SECONDS:
        raise TransientError(
            f"replay {replay.replay_id}: {received} of {expected} entries so far; "
            "its end waits for the rest"
        )
    for job, execution in dog.ledger.undecided():
        dog.finalize(job, execution)
    report = compare(replay.replay_id, production, dog.ledger)
    report.received, report.expected = received, expected
    claim = {"kind": REPORT, "key": REPORT, "job": REPORT, "time": times.iso(now),
             "received": received, "expected": expected}  # fmt: skip
    if not dog.ledger.claim_decision(REPORT, claim, now):
        logger.debug("audit report of %s made before", replay.replay_id)
        return
    logger.info(
        "%s", report.headline(),
        extra={"labels": {"replay_id": replay.replay_id},
               "fields": {"disagreements": report.disagreements}},
    )  # fmt: skip
    replay.announce(report)


def _count(text: object) -> int:
    if not str(text).isdigit():
        raise BadMessage("bad_replay_end", f"expected a count, got {text!r}")
    return int(str(text))


def _attribute(event, name: str):
    try:
        return event[name]
    except (KeyError, TypeError):
        return None
