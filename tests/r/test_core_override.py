"""The core override, its verification and the entry script, run with real R.

parallelly's disagreement with the override is produced with parallelly's own
settings (MC_CORES, mc.cores, R_PARALLELLY_AVAILABLECORES_*,
_R_CHECK_LIMIT_CORES_), and the cgroups quota and the CPU affinity with fixture
files, so that the tests hold on a small machine of any size.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("Rscript") is None and os.environ.get("CI") != "true",
    reason="Rscript not found: install Debian's r-base-core and r-cran-parallelly "
    "(required, not skipped, when CI=true)",
)

ROOT = Path(__file__).resolve().parents[2]

PREFLIGHT = ("r/run_all.R", "--preflight")
SIMULATE = ("r/run_all.R", "--simulate-training")


# ---- the override is read and validated -------------------------------------


def test_unset_override_is_skipped_and_parallelly_chooses(run_r):
    run = run_r(*PREFLIGHT)

    assert run.returncode == 0, run.stderr
    assert run.names == ["override_skipped", "cores_selected"]
    skipped = run.marker("override_skipped")
    assert skipped["reason"] == "unset"
    assert skipped["raw"] is None
    assert skipped["parallelly_loaded"] is False
    assert run.marker("cores_selected")["source"] == "parallelly"


@pytest.mark.parametrize(
    "raw", ["eight", "0", "-3", "2.5", " ", " 2", "+2", "0x2", "2e1", "99999999999"]
)
def test_invalid_override_is_skipped_with_its_value(run_r, raw):
    run = run_r(*PREFLIGHT, env={"PARALLELLY_OVERRIDE_CORES": raw})

    assert run.returncode == 0, run.stderr
    skipped = run.marker("override_skipped")
    assert skipped["reason"] == "invalid"
    assert skipped["raw"] == raw
    assert skipped["severity"] == "WARNING"
    assert run.marker("cores_selected")["source"] == "parallelly"


def test_invalid_value_is_cut_to_64_characters(run_r):
    run = run_r(*PREFLIGHT, env={"PARALLELLY_OVERRIDE_CORES": "x" * 100})

    assert run.marker("override_skipped")["raw"] == "x" * 64


def test_invalid_value_survives_json_encoding_in_any_locale(run_r):
    raw = 'a"b\\c\nd\te\u20ac\U0001f600'

    run = run_r(*PREFLIGHT, env={"PARALLELLY_OVERRIDE_CORES": raw, "LC_ALL": "C"})

    assert run.marker("override_skipped")["raw"] == raw
    assert all(line.isascii() for line in run.stdout.splitlines())


# ---- the override is applied -------------------------------------------------


def test_override_before_load_sets_options_and_environment(run_r, box_cores):
    n = box_cores

    run = run_r(*PREFLIGHT, env={"PARALLELLY_OVERRIDE_CORES": str(n)})

    assert run.returncode == 0, run.stderr
    assert run.names == ["override_configured", "override_verified", "cores_selected"]
    configured = run.marker("override_configured")
    assert (configured["override"], configured["parallelly_loaded"]) == (n, False)
    assert configured["severity"] == "INFO"
    assert configured["settings"] == [
        "R_PARALLELLY_AVAILABLECORES_METHODS=fallback",
        'options(parallelly.availableCores.methods="fallback")',
        f"R_PARALLELLY_AVAILABLECORES_FALLBACK={n}",
        f"options(parallelly.availableCores.fallback={n}L)",
        f"MC_CORES={n}",
        f"options(mc.cores={n}L)",
    ]
    verified = run.marker("override_verified")
    assert (verified["status"], verified["severity"]) == ("success", "INFO")
    assert verified["available_cores"] == n
    assert min(verified["methods"].values()) == n
    assert verified["detect_cores"] >= verified["affinity_cores"] >= 1
    assert verified["oversubscribed"] is False
    selected = run.marker("cores_selected")
    assert (selected["cores"], selected["source"]) == (n, "override")


def test_override_after_parallelly_loaded_is_flagged_and_still_holds(
    run_driver, box_cores
):
    run = run_driver(
        env={"PARALLELLY_OVERRIDE_CORES": "1"},
        before='invisible(loadNamespace("parallelly"))',
    )

    configured = run.marker("override_configured")
    assert configured["parallelly_loaded"] is True
    assert configured["severity"] == "WARNING"
    assert "already loaded" in configured["message"]
    verified = run.marker("override_verified")
    assert verified["status"] == "success"
    assert verified["available_cores"] == box_cores
    selected = run.marker("cores_selected")
    assert (selected["cores"], selected["source"]) == (1, "override")


def test_override_reaches_r_processes_started_later(run_r):
    child = "cat(parallelly::availableCores(), getOption('mc.cores'))"
    code = (
        f'source("r/core_override.R"); system2("Rscript", c("-e", shQuote("{child}")))'
    )

    run = run_r("-e", code, env={"PARALLELLY_OVERRIDE_CORES": "64"})

    assert run.stdout.splitlines()[-1] == "64 64"


# ---- parallelly disagrees ----------------------------------------------------


def assert_limit_explained(verified: dict) -> None:
    """limited_by names the method behind parallelly's answer, if below system."""
    methods = verified["methods"]
    if verified["limited_by"] is None:
        assert verified["available_cores"] == methods["system"]
    else:
        assert methods[verified["limited_by"]] == verified["available_cores"]
        assert verified["available_cores"] < methods["system"]


def assert_forced(run, override: int) -> dict:
    verified = run.marker("override_verified")
    assert (verified["status"], verified["severity"]) == ("forced", "WARNING")
    assert verified["available_cores"] < override
    assert min(verified["methods"].values()) == verified["available_cores"]
    assert_limit_explained(verified)
    selected = run.marker("cores_selected")
    assert (selected["cores"], selected["source"]) == (override, "override")
    return verified


@pytest.mark.parametrize(
    ("env", "before"),
    [({"MC_CORES": "1"}, ""), ({}, "options(mc.cores = 1L)")],
    ids=["MC_CORES", "mc.cores option"],
)
def test_mc_cores_below_the_override_is_forced(run_driver, box_cores, env, before):
    if box_cores < 2:
        pytest.skip("needs a machine with 2 cores or more")
    env = env | {"PARALLELLY_OVERRIDE_CORES": str(box_cores)}

    run = run_driver(env=env, before=before)

    verified = assert_forced(run, box_cores)
    assert (verified["limited_by"], verified["available_cores"]) == ("mc.cores", 1)
    assert verified["oversubscribed"] is False


def test_cpuset_or_nproc_below_system_is_forced_and_oversubscribed(
    run_driver, affinity_cpus
):
    # parallelly takes the system's CPU count from this variable, as it would
    # read 8 from /proc/cpuinfo in an 8 vCPU task whose affinity is smaller.
    system = os.cpu_count() + 6
    env = {
        "PARALLELLY_OVERRIDE_CORES": str(system),
        "R_PARALLELLY_AVAILABLECORES_SYSTEM": str(system),
    }

    run = run_driver(env=env)

    verified = assert_forced(run, system)
    assert verified["methods"]["system"] == system
    assert verified["limited_by"] is not None
    assert verified["affinity_cores"] == affinity_cpus
    assert verified["oversubscribed"] is True


def test_check_limit_below_the_override_is_forced(run_driver, affinity_cpus):
    env = {"PARALLELLY_OVERRIDE_CORES": "3", "_R_CHECK_LIMIT_CORES_": "TRUE"}

    run = run_driver(env=env)

    verified = assert_forced(run, 3)
    assert verified["methods"]["_R_CHECK_LIMIT_CORES_"] == 2
    assert verified["oversubscribed"] is (affinity_cpus < 3)


def test_override_defeated_by_a_parallelly_setting_fails(run_r, box_cores):
    if box_cores < 2:
        pytest.skip("needs a machine with 2 cores or more")
    env = {
        "PARALLELLY_OVERRIDE_CORES": str(box_cores),
        "R_PARALLELLY_AVAILABLECORES_OMIT": "1",
    }

    run = run_r(*PREFLIGHT, env=env)

    assert run.returncode == 1
    verified = run.marker("override_verified")
    assert (verified["status"], verified["severity"]) == ("failed", "ERROR")
    assert verified["available_cores"] == box_cores - 1
    selected = run.marker("cores_selected")
    assert (selected["cores"], selected["source"]) == (box_cores - 1, "parallelly")


def test_parallelly_error_fails_and_falls_back_to_detect_cores(run_r):
    env = {"PARALLELLY_OVERRIDE_CORES": "2", "R_PARALLELLY_AVAILABLECORES_MIN": "9999"}

    run = run_r(*PREFLIGHT, env=env)

    verified = run.marker("override_verified")
    assert verified["status"] == "failed"
    assert verified["available_cores"] is None
    assert verified["methods"] == {}
    assert "availableCores.min" in verified["message"]
    selected = run.marker("cores_selected")
    assert selected["source"] == "detect_cores"
    assert selected["cores"] == verified["detect_cores"]


# ---- what the process may run on -------------------------------------------


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        pytest.param({"cpu.max": "834200 100000\n"}, 8.342, id="v2"),
        pytest.param({"cpu.max": "max 100000\n"}, None, id="v2 unlimited"),
        pytest.param(
            {"cpu/cpu.cfs_quota_us": "834200\n", "cpu/cpu.cfs_period_us": "100000\n"},
            8.342,
            id="v1",
        ),
        pytest.param(
            {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
            None,
            id="v1 unlimited",
        ),
        pytest.param({}, None, id="unreadable"),
    ],
)
def test_cgroups_quota_is_read_from_the_configured_root(run_r, tmp_path, files, quota):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    env = {"PARALLELLY_OVERRIDE_CORES": "2", "CORE_OVERRIDE_CGROUP_ROOT": str(tmp_path)}

    run = run_r(*PREFLIGHT, env=env)

    assert run.marker("override_verified")["cgroups_quota"] == quota


def test_override_above_the_cpus_is_flagged_oversubscribed(run_r, affinity_cpus):
    override = affinity_cpus + 6

    run = run_r(*PREFLIGHT, env={"PARALLELLY_OVERRIDE_CORES": str(override)})

    verified = run.marker("override_verified")
    assert verified["status"] == "forced"
    assert verified["affinity_cores"] == affinity_cpus
    assert verified["oversubscribed"] is True
    selected = run.marker("cores_selected")
    assert selected["cores"] == override
    for marker in (verified, selected):
        assert marker["severity"] == "WARNING"
        assert "oversubscribed" in marker["message"].lower()


@pytest.mark.parametrize(
    ("cpu_list", "affinity", "oversubscribed"),
    [("0", 1, True), ("0-1", 2, False), ("0-3,8", 5, False)],
)
def test_affinity_is_read_from_the_process_status(
    run_r, box_cores, tmp_path, cpu_list, affinity, oversubscribed
):
    if box_cores < 2:
        pytest.skip("needs a machine with 2 cores or more")
    status = tmp_path / "status"
    status.write_text(f"Name:\tR\nCpus_allowed:\t3\nCpus_allowed_list:\t{cpu_list}\n")
    env = {"PARALLELLY_OVERRIDE_CORES": "2", "CORE_OVERRIDE_PROC_STATUS": str(status)}

    run = run_r(*PREFLIGHT, env=env)

    verified = run.marker("override_verified")
    assert verified["status"] == "success"
    assert verified["affinity_cores"] == affinity
    assert verified["oversubscribed"] is oversubscribed
