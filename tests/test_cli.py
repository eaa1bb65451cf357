"""The command line as operators and auditors run it."""

import json
import subprocess
import sys

import pytest

from samples import build
from tests.conftest import ROOT

KEYS = {"job", "execution", "verdict", "causes", "override_cores", "cores_used",
        "vcpu", "memory_gib", "training_minutes", "wall_seconds", "cost_usd",
        "idle_cost_usd", "outcome"}  # fmt: skip
SAMPLE = json.loads(build.EXPORT.read_text())


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
        text=True, env=env, timeout=60,
    )  # fmt: skip


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


def test_audit_prints_one_json_object_per_execution_with_the_agreed_keys():
    result = run("audit", str(build.EXPORT), "--format", "json")

    assert result.returncode == 0, result.stderr
    records = json_lines(result.stdout)
    assert len(records) == 9
    assert all(record.keys() >= KEYS for record in records)
    assert all(isinstance(record["causes"], list) for record in records)
    verdicts = {record["verdict"] for record in records}
    assert verdicts == {"effective", "forced", "ineffective", "missing", "invalid",
                        "inactive", "inconclusive"}  # fmt: skip


def test_audit_prints_a_table_by_default():
    result = run("audit", str(build.EXPORT))

    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["EXECUTION", "VERDICT"]
    assert any("mmm-app-training-p9q2r" in line and "missing" in line for line in lines)


def test_audit_reads_json_lines_and_says_what_it_skipped(tmp_path):
    export = tmp_path / "entries.jsonl"
    lines = [json.dumps(entry) for entry in SAMPLE]
    lines[3] = "{truncated"
    lines.insert(10, json.dumps({"logName": "x"}))
    export.write_text("\n".join(lines) + "\n")

    result = run("audit", str(export), "--format", "json")

    assert result.returncode == 0
    assert len(json_lines(result.stdout)) == 9
    assert "bad_json_line: 1" in result.stderr
    assert "not_log_entry: 1" in result.stderr


def test_a_truncated_export_still_yields_the_entries_before_the_break(tmp_path):
    export = tmp_path / "cut.json"
    text = build.EXPORT.read_text()
    export.write_text(text[: len(text) // 2])

    result = run("audit", str(export), "--format", "json")

    assert result.returncode == 0
    assert json_lines(result.stdout)
    assert "broken_json_tail: 1" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty file"), ("hello", "no usable log entry"),
     ("{\"a\": 1}", "no usable log entry"), ("[}", "not JSON")],
)  # fmt: skip
def test_unusable_input_is_a_clear_error(tmp_path, content, message):
    export = tmp_path / "bad.json"
    export.write_text(content)

    result = run("audit", str(export))

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_file_is_a_clear_error(tmp_path):
    result = run("audit", str(tmp_path / "nope.json"))

    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_audit_of_other_jobs_needs_naming_them():
    watched = run("audit", str(build.EXPORT), "--job", "mmm-app-dev-training",
                  "--format", "json")  # fmt: skip

    assert {r["job"] for r in json_lines(watched.stdout)} == {"mmm-app-dev-training"}
    assert "use --job" in watched.stderr


def test_check_config_prints_the_configuration_and_fails_when_unusable(tmp_path):
    good = run("check-config")
    bad = run("check-config", env={"WATCHDOG_TOLERANCE_CORES": "one",
                                   "WATCHDOG_LEDGER": "postgres://x"})  # fmt: skip

    assert good.returncode == 0
    assert "WATCHDOG_GRACE_SECONDS" in good.stdout
    assert bad.returncode == 1
    assert "WATCHDOG_TOLERANCE_CORES='one'" in bad.stderr
    assert "WATCHDOG_LEDGER" in bad.stderr


def test_verdicts_lists_what_the_ledger_recorded(function, tmp_path):
    from samples.logentries import push_body

    for n, entry in enumerate(SAMPLE):
        function.push(push_body(entry, str(n)))
    function.settle()
    ledger_url = function.watchdog.settings.ledger

    result = run("verdicts", "--job", build.PROD, "--format", "json",
                 env={"WATCHDOG_LEDGER": ledger_url})  # fmt: skip

    records = json_lines(result.stdout)
    assert [r["execution"][-5:] for r in records] == [
        "a1b2c", "d3e4f", "g5h6j", "k7m8n", "p9q2r", "s3t4v"
    ]  # fmt: skip
    assert all(record.keys() >= KEYS for record in records)
