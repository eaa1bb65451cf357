"""Shared fixtures: settings, ledgers, and the function behind functions-framework."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest
from functions_framework import create_app

from handlers import app, log
from handlers.config import Settings
from handlers.ledger.sqlite import SqliteLedger

pytest_plugins = ["tests.emulators"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({})


@pytest.fixture
def ledger(tmp_path):
    ledger = SqliteLedger(str(tmp_path / "ledger.sqlite3"))
    yield ledger
    ledger.close()


class Function:
    """The deployed entry points, called through functions-framework in process."""

    def __init__(self, logs: io.StringIO):
        source = str(ROOT / "main.py")
        self.logs = create_app("handle_log_entry", source, "cloudevent").test_client()
        self.ticks = create_app("handle_tick", source, "cloudevent").test_client()
        self._log_stream = logs

    def push(self, body: dict):
        return self.logs.post("/", json=body)

    def tick(self):
        body = {"message": {"data": "", "messageId": "tick"}, "subscription": "t"}
        return self.ticks.post("/", json=body)

    def settle(self):
        """Let the grace period pass, then tick."""
        grace = self.watchdog.settings.grace_seconds
        self.watchdog.clock = lambda: time.time() + grace + 1
        return self.tick()

    @property
    def watchdog(self):
        return app.watchdog()

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self._log_stream.getvalue().splitlines()]


@pytest.fixture
def function(tmp_path, monkeypatch):
    """The function with a fresh ledger, a minute of grace, and captured logs."""
    monkeypatch.setenv("WATCHDOG_LEDGER", f"sqlite:{tmp_path}/ledger.sqlite3")
    monkeypatch.setenv("WATCHDOG_GRACE_SECONDS", "60")
    stream = io.StringIO()
    log.setup(stream, logging.DEBUG)
    app.reset()
    yield Function(stream)
    app.reset()
    log.logger.handlers.clear()
