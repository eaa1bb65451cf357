"""Configuration: every environment variable the watchdog reads, in one place.

Each variable is declared once with its default and meaning; `Settings.from_env`
reads and checks them all, and `python main.py check-config` prints the result
without side effects. Rates default to the published Cloud Run job prices of a
Tier 1 region (https://cloud.google.com/run/pricing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from handlers.errors import ConfigError

OVERRIDE_ENV = "PARALLELLY_OVERRIDE_CORES"
# NOTE: not a WATCHDOG_ variable on purpose: a secret (Secret Manager, exposed as
# an env var) is read by handlers/app.py only, and never described or printed.
SLACK_TOKEN_ENV = "SLACK_BOT_TOKEN"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    parse: Callable[[str], object]
    meaning: str

    @property
    def field(self) -> str:
        """The Settings field it fills: WATCHDOG_GRACE_SECONDS, grace_seconds."""
        return self.name.removeprefix("WATCHDOG_").lower()


@dataclass(frozen=True)
class Settings:
    jobs: frozenset[str]
    ledger: str
    tolerance_cores: int
    grace_seconds: float
    cpu_rate_usd: float
    memory_rate_usd: float
    baseline_training_minutes: float
    max_entry_bytes: int
    project: str
    region: str
    run_api_endpoint: str
    sweep_lookback_hours: float
    dedup_ttl_days: float
    rollback_mode: str
    rollback_threshold: int
    rollback_cooldown_hours: float
    rollback_cpu: str
    rollback_memory: str
    rollback_cores: int
    rollback_core_vars: tuple[str, ...]
    rollback_timeout_seconds: float
    streak_window_days: float
    slack_channel: str
    slack_alert_channel: str
    slack_oncall_group: str
    slack_api_url: str
    digest_days: int
    audit_topic: str
    slack_audit_channel: str
    logging_api_endpoint: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every variable; raise ConfigError naming all the bad ones."""
        env = os.environ if env is None else env
        raw = {v.name: env.get(v.name, v.default).strip() for v in VARIABLES}
        problems: list[str] = []
        values = {}
        for v in VARIABLES:
            try:
                values[v.field] = v.parse(raw[v.name])
            except ValueError as exc:
                problems.append(f"{v.name}={raw[v.name]!r}: {exc}")
        values["slack_alert_channel"] = (
            values.get("slack_alert_channel") or raw["WATCHDOG_SLACK_CHANNEL"]
        )
        settings = cls(**{f.name: values.get(f.name) for f in fields(cls)})
        if env.get(SLACK_TOKEN_ENV) and not settings.slack_channel:
            problems.append(
                f"WATCHDOG_SLACK_CHANNEL='': {SLACK_TOKEN_ENV} is set, so a channel "
                "id is needed (such as C0123ABCD)"
            )
        if problems:
            raise ConfigError(
                "unusable configuration; fix these environment variables:\n  "
                + "\n  ".join(problems)
            )
        return settings

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, effective value, meaning) rows, in declaration order."""
        return [(v.name, _show(getattr(self, v.field)), v.meaning) for v in VARIABLES]


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:.10f}".rstrip("0").rstrip(".")
    return str(value)


def _job_names(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError("expected at least one job name")
    return names


def _ledger_url(text: str) -> str:
    scheme, _, rest = text.partition(":")
    if scheme == "firestore" and (not rest or _FIRESTORE_DATABASE.match(rest)):
        return text
    if scheme != "sqlite" or not rest:
        raise ValueError(
            "expected sqlite:PATH, sqlite::memory:, firestore or firestore://DATABASE"
        )
    if rest != ":memory:":
        folder = _existing_parent(Path(rest).resolve().parent)
        if not os.access(folder, os.W_OK):
            raise ValueError(f"{folder} is not writable")
    return text


_FIRESTORE_DATABASE = re.compile(r"^//[a-z][a-z0-9-]{3,62}$|^//\(default\)$")
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")


def _region(text: str) -> str:
    if not _REGION.match(text):
        raise ValueError("expected a region such as europe-west1")
    return text


def _endpoint(text: str) -> str:
    if text and not text.startswith(("http://", "https://")):
        raise ValueError("expected empty, or a URL such as http://127.0.0.1:8080")
    return text


def _topic(text: str) -> str:
    if text and not re.fullmatch(r"projects/[^/\s]+/topics/[^/\s]+", text):
        raise ValueError("expected empty, or projects/PROJECT/topics/TOPIC")
    return text


def _slack_url(text: str) -> str:
    _endpoint(text)
    if text and not text.endswith("/"):
        raise ValueError(
            "expected a URL ending in /, such as http://127.0.0.1:8080/api/"
        )
    return text


def _channel(text: str) -> str:
    if text and not re.fullmatch(r"[CGD][A-Z0-9]{6,}", text):
        raise ValueError("expected empty, or a channel id such as C0123ABCD")
    return text


def _user_group(text: str) -> str:
    if text and not re.fullmatch(r"S[A-Z0-9]{6,}", text):
        raise ValueError("expected empty, or a user-group id such as S0123ABC")
    return text


MODES = ("off", "dry-run", "env", "resources")


def _mode(text: str) -> str:
    if text not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}")
    return text


def _at_least_one(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise ValueError("expected a whole number, 1 or more")
    return value


def _cpu(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?m?", text):
        raise ValueError("expected a CPU quantity such as 4 or 4000m")
    return text


def _memory(text: str) -> str:
    if not re.fullmatch(r"\d+(Ki|Mi|Gi|Ti|k|M|G|T)?", text):
        raise ValueError("expected a memory quantity such as 16Gi")
    return text


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names):
        raise ValueError("expected environment variable names, comma separated")
    return names


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise ValueError("expected zero or more")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise ValueError("expected more than zero")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError("expected a whole number, zero or more")
    return int(text)


def _byte_limit(text: str) -> int:
    value = _count(text)
    if value < 1024:
        raise ValueError("expected at least 1024 bytes")
    return value


def _text(text: str) -> str:
    return text


VARIABLES = (
    Variable("WATCHDOG_JOBS", "mmm-app-training,mmm-app-dev-training", _job_names,
             "Cloud Run job names to watch, comma separated"),
    Variable("WATCHDOG_LEDGER", "sqlite:.watchdog/ledger.sqlite3", _ledger_url,
             "where state is kept: sqlite:PATH (relative to the working "
             "directory), sqlite::memory:, firestore (the default database) or "
             "firestore://DATABASE"),
    Variable("WATCHDOG_TOLERANCE_CORES", "1", _count,
             "cores below the override that still count as effective"),
    Variable("WATCHDOG_GRACE_SECONDS", "120", _non_negative,
             "seconds after an execution's completion entry before its verdict"),
    Variable("WATCHDOG_CPU_RATE_USD", "0.000018", _non_negative,
             "price of one vCPU-second of a Cloud Run job"),
    Variable("WATCHDOG_MEMORY_RATE_USD", "0.000002", _non_negative,
             "price of one GiB-second of a Cloud Run job"),
    Variable("WATCHDOG_BASELINE_TRAINING_MINUTES", "2.3", _positive,
             "training minutes the speed-up is measured against"),
    Variable("WATCHDOG_MAX_ENTRY_BYTES", "786432", _byte_limit,
             "largest decoded LogEntry accepted; larger ones are rejected"),
    Variable("WATCHDOG_PROJECT", "", _text,
             "project of the watched jobs; empty: the sweeper asks no Run API"),
    Variable("WATCHDOG_REGION", "europe-west1", _region,
             "region of the watched jobs"),
    Variable("WATCHDOG_RUN_API_ENDPOINT", "", _endpoint,
             "Cloud Run Admin API endpoint; empty: Google's"),
    Variable("WATCHDOG_SWEEP_LOOKBACK_HOURS", "48", _positive,
             "how far back the sweeper looks for executions without verdict"),
    Variable("WATCHDOG_DEDUP_TTL_DAYS", "35", _positive,
             "days the ledger keeps observations (deduplication records)"),
    Variable("WATCHDOG_ROLLBACK_MODE", "dry-run", _mode,
             "off, dry-run (decide and report only), env (empty the override) "
             "or resources (back to the rollback CPU, memory and cores)"),
    Variable("WATCHDOG_ROLLBACK_THRESHOLD", "3", _at_least_one,
             "consecutive failing verdicts of a job that trigger a rollback"),
    Variable("WATCHDOG_ROLLBACK_COOLDOWN_HOURS", "24", _non_negative,
             "hours after a rollback of a job before another one"),
    Variable("WATCHDOG_ROLLBACK_CPU", "4", _cpu,
             "CPU limit the resources mode sets"),
    Variable("WATCHDOG_ROLLBACK_MEMORY", "16Gi", _memory,
             "memory limit the resources mode sets"),
    Variable("WATCHDOG_ROLLBACK_CORES", "4", _at_least_one,
             "value the resources mode gives the core-count variables"),
    Variable("WATCHDOG_ROLLBACK_CORE_VARS", "PARALLELLY_OVERRIDE_CORES", _names,
             "the job's core-count env variables, comma separated"),
    Variable("WATCHDOG_ROLLBACK_TIMEOUT_SECONDS", "120", _positive,
             "how long to wait for the job update to finish"),
    Variable("WATCHDOG_STREAK_WINDOW_DAYS", "30", _positive,
             "days of verdicts in which a failure streak is looked for"),
    Variable("WATCHDOG_SLACK_CHANNEL", "", _channel,
             "Slack channel id for the summaries and the digest; used only "
             "when SLACK_BOT_TOKEN is set"),
    Variable("WATCHDOG_SLACK_ALERT_CHANNEL", "", _channel,
             "Slack channel id for streak notices and rollback alerts; empty: "
             "WATCHDOG_SLACK_CHANNEL"),
    Variable("WATCHDOG_SLACK_ONCALL_GROUP", "", _user_group,
             "Slack user-group id (S0123ABC) mentioned by rollback alerts; empty: "
             "no mention"),
    Variable("WATCHDOG_SLACK_API_URL", "", _slack_url,
             "Slack Web API base URL; empty: Slack's"),
    Variable("WATCHDOG_DIGEST_DAYS", "7", _count,
             "days covered by each Slack digest; 0: no digest"),
    Variable("WATCHDOG_AUDIT_TOPIC", "", _topic,
             "Pub/Sub topic (projects/P/topics/T) replays publish to; messages "
             "from it are audited, never acted on"),
    Variable("WATCHDOG_SLACK_AUDIT_CHANNEL", "", _channel,
             "Slack channel id for audit reports; empty: the log or console"),
    Variable("WATCHDOG_LOGGING_API_ENDPOINT", "", _endpoint,
             "Cloud Logging API endpoint replays read; empty: Google's"),
)  # fmt: skip
