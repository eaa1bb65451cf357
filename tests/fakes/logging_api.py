"""A local fake of Cloud Logging's `entries.list`, for the real logging client.

It answers `POST /v2/entries:list`
(https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list)
from a list of LogEntries, oldest first, `pageSize` at a time, with an opaque
`nextPageToken` while more remain. Of the filter it evaluates only the
`timestamp>=` and `timestamp<` terms; the rest is recorded for the tests to
check. It records every request body, and answers the next N requests with
429 RESOURCE_EXHAUSTED when a test asks, as the 60-a-minute quota does.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler

from handlers import times
from tests.fakes._loopback import LoopbackServer

_AFTER = re.compile(r'timestamp>="([^"]+)"')
_BEFORE = re.compile(r'timestamp<"([^"]+)"')
QUOTA = {
    "code": 429,
    "status": "RESOURCE_EXHAUSTED",
    "message": "Quota exceeded for quota metric 'Read requests' and limit "
    "'Read requests per minute' of service 'logging.googleapis.com'",
}


class FakeLogging:
    def __init__(self, entries: list[dict]):
        self.entries = sorted(entries, key=lambda e: times.parse(e["timestamp"]))
        self.requests: list[dict] = []
        self.faults: list[int | None] = []  # per request: 429, or None to answer
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler(self))

    @property
    def url(self) -> str:
        return self._http.root

    def start(self) -> FakeLogging:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def refuse_next(self, count: int, after: int = 0) -> None:
        """Answer 429 to `count` requests, after answering `after` normally."""
        with self._lock:
            self.faults = [None] * after + [429] * count

    def answer(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(body)
            fault = self.faults.pop(0) if self.faults else None
        if fault:
            return fault, {"error": QUOTA}
        matching = [e for e in self.entries if _within(e, body.get("filter", ""))]
        start = int(body.get("pageToken") or "0")
        size = int(body.get("pageSize") or 50)
        page = {"entries": matching[start : start + size]}
        if start + size < len(matching):
            page["nextPageToken"] = str(start + size)
        return 200, page


def _within(entry: dict, query: str) -> bool:
    moment = times.parse(entry["timestamp"])
    after, before = _AFTER.search(query), _BEFORE.search(query)
    if after and moment < times.parse(after.group(1)):
        return False
    return not (before and moment >= times.parse(before.group(1)))


def _handler(fake: FakeLogging) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.split("?")[0] != "/v2/entries:list":
                status, answer = 404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                 "message": self.path}}  # fmt: skip
            else:
                status, answer = fake.answer(body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    return Handler
