"""The official Google emulators as session fixtures, one JVM each.

Each runs from the Cloud SDK's jar as `java ... --host=127.0.0.1 --port=PORT` on
a free loopback port, is ready when `GET /` answers `Ok`, and is killed by its
PID when the session ends. Without java or the jar, the tests that need an
emulator skip, except when CI=true, where they fail: CI must run them.
https://cloud.google.com/firestore/docs/emulator
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest

PUBSUB_JAR = "pubsub-emulator/lib/cloud-pubsub-emulator-0.8.20-all.jar"
FIRESTORE_JAR = "cloud-firestore-emulator/cloud-firestore-emulator.jar"
FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
# The project the Firestore tests write to; `firestore_reset` empties it.
FIRESTORE_PROJECT = "watchdog-test"
READY_SECONDS = 30

# Loopback requests never go through a proxy, whatever the environment says.
_local = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory) -> Iterator[str]:
    """host:port of the Firestore emulator, started once for the session."""
    jar = emulator_jar(FIRESTORE_JAR)
    args = ["-Duser.language=en", "-cp", str(jar), FIRESTORE_MAIN, "start"]
    with running_jvm("Firestore", args, tmp_path_factory.mktemp("firestore")) as host:
        yield host


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory) -> Iterator[str]:
    """host:port of the Pub/Sub emulator, started once for the session.

    It has no reset: tests use topic and subscription names of their own.
    https://cloud.google.com/pubsub/docs/emulator
    """
    jar = emulator_jar(PUBSUB_JAR)
    with running_jvm(
        "Pub/Sub", ["-jar", str(jar)], tmp_path_factory.mktemp("pubsub")
    ) as host:
        yield host


@pytest.fixture
def firestore_reset(firestore_emulator, monkeypatch) -> str:
    """FIRESTORE_PROJECT with no documents, and clients pointed at the emulator.

    Returns the project. Only its (default) database is emptied: a test that
    writes to another project or database keeps its documents apart itself.
    """
    url = (
        f"http://{firestore_emulator}/emulator/v1/projects/{FIRESTORE_PROJECT}"
        "/databases/(default)/documents"
    )
    _local.open(urllib.request.Request(url, method="DELETE"), timeout=10).close()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    return FIRESTORE_PROJECT


@contextmanager
def running_jvm(name: str, args: list[str], logs: Path) -> Iterator[str]:
    """Run `java ARGS --host=127.0.0.1 --port=PORT`, ready, until the block ends.

    Yields host:port. The JVM's output goes to `logs`/java.log, and its tail
    is shown if it fails to start.
    """
    java = shutil.which("java") or _missing(f"java, which the {name} emulator needs")
    host = f"127.0.0.1:{free_port()}"
    log_path = logs / "java.log"
    with log_path.open("wb") as log:
        hostname, port = host.split(":")
        process = subprocess.Popen(
            [java, *args, f"--host={hostname}", f"--port={port}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(name, host, process, log_path)
            yield host
        finally:
            process.kill()
            process.wait()


def wait_until_ready(name: str, host: str, process, log_path: Path) -> None:
    """Poll `GET /` until it answers `Ok`; fail if the JVM exits or takes too long."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the {name} emulator exited with {process.returncode}:\n"
                + _tail(log_path)
            )
        if _answers_ok(host):
            return
        time.sleep(0.05)
    pytest.fail(
        f"the {name} emulator was not ready in {READY_SECONDS} s:\n" + _tail(log_path)
    )


def _answers_ok(host: str) -> bool:
    try:
        with _local.open(f"http://{host}/", timeout=1) as response:
            return response.read().strip() == b"Ok"
    except OSError:
        return False


@cache
def sdk_root() -> Path | None:
    """The Cloud SDK's root, as gcloud reports it; None if gcloud cannot tell."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    answer = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    root = answer.stdout.strip()
    return Path(root) if answer.returncode == 0 and root else None


def emulator_jar(relative: str) -> Path:
    """The emulator jar at `relative` under the SDK's platform/ folder."""
    root = sdk_root()
    if root is None:
        _missing("the Cloud SDK: `gcloud info` found none (install google-cloud-cli)")
    jar = root / "platform" / relative
    if not jar.is_file():
        _missing(f"{jar} (the Cloud SDK's emulator component)")
    return jar


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _missing(what: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"missing {what}; it is required when CI=true", pytrace=False)
    pytest.skip(f"missing {what} (required, not skipped, when CI=true)")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
