"""Where a new verdict's summary goes when no Slack token is configured."""

from __future__ import annotations

import sys

from handlers.alerts import alert_text
from handlers.log import logger
from handlers.summary import summary_text
from handlers.verdict import Verdict


def console_sink(verdict: Verdict) -> None:
    """Readable text on stdout, for local runs and the demo."""
    print(summary_text(verdict), end="\n\n", file=sys.stdout, flush=True)


def log_sink(verdict: Verdict) -> None:
    """One structured log line, so a deployed function keeps the text together."""
    logger.info(
        summary_text(verdict),
        extra={"labels": {"job": verdict.job, "execution": verdict.execution}},
    )


def console_alert(decision: dict) -> None:
    """A rollback decision as readable text on stdout."""
    print(alert_text(decision), end="\n\n", file=sys.stdout, flush=True)


def log_alert(decision: dict) -> None:
    """A rollback decision as one structured log line."""
    logger.warning(alert_text(decision), extra={"labels": {"job": decision["job"]}})
