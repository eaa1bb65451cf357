"""What the benchmarks share: a functions-framework server, its memory, the emulator.

A server is `python -m functions_framework ... --host 127.0.0.1 --port P`, the
way Cloud Functions runs the function: gunicorn, one worker process forked
from the master after the source is imported. Requests are answered by the
worker, so its /proc entry is the one to read for memory. Every process
started here is stopped by its PID when the block ends.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_SECONDS = 30
HEADERS = {"Content-Type": "application/json"}

# Variables the benchmarks set themselves; inherited values would skew a run.
_OWN = ("WATCHDOG_", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "K_SERVICE")

# Loopback requests never go through a proxy, whatever the environment says.
_local = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def clean_env(pycache: Path, **overrides: str) -> dict[str, str]:
    """This environment without the variables the benchmarks control, plus these.

    Bytecode is cached under `pycache` (PYTHONPYCACHEPREFIX), outside the tree,
    so that runs after the first import compiled modules, as a deployed
    instance does, whatever PYTHONDONTWRITEBYTECODE says here.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {"PYTHONUNBUFFERED": "1", "PYTHONPYCACHEPREFIX": str(pycache)}
    return env | overrides


# What a server imports, compiled into the bytecode cache before any timing.
_MODULES = (
    "functions_framework._http.gunicorn", "gunicorn.workers.gthread",
    "gunicorn.http.wsgi", "main", "handlers.ledger.sqlite",
    "handlers.ledger.firestore", "handlers.sweep", "handlers.jobs",
)  # fmt: skip
_COMPILE = (
    "import importlib\n"
    f"for name in {_MODULES!r}:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception:\n"  # a module the tree does not have (yet)
    "        pass\n"
)


def compile_bytecode(pycache: Path) -> None:
    """Fill the bytecode cache, so that no measured process compiles."""
    subprocess.run(
        [sys.executable, "-c", _COMPILE],
        cwd=ROOT,
        env=clean_env(pycache),
        check=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def write_function(folder: Path, source: str) -> Path:
    """A one-file function in `folder` (for the baselines); returns its path."""
    path = folder / "main.py"
    path.write_text(source)
    return path


class Server:
    """One functions-framework server process for the target `handle_log_entry`."""

    def __init__(self, source: Path, env: dict[str, str], log: Path):
        self.port = free_port()
        self.log = log
        command = [
            sys.executable, "-m", "functions_framework", "--source", str(source),
            "--target", "handle_log_entry", "--signature-type", "cloudevent",
            "--host", HOST, "--port", str(self.port),
        ]  # fmt: skip
        self.started = time.perf_counter()
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.worker: int | None = None

    def connect(self) -> http.client.HTTPConnection:
        """One persistent connection, opened once the port accepts it."""
        deadline = time.monotonic() + START_SECONDS
        while True:
            self.check_alive()
            connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
            try:
                connection.connect()
                return connection
            except ConnectionRefusedError:
                connection.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(self.failure("did not listen")) from None
                time.sleep(0.002)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(self.failure(f"exited with {self.process.returncode}"))

    def failure(self, what: str) -> str:
        tail = self.log.read_text(errors="replace").splitlines()[-25:]
        return f"functions-framework on port {self.port} {what}:\n" + "\n".join(tail)

    def worker_pid(self) -> int:
        """The gunicorn worker that answers requests (a child of the master)."""
        if self.worker is None:
            master = self.process.pid
            children = Path(f"/proc/{master}/task/{master}/children").read_text()
            pids = [int(pid) for pid in children.split()]
            if len(pids) != 1:
                raise RuntimeError(f"expected one gunicorn worker, found {pids}")
            self.worker = pids[0]
        return self.worker

    def stop(self) -> None:
        """SIGKILL the master, then its worker, by PID: nothing here needs a
        graceful shutdown, and gunicorn's own takes half a second."""
        if self.worker is None and self.process.poll() is None:
            with suppress(OSError, RuntimeError):
                self.worker_pid()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.worker is not None and _is_ours(self.worker):
            os.kill(self.worker, signal.SIGKILL)


def _is_ours(pid: int) -> bool:
    """Whether `pid` is still a functions-framework process (not a reused PID)."""
    try:
        return b"functions_framework" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextmanager
def running(source: Path, env: dict[str, str], log: Path) -> Iterator[Server]:
    server = Server(source, env, log)
    try:
        yield server
    finally:
        server.stop()


def post(connection: http.client.HTTPConnection, body: bytes) -> int:
    """POST one push body on a persistent connection; the HTTP status."""
    connection.request("POST", "/", body=body, headers=HEADERS)
    response = connection.getresponse()
    response.read()
    return response.status


def push_bytes(body: dict) -> bytes:
    return json.dumps(body).encode()


def memory(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in bytes, and its PSS where the kernel tells."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        pss = [line for line in rollup if line.startswith("Pss:")]
        fields["Pss"] = int(pss[0].split()[1]) * 1024
    except (OSError, IndexError):
        pass
    return fields


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ratio: float, goal: float) -> str:
    return "OK" if ratio <= goal else "OVER GOAL"


def mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"watchdog-{prefix}-") as folder:
        yield Path(folder)


@contextmanager
def firestore_emulator() -> Iterator[str | None]:
    """host:port of a Firestore emulator, or None when java or the jar is missing.

    An emulator named by FIRESTORE_EMULATOR_HOST is used as it is (run_all.py
    starts one for every benchmark); otherwise one is started from the Cloud
    SDK's jar for the block, with the test suite's own helpers.
    """
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        yield os.environ["FIRESTORE_EMULATOR_HOST"]
        return
    reason = firestore_missing()
    if reason:
        print(f"Firestore emulator: missing {reason}; Firestore figures skipped")
        yield None
        return
    from tests.emulators import (
        FIRESTORE_JAR,
        FIRESTORE_MAIN,
        emulator_jar,
        running_jvm,
    )

    jar = emulator_jar(FIRESTORE_JAR)
    args = ["-Duser.language=en", "-cp", str(jar), FIRESTORE_MAIN, "start"]
    with scratch("firestore") as logs, running_jvm("Firestore", args, logs) as host:
        yield host


def firestore_missing() -> str | None:
    """What the Firestore emulator lacks here (java, the SDK, the jar), or None."""
    import pytest

    from tests.emulators import FIRESTORE_JAR, emulator_jar

    if shutil.which("java") is None:
        return "java"
    try:
        emulator_jar(FIRESTORE_JAR)
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        return str(exc.msg).removeprefix("missing ")
    return None


def drop_project(host: str, project: str) -> None:
    """Delete every document of `project` in the emulator (a shared one is reused)."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    _local.open(request, timeout=30).close()
