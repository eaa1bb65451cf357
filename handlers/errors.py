"""The watchdog's exceptions: one small family, split by what a caller must do."""


class WatchdogError(Exception):
    """Base of every error the watchdog raises on purpose."""


class BadMessage(WatchdogError):
    """A message that can never succeed: acknowledge it and log the reason.

    `reason` is a short machine-readable code (`not_base64`, `not_json`, ...);
    the message says what was expected and what was found.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TransientError(WatchdogError):
    """A failure that may pass (ledger busy, API unavailable): raise to retry."""


class ConfigError(WatchdogError):
    """The configuration is unusable; the message names the variable and the fix."""
