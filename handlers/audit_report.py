"""The report of a replay: each replayed verdict beside the one recorded.

Production's ledger holds the recorded verdicts; the replay's namespace holds
the replayed ones (handlers/audit_mode.py). Disagreements come first, then
executions whose causes alone differ, then those production never decided,
then agreements. Reading both ledgers changes neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers import blocks

# The order rows are shown in: what needs a look first.
STATUSES = ("disagree", "causes_differ", "unrecorded", "agree")
COLUMNS = (
    ("STATUS", "status"),
    ("JOB", "job"),
    ("EXECUTION", "execution"),
    ("RECORDED", "recorded"),
    ("REPLAYED", "replayed"),
    ("CAUSES", "why"),
)
MAX_LINES = 40  # of the Slack message; the command line shows every row


@dataclass
class AuditReport:
    replay_id: str
    rows: list[dict] = field(default_factory=list)
    received: int = 0  # entries the function took from the replay
    expected: int | None = None  # entries the replay published, once it ended

    @property
    def disagreements(self) -> int:
        return sum(row["status"] != "agree" for row in self.rows)

    def headline(self) -> str:
        counts = ", ".join(
            f"{n} {status.replace('_', ' ')}"
            for status in STATUSES
            if (n := sum(row["status"] == status for row in self.rows))
        )
        entries = f"{self.received} entries"
        if self.expected is not None and self.expected != self.received:
            entries = f"{self.received} of {self.expected} entries (incomplete)"
        return (
            f"Audit of replay {self.replay_id}: {len(self.rows)} executions from "
            f"{entries}; {counts or 'nothing to compare'}"
        )


def compare(replay_id: str, recorded_ledger, replayed_ledger) -> AuditReport:
    """Rows for every execution the replay decided, disagreements first."""
    rows = [
        _row(replayed, recorded_ledger.verdict(replayed["job"], replayed["execution"]))
        for replayed in replayed_ledger.verdicts()
    ]
    rows.sort(key=lambda r: (STATUSES.index(r["status"]), r["job"],
                             r.get("start_time") or "", r["execution"]))  # fmt: skip
    return AuditReport(replay_id, rows)


def _row(replayed: dict, recorded: dict | None) -> dict:
    new_causes = list(replayed.get("causes") or ())
    old_causes = list((recorded or {}).get("causes") or ())
    if recorded is None:
        status = "unrecorded"
    elif recorded["verdict"] != replayed["verdict"]:
        status = "disagree"
    elif sorted(old_causes) != sorted(new_causes):
        status = "causes_differ"
    else:
        status = "agree"
    return {
        "status": status,
        "job": replayed["job"],
        "execution": replayed["execution"],
        "recorded": recorded["verdict"] if recorded else None,
        "replayed": replayed["verdict"],
        "recorded_causes": old_causes,
        "replayed_causes": new_causes,
        "why": _why(status, old_causes, new_causes),
        "start_time": replayed.get("start_time"),
    }


def _why(status: str, old: list[str], new: list[str]) -> str:
    """The causes, and for a difference, which ones came and went."""
    if status in ("agree", "unrecorded"):
        return ", ".join(new) or "-"
    gained = [c for c in new if c not in old]
    lost = [c for c in old if c not in new]
    parts = [f"+{c}" for c in gained] + [f"-{c}" for c in lost]
    return ", ".join(parts) or ", ".join(new) or "-"


def report_text(report: AuditReport) -> str:
    lines = [report.headline()]
    for row in report.rows:
        lines.append(
            f"{row['status']}: {row['job']} {row['execution']}: recorded "
            f"{row['recorded'] or '-'}, replayed {row['replayed']} ({row['why']})"
        )
    return "\n".join(lines)


def slack_message(report: AuditReport, channel: str) -> dict:
    """The report as one Slack message (audit channel, no mention)."""
    lines = report_text(report).splitlines()
    shown = lines[1 : MAX_LINES + 1]
    if len(lines) - 1 > len(shown):
        shown.append(f"… and {len(lines) - 1 - len(shown)} more: "
                     f"`python main.py audit-report {report.replay_id}`")  # fmt: skip
    body = [{"type": "section", "text": {"type": "mrkdwn", "text": blocks.escape(line)}}
            for line in shown[: blocks.MAX_BLOCKS - 1]]  # fmt: skip
    header = {"type": "section", "text": {"type": "mrkdwn",
                                          "text": blocks.escape(lines[0])}}  # fmt: skip
    text = blocks.escape(lines[0])[: blocks.MAX_TEXT]
    return {"channel": channel, "text": text, "blocks": [header, *body]}
