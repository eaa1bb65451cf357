"""The function's runtime: one watchdog per instance, and the two entry points.

Bad input is acknowledged and logged once with its reason; only a transient
failure raises, so that Pub/Sub delivers the message again.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from handlers import audit_mode, intake, log
from handlers.config import SLACK_TOKEN_ENV, Settings
from handlers.errors import BadMessage, ConfigError, TransientError
from handlers.ledger import open_ledger
from handlers.log import logger
from handlers.sinks import console_alert, console_sink, log_alert, log_sink
from handlers.watchdog import Watchdog

_lock = threading.Lock()
_current: Watchdog | None = None
_replays: dict[str, audit_mode.Replay] = {}


def watchdog() -> Watchdog:
    """This instance's watchdog, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            if not logger.handlers:
                log.setup()
            settings = Settings.from_env()
            ledger = open_ledger(settings.ledger, ttl_days=settings.dedup_ttl_days)
            token = os.environ.get(SLACK_TOKEN_ENV, "").strip()
            _current = (
                _slack(settings, ledger, token)
                if token
                else _local(
                    settings, ledger, deployed=bool(os.environ.get("K_SERVICE"))
                )
            )
        return _current


def _local(settings: Settings, ledger, deployed: bool) -> Watchdog:
    """Without Slack: readable text on the console, or one log line deployed."""
    return Watchdog(
        settings,
        ledger,
        sinks=[log_sink if deployed else console_sink],
        alerts=[log_alert if deployed else console_alert],
    )


def _slack(settings: Settings, ledger, token: str) -> Watchdog:
    """With Slack: its messages replace the console's and the log's."""
    from handlers.notify import SlackNotifier
    from handlers.slack_client import web_client

    notifier = SlackNotifier(
        settings, ledger, web_client(token, settings.slack_api_url)
    )
    dog = Watchdog(
        settings,
        ledger,
        sinks=[notifier.summary],
        alerts=[notifier.decision],
        ticks=[notifier.tick],
    )
    notifier.clock = lambda: dog.clock()
    return dog


def replay(replay_id: str) -> audit_mode.Replay:
    """The watchdog of one replay: its own ledger namespace, no effect but a report.

    Its settings turn rollback off and it has no sinks or alerts, so neither a
    summary, nor a streak notice, nor an on-call mention can come of it.
    """
    production = watchdog()
    with _lock:
        if replay_id not in _replays:
            settings = dataclasses.replace(production.settings, rollback_mode="off")
            ledger = open_ledger(settings.ledger, ttl_days=settings.dedup_ttl_days,
                                 namespace=replay_id)  # fmt: skip
            dog = Watchdog(settings, ledger, clock=lambda: production.clock())
            _replays[replay_id] = audit_mode.Replay(
                replay_id, dog, _announcer(settings, ledger)
            )
        return _replays[replay_id]


def _announcer(settings: Settings, ledger):
    """Where a replay's report goes: the Slack audit channel, or the log."""
    from handlers.audit_report import report_text, slack_message

    token = os.environ.get(SLACK_TOKEN_ENV, "").strip()
    if token and settings.slack_audit_channel:
        from handlers.notify import SlackNotifier
        from handlers.slack_client import web_client

        notifier = SlackNotifier(settings, ledger,
                                 web_client(token, settings.slack_api_url))  # fmt: skip

        def to_slack(report) -> None:
            message = slack_message(report, settings.slack_audit_channel)
            notifier.send(f"slack/audit/{report.replay_id}", audit_mode.REPORT,
                          "audit", message)  # fmt: skip

        return to_slack
    if os.environ.get("K_SERVICE"):
        return lambda report: logger.info(
            report_text(report), extra={"labels": {"replay_id": report.replay_id}}
        )
    return lambda report: print(report_text(report), end="\n\n", flush=True)


def reset() -> None:
    """Forget this instance's watchdog (the configuration is read again)."""
    global _current
    with _lock:
        if _current is not None:
            _current.ledger.close()
        for each in _replays.values():
            each.dog.ledger.close()
        _replays.clear()
        _current = None


def handle_log_entry(event) -> None:
    """One Pub/Sub message from the log sink: keep it, then finalize what is due."""
    dog = watchdog()
    message_id = str(event["id"])
    labels = {"message_id": message_id}
    try:
        replay_id = audit_mode.replay_of(event, dog.settings.audit_topic)
        if replay_id is not None:
            labels["replay_id"] = replay_id
            audit_mode.handle(replay(replay_id), dog.ledger, event, message_id)
            return
        delivery = intake.decode(event.data, dog.settings.max_entry_bytes, message_id)
        seen = dog.ingest(delivery.entry)
        if seen is not None:
            labels["execution"] = seen.execution
            dog.finalize_due(seen.job)
    except BadMessage as exc:
        logger.warning(
            "message %s acknowledged without effect: %s",
            message_id,
            exc,
            extra={"labels": labels, "fields": {"reason": exc.reason}},
        )
    except TransientError as exc:
        _will_retry(event, labels, exc)
        raise


def handle_tick(event) -> None:
    """A scheduler tick: recover silent completions, finalize what is due."""
    from handlers.sweep import sweep

    labels = {"message_id": str(event["id"])}
    try:
        result = sweep(watchdog())
    except TransientError as exc:
        _will_retry(event, labels, exc)
        raise
    except ConfigError as exc:
        logger.error("tick acknowledged, the sweep cannot run: %s", exc,
                     extra={"labels": labels})  # fmt: skip
        return
    logger.info(
        "tick: %d execution(s) listed, %d completion(s) recovered, %d verdict(s)",
        result.listed,
        len(result.recovered),
        len(result.written),
        extra={"labels": labels},
    )


def _will_retry(event, labels: dict, exc: Exception) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    attempt = data.get("deliveryAttempt")
    logger.warning(
        "message %s failed for now and will be delivered again (attempt %s): %s",
        labels["message_id"],
        attempt or "?",
        exc,
        extra={"labels": labels, "fields": {"reason": "transient"}},
    )
