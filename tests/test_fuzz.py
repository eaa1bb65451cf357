"""Random and mangled messages never raise, except the declared transient errors."""

import base64
import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import app, intake
from handlers.errors import BadMessage, TransientError
from samples import build

SAMPLE = json.loads(build.EXPORT.read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def mangled_entries(draw):
    """A real entry with one part replaced, removed or retyped."""
    entry = json.loads(json.dumps(draw(st.sampled_from(SAMPLE))))
    target = entry
    path = draw(st.lists(st.text(max_size=1), max_size=3))
    for step in path:
        if not isinstance(target, dict) or not target:
            break
        key = sorted(target)[ord(step[0]) % len(target)] if step else None
        if key is None or not isinstance(target[key], dict):
            break
        target = target[key]
    if isinstance(target, dict) and target:
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values)
    return entry


def _encode(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


messages = st.one_of(
    json_values,
    st.builds(lambda d: {"message": {"data": d, "messageId": "f"}}, json_values),
    st.builds(lambda t: {"message": {"data": t, "messageId": "f"}}, st.text()),
    st.builds(lambda e: {"message": {"data": _encode(e), "messageId": "f"}},
              json_values),
    st.builds(lambda e: {"message": {"data": _encode(e), "messageId": "f"}},
              mangled_entries()),
)  # fmt: skip


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=messages)
def test_the_entry_point_never_raises_on_bad_input(function, data):
    class Event(dict):
        pass

    event = Event(id="fuzz")
    event.data = data

    with contextlib.suppress(TransientError):
        app.handle_log_entry(event)

    assert not any(
        line.get("reason") == "unreadable_entry" for line in function.log_lines()
    ), "the parser raised on an input it should have classified"


@given(data=st.binary(max_size=200))
def test_decoding_raw_bytes_gives_an_entry_or_a_bad_message(data):
    body = {"message": {"data": base64.b64encode(data).decode(), "messageId": "b"}}
    try:
        intake.decode(body, 10_000)
    except BadMessage as exc:
        assert exc.reason in {"not_json", "not_log_entry", "no_data"}


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(mangled_entries(), min_size=1, max_size=40))
def test_any_mix_of_mangled_entries_still_gets_a_verdict(entries):
    from handlers.config import Settings
    from handlers.ledger.sqlite import SqliteLedger
    from handlers.verdict import VERDICTS
    from handlers.watchdog import Watchdog

    ledger = SqliteLedger(":memory:")
    dog = Watchdog(Settings.from_env({}), ledger)
    for entry in entries:
        try:
            intake.check_entry(entry)
            dog.ingest(entry)
        except BadMessage as exc:
            assert exc.reason != "unreadable_entry"

    verdicts = [dog.finalize(job, execution) for job, execution in ledger.undecided()]

    assert all(v.verdict in VERDICTS for v in verdicts)
    assert ledger.undecided() == []
