"""The Slack Web API client, with bounded retries and errors the watchdog acts on.

Imported only when `SLACK_BOT_TOKEN` is set (slack_sdk is not needed otherwise).
Retries follow https://docs.slack.dev/apis/web-api/rate-limits: a 429 waits
its `Retry-After`; 500, 502, 503 and 504 and a dropped connection are tried
again after a short backoff; each at most `MAX_RETRIES` times. What is left
becomes a TransientError, except a refused token, which retrying cannot fix.
"""

from __future__ import annotations

import random
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    BackoffRetryIntervalCalculator,
)

from handlers.errors import ConfigError, TransientError

MAX_RETRIES = 3  # per call, shared by the three handlers (one RetryState)
# A longer Retry-After than this is not waited for: the function would hold
# the delivery that long; the message is retried on a later tick instead.
MAX_RETRY_AFTER_SECONDS = 20
TIMEOUT_SECONDS = 10
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked",
     "token_expired", "not_allowed_token_type", "missing_scope"}
)  # fmt: skip
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class ServerErrorRetry(ServerErrorRetryHandler):
    """Like slack_sdk's, which retries only 500 and 503, but also 502 and 504."""

    STATUSES = frozenset({500, 502, 503, 504})

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return response is not None and response.status_code in self.STATUSES


class RateLimitRetry(RateLimitErrorRetryHandler):
    """Waits `Retry-After` (capped) plus up to `jitter` seconds, then retries."""

    def __init__(self, max_retry_count: int = MAX_RETRIES, jitter: float = 1.0):
        super().__init__(max_retry_count=max_retry_count)
        self.jitter = jitter

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is None or response.status_code != 429:
            return False
        return _retry_after(response.headers) <= MAX_RETRY_AFTER_SECONDS

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None):
        state.next_attempt_requested = True
        time.sleep(_retry_after(response.headers) + self.jitter * random.random())
        state.increment_current_attempt()


def _retry_after(headers: dict) -> int:
    for name, values in headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            return int(value) if str(value).isdigit() else MAX_RETRY_AFTER_SECONDS
    return 1


def web_client(
    token: str, base_url: str = "", interval=None, jitter: float = 1.0
) -> WebClient:
    """A WebClient whose every call is bounded: retries, waits and timeout.

    `interval` (a slack_sdk RetryIntervalCalculator) and `jitter` are for the
    tests; the default backs off 0.5, 1, 2 s plus up to 1 s of jitter.
    """
    interval = interval or BackoffRetryIntervalCalculator(backoff_factor=0.5)
    handlers = [
        ConnectionErrorRetryHandler(MAX_RETRIES, interval_calculator=interval),
        RateLimitRetry(MAX_RETRIES, jitter=jitter),
        ServerErrorRetry(MAX_RETRIES, interval_calculator=interval),
    ]
    options = {"base_url": base_url} if base_url else {}
    return WebClient(
        token=token, timeout=TIMEOUT_SECONDS, retry_handlers=handlers, **options
    )


def call(what: str, request, *args, **kwargs):
    """Run one client call; raise ConfigError or TransientError on failure."""
    try:
        return request(*args, **kwargs)
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        status = exc.response.status_code if exc.response is not None else None
        if error in AUTH_ERRORS or status == 401:
            raise ConfigError(
                f"Slack refused the bot token ({error or status}) on {what}: "
                "put a valid bot token (xoxb-…) with the chat:write and files:write "
                "scopes in the SLACK_BOT_TOKEN secret"
            ) from None
        if error in CHANNEL_ERRORS:
            raise ConfigError(
                f"Slack cannot post there ({error}) on {what}: check "
                "WATCHDOG_SLACK_CHANNEL / WATCHDOG_SLACK_ALERT_CHANNEL and invite "
                "the bot to the channel"
            ) from None
        raise TransientError(f"Slack {what} failed: {status} {error}") from None
    except (SlackClientError, OSError) as exc:
        # NOTE: `from None` and only the type: the request, which carries the
        # token in its headers, must not reach a log through a traceback.
        raise TransientError(f"Slack {what} failed: {type(exc).__name__}") from None
