"""The function as Pub/Sub delivers to it: all modes, duplicates, disorder, junk."""

import base64
import json
import random
import time
from collections import Counter

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from handlers.audit import audit_files
from handlers.errors import TransientError
from samples import build
from samples.logentries import push_body

SAMPLE = json.loads((build.EXPORT).read_text())
ATTRIBUTES = {
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "source": "//pubsub.googleapis.com/projects/example/topics/training-logs",
    "id": "4242",
}


MARKER = next(e for e in SAMPLE if "jsonPayload" in e)


def kept(function, entry=MARKER):
    execution = entry["labels"]["run.googleapis.com/execution_name"]
    job = entry["resource"]["labels"]["job_name"]
    return len(function.watchdog.ledger.observations(job, execution))


def test_binary_mode_cloudevent_is_read(function):
    headers, body = to_binary(CloudEvent(ATTRIBUTES, push_body(MARKER, "4242")))

    response = function.logs.post("/", headers=headers, data=body)

    assert response.status_code == 200
    assert kept(function) == 1


def test_structured_mode_cloudevent_is_read(function):
    headers, body = to_structured(CloudEvent(ATTRIBUTES, push_body(MARKER, "4242")))

    response = function.logs.post("/", headers=headers, data=body)

    assert response.status_code == 200
    assert kept(function) == 1


def test_raw_push_body_is_read(function):
    assert function.push(push_body(MARKER, "4242")).status_code == 200
    assert kept(function) == 1


def _with_data(data: str) -> dict:
    return {"message": {"data": data, "messageId": "m-1"}, "subscription": "s"}


def _encoded(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


OTHER_JOB = dict(
    SAMPLE[0], resource={"type": "cloud_run_job", "labels": {"job_name": "other-job"}}
)
BAD = [
    (_with_data("***"), "not_base64"),
    (_with_data(_encoded("{not json")), "not_json"),
    (_with_data(_encoded([1, 2])), "not_log_entry"),
    (_with_data(_encoded({"logName": "x", "resource": {}})), "not_log_entry"),
    (_with_data(_encoded(OTHER_JOB)), "unwatched_job"),
    (_with_data(""), "no_data"),
    (_with_data(_encoded({"textPayload": "x" * 800_000})), "oversized"),
    ({"message": {"messageId": "m-1", "attributes": {}}, "subscription": "s"},
     "no_data"),
    ({"mess": "age"}, "not_pubsub"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "reason"), BAD, ids=[r for _, r in BAD])
def test_bad_input_is_acknowledged_with_one_warning(function, body, reason):
    headers, data = to_binary(CloudEvent({**ATTRIBUTES, "id": "m-1"}, body))

    response = function.logs.post("/", headers=headers, data=data)

    assert response.status_code == 200
    warnings = [line for line in function.log_lines() if line["severity"] == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0]["reason"] == reason
    assert warnings[0]["logging.googleapis.com/labels"]["message_id"] == "m-1"
    assert kept(function) == 0


def deliver(function, bodies):
    statuses = Counter(function.push(body).status_code for body in bodies)
    assert statuses == Counter({200: len(bodies)})


def verdict_map(records):
    return {(r["execution"]): (r["verdict"], tuple(r["causes"])) for r in records}


def test_duplicates_and_disorder_give_the_verdicts_of_one_ordered_delivery(
    function, settings
):
    clean = audit_files([build.EXPORT], settings).verdicts
    bodies = [push_body(entry, str(n)) for n, entry in enumerate(SAMPLE)]
    rng = random.Random(11)
    shuffled = bodies + rng.choices(bodies, k=len(bodies))
    rng.shuffle(shuffled)

    deliver(function, shuffled)
    function.settle()

    recorded = function.watchdog.ledger.verdicts()
    assert len(recorded) == len(clean) == 9
    assert verdict_map(recorded) == verdict_map(v.to_record() for v in clean)


def test_no_verdict_before_the_grace_period_is_over(function):
    completion_first = sorted(SAMPLE, key=lambda e: "protoPayload" not in e)
    deliver(function, [push_body(e, str(n)) for n, e in enumerate(completion_first)])
    function.tick()
    assert function.watchdog.ledger.verdicts() == []

    function.watchdog.clock = lambda: time.time() + 61
    function.push(push_body(SAMPLE[0], "again"))
    assert {r["job"] for r in function.watchdog.ledger.verdicts()} == {build.PROD}
    function.tick()

    assert len(function.watchdog.ledger.verdicts()) == 9


def test_a_late_marker_is_kept_but_changes_no_verdict(function, capsys):
    deliver(function, [push_body(e, str(n)) for n, e in enumerate(SAMPLE)])
    function.settle()
    ledger = function.watchdog.ledger
    before = ledger.verdict(build.PROD, "mmm-app-training-p9q2r")
    kept_before = len(ledger.observations(build.PROD, "mmm-app-training-p9q2r"))
    late = dict(next(e for e in SAMPLE if "jsonPayload" in e
                     and e["labels"]["run.googleapis.com/execution_name"]
                     == "mmm-app-training-a1b2c"))  # fmt: skip
    late["labels"] = dict(
        late["labels"],
        **{"run.googleapis.com/execution_name": "mmm-app-training-p9q2r"},
    )
    late["insertId"] = "late-1"

    deliver(function, [push_body(late, "late")])
    function.settle()

    assert ledger.verdict(build.PROD, "mmm-app-training-p9q2r") == before
    assert (
        len(ledger.observations(build.PROD, "mmm-app-training-p9q2r"))
        == kept_before + 1
    )
    assert capsys.readouterr().out.count("mmm-app-training-p9q2r: MISSING") == 1


def test_each_verdict_is_announced_once_however_often_it_is_delivered(function, capsys):
    bodies = [push_body(e, str(n)) for n, e in enumerate(SAMPLE)]

    deliver(function, bodies)
    function.settle()
    deliver(function, bodies)
    function.settle()

    out = capsys.readouterr().out
    assert sum(out.count(f"· {e}:") for e in verdict_map(
        function.watchdog.ledger.verdicts())) == 9  # fmt: skip


def test_a_transient_ledger_failure_asks_pub_sub_to_deliver_again(function):
    ledger = function.watchdog.ledger
    real_add = ledger.add

    def unavailable(*args):
        raise TransientError("ledger unavailable for a moment")

    ledger.add = unavailable
    failed = function.push(push_body(MARKER, "t-1"))
    ledger.add = real_add
    retried = function.push(push_body(MARKER, "t-1"))

    assert (failed.status_code, retried.status_code) == (500, 200)
    warning = next(
        line for line in function.log_lines() if line["severity"] == "WARNING"
    )
    assert warning["reason"] == "transient"
    assert "will be delivered again" in warning["message"]
    assert kept(function) == 1
