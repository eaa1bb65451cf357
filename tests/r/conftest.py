"""Runs the training script's R code with the real Rscript and reads its markers.

The R code is in `r/`; its marker vocabulary is docs/markers.md. Every run
starts from this process's environment without the variables the R code reads,
so that a test sets exactly the ones it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READ_BY_R = ("PARALLELLY_OVERRIDE_CORES", "MC_CORES", "_R_CHECK_LIMIT_CORES_")
READ_BY_R_PREFIXES = ("R_PARALLELLY_", "CORE_OVERRIDE_", "CLOUD_RUN_", "ROBYN_")

INSTALL_HINT = (
    "apt-get install -y --no-install-recommends r-base-core r-cran-parallelly"
)


@dataclass
class RRun:
    """The outcome of one Rscript process."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def markers(self) -> list[dict]:
        return [
            json.loads(line) for line in self.stdout.splitlines() if line[:1] == "{"
        ]

    @property
    def names(self) -> list[str]:
        return [marker["marker"] for marker in self.markers]

    def marker(self, name: str) -> dict:
        found = [marker for marker in self.markers if marker["marker"] == name]
        assert len(found) == 1, f"expected one {name} marker in:\n{self.stdout}"
        return found[0]


def clean_environment(extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in READ_BY_R and not key.startswith(READ_BY_R_PREFIXES)
    }
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def rscript() -> str:
    """Rscript's path; the test modules skip without it unless CI=true."""
    path = shutil.which("Rscript")
    if path is None:
        pytest.fail(f"Rscript is required when CI=true: {INSTALL_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def box_cores(rscript) -> int:
    """What parallelly reports on this machine with no override: the cores the
    machine can run, so that the tests hold on machines of any size."""
    completed = subprocess.run(
        [rscript, "-e", "cat(parallelly::availableCores())"],
        env=clean_environment(None),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(completed.stdout)


@pytest.fixture(scope="session")
def affinity_cpus() -> int:
    """The CPUs this process, and the R processes it starts, may run on."""
    return len(os.sched_getaffinity(0))


@pytest.fixture
def run_r(rscript):
    """Run `Rscript ARGS...` from the repository root with a clean environment."""

    def run(*args: str, env: dict[str, str] | None = None) -> RRun:
        completed = subprocess.run(
            [rscript, *args],
            cwd=ROOT,
            env=clean_environment(env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return RRun(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.fixture
def run_driver(run_r):
    """Run R code around the override: `before` it, then `after` it, then verify.

    This is what an entry script does, with room to reproduce its mistakes
    (loading parallelly first) and the settings that make parallelly disagree.
    """

    def run(
        env: dict[str, str] | None = None, before: str = "", after: str = ""
    ) -> RRun:
        code = "\n".join(
            [
                before,
                'source("r/core_override.R")',
                after,
                'invisible(loadNamespace("parallelly"))',
                'source("r/verify_cores.R")',
                "invisible(core_override$select_cores(core_override$verify_cores()))",
            ]
        )
        return run_r("-e", code, env=env)

    return run
