"""The wave report as Markdown: one table per wave, the blocked questions, the follow-ups."""

from __future__ import annotations

from typing import Any

from ..sanitize import one_line
from .text import attempts_text, fmt_duration


_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "[": "\\[", "]": "\\]", "&": "&amp;", "<": "&lt;",
                             ">": "&gt;"})


def _md(text: Any, width: int = 120) -> str:
    """One table cell: one line, no control characters, pipes escaped; raw HTML, entities and
    link syntax from worker text shown as text, never rendered (issue 15, M11)."""
    return one_line("" if text is None else str(text), width).translate(_MD_ESCAPES) or "—"


def to_markdown(data: dict[str, Any]) -> str:
    r = data["run"]
    c = r["counts"]
    out = [f"# Wave report: {_md(r['run_id'])}", "",
           f"**Goal:** {_md(r['goal'], 300)}  ", f"**Status:** {r['status']}  ",
           f"**Duration:** {fmt_duration(r['duration_seconds'])}  ",
           f"**Completed:** {c['completed']}/{c['total']} | **In-flight:** {c['in_flight']} | "
           f"**Queued:** {c['queued']} | **Blocked:** {c['blocked']} | **Failed:** {c['failed']}"
           + (f" | **Cancelled:** {c['cancelled']}" if c["cancelled"] else ""), ""]
    if data["critical_path"]:
        out += [f"**Critical path:** {' → '.join(_md(t, 64) for t in data['critical_path'])}", ""]
    for w in data["waves"]:
        lw = w.get("leader_wait") or {}
        waited = (f"Waited on the leader: {fmt_duration(lw['total_seconds'])} over {lw['questions']} question(s), "
                  f"longest {fmt_duration(lw['longest_seconds'])}"
                  + (f", {lw['unanswered']} unanswered" if lw.get("unanswered") else "") + ".") \
            if lw.get("questions") else "Waited on the leader: no questions."
        out += [f"## Wave {w['wave']}", "", waited, "",
                "| task | title | owner | status | attempts | duration | branch | checks | PR | CI |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for t in w["tasks"]:
            checks = ", ".join(f"{ch['name']} {ch['status']}" for ch in t["checks"]) or "—"
            out.append("| " + " | ".join([
                _md(t["task_id"]) + (" ★" if t["critical"] else ""), _md(t["title"], 80), _md(t["owner"]),
                _md(t["status"]), _md(attempts_text(t["attempts"]), 200), fmt_duration(t["duration_seconds"]),
                _md(t["branch"]), _md(checks), _md(t["links"].get("pr")), _md(t["links"].get("ci"))]) + " |")
        out.append("")
    from .landing import to_markdown as landing_md  # issue 14

    out += landing_md(data["landing"], _md)
    walls = data.get("walls") or {}
    if walls.get("holds"):  # issue 12: usage limits, outages, logins
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(walls["by_kind"].items()))
        out += ["## Agent limits and outages", "",
                f"Profiles held: {len(walls['holds'])} ({kinds}); starts held back: {walls['starts_held_back']}; "
                f"released by the leader: {walls['released']}.", "",
                "| at | profile | kind | until | what the screen showed |", "|---|---|---|---|---|"]
        for h in walls["holds"]:
            out.append("| " + " | ".join([_md(h["at"]), _md(h["profile"]), _md(h["kind"]),
                                          _md(h["until_at"] or "released by the leader"), _md(h["summary"], 200)])
                       + " |")
        out.append("")
    out += ["## Blocked questions", ""]
    if data["questions"]:
        out += ["| task | asked by | asked at | question | answer | answered by |", "|---|---|---|---|---|---|"]
        for q in data["questions"]:
            answer = q["answer"] if q["answer"] is not None else "(unanswered)"
            out.append("| " + " | ".join([_md(q["task_id"]), _md(q["asked_by"]), _md(q["asked_at"]),
                                          _md(q["question"], 200), _md(answer, 200), _md(q["answered_by"])]) + " |")
    else:
        out.append("None.")
    out += ["", "## Follow-ups", ""]
    if data["follow_ups"]:
        out += ["| task | title | status | reason | last report |", "|---|---|---|---|---|"]
        for f in data["follow_ups"]:
            out.append("| " + " | ".join([_md(f["task_id"]), _md(f["title"], 80), f["status"], _md(f["reason"]),
                                          _md(f["last_report"], 200)]) + " |")
    else:
        out.append("None.")
    return "\n".join(out) + "\n"
