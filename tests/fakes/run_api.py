"""A local fake of the Cloud Run Admin API v2 over REST, for the real run_v2 client.

It serves the paths the client uses on the wire (docs:
https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs):
listing and reading executions, reading and patching a job (a long-running
operation, with the etag enforced as https://google.aip.dev/154 says), and
polling that operation. Errors carry Google's JSON error body. A test picks
the faults: fail the next N requests, stall them, or fail a fraction at random.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes._loopback import LoopbackServer

_STATUS = {
    400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
_NAME = r"[^/]+"
_JOB = rf"projects/{_NAME}/locations/{_NAME}/jobs/{_NAME}"
_OPERATION = rf"projects/{_NAME}/locations/{_NAME}/operations/{_NAME}"
_ROUTES = [  # method, path, what answers: a method of the fake or a store to read
    ("GET", re.compile(rf"^/v2/({_JOB})/executions$"), "_list_executions"),
    ("GET", re.compile(rf"^/v2/({_JOB}/executions/{_NAME})$"), "executions"),
    ("GET", re.compile(rf"^/v2/({_JOB})$"), "jobs"),
    ("PATCH", re.compile(rf"^/v2/({_JOB})$"), "_patch_job"),
    ("GET", re.compile(rf"^/v2/({_OPERATION})$"), "_get_operation"),
]  # fmt: skip
IMAGE = "europe-west1-docker.pkg.dev/p/mmm/train:1"
JOB_TYPE = "type.googleapis.com/google.cloud.run.v2.Job"


class ApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class FakeRunApi:
    """The fake's state, its server thread, and the faults a test asks for."""

    def __init__(self, polls_until_done: int = 2):
        self.jobs: dict[str, dict] = {}
        self.executions: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.newest_first = True
        self.polls_until_done = polls_until_done
        self.counts: Counter[str] = Counter()  # "METHOD /path" -> requests
        self.log: list[tuple[str, str, dict]] = []  # (method, path, query)
        self._faults: list[tuple[int, float]] = []  # (HTTP status or 0, stall seconds)
        self._random: tuple[float, random.Random, int] | None = None
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler_for(self))
        self.url = self._http.root

    def start(self) -> FakeRunApi:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def add_job(self, job: dict) -> None:
        self.jobs[job["name"]] = {"etag": "etag-1", **job}

    def add_execution(self, *executions: dict) -> None:
        for execution in executions:
            self.executions[execution["name"]] = execution

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status`, instead of any faults
        still pending: `fail_next(0)` ends them."""
        with self._lock:
            self._faults = [(status, 0.0)] * count

    def stall_next(self, count: int, seconds: float) -> None:
        """Answer the next `count` requests only after `seconds`."""
        with self._lock:
            self._faults = [(0, seconds)] * count

    def fail_randomly(self, fraction: float, seed: int = 0, status: int = 503) -> None:
        with self._lock:
            self._random = (fraction, random.Random(seed), status)

    def heal(self) -> None:
        """No more faults, pending or random."""
        with self._lock:
            self._faults, self._random = [], None

    def requests_to(self, path: str, method: str = "GET") -> int:
        return self.counts[f"{method} {path}"]

    def handle(self, method: str, url: str, body: bytes) -> tuple[int, dict]:
        path, query = urlsplit(url).path, parse_qs(urlsplit(url).query)
        with self._lock:
            self.counts[f"{method} {path}"] += 1
            self.log.append((method, path, query))
            status, stall = self._next_fault()
        time.sleep(stall)
        try:
            if status:
                raise ApiError(status, "injected fault")
            return 200, self._route(method, path, query, body)
        except ApiError as exc:
            error = {"code": exc.code, "message": exc.message}
            return exc.code, {"error": {**error, "status": _STATUS[exc.code]}}

    def _next_fault(self) -> tuple[int, float]:
        if self._faults:
            return self._faults.pop(0)
        if self._random and self._random[1].random() < self._random[0]:
            return self._random[2], 0.0
        return 0, 0.0

    def _route(self, method: str, path: str, query: dict, body: bytes) -> dict:
        for verb, pattern, answer in _ROUTES:
            if verb == method and (match := pattern.match(path)):
                with self._lock:
                    if answer.startswith("_"):
                        return getattr(self, answer)(match[1], query, body)
                    return self._find(getattr(self, answer), match[1])
        raise ApiError(404, f"no route for {method} {path}")

    def _list_executions(self, parent: str, query: dict, _body: bytes) -> dict:
        self._find(self.jobs, parent)
        mine = [
            e for e in self.executions.values() if e["name"].startswith(parent + "/")
        ]
        mine.sort(key=lambda e: e["createTime"], reverse=self.newest_first)
        size = int(query.get("pageSize", ["100"])[0])
        start = int(query.get("pageToken", ["0"])[0])
        page = {"executions": mine[start : start + size]}
        if start + size < len(mine):
            page["nextPageToken"] = str(start + size)
        return page

    def _patch_job(self, name: str, _query: dict, body: bytes) -> dict:
        stored, sent = self._find(self.jobs, name), json.loads(body or b"{}")
        # AIP-154: a request without an etag updates unconditionally.
        if sent.get("etag") and sent["etag"] != stored["etag"]:
            raise ApiError(409, f"etag {sent['etag']} is stale: the job has changed")
        generation = int(stored["etag"].rsplit("-", 1)[1]) + 1
        self.jobs[name] = {**sent, "name": name, "etag": f"etag-{generation}"}
        operation = f"{name.split('/jobs/')[0]}/operations/op-{len(self.operations)}"
        self.operations[operation] = {"polls": 0, "job": self.jobs[name]}
        metadata = {"@type": JOB_TYPE, **self.jobs[name]}
        return {"name": operation, "done": False, "metadata": metadata}

    def _get_operation(self, name: str, _query: dict, _body: bytes) -> dict:
        operation = self._find(self.operations, name)
        operation["polls"] += 1
        typed = {"@type": JOB_TYPE, **operation["job"]}
        if operation["polls"] < self.polls_until_done:
            return {"name": name, "done": False, "metadata": typed}
        return {"name": name, "done": True, "metadata": typed, "response": typed}

    @staticmethod
    def _find(store: dict, name: str) -> dict:
        if name not in store:
            raise ApiError(404, f"Resource '{name}' was not found")
        return store[name]


def _handler_for(fake: FakeRunApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, document = fake.handle(
                self.command, self.path, self.rfile.read(length)
            )
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a stalled request

        do_GET = do_PATCH = _answer

        def log_message(self, *_args):
            pass

    return Handler


def job(name: str, env: dict[str, str] | None = None) -> dict:
    """A Job in the v2 JSON shape; `name` is projects/P/locations/L/jobs/J."""
    container = {"image": IMAGE, "env": _env(env)}
    return {"name": name, "template": {"template": {"containers": [container]}}}


def execution(
    job: str, execution_id: str, *, created: str, completed: str | None = None,
    tasks: int = 1, succeeded: int | None = None, failed: int = 0, cancelled: int = 0,
    cpu: str = "8", memory: str = "32Gi", env: dict[str, str] | None = None,
) -> dict:  # fmt: skip
    """An Execution in the v2 JSON shape; `job` is projects/P/locations/L/jobs/J.

    Left out, `succeeded` is every task once `completed` is given, else none.
    """
    if succeeded is None:
        succeeded = tasks - failed - cancelled if completed else 0
    limits = {"cpu": cpu, "memory": memory}
    container = {"image": IMAGE, "resources": {"limits": limits}, "env": _env(env)}
    # Condition.State, as ints since the client asks for enum-encoding=int:
    # 2 CONDITION_RECONCILING, 3 CONDITION_FAILED, 4 CONDITION_SUCCEEDED.
    state = 4 if completed and succeeded == tasks else 3 if completed else 2
    document = {
        "name": f"{job}/executions/{execution_id}",
        "uid": f"uid-{execution_id}",
        "job": job.rsplit("/", 1)[-1],
        "createTime": created,
        "startTime": created,
        "taskCount": tasks,
        "succeededCount": succeeded,
        "failedCount": failed,
        "cancelledCount": cancelled,
        "template": {"containers": [container]},
        "logUri": f"https://console.cloud.google.com/logs/viewer?e={execution_id}",
        "conditions": [{"type": "Completed", "state": state}],
    }
    if completed:
        document["completionTime"] = completed
    return document


def _env(env: dict[str, str] | None) -> list[dict]:
    return [{"name": k, "value": v} for k, v in (env or {}).items()]
