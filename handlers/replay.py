"""Replay: read a job's entries back from Cloud Logging and publish them for audit.

The entries are those the log sink would have sent: `sink_filter(jobs)` within
a time range, oldest first, read with the real google-cloud-logging client in
large pages (entries.list allows 60 requests a minute per project:
https://cloud.google.com/logging/quotas). A 429 RESOURCE_EXHAUSTED waits and
reads again, MAX_RETRIES times at most. Each entry is published to
WATCHDOG_AUDIT_TOPIC with the `replay_id` attribute, so the function audits it
(handlers/audit_mode.py) and never acts on it; one last message with the
`replay_end` attribute says how many were published.

The checkpoint (.watchdog/replays/REPLAY_ID.json) is saved after every batch
whose publication Pub/Sub confirmed: the timestamp of the last entry
published and the entries published at that very timestamp. `--resume`
reads again from that timestamp and skips those entries, so an interrupted
replay resumes without publishing an entry twice (and the function counts
each insertId once per replay anyway). Page tokens expire after a day; a
timestamp does not.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from handlers import times
from handlers.audit_mode import INSERT_ID, REPLAY_END, REPLAY_ID
from handlers.config import Settings
from handlers.errors import ConfigError, TransientError
from handlers.sink_filter import sink_filter

CHECKPOINTS = Path(".watchdog/replays")
PAGE_SIZE = 1000
BATCH = 100  # entries published between checkpoints
MAX_RETRIES = 5
BACKOFF_SECONDS = 2.0  # doubled on each retry: 2+4+8+16+32 s spans the minute
PROGRESS_SECONDS = 5.0


class QuotaExhausted(TransientError):
    """Cloud Logging still answers 429 after every retry."""


@dataclass
class Checkpoint:
    replay_id: str
    jobs: list[str]
    since: str
    until: str | None
    topic: str
    published: int = 0
    last_timestamp: str | None = None
    at_last: list[str] = field(default_factory=list)  # entry keys published there
    ended: bool = False

    def query(self) -> str:
        """The sink's filter within the range still to read."""
        start = self.last_timestamp or self.since
        terms = [f'timestamp>="{start}"']
        if self.until:
            terms.append(f'timestamp<"{self.until}"')
        return f"({sink_filter(self.jobs)})\nAND " + " AND ".join(terms)

    def done_before(self, entry: dict) -> bool:
        """Whether this entry was published before the interruption."""
        if self.last_timestamp is None:
            return False
        moment, last = (
            times.parse(entry.get("timestamp")),
            times.parse(self.last_timestamp),
        )
        if moment is None or last is None or moment > last:
            return False
        return moment < last or entry_key(entry) in self.at_last

    def published_one(self, entry: dict) -> None:
        if entry.get("timestamp") != self.last_timestamp:
            self.last_timestamp, self.at_last = entry.get("timestamp"), []
        self.at_last.append(entry_key(entry))
        self.published += 1

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.replay_id}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(asdict(self), indent=1))
        os.replace(partial, path)  # never half a checkpoint

    @classmethod
    def load(cls, folder: Path, replay_id: str) -> Checkpoint:
        path = folder / f"{replay_id}.json"
        if not path.is_file():
            raise ConfigError(f"no checkpoint {path}: check the replay id")
        return cls(**json.loads(path.read_text()))


def new_replay_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def entry_key(entry: dict) -> str:
    return f"{entry.get('logName')}/{entry.get('insertId')}"


def run(
    settings: Settings,
    checkpoint: Checkpoint,
    folder: Path = CHECKPOINTS,
    out: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
    page_size: int = PAGE_SIZE,
) -> Checkpoint:
    """Publish what is left of the replay, then its end; saved as it goes."""
    publisher = _publisher()
    pending: list[tuple[dict, object]] = []
    shown = [time.monotonic()]

    def flush() -> None:
        for entry, future in pending:
            future.result(timeout=60)
            checkpoint.published_one(entry)
        pending.clear()
        checkpoint.save(folder)
        if time.monotonic() - shown[0] >= PROGRESS_SECONDS:
            shown[0] = time.monotonic()
            _progress(checkpoint, out)

    try:
        for entry in _entries(settings, checkpoint, sleep, page_size, flush):
            data = json.dumps(entry, separators=(",", ":")).encode()
            attributes = {REPLAY_ID: checkpoint.replay_id,
                          INSERT_ID: entry_key(entry),
                          "logging.googleapis.com/timestamp":
                              str(entry.get("timestamp"))}  # fmt: skip
            pending.append((entry, publisher.publish(checkpoint.topic, data,
                                                     **attributes)))  # fmt: skip
            if len(pending) >= BATCH:
                flush()
    finally:
        # NOTE: on an interruption too: what Pub/Sub already has is recorded.
        flush()
    _end(publisher, checkpoint, folder)
    _progress(checkpoint, out)
    return checkpoint


def _entries(settings, checkpoint, sleep, page_size, flush):
    """The entries still to publish, oldest first; waits out 429s, boundedly."""
    client, failures = _logging_client(settings), 0
    from google.api_core.exceptions import TooManyRequests
    from google.cloud import logging_v2

    while True:
        try:
            for entry in client.list_entries(
                resource_names=[f"projects/{settings.project}"],
                filter_=checkpoint.query(),
                order_by=logging_v2.ASCENDING,
                page_size=page_size,
            ):
                record = _as_dict(entry)
                if not checkpoint.done_before(record):
                    failures = 0
                    yield record
            return
        except TooManyRequests as exc:
            failures += 1
            if failures > MAX_RETRIES:
                raise QuotaExhausted(
                    f"Cloud Logging read quota still exhausted after {MAX_RETRIES} "
                    f"retries ({exc.message}); resume later with --resume "
                    f"{checkpoint.replay_id}"
                ) from exc
            flush()  # the read starts again from the last entry published
            sleep(BACKOFF_SECONDS * 2 ** (failures - 1))


def _as_dict(entry) -> dict:
    """The LogEntry JSON, as the sink publishes it."""
    record = entry.to_api_repr()
    if entry.received_timestamp is not None and "receiveTimestamp" not in record:
        stamp = entry.received_timestamp.isoformat(timespec="microseconds")
        record["receiveTimestamp"] = stamp.replace("+00:00", "Z")
    return record


def _end(publisher, checkpoint: Checkpoint, folder: Path) -> None:
    """The end-of-replay message: the count, so the function can finish."""
    body = {REPLAY_ID: checkpoint.replay_id, "count": checkpoint.published,
            "jobs": checkpoint.jobs, "since": checkpoint.since,
            "until": checkpoint.until}  # fmt: skip
    attributes = {REPLAY_ID: checkpoint.replay_id,
                  REPLAY_END: str(checkpoint.published)}  # fmt: skip
    data = json.dumps(body).encode()
    publisher.publish(checkpoint.topic, data, **attributes).result(timeout=60)
    checkpoint.ended = True
    checkpoint.save(folder)


def _progress(checkpoint: Checkpoint, out: TextIO) -> None:
    state = "ended" if checkpoint.ended else "publishing"
    print(f"replay {checkpoint.replay_id}: {checkpoint.published} entries "
          f"published, up to {checkpoint.last_timestamp or '-'} ({state})",
          file=out, flush=True)  # fmt: skip


def _logging_client(settings: Settings):
    """A Logging client over REST: to the endpoint without credentials when set."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import logging_v2

    if settings.logging_api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        return logging_v2.Client(
            project=settings.project, credentials=AnonymousCredentials(),
            _use_grpc=False,
            client_options={"api_endpoint": settings.logging_api_endpoint},
        )  # fmt: skip
    try:
        return logging_v2.Client(project=settings.project, _use_grpc=False)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google credentials to read Cloud Logging ({exc}): run "
            "`gcloud auth application-default login` (roles/logging.viewer)"
        ) from exc


def _publisher():
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()
