"""Slack messages in Block Kit, each with the plain `text` notifications show.

Every string that comes from logs or ledger records (job and execution names,
causes, override values, reasons) goes through `escape`, which replaces only
`&`, `<` and `>` as https://api.slack.com/reference/surfaces/formatting says:
such text cannot mention anyone or form a link. Messages stay inside Block
Kit's limits (https://api.slack.com/reference/block-kit/blocks): at most 50
blocks, section text of 3,000 characters, 10 fields, a header of 150.
"""

from __future__ import annotations

from handlers.alerts import HEADLINES, alert_text
from handlers.summary import (
    ICONS,
    MEANINGS,
    cores_text,
    duration_text,
    explain,
    summary_text,
    usd_text,
    value_text,
)
from handlers.verdict import Verdict

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TEXT = 3000  # the fallback: notifications show only its start anyway
LOG_HOST = "https://console.cloud.google.com/"
URGENT = frozenset({"failed", "verification_failed"})


def escape(text: object) -> str:
    """Text shown as is: `&`, `<` and `>` as Slack's entities, nothing else."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(verdict: Verdict, channel: str) -> dict:
    """One execution's verdict, causes and figures, and a link to its logs."""
    v = verdict
    icon = ICONS.get(v.verdict, "•")
    title = (
        f"{icon} *{escape(v.job)}* · `{escape(v.execution)}`: *{v.verdict.upper()}*"
        f" ({MEANINGS.get(v.verdict, '')})"
    )
    figures = [
        ("Cores used", cores_text(v)),
        ("Override", escape(value_text(v.override_raw or v.override_cores))),
        ("Training", _training(v)),
        ("Wall time", duration_text(v.wall_seconds)),
        ("Cost", usd_text(v.cost_usd)),
        ("Idle cost", usd_text(v.idle_cost_usd)),
    ]
    blocks = [
        _section(title),
        {"type": "section",
         "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in figures]},
    ]  # fmt: skip
    if v.causes:
        causes = "\n".join(f"• {escape(explain(c))}" for c in v.causes)
        blocks.append(_section(f"*Causes*\n{causes}", v.log_uri))
    blocks.append(_context(f"outcome {escape(v.outcome)} · {_link(v.log_uri)}"))
    text = f"{icon} {v.job} {v.execution}: {v.verdict}"
    return _message(channel, text, blocks, summary_text(v))


def streak_notice(verdict: Verdict, streak: int, threshold: int, channel: str):
    """A failing verdict that grows a streak: quiet, no mention."""
    v = verdict
    left = threshold - streak
    if left > 0:
        then = f"a rollback is decided after {left} more"
    else:
        then = "the rollback of this streak was decided already"
    line = (
        f"{ICONS.get(v.verdict, '•')} *{escape(v.job)}*: {streak} failing "
        f"verdict(s) in a row, the latest `{escape(v.execution)}` is *{v.verdict}*; "
        f"{then}."
    )
    text = f"{v.job}: {streak} failing verdict(s) in a row ({v.execution})"
    return _message(channel, text, [_section(line), _context(_link(v.log_uri))])


def recovery(verdict: Verdict, failures: int, channel: str) -> dict:
    """The first effective or forced verdict after failures."""
    v = verdict
    line = (
        f"{ICONS.get(v.verdict, '•')} *{escape(v.job)}* recovered: "
        f"`{escape(v.execution)}` is *{v.verdict}* after {failures} failing "
        f"verdict(s); it used {cores_text(v)}."
    )
    text = f"{v.job} recovered: {v.execution} is {v.verdict}"
    return _message(channel, text, [_section(line), _context(_link(v.log_uri))])


def decision(record: dict, channel: str, oncall: str = "") -> dict:
    """A rollback decision: what changed, why, how to keep it, how to re-arm."""
    outcome = record["outcome"]
    headline, *body = alert_text(record).splitlines()
    mention = f"<!subteam^{oncall}>" if oncall else ""
    if outcome in URGENT:
        lead = f"{mention} *URGENT*: the job may still be running the failing override."
    else:
        lead = f"{mention} please look at this."
    blocks = [
        {"type": "header", "text": _plain(headline)},
        _section(lead.strip()),
        *_paragraphs(body),
    ]
    return _message(channel, headline, blocks[:MAX_BLOCKS])


def digest(stats: dict, channel: str) -> dict:
    """The period's counts, costs, training times and rollbacks."""
    period = f"{stats['start']} to {stats['end']}"
    counts = ", ".join(
        f"{ICONS.get(name, '•')} {name} {count}"
        for name, count in sorted(stats["verdicts"].items())
    )
    medians = "\n".join(
        f"• {cores} core(s): {minutes:.2f} min"
        for cores, minutes in sorted(stats["median_minutes"].items())
    )
    rollbacks = "\n".join(f"• {_headline(r)}" for r in stats["rollbacks"])
    blocks = [
        {"type": "header", "text": _plain(f"Core-override digest, {period}")},
        _section(f"*{stats['executions']} execution(s)*: {counts or 'none'}"),
        {"type": "section", "fields": [
            _mrkdwn(f"*Cost*\n{usd_text(stats['cost_usd'])}"),
            _mrkdwn(f"*Idle cost*\n{usd_text(stats['idle_cost_usd'])}"),
        ]},
        _section("*Median training time by cores used*\n" + (medians or "no data")),
        _section("*Rollback decisions*\n" + (rollbacks or "none")),
    ]  # fmt: skip
    text = (
        f"Core-override digest {period}: {stats['executions']} execution(s), "
        f"cost {usd_text(stats['cost_usd'])}, idle {usd_text(stats['idle_cost_usd'])}"
    )
    return _message(channel, text, blocks)


def _headline(record: dict) -> str:
    template = HEADLINES.get(record["outcome"], "{job}: {outcome}")
    return template.format(job=escape(record["job"]), mode=escape(record.get("mode")),
                           outcome=escape(record["outcome"]))  # fmt: skip


def _message(channel: str, text: str, blocks: list[dict], long: str = "") -> dict:
    """The message; its `text` is escaped too, since Slack parses it for mentions."""
    fallback = long or text
    if len(fallback) > MAX_TEXT:
        fallback = fallback[: MAX_TEXT - 1] + "…"
    return {"channel": channel, "text": escape(fallback), "blocks": blocks}


def _paragraphs(lines: list[str]) -> list[dict]:
    """alert_text's indented lines as sections; 4-space lines as code blocks."""
    groups: list[tuple[bool, list[str]]] = []
    for line in lines:
        code = line.startswith("    ")
        if groups and groups[-1][0] == code:
            groups[-1][1].append(line)
        else:
            groups.append((code, [line]))
    sections = []
    for code, group in groups:
        text = "\n".join(escape(line.strip() if not code else line) for line in group)
        sections.append(_section(f"```\n{text}\n```" if code else text))
    return sections[: MAX_BLOCKS - 2]


def _section(text: str, log_uri: str | None = None) -> dict:
    if len(text) > MAX_SECTION:
        tail = f"… (more in {_link(log_uri)})" if log_uri else "…"
        text = text[: MAX_SECTION - len(tail)] + tail
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [_mrkdwn(text[:MAX_SECTION])]}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict:
    if len(text) > MAX_HEADER:
        text = text[: MAX_HEADER - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def _link(log_uri: str | None) -> str:
    """A link to the logs when the URI is the console's and cannot break out."""
    if not log_uri:
        return "no log link"
    if log_uri.startswith(LOG_HOST) and not any(c in log_uri for c in "<>|\n "):
        return f"<{log_uri.replace('&', '&amp;')}|logs>"
    return f"logs: {escape(log_uri)}"


def _training(v: Verdict) -> str:
    if v.training_minutes is None:
        return "?"
    speedup = f" ({v.speedup:.1f}× baseline)" if v.speedup is not None else ""
    return f"{v.training_minutes:.2f} min{speedup}"
