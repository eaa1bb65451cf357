"""Contract between the R entry script and the watchdog's audit.

Real Rscript output is wrapped into LogEntries the way Cloud Run does, exported
with the execution's completion entry, and audited by `python main.py audit`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from samples.logentries import at, completion, container_line

pytestmark = pytest.mark.skipif(
    shutil.which("Rscript") is None and os.environ.get("CI") != "true",
    reason="Rscript not found: install Debian's r-base-core and r-cran-parallelly "
    "(required, not skipped, when CI=true)",
)

ROOT = Path(__file__).resolve().parents[2]
JOB = "mmm-app-training"
STARTED = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def export_execution(run, execution: str, cpu: str, env: dict[str, str]) -> list:
    """The execution's entries as `gcloud logging read --format=json` gives them."""
    printed = [(line, "stdout") for line in run.stdout.splitlines()]
    printed += [(line, "stderr") for line in run.stderr.splitlines()]
    entries = [
        container_line(JOB, execution, at(STARTED, 1 + index), line, stream)
        for index, (line, stream) in enumerate(printed)
    ]
    end = at(STARTED, 2 + len(printed))
    entries.append(
        completion(
            JOB,
            execution,
            start=at(STARTED, 0),
            end=end,
            cpu=cpu,
            memory="4Gi",
            env=env,
        )
    )
    return sorted(entries, key=lambda entry: entry["timestamp"], reverse=True)


def audit(export: list, tmp_path: Path) -> list[dict]:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    completed = subprocess.run(
        [sys.executable, "main.py", "audit", str(path), "--format", "json"],
        cwd=ROOT,
        env=os.environ | {"WATCHDOG_JOBS": JOB},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


@pytest.mark.parametrize(
    ("suffix", "override", "verdict"),
    [
        ("e8k2p", "box", "effective"),
        ("u4x7q", None, "inactive"),
        ("m3v9r", "", "inactive"),
        ("i6t1w", "eight", "invalid"),
    ],
    ids=["override the box can run", "unset", "empty", "invalid"],
)
def test_audit_gives_the_verdict_the_markers_support(
    run_r, box_cores, tmp_path, suffix, override, verdict
):
    override = str(box_cores) if override == "box" else override
    env = {} if override is None else {"PARALLELLY_OVERRIDE_CORES": override}
    execution = f"{JOB}-{suffix}"
    run = run_r(
        "r/run_all.R",
        "--simulate-training",
        env=env | {"CLOUD_RUN_EXECUTION": execution},
    )
    assert run.returncode == 0, run.stderr

    rows = audit(export_execution(run, execution, str(box_cores), env), tmp_path)

    assert [(row["job"], row["execution"]) for row in rows] == [(JOB, execution)]
    row = rows[0]
    assert row["verdict"] == verdict, row
    assert row["cores_used"] == box_cores
    assert row["vcpu"] == box_cores
    if verdict == "effective":
        assert row["override_cores"] == box_cores
