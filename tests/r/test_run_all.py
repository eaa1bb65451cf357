"""The entry script r/run_all.R, run with real R: the order of its steps, the
training with its retry, and a vocabulary check of every line it prints.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.r.vocabulary import assert_follows_vocabulary

pytestmark = pytest.mark.skipif(
    shutil.which("Rscript") is None and os.environ.get("CI") != "true",
    reason="Rscript not found: install Debian's r-base-core and r-cran-parallelly "
    "(required, not skipped, when CI=true)",
)

PREFLIGHT = ("r/run_all.R", "--preflight")
SIMULATE = ("r/run_all.R", "--simulate-training")


# ---- the entry script ---------------------------------------------------------


def test_simulated_training_emits_the_whole_sequence(run_r):
    env = {"PARALLELLY_OVERRIDE_CORES": "2", "CLOUD_RUN_EXECUTION": "job-x7k2p"}

    run = run_r(*SIMULATE, env=env)

    assert run.returncode == 0, run.stderr
    assert run.names == [
        "override_configured",
        "override_verified",
        "cores_selected",
        "training_started",
        "training_finished",
    ]
    assert {marker["execution"] for marker in run.markers} == {"job-x7k2p"}
    finished = run.marker("training_finished")
    assert (finished["cores"], finished["attempt"], finished["status"]) == (2, 1, "ok")
    assert isinstance(finished["duration_s"], int | float)
    assert finished["error"] is None


def test_rejected_core_count_is_retried_with_one_core_less(run_r):
    env = {"PARALLELLY_OVERRIDE_CORES": "3", "_R_CHECK_LIMIT_CORES_": "TRUE"}

    run = run_r(*SIMULATE, env=env)

    assert run.returncode == 0, run.stderr
    attempts = [
        (m["marker"], m["cores"], m["attempt"], m.get("status"), m.get("error"))
        for m in run.markers
        if m["marker"].startswith("training_")
    ]
    assert attempts == [
        ("training_started", 3, 1, None, None),
        ("training_finished", 3, 1, "error", "3 simultaneous processes spawned"),
        ("training_started", 2, 2, None, None),
        ("training_finished", 2, 2, "ok", None),
    ]
    rejected = next(m for m in run.markers if m["marker"] == "training_finished")
    assert rejected["severity"] == "WARNING"


def test_second_rejection_gives_up(run_r):
    env = {"PARALLELLY_OVERRIDE_CORES": "4", "_R_CHECK_LIMIT_CORES_": "TRUE"}

    run = run_r(*SIMULATE, env=env)

    assert run.returncode == 1
    finished = [m for m in run.markers if m["marker"] == "training_finished"]
    assert [(m["cores"], m["status"]) for m in finished] == [(4, "error"), (3, "error")]
    assert finished[-1]["severity"] == "ERROR"


def test_training_without_robyn_stops_with_a_clear_error(run_r):
    run = run_r("r/run_all.R", env={"PARALLELLY_OVERRIDE_CORES": "2"})

    assert run.returncode != 0
    assert "Robyn is not installed" in run.stderr
    assert "training_started" not in run.names


def test_verification_refuses_to_run_without_the_override_file(run_r):
    run = run_r("-e", 'source("r/verify_cores.R")')

    assert run.returncode != 0
    assert "core_override.R first" in run.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (SIMULATE, {}),
        (PREFLIGHT, {"PARALLELLY_OVERRIDE_CORES": "eight"}),
        (SIMULATE, {"PARALLELLY_OVERRIDE_CORES": "3", "_R_CHECK_LIMIT_CORES_": "TRUE"}),
        (
            PREFLIGHT,
            {
                "PARALLELLY_OVERRIDE_CORES": "2",
                "R_PARALLELLY_AVAILABLECORES_MIN": "9999",
            },
        ),
    ],
    ids=["unset", "invalid", "retry", "parallelly error"],
)
def test_every_line_is_a_documented_marker(run_r, args, env):
    run = run_r(*args, env=env)

    assert run.stdout.splitlines(), run.stderr
    assert len(run.markers) == len(run.stdout.splitlines())
    assert_follows_vocabulary(run.markers)
