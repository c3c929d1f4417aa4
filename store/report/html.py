"""The wave report as one self-contained HTML file, with the task DAG drawn as inline SVG."""

from __future__ import annotations

import html
from typing import Any

from ..sanitize import one_line
from .text import attempts_text, fmt_duration

COLOURS = {"done": "#2e7d32", "failed": "#c62828", "blocked": "#8e24aa", "running": "#f9a825",
           "dispatched": "#1565c0", "verifying": "#00838f", "ready": "#0277bd", "planned": "#757575",
           "cancelled": "#9e9e9e"}
BOX_W, BOX_H, GAP_X, GAP_Y = 150, 34, 60, 14
MAX_DRAWN = 600

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1b1b;background:#fafafa}
h1{margin-bottom:.2rem} table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top} th{background:#eee}
.status{font-weight:600} .crit{color:#c62828} .counts span{margin-right:1.2rem} svg text{font-size:11px}
.dag{overflow:auto;border:1px solid #ddd;background:#fff;margin-bottom:1.5rem}
"""


def _e(value: Any, width: int = 300) -> str:
    return html.escape(one_line("" if value is None else str(value), width))


def _status(s: str) -> str:
    return f'<span class="status" style="color:{COLOURS.get(s, "#333")}">{_e(s)}</span>'


def dag_svg(data: dict[str, Any]) -> str:
    tasks = [t for w in data["waves"] for t in w["tasks"]]
    if not tasks:
        return "<p>No tasks.</p>"
    if len(tasks) > MAX_DRAWN:
        return f"<p>The DAG has {len(tasks)} tasks; drawing is limited to {MAX_DRAWN}.</p>"
    pos: dict[str, tuple[int, int]] = {}
    height = 0
    for w in data["waves"]:
        for i, t in enumerate(w["tasks"]):
            x = 10 + w["wave"] * (BOX_W + GAP_X)
            y = 10 + i * (BOX_H + GAP_Y)
            pos[t["task_id"]] = (x, y)
            height = max(height, y + BOX_H + 10)
    width = 10 + len(data["waves"]) * (BOX_W + GAP_X)
    crit = data["critical_path"]
    crit_edges = set(zip(crit, crit[1:]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="task dependency graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>']
    for d in data["dependencies"]:
        if d["task_id"] in pos and d["depends_on"] in pos:
            (x1, y1), (x2, y2) = pos[d["depends_on"]], pos[d["task_id"]]
            hot = (d["depends_on"], d["task_id"]) in crit_edges
            parts.append(f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" x2="{x2}" y2="{y2 + BOX_H // 2}" '
                         f'stroke="{"#c62828" if hot else "#999"}" stroke-width="{2 if hot else 1}" '
                         f'marker-end="url(#arrow)"><title>{_e(d["depends_on"])} → {_e(d["task_id"])}</title></line>')
    for t in tasks:
        x, y = pos[t["task_id"]]
        colour = COLOURS.get(t["status"], "#333")
        parts.append(f'<g><title>{_e(t["task_id"])}: {_e(t["title"])} ({_e(t["status"])})</title>'
                     f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="#fff" '
                     f'stroke="{colour}" stroke-width="{3 if t["critical"] else 2}"/>'
                     f'<text x="{x + 6}" y="{y + 14}" font-weight="600">{_e(t["task_id"], 22)}</text>'
                     f'<text x="{x + 6}" y="{y + 27}" fill="{colour}">{_e(t["status"])}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """One table; cells arrive already escaped."""
    return (["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead><tbody>"]
            + ["<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows] + ["</tbody></table>"])


def to_html(data: dict[str, Any]) -> str:
    r = data["run"]
    c = r["counts"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Wave report: {_e(r['run_id'])}</title><style>{CSS}</style></head><body>",
           f"<h1>Wave report: {_e(r['run_id'])}</h1>", f"<p><strong>Goal:</strong> {_e(r['goal'], 1000)}</p>",
           f"<p><strong>Status:</strong> {_status(r['status'])} &nbsp; <strong>Duration:</strong> "
           f"{fmt_duration(r['duration_seconds'])}</p>",
           '<p class="counts">' + "".join(f"<span><strong>{k.replace('_', '-').capitalize()}:</strong> {v}</span>"
                                          for k, v in c.items()) + "</p>",
           "<h2>Task graph</h2>", '<div class="dag">', dag_svg(data), "</div>"]
    if data["critical_path"]:
        out.append(f"<p><strong>Critical path:</strong> {' → '.join(_e(t) for t in data['critical_path'])}</p>")
    for w in data["waves"]:
        out.append(f"<h2>Wave {w['wave']}</h2>")
        lw = w.get("leader_wait") or {}
        if lw.get("questions"):
            out.append(f"<p>Waited on the leader: {_e(fmt_duration(lw['total_seconds']))} over {lw['questions']}"
                       f" question(s), longest {_e(fmt_duration(lw['longest_seconds']))}"
                       f"{', ' + str(lw['unanswered']) + ' unanswered' if lw.get('unanswered') else ''}.</p>")
        out += _table(("task", "title", "owner", "status", "attempts", "duration", "branch", "checks", "PR", "CI"),
                      [(_e(t["task_id"]) + (' <span class="crit">★</span>' if t["critical"] else ""), _e(t["title"]),
                        _e(t["owner"]), _status(t["status"]), _e(attempts_text(t["attempts"])),
                        fmt_duration(t["duration_seconds"]), _e(t["branch"]),
                        _e(", ".join(f"{ch['name']} {ch['status']}" for ch in t["checks"])),
                        _e(t["links"].get("pr", "")), _e(t["links"].get("ci", ""))) for t in w["tasks"]])
    ld = data.get("landing") or {}
    if ld.get("landed") or ld.get("conflicts"):  # issue 14
        out.append(f"<h2>Landing into {_e(ld['target'])}</h2>")
        out += _table(("task", "wave", "attempt", "commit", "strategy", "by", "landed at", "PR"),
                      [tuple(_e(v) for v in (x["task_id"], x["wave"], x["attempt_no"], x["commit"][:12], x["strategy"],
                                             x["by"], x["landed_at"], x["pr_url"])) for x in ld["landed"]])
        if ld["conflicts"]:
            out += _table(("task", "attempt", "conflicting files", "resolution"),
                          [tuple(_e(v) for v in (c["task_id"], c["attempt_no"], ", ".join(c["files"]),
                                                 c["resolution"])) for c in ld["conflicts"]])
        out += _table(("wave", "landed", "done, not landed", "total wait (s)", "longest wait (s)"),
                      [tuple(_e(v) for v in (w["wave"], w["landed"], w["done_not_landed"], w["wait_total_seconds"],
                                             w["wait_max_seconds"])) for w in ld["waves"]])
    walls = data.get("walls") or {}
    if walls.get("holds"):  # issue 12: usage limits, outages, logins
        out.append("<h2>Agent limits and outages</h2>")
        out.append(f"<p>Profiles held: {len(walls['holds'])}; starts held back: {walls['starts_held_back']}; "
                   f"released by the leader: {walls['released']}.</p>")
        out += _table(("at", "profile", "kind", "until", "what the screen showed"),
                      [tuple(_e(v) for v in (h["at"], h["profile"], h["kind"],
                                             h["until_at"] or "released by the leader", h["summary"]))
                       for h in walls["holds"]])
    out.append("<h2>Blocked questions</h2>")
    out += _table(("task", "asked by", "asked at", "question", "answer", "answered by"),
                  [tuple(_e(v, 1000) for v in (q["task_id"], q["asked_by"], q["asked_at"], q["question"],
                                              q["answer"] if q["answer"] is not None else "(unanswered)",
                                              q["answered_by"] or "")) for q in data["questions"]]) \
        if data["questions"] else ["<p>None.</p>"]
    out.append("<h2>Follow-ups</h2>")
    out += _table(("task", "title", "status", "reason", "last report"),
                  [tuple(_e(v, 1000) for v in (f["task_id"], f["title"], f["status"], f["reason"],
                                              f["last_report"])) for f in data["follow_ups"]]) \
        if data["follow_ups"] else ["<p>None.</p>"]
    out.append("</body></html>")
    return "\n".join(out) + "\n"
