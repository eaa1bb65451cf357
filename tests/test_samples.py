"""The sample export and the demo stay what the README says they are."""

import json
import subprocess
import sys

from samples import build
from tests.conftest import ROOT


def test_the_sample_export_is_what_its_builder_writes():
    assert json.loads(build.EXPORT.read_text()) == build.sample_entries()


def test_the_sample_export_is_newest_first_like_gcloud():
    stamps = [entry["timestamp"] for entry in build.sample_entries()]

    assert stamps == sorted(stamps, reverse=True)


def test_the_demo_shows_every_verdict_and_a_streak_of_three():
    result = subprocess.run([sys.executable, "samples/demo.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)  # fmt: skip

    assert result.returncode == 0, result.stderr
    for verdict in ("EFFECTIVE", "FORCED", "INEFFECTIVE", "MISSING", "INVALID",
                    "INACTIVE", "INCONCLUSIVE"):  # fmt: skip
        assert f": {verdict} (" in result.stdout
    assert "verdicts before the grace period: 0" in result.stdout
    assert "mmm-app-training: 3 failing verdict(s) in a row" in result.stdout
    assert "verdict still effective" in result.stdout
