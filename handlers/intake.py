"""From a Pub/Sub delivery to a LogEntry dict, or a BadMessage saying why not.

A log sink publishes one LogEntry per message, as base64 JSON in
`message.data` (https://cloud.google.com/logging/docs/export/pubsub).
functions-framework hands the function a CloudEvent whose `data` is the push
body, whether it arrived in binary mode, structured mode or as a raw push.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from handlers.errors import BadMessage

PAYLOAD_KEYS = ("textPayload", "jsonPayload", "protoPayload")


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    attributes: dict
    entry: dict


def message_of(event_data: object) -> dict:
    """The Pub/Sub `message` object inside a CloudEvent's data."""
    if isinstance(event_data, bytes | str):
        try:
            event_data = json.loads(event_data)
        except ValueError:
            raise BadMessage("not_json", "event data is not a JSON object") from None
    if not isinstance(event_data, dict) or not isinstance(
        event_data.get("message"), dict
    ):
        raise BadMessage("not_pubsub", "expected event data {'message': {...}}")
    return event_data["message"]


def message_id_of(message: dict, fallback: str = "") -> str:
    return str(message.get("messageId") or message.get("message_id") or fallback)


def decode(event_data: object, max_bytes: int, fallback_id: str = "") -> Delivery:
    """Decode the LogEntry carried by one Pub/Sub message."""
    message = message_of(event_data)
    message_id = message_id_of(message, fallback_id)
    data = message.get("data")
    if not isinstance(data, str) or not data:
        raise BadMessage("no_data", f"message {message_id} has no base64 data")
    if len(data) > (max_bytes * 4) // 3 + 4:
        raise BadMessage("oversized", f"{len(data)} base64 characters")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadMessage("not_base64", "message.data is not valid base64") from None
    if len(raw) > max_bytes:
        raise BadMessage("oversized", f"{len(raw)} bytes, limit {max_bytes}")
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("not_json", "message.data is not JSON") from None
    check_entry(entry)
    attributes = message.get("attributes")
    return Delivery(
        message_id, attributes if isinstance(attributes, dict) else {}, entry
    )


def check_entry(entry: object) -> None:
    """Raise BadMessage unless `entry` has the shape of a LogEntry."""
    if not isinstance(entry, dict):
        raise BadMessage("not_log_entry", f"expected an object, got {_kind(entry)}")
    if not isinstance(entry.get("logName"), str):
        raise BadMessage("not_log_entry", "no logName")
    if not isinstance(entry.get("resource"), dict):
        raise BadMessage("not_log_entry", "no resource")
    if not any(key in entry for key in PAYLOAD_KEYS):
        raise BadMessage("not_log_entry", "no textPayload, jsonPayload or protoPayload")


def _kind(value: object) -> str:
    return type(value).__name__
