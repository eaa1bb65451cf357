"""The function's runtime: one watchdog per instance, and the two entry points.

Bad input is acknowledged and logged once with its reason; only a transient
failure raises, so that Pub/Sub delivers the message again.
"""

from __future__ import annotations

import os
import threading

from handlers import intake, log
from handlers.config import Settings
from handlers.errors import BadMessage
from handlers.ledger import open_ledger
from handlers.log import logger
from handlers.sinks import console_sink, log_sink
from handlers.watchdog import Watchdog

_lock = threading.Lock()
_current: Watchdog | None = None


def watchdog() -> Watchdog:
    """This instance's watchdog, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            if not logger.handlers:
                log.setup()
            settings = Settings.from_env()
            sink = log_sink if os.environ.get("K_SERVICE") else console_sink
            _current = Watchdog(settings, open_ledger(settings.ledger), [sink])
        return _current


def reset() -> None:
    """Forget this instance's watchdog (the configuration is read again)."""
    global _current
    with _lock:
        if _current is not None:
            _current.ledger.close()
        _current = None


def handle_log_entry(event) -> None:
    """One Pub/Sub message from the log sink: keep it, then finalize what is due."""
    dog = watchdog()
    message_id = str(event["id"])
    try:
        delivery = intake.decode(event.data, dog.settings.max_entry_bytes, message_id)
        seen = dog.ingest(delivery.entry)
    except BadMessage as exc:
        logger.warning(
            "message %s acknowledged without effect: %s",
            message_id,
            exc,
            extra={
                "labels": {"message_id": message_id},
                "fields": {"reason": exc.reason},
            },
        )
        return
    if seen is not None:
        dog.finalize_due(seen.job)


def handle_tick(event) -> None:
    """A scheduler tick: finalize every execution whose grace period is over."""
    written = watchdog().finalize_due()
    logger.info(
        "tick %s: %d verdict(s) written",
        event["id"],
        len(written),
        extra={"labels": {"message_id": str(event["id"])}},
    )
