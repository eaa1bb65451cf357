"""Each kind of entry, read from golden payloads and from the lines of every era."""

import json
from pathlib import Path

import pytest

from handlers import legacy, platform
from handlers.errors import BadMessage
from handlers.markers import SCHEMAS, read_marker
from handlers.parse import observe
from samples.logentries import marker, text_line

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.json"))
JOBS = frozenset({"mmm-app-training"})
JOB, EXECUTION, T = "mmm-app-training", "mmm-app-training-x7k2p", "2026-11-30T06:00:01Z"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_entry_reads_as_its_recorded_observation(path):
    golden = json.loads(path.read_text())

    seen = observe(golden["entry"], JOBS)

    expected = golden["expected"]
    assert (seen.job, seen.execution, seen.key, seen.timestamp) == (
        expected["job"], expected["execution"], expected["key"], expected["timestamp"]
    )  # fmt: skip
    assert (seen.kind, seen.fields) == (expected["kind"], expected["fields"])


def test_completion_keeps_only_the_override_of_the_embedded_env():
    golden = json.loads((Path(__file__).parent / "golden/completion_succeeded.json")
                        .read_text())  # fmt: skip

    seen = observe(golden["entry"], JOBS)

    assert "do-not-keep-me" not in json.dumps(seen.fields)
    assert seen.fields["override_raw"] == "8"


SEED_LINES = [
    ("🔧 PARALLELLY CORE OVERRIDE ACTIVE", "override_configured", {}),
    ("⚙️  Setting R_PARALLELLY_AVAILABLECORES_FALLBACK=8", "override_configured",
     {"override": 8}),
    ("✅ Override configured - will verify after Robyn loads", "override_configured",
     {}),
    ("💡 No parallelly override configured (PARALLELLY_OVERRIDE_CORES not set)",
     "override_skipped", {"reason": "unset"}),
    ("⚠️  PARALLELLY_OVERRIDE_CORES set but invalid value: 'eight'",
     "override_skipped", {"reason": "invalid", "raw": "eight"}),
    ("⚠️  PARALLELLY_OVERRIDE_CORES set but invalid value: '2.5'",
     "override_skipped", {"reason": "invalid", "raw": "2.5"}),
    ("✅ OVERRIDE VERIFICATION: SUCCESS", "override_verified", {"status": "success"}),
    ("❌ OVERRIDE VERIFICATION: FAILED", "override_verified", {"status": "failed"}),
    ("   parallelly::availableCores() = 8 (matches override)", "parallelly_reported",
     {"available_cores": 8}),
    ("   Expected: 8 cores (from override)", "override_expected", {"override": 8}),
    ("   Actual:   2 cores (from parallelly)", "parallelly_reported",
     {"available_cores": 2}),
    ("   max_cores  : 8", "max_cores", {"cores": 8}),
    ("  - parallelly::availableCores():      2 (cgroup-aware)", "parallelly_reported",
     {"available_cores": 2}),
    ("  - parallel::detectCores():           8 (system CPUs)", "detect_cores",
     {"detect_cores": 8}),
    ("  - Final cores for training:           7 (with -1 safety buffer)",
     "cores_selected", {"cores": 7}),
    ("🎬 Starting robyn_run() with 7 cores...", "training_started", {"cores": 7}),
    ("Training completed in 0.72 minutes", "training_finished",
     {"status": "ok", "minutes": 0.72}),
    ("  [INTERNAL]: Will ignore the cgroups CPU quota, because it is out of range "
     "[1,8]: 8.342", "cgroups_quota_ignored", {"max_cores": 8, "quota": 8.342}),
]  # fmt: skip


@pytest.mark.parametrize(("line", "kind", "fields"), SEED_LINES)
def test_each_legacy_line_is_read_with_or_without_its_emoji(line, kind, fields):
    bare = line.encode("ascii", "ignore").decode()
    garbled = line.encode("utf-8").decode("latin-1")

    for variant in (line, bare, garbled):
        found, values = legacy.read_line(variant)
        assert found == kind, variant
        assert values == {**fields, "legacy": True}


@pytest.mark.parametrize(
    "line",
    [
        "━" * 60,
        "📍 Timing: BEFORE library(Robyn) loads (critical for success)",
        "🎯 Expected: parallelly::availableCores() will return 8",
        "📝 Override source: PARALLELLY_OVERRIDE_CORES env var",
        "✅ Cloud Run Job Parameters",
        "🔧 CORE DETECTION ANALYSIS",
        "Warning message:",
        "In getCGroups1CpuQuota() :",
        ">>> Running trial 3 of 5",
        "",
    ],
)
def test_known_decoration_and_unrelated_output_say_nothing(line):
    assert legacy.read_line(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "✅ Core override looks healthy",
        "OVERRIDE VERIFICATION: OK",
        "Verification passed: using all cores",
        "parallelly says 8",
    ],
)
def test_drifted_wording_is_unrecognised_never_success(line):
    kind, fields = legacy.read_line(line)

    assert kind == "unrecognised"
    assert fields["text"] == line.strip()


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"marker": "override_verified", "marker_version": 2, "status": "success"},
         "version 2"),
        ({"marker": "override_celebrated", "marker_version": 1}, "override_celebrated"),
        ({"marker": "override_verified", "marker_version": 1, "override": 8,
          "available_cores": 8}, "without 'status'"),
        ({"marker": "override_verified", "marker_version": 1, "status": "great",
          "override": 8, "available_cores": 8}, "field 'status'"),
        ({"marker": "training_started", "marker_version": 1, "cores": "8",
          "attempt": 1}, "field 'cores'"),
        ({"marker": "training_started", "marker_version": 1, "cores": 7.5,
          "attempt": 1}, "field 'cores'"),
        ({"marker": "override_configured", "marker_version": 1, "override": True},
         "field 'override'"),
    ],
)  # fmt: skip
def test_a_marker_the_vocabulary_does_not_allow_is_unrecognised(payload, why):
    kind, fields = read_marker(payload)

    assert kind == "unrecognised"
    assert why in fields["text"]


def test_json_lines_that_are_not_markers_say_nothing():
    assert read_marker({"message": "override applied", "severity": "INFO"}) is None


def test_a_marker_names_its_execution_when_the_entry_has_no_label():
    entry = marker(JOB, EXECUTION, T, "training_started", "m", cores=8, attempt=1)
    entry["jsonPayload"]["execution"] = "mmm-app-training-zzz"
    del entry["labels"]

    assert observe(entry, JOBS).execution == "mmm-app-training-zzz"


def test_an_entry_without_any_execution_is_a_bad_message():
    entry = text_line(JOB, EXECUTION, T, "max_cores : 8")
    del entry["labels"]

    with pytest.raises(BadMessage, match="no_execution"):
        observe(entry, JOBS)


def test_an_entry_of_another_job_is_a_bad_message():
    entry = text_line("someone-elses-job", "someone-elses-job-1", T, "max_cores : 8")

    with pytest.raises(BadMessage, match="unwatched_job"):
        observe(entry, JOBS)


def test_docs_describe_every_marker_and_field_the_parser_reads():
    doc = (Path(__file__).parent.parent / "docs/markers.md").read_text()

    for name, schema in SCHEMAS.items():
        section = doc.split(f"## `{name}`", 1)
        assert len(section) == 2, f"docs/markers.md has no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        for key in schema:
            assert f"| `{key}` |" in body, f"{name}.{key} is not documented"


@pytest.mark.parametrize(
    ("quantity", "vcpu"), [("8", 8.0), ("1000m", 1.0), ("2.5", 2.5), ("8 ", 8.0),
                           ("eight", None), ("8Gi", None), (None, None)]
)  # fmt: skip
def test_cpu_quantities(quantity, vcpu):
    assert platform.cpu_of(quantity) == vcpu


@pytest.mark.parametrize(
    ("quantity", "gib"), [("32Gi", 32.0), ("1953Mi", 1.9072), ("512M", 0.4768),
                          ("2G", 1.8626), ("16", 0.0), ("lots", None)]
)  # fmt: skip
def test_memory_quantities(quantity, gib):
    assert platform.memory_gib_of(quantity) == gib
