"""The Cloud Run Admin API v2, as the sweeper needs it: recent executions of a job.

Importing this module imports `google.cloud.run_v2` (about half a second of cold
start), so callers import it lazily, only on the paths that ask the API.

An execution read here becomes the same `completion` observation that
`platform.read_completion` makes of the completion audit entry, so a verdict
does not depend on which source told it.

- Executions: https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions
- Retry and timeout arguments: https://googleapis.dev/python/google-api-core/latest/retry.html
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import google.auth.exceptions
import requests
from google.api_core import exceptions as api
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from handlers import platform
from handlers.config import OVERRIDE_ENV, Settings
from handlers.errors import ConfigError, TransientError
from handlers.log import logger

PAGE_SIZE = 50

# What may pass if asked again a little later. Over REST, google-api-core maps
# HTTP 503, 500, 429, 502 and 504 to the first five classes below
# (DeadlineExceeded is 504's gRPC-named subclass, kept for a gRPC transport);
# the requests and google-auth errors (refused connection, read timeout) come
# through as they are.
_TRANSIENT = (
    api.ServiceUnavailable,
    api.InternalServerError,
    api.TooManyRequests,
    api.BadGateway,
    api.GatewayTimeout,
    api.DeadlineExceeded,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    google.auth.exceptions.TransportError,
)


@dataclass(frozen=True)
class CallLimits:
    """How long one API request may take, retries included.

    A request is retried on transient errors with jittered exponential waits
    (up to `first_wait`, doubling to `max_wait`) until `total_seconds` have
    passed; each attempt gets what is left of that, at most `attempt_seconds`
    and at least `min_attempt_seconds`. So one request gives up within about
    `total_seconds + min_attempt_seconds`.
    """

    total_seconds: float = 20.0
    attempt_seconds: float = 10.0
    min_attempt_seconds: float = 1.0
    first_wait: float = 0.5
    max_wait: float = 4.0

    def retry(self, call: str) -> Retry:
        # NOTE: google-api-core's Retry does not read Retry-After; on a 429 it
        # waits its own backoff instead, bounded all the same by total_seconds.
        return Retry(
            predicate=if_exception_type(*_TRANSIENT),
            initial=self.first_wait,
            maximum=self.max_wait,
            multiplier=2.0,
            timeout=self.total_seconds,
            on_error=functools.partial(_log_retry, call),
        )

    def timeout(self) -> _AttemptTimeout:
        return _AttemptTimeout(self)


LIMITS = CallLimits()


class _AttemptTimeout:
    """Gives each attempt of a request the time left of its budget.

    google-api-core's own TimeToDeadlineTimeout hands a late attempt the whole
    timeout again once less than a second is left, which would let one request
    run for twice its budget.
    """

    def __init__(self, limits: CallLimits):
        self._limits = limits

    def __call__(self, func):
        deadline = time.monotonic() + self._limits.total_seconds

        @functools.wraps(func)
        def attempt(*args, **kwargs):
            left = min(deadline - time.monotonic(), self._limits.attempt_seconds)
            kwargs["timeout"] = max(left, self._limits.min_attempt_seconds)
            return func(*args, **kwargs)

        return attempt


def executions_client(settings: Settings) -> run_v2.ExecutionsClient:
    """An ExecutionsClient over REST: to `run_api_endpoint` without credentials
    when that is set (local fakes), else to Google with default credentials."""
    return _client(run_v2.ExecutionsClient, settings)


def jobs_client(settings: Settings) -> run_v2.JobsClient:
    """A JobsClient, built as `executions_client` builds its client."""
    return _client(run_v2.JobsClient, settings)


def _client(kind, settings: Settings):
    if settings.run_api_endpoint:
        return kind(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": settings.run_api_endpoint},
        )
    try:
        return kind(transport="rest")
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigError(
            "no credentials for the Cloud Run Admin API: deploy the function with "
            "a service account, or set GOOGLE_APPLICATION_CREDENTIALS; "
            "to ask no Run API at all, leave WATCHDOG_PROJECT empty "
            f"({exc})"
        ) from exc


def recent_executions(
    client: run_v2.ExecutionsClient,
    settings: Settings,
    job: str,
    since: datetime,
    *,
    limits: CallLimits | None = None,
) -> list[run_v2.Execution]:
    """The job's executions created at or after `since`, oldest first.

    `since` without a time zone is taken as UTC. `limits` defaults to `LIMITS`,
    read at each call so that a test can make it shorter. Raises TransientError
    when the API cannot answer for now, ConfigError when it never will as
    configured.
    """
    limits = limits or LIMITS
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    parent = job_path(settings, job)
    request = run_v2.ListExecutionsRequest(parent=parent, page_size=PAGE_SIZE)
    found: list[run_v2.Execution] = []

    with api_errors("list_executions", parent, settings, limits):
        pager = client.list_executions(
            request=request,
            retry=limits.retry("list_executions"),
            timeout=limits.timeout(),
        )
        for page in pager.pages:
            found += [e for e in page.executions if _created(e) >= since]
            if _reaches_before(page.executions, since):
                break

    return sorted(found, key=_created)


def _reaches_before(page: list[run_v2.Execution], since: datetime) -> bool:
    """Whether this page ends the listing: newest first, and reaching before `since`.

    NOTE: ListExecutions documents no order; this early stop relies on the
    newest-first order observed from the API, so that once a page reaches an
    execution older than `since`, later pages hold only older ones. A page that
    is not newest first keeps the listing going, so a changed order costs
    requests (up to the 1,000 executions the API keeps, 20 pages) instead of
    missing executions. An order that is newest first within pages but not
    across them would still cut the listing short.
    """
    created = [_created(e) for e in page]
    newest_first = all(a >= b for a, b in itertools.pairwise(created))
    return bool(created) and newest_first and created[-1] < since


def completion_fields(execution: run_v2.Execution) -> dict | None:
    """The fields of a `completion` observation, as `platform.read_completion`
    gives them, or None while the execution has not completed."""
    if "completion_time" not in execution:
        return None
    container = _first_container(execution)
    resource_limits = container.resources.limits if container else {}
    outcome = _outcome(execution)
    return {
        "outcome": outcome,
        "message": _message(execution, outcome),
        "start_time": _rfc3339(execution, "start_time"),
        "completion_time": _rfc3339(execution, "completion_time"),
        "task_count": execution.task_count or 1,
        "succeeded_count": execution.succeeded_count,
        "failed_count": execution.failed_count,
        "vcpu": platform.cpu_of(resource_limits.get("cpu")),
        "memory_gib": platform.memory_gib_of(resource_limits.get("memory")),
        "log_uri": execution.log_uri or None,
        **_override_of(container),
        "source": "run_api",
    }


def completed_at(execution: run_v2.Execution) -> float:
    """The Unix time of the execution's completion (0.0 while it runs)."""
    if "completion_time" not in execution:
        return 0.0
    return execution.completion_time.timestamp()


def job_path(settings: Settings, job: str) -> str:
    return f"projects/{settings.project}/locations/{settings.region}/jobs/{job}"


def _outcome(execution: run_v2.Execution) -> str:
    if execution.succeeded_count == (execution.task_count or 1):
        return "succeeded"
    if execution.cancelled_count > 0:
        return "cancelled"
    return "failed"


def _message(execution: run_v2.Execution, outcome: str) -> str:
    """A sentence in the words of the completion audit entry."""
    name = execution.name.rsplit("/", 1)[-1]
    tasks = f"{execution.succeeded_count}/{execution.task_count or 1}"
    if outcome == "succeeded":
        return f"Execution {name} has completed successfully."
    if outcome == "cancelled":
        return f"Execution {name} was cancelled, {tasks} tasks were a success."
    return f"Execution {name} has failed to complete, {tasks} tasks were a success."


def _first_container(execution: run_v2.Execution) -> run_v2.Container | None:
    """The first container, the one `platform.read_completion` reads too."""
    containers = execution.template.containers
    return containers[0] if containers else None


def _override_of(container: run_v2.Container | None) -> dict:
    """The override variable only: the rest of the env may hold secrets."""
    if container is None:
        return {"env_known": False, "override_raw": None}
    for var in container.env:
        if var.name == OVERRIDE_ENV:
            # A value from Secret Manager has no text here: set, but unreadable.
            return {"env_known": True, "override_raw": var.value[:64]}
    return {"env_known": True, "override_raw": None}


def _rfc3339(execution: run_v2.Execution, field: str) -> str | None:
    if field not in execution:
        return None
    stamp = getattr(execution, field).rfc3339()
    return stamp.replace(".000000Z", "Z")


_EPOCH = datetime.fromtimestamp(0, UTC)


def _created(execution: run_v2.Execution) -> datetime:
    return execution.create_time if "create_time" in execution else _EPOCH


@contextmanager
def api_errors(
    call: str, resource: str, settings: Settings, limits: CallLimits
) -> Iterator[None]:
    """Turn the client's exceptions into the watchdog's: retry later, or fix."""
    try:
        yield
    except (api.RetryError, *_TRANSIENT) as exc:
        raise TransientError(
            f"Run API {call} {resource}: no usable answer within "
            f"{limits.total_seconds:g} s of retries ({_cause(exc)})"
        ) from exc
    # NOTE: over REST, google-api-core picks the class from the HTTP status
    # alone: a 403 is Forbidden and a 401 Unauthorized, never their gRPC-named
    # subclasses PermissionDenied and Unauthenticated, so catch the parents.
    except (api.NotFound, api.Forbidden, api.Unauthorized) as exc:
        raise ConfigError(f"Run API {call} {resource}: {_fix(exc, settings)}") from exc
    except api.BadRequest as exc:
        raise ConfigError(
            f"Run API {call} {resource} refused the request: {exc.message}; "
            "check WATCHDOG_PROJECT, WATCHDOG_REGION and WATCHDOG_JOBS"
        ) from exc


def _fix(exc: api.GoogleAPICallError, settings: Settings) -> str:
    if isinstance(exc, api.NotFound):
        return (
            f"not found ({exc.message}); check that the job exists in project "
            f"WATCHDOG_PROJECT={settings.project!r}, region "
            f"WATCHDOG_REGION={settings.region!r}, and is spelled so in WATCHDOG_JOBS"
        )
    if isinstance(exc, api.Forbidden):
        return (
            f"permission denied ({exc.message}); grant the function's service "
            "account roles/run.viewer on the job or the project, and check "
            f"WATCHDOG_PROJECT={settings.project!r}"
        )
    return (
        f"credentials refused ({exc.message}); check the function's service "
        "account or GOOGLE_APPLICATION_CREDENTIALS"
    )


def _cause(exc: Exception) -> str:
    """The last error behind a RetryError, else the error itself, in a few words."""
    last = exc.cause if isinstance(exc, api.RetryError) and exc.cause else exc
    if isinstance(last, api.GoogleAPICallError):
        # Its str() repeats the whole URL with the query; code and message suffice.
        return f"{last.code} {type(last).__name__}: {last.message}"[:200]
    return f"{type(last).__name__}: {last}"[:200]


def _log_retry(call: str, exc: Exception) -> None:
    logger.warning("Run API %s failed, retrying: %s", call, _cause(exc))
