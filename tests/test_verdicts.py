"""Every verdict and cause, from the logs of whole executions."""

import dataclasses
from datetime import UTC, datetime

import pytest

from handlers import costs
from handlers.parse import observe
from handlers.verdict import decide
from samples import build
from samples.build import Run, structured_override, trained, verified

JOBS = frozenset({build.PROD, build.DEV})
START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
ALL_METHODS = {"system": 8, "nproc": 8}


def verdict_of(entries, settings):
    seen = [o for e in entries if (o := observe(e, JOBS))]
    (job, execution), = {(o.job, o.execution) for o in seen}  # fmt: skip
    return decide(job, execution, seen, settings)


@pytest.mark.parametrize(
    ("scenario", "verdict", "causes"),
    [
        (build.effective, "effective", []),
        (build.forced, "forced",
         ["verification_forced", "cgroups_quota_ignored=8.342",
          "limited_by=cgroups.cpuset:2"]),
        (build.retried, "effective", ["robyn_retry_one_core_less"]),
        (build.seed_era_contradiction, "ineffective",
         ["verification_contradicts_cores", "cgroups_quota_ignored=8.342",
          "parallelly_reported=2", "unrecognised_lines=1"]),
        (build.not_wired, "missing", ["no_override_marker"]),
        (build.invalid, "invalid", ["invalid_override='eight'"]),
        (build.inactive, "inactive", []),
        (build.out_of_memory, "inconclusive",
         ["cores_unknown", "memory_limit_exceeded", "execution_failed"]),
        (build.loaded_too_late, "ineffective",
         ["override_set_after_parallelly_loaded", "limited_by=cgroups.cpuset:2"]),
    ],
)  # fmt: skip
def test_sample_executions(scenario, verdict, causes, settings):
    found = verdict_of(scenario(START), settings)

    assert (found.verdict, list(found.causes)) == (verdict, causes)


def run_with_training(cores, status="success", *, env="8", override=8, **extra):
    run = structured_override(Run(build.PROD, "mmm-app-training-t1", START), override)
    if status:
        verified(run, status, override, 8 if status == "success" else 2, ALL_METHODS)
    for name, fields in extra.items():
        run.mark(name, "extra marker", **fields)
    return trained(run, cores, 0.7).complete({"PARALLELLY_OVERRIDE_CORES": env})


@pytest.mark.parametrize(
    ("cores", "verdict"),
    [(8, "effective"), (7, "effective"), (6, "ineffective"), (2, "ineffective")],
)
def test_cores_at_least_override_minus_tolerance_are_effective(
    cores, verdict, settings
):
    assert verdict_of(run_with_training(cores), settings).verdict == verdict


def test_tolerance_is_configurable(settings):
    strict = dataclasses.replace(settings, tolerance_cores=0)

    assert verdict_of(run_with_training(7), strict).verdict == "ineffective"


def test_a_verification_success_with_too_few_cores_is_a_contradiction(settings):
    found = verdict_of(run_with_training(4), settings)

    assert found.verdict == "ineffective"
    assert "verification_contradicts_cores" in found.causes


@pytest.mark.parametrize("status", ["forced", "failed"])
def test_parallelly_disagreeing_with_enough_cores_is_forced(status, settings):
    found = verdict_of(run_with_training(8, status), settings)

    assert (found.verdict, found.causes[0]) == ("forced", f"verification_{status}")


def test_enough_cores_without_any_verification_is_forced_and_flagged(settings):
    found = verdict_of(run_with_training(8, status=None), settings)

    assert (found.verdict, found.causes[0]) == ("forced", "verification_missing")


def test_the_env_of_the_execution_wins_over_the_script_lines(settings):
    found = verdict_of(run_with_training(8, env=""), settings)

    assert found.verdict == "inactive"
    assert "markers_disagree_with_env" in found.causes


@pytest.mark.parametrize("raw", ["eight", "0", "-3", "2.5", "８", "8 cores"])
def test_override_values_that_are_not_positive_whole_numbers_are_invalid(raw, settings):
    found = verdict_of(run_with_training(8, env=raw), settings)

    assert found.verdict == "invalid"
    assert found.override_cores is None


def test_workers_beyond_the_cpus_the_task_may_use_add_no_cores(settings):
    run = structured_override(Run(build.PROD, "mmm-app-training-t2", START), 8)
    run.mark("override_verified", "forced 8 on 2 CPUs", "WARNING", status="forced",
             override=8, available_cores=2, methods={"system": 2}, limited_by=None,
             affinity_cores=2, oversubscribed=True)  # fmt: skip
    entries = trained(run, 8, 1.0).complete({"PARALLELLY_OVERRIDE_CORES": "8"},
                                            cpu="8", memory="32Gi")  # fmt: skip

    found = verdict_of(entries, settings)

    assert (found.verdict, found.cores_used) == ("ineffective", 2)
    assert {"oversubscribed", "oversubscribed_workers=8"} <= set(found.causes)


def test_more_cores_than_vcpu_are_flagged(settings):
    entries = trained(structured_override(Run(build.PROD, "mmm-app-training-t5",
                                              START), 4), 4, 1.0)  # fmt: skip
    entries = entries.complete({"PARALLELLY_OVERRIDE_CORES": "4"}, cpu="2")

    found = verdict_of(entries, settings)

    assert "cores_above_vcpu" in found.causes


def test_a_crash_after_training_started_is_judged_on_the_cores_it_had(settings):
    run = structured_override(Run(build.PROD, "mmm-app-training-t3", START), 8)
    verified(run, "success", 8, 8, ALL_METHODS)
    run.mark("training_started", "attempt 1 on 2 cores", cores=2, attempt=1)
    run.system(
        "Terminating task because it has reached the maximum timeout of 21600 seconds.",
        "ERROR",
    ).system("Container called exit(137).")
    entries = run.complete({"PARALLELLY_OVERRIDE_CORES": "8"}, succeeded=False)

    found = verdict_of(entries, settings)

    assert found.verdict == "ineffective"
    assert {"timeout", "exit_code=137", "execution_failed"} <= set(found.causes)


def test_an_execution_without_completion_entry_says_so(settings):
    entries = run_with_training(8)[:-1]

    found = verdict_of(entries, settings)

    assert (found.verdict, found.outcome) == ("effective", "unknown")
    assert "no_completion_entry" in found.causes
    assert found.cost_usd is None


def test_without_env_or_override_lines_the_override_is_unknown(settings):
    run = Run(build.PROD, "mmm-app-training-t4", START)
    entries = trained(run, 2, 2.3).entries

    assert verdict_of(entries, settings).verdict == "inconclusive"


def test_figures_follow_the_published_rates_rounded_to_100_ms(settings):
    found = verdict_of(build.effective(START), settings)

    billable = costs.billable_seconds(found.wall_seconds)
    per_second = 8 * 0.000018 + 32 * 0.000002
    assert found.cost_usd == pytest.approx(billable * per_second, abs=1e-6)
    assert found.idle_cost_usd == pytest.approx(billable * 1 * 0.000018, abs=1e-6)
    assert (found.cores_used, found.vcpu, found.memory_gib) == (7, 8.0, 32.0)
    assert found.utilisation == 0.875
    assert found.speedup == round(2.3 / 0.7, 2)


@pytest.mark.parametrize(
    ("seconds", "billed"), [(0.0, 0.0), (0.01, 0.1), (43.6, 43.6), (43.61, 43.7),
                            (59.99, 60.0)]
)  # fmt: skip
def test_billable_seconds_round_up_to_100_ms(seconds, billed):
    assert costs.billable_seconds(seconds) == billed


def test_execution_cost_counts_every_task():
    rates = costs.Rates(cpu_usd=0.000018, memory_usd=0.000002)

    one = costs.execution_cost(rates, 8, 32, 100.0)
    three = costs.execution_cost(rates, 8, 32, 100.0, tasks=3)

    assert one == pytest.approx(100 * (8 * 0.000018 + 32 * 0.000002))
    assert three == pytest.approx(3 * one)


def test_a_silent_execution_is_missing_or_inconclusive(settings):
    succeeded = Run(build.PROD, "mmm-app-training-s1", START).complete(
        {"PARALLELLY_OVERRIDE_CORES": "8"}
    )
    failed = Run(build.PROD, "mmm-app-training-s2", START).complete(
        {"PARALLELLY_OVERRIDE_CORES": "8"}, succeeded=False
    )

    assert verdict_of(succeeded, settings).verdict == "missing"
    assert verdict_of(failed, settings).verdict == "inconclusive"
