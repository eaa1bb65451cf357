"""Seek: deliver a subscription's retained messages again, to production.

Pub/Sub's seek (https://cloud.google.com/pubsub/docs/replay-overview) marks
every message published after a time as unacknowledged, or resets the
subscription to a snapshot; the messages then reach the function again as
ordinary deliveries. That is safe because every effect of the function is
claimed once in its ledger: a verdict per execution, a message per kind, a
rollback per streak. Seeking back needs retained messages: the topic's
retention, or the subscription's `retain_acked_messages`.
"""

from __future__ import annotations

from datetime import datetime

from handlers import times
from handlers.errors import ConfigError


def full_name(name: str, kind: str, project: str) -> str:
    """projects/P/KIND/NAME, from a short name and WATCHDOG_PROJECT."""
    if name.startswith("projects/"):
        return name
    if not project:
        raise ConfigError(
            f"{name!r} is a short {kind[:-1]} name: give projects/P/{kind}/{name}, "
            "or set WATCHDOG_PROJECT"
        )
    return f"projects/{project}/{kind}/{name}"


def seek(
    subscription: str, moment: str | None = None, snapshot: str | None = None
) -> dict:
    """Seek the subscription to a time (RFC 3339) or a snapshot; the request."""
    from google.api_core import exceptions as api
    from google.cloud import pubsub_v1

    request: dict[str, object] = {"subscription": subscription}
    if moment is not None:
        when = times.parse(moment)
        if when is None:
            raise ConfigError(f"--time {moment!r}: expected RFC 3339, such as "
                              "2026-12-01T09:00:00Z")  # fmt: skip
        request["time"] = when
    else:
        request["snapshot"] = snapshot
    try:
        pubsub_v1.SubscriberClient().seek(request=request)
    except (api.NotFound, api.PermissionDenied, api.InvalidArgument,
            api.FailedPrecondition) as exc:  # fmt: skip
        raise ConfigError(f"seek of {subscription} refused: {exc.message}") from exc
    return request


def describe(request: dict) -> str:
    target = request.get("snapshot") or _iso(request.get("time"))
    return (
        f"{request['subscription']}: sought to {target}; its retained messages "
        "from then on are delivered again"
    )


def _iso(moment: object) -> str:
    return moment.isoformat() if isinstance(moment, datetime) else str(moment)
