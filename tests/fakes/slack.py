"""A local fake of the Slack Web API, for the real slack_sdk WebClient.

It answers the methods the watchdog calls on the wire (docs:
https://docs.slack.dev/reference/methods/chat.postMessage and the three steps
of files_upload_v2: files.getUploadURLExternal, a POST of the bytes to the
returned upload URL, which points back here, and files.completeUploadExternal).
It records every request. A test queues faults for the next requests: an HTTP
status (429 with `Retry-After: 0`, 500, 502, 503, 504), a Slack error such as
`invalid_auth`, or a dropped connection.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes._loopback import LoopbackServer

DROP = "drop"


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes
    form: dict = field(default_factory=dict)  # JSON body or form/query fields

    @property
    def api(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class FakeSlack:
    """The fake's state and server thread; `faults` are served first, in order."""

    def __init__(self):
        self.requests: list[Request] = []
        self.faults: list[int | str] = []
        self.uploads: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler(self))

    @property
    def url(self) -> str:
        return f"{self._http.root}/api/"

    def start(self) -> FakeSlack:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def posted(self, api: str = "chat.postMessage") -> list[dict]:
        """The bodies of the successful calls of one method."""
        return [r.form for r in self.requests if r.api == api and r.form.get("_ok")]

    def answer(self, request: Request) -> tuple[int, dict, dict | None]:
        """(status, headers, JSON body or None to drop the connection)."""
        with self._lock:
            self.requests.append(request)
            fault = self.faults.pop(0) if self.faults else None
        if fault == DROP:
            return 0, {}, None
        if isinstance(fault, int):
            headers = {"Retry-After": "0"} if fault == 429 else {}
            return fault, headers, {"ok": False, "error": f"http_{fault}"}
        if isinstance(fault, str):
            return 200, {}, {"ok": False, "error": fault}
        request.form["_ok"] = True
        return 200, {}, self._success(request)

    def _success(self, request: Request) -> dict:
        count = len(self.requests)
        if request.api == "chat.postMessage":
            ts = f"1700000000.{count:06d}"
            return {"ok": True, "channel": request.form.get("channel"), "ts": ts}
        if request.api == "files.getUploadURLExternal":
            file_id = f"F{count:08d}"
            upload = f"{self.url.removesuffix('/api/')}/upload/{file_id}"
            return {"ok": True, "file_id": file_id, "upload_url": upload}
        if request.path.startswith("/upload/"):
            self.uploads[request.path.rsplit("/", 1)[-1]] = request.body
            return {"ok": True}
        if request.api == "files.completeUploadExternal":
            files = json.loads(request.form.get("files", "[]"))
            return {"ok": True, "files": [{"id": f["id"]} for f in files]}
        return {"ok": False, "error": "unknown_method"}


def _handler(fake: FakeSlack):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            split = urlsplit(self.path)
            form = {}
            if split.path.startswith("/api/"):
                form = _fields(split.query, self.headers, body)
            request = Request("POST", split.path, dict(self.headers), body, form)
            status, headers, answer = fake.answer(request)
            if answer is None:
                self.close_connection = True
                self.connection.close()
                return
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def _fields(query: str, headers, body: bytes) -> dict:
    fields = {k: v[0] for k, v in parse_qs(query).items()}
    kind = headers.get("Content-Type") or ""
    if kind.startswith("application/json"):
        fields |= json.loads(body or b"{}")
    elif kind.startswith("application/x-www-form-urlencoded"):
        fields |= {k: v[0] for k, v in parse_qs(body.decode()).items()}
    return fields
