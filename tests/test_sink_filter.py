"""The sink filter lets through every entry the parser reads."""

import json
import re

from handlers.parse import observe
from handlers.sink_filter import sink_filter, text_terms
from samples import build

SAMPLE = json.loads(build.EXPORT.read_text())
JOBS = frozenset({build.PROD, build.DEV})


def passes_text_terms(text: str) -> bool:
    # Inside the query's double quotes, "\\" stands for one backslash.
    return re.search(text_terms().replace("\\\\", "\\"), text) is not None


def test_every_text_line_the_parser_reads_passes_the_filter():
    read = [e for e in SAMPLE if "textPayload" in e and observe(e, JOBS)
            and "varlog" not in e["logName"]]  # fmt: skip

    assert read
    assert all(passes_text_terms(e["textPayload"]) for e in read)


def test_the_platform_lines_that_matter_are_warnings_or_errors():
    varlog = [e for e in SAMPLE if "varlog" in e["logName"] and observe(e, JOBS)]
    needed = [e for e in varlog if observe(e, JOBS).fields.get("code") != 0]

    assert needed
    assert all(e["severity"] in ("WARNING", "ERROR") for e in needed)


def test_unrelated_training_output_does_not_pass():
    assert not passes_text_terms("  Running trial 1 of 5")
    assert not passes_text_terms("Input data has 208 weeks in total")


def test_the_filter_names_the_jobs_and_every_kind_of_entry():
    query = sink_filter(JOBS)

    assert (
        'resource.labels.job_name=("mmm-app-dev-training" OR "mmm-app-training")'
        in (query)
    )
    assert "jsonPayload.marker:*" in query
    assert 'protoPayload.methodName="/Jobs.RunJob"' in query
    assert 'log_id("run.googleapis.com/varlog/system")' in query
