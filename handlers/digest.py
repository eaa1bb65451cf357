"""The periodic Slack digest: counts, costs, training times, rollbacks, a chart.

Periods are `WATCHDOG_DIGEST_DAYS` long and start on Mondays (UTC) counted
from 1970-01-05, so 7 gives Monday to Sunday. The first tick after a period
ends posts its digest, once (`slack/digest/{start}`, see handlers/notify.py),
then uploads the chart into the message's thread. matplotlib is imported
only here, when a digest is drawn.
"""

from __future__ import annotations

import io
import statistics
from datetime import UTC, date, datetime, timedelta

from handlers import blocks, times

DIGEST = "digest"
_MONDAY = date(1970, 1, 5)
_DAY = 86400


def period(now: float, days: int) -> tuple[date, date] | None:
    """[start, end) of the latest period that has ended; None without digests."""
    if days <= 0:
        return None
    today = datetime.fromtimestamp(now, UTC).date()
    end = today - timedelta(days=(today - _MONDAY).days % days)
    return end - timedelta(days=days), end


def post_if_due(notifier) -> bool:
    """Post the digest of the period that ended last, unless posted before."""
    span = period(notifier.clock(), notifier.settings.digest_days)
    if span is None:
        return False
    key = f"slack/{DIGEST}/{span[0].isoformat()}"
    # NOTE: a read first, so that a tick usually costs no failed create.
    if any(d["key"] == key for d in notifier.ledger.decisions("")):
        return False
    stats = summarise(notifier.ledger, *span)
    message = blocks.digest(stats, notifier.settings.slack_channel)
    message["period"] = [span[0].isoformat(), span[1].isoformat()]
    return notifier.send(key, "", DIGEST, message)


def deliver(notifier, record: dict) -> dict:
    """Post the digest (unless an earlier attempt did), then upload the chart."""
    from handlers.slack_client import call

    if not record.get("ts"):
        record["ts"] = notifier.post_message(record)
        notifier.ledger.settle_decision(record["key"], record)
    start, end = (date.fromisoformat(d) for d in record["period"])
    png = chart(_in_period(_since(notifier.ledger, start), start, end), start, end)
    upload = call(
        f"files_upload_v2 of {record['key']}",
        notifier.client.files_upload_v2,
        channel=record["channel"],
        thread_ts=record["ts"],
        content=png,
        filename=f"core-override-{start.isoformat()}.png",
        title=f"Training minutes and cores, {start} to {end}",
    )
    return {"chart": (upload.get("file") or {}).get("id")}


def summarise(ledger, start: date, end: date) -> dict:
    """The figures of the executions that started in [start, end)."""
    verdicts = _in_period(_since(ledger, start), start, end)
    counts: dict[str, int] = {}
    by_cores: dict[int, list[float]] = {}
    for v in verdicts:
        counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
        if v.get("cores_used") and v.get("training_minutes") is not None:
            by_cores.setdefault(v["cores_used"], []).append(v["training_minutes"])
    low, high = _seconds(start), _seconds(end)
    rollbacks = [d for d in ledger.decisions()
                 if d.get("kind") in ("rollback", "cooldown")
                 and low <= d["decided_at"] < high]  # fmt: skip
    return {
        "start": start.isoformat(),
        "end": (end - timedelta(days=1)).isoformat(),
        "executions": len(verdicts),
        "verdicts": counts,
        "cost_usd": sum(v.get("cost_usd") or 0 for v in verdicts),
        "idle_cost_usd": sum(v.get("idle_cost_usd") or 0 for v in verdicts),
        "median_minutes": {c: statistics.median(m) for c, m in by_cores.items()},
        "rollbacks": rollbacks,
    }


def chart(verdicts: list[dict], start: date, end: date) -> bytes:
    """A PNG: training minutes (bars) and cores used (dots) per execution."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, minutes_axis = pyplot.subplots(figsize=(8, 3.5), dpi=100)
    try:
        xs = range(len(verdicts))
        minutes = [v.get("training_minutes") or 0 for v in verdicts]
        cores = [v.get("cores_used") or 0 for v in verdicts]
        minutes_axis.bar(xs, minutes, color="#7aa6d8", label="training minutes")
        minutes_axis.set_ylabel("training minutes")
        minutes_axis.set_xlabel(f"executions from {start} to {end}, in start order")
        cores_axis = minutes_axis.twinx()
        cores_axis.plot(xs, cores, "o", color="#d1495b", label="cores used")
        cores_axis.set_ylabel("cores used")
        cores_axis.set_ylim(bottom=0)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        pyplot.close(figure)


def _since(ledger, start: date) -> list[dict]:
    """Verdicts that may belong to the period: an execution that started in it
    was decided after its start."""
    return ledger.verdicts(decided_since=_seconds(start))


def _in_period(verdicts: list[dict], start: date, end: date) -> list[dict]:
    low, high = _seconds(start), _seconds(end)
    chosen = []
    for v in verdicts:
        started = times.parse(v.get("start_time"))
        if started is not None and low <= started.timestamp() < high:
            chosen.append(v)
    return sorted(chosen, key=lambda v: (v.get("start_time") or "", v["execution"]))


def _seconds(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
