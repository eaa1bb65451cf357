"""Structured logs: one JSON object per line, as Cloud Logging reads them.

`severity` and `message` are lifted into the entry; labels such as the message
id and the execution go under `logging.googleapis.com/labels`
(https://cloud.google.com/logging/docs/structured-logging). Never log a secret
or a raw audit entry: callers pass extracted values only.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

LABELS_KEY = "logging.googleapis.com/labels"

logger = logging.getLogger("watchdog")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {"severity": record.levelname, "message": record.getMessage()}
        labels = getattr(record, "labels", None)
        if labels:
            document[LABELS_KEY] = {k: str(v) for k, v in labels.items()}
        document.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            document["message"] += "\n" + self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def setup(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send the watchdog's logs to `stream` (stdout by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
