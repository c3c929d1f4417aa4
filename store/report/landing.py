"""The wave report's landing section (issue 14): what landed (commit, strategy, who, PR), what
conflicted and how it was resolved, and how long each wave waited between done and landed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..records import loads, rows
from ..validate import parse_ts


def land_section(conn: Any, run_id: str) -> dict[str, Any]:
    from ..land_state import gate_on, target_of

    waves = {r[0]: r[1] for r in conn.execute("SELECT task_id, wave FROM tasks WHERE run_id=?", (run_id,))}
    lands = rows(conn.execute("SELECT * FROM lands WHERE run_id=? ORDER BY task_id, attempt_no", (run_id,)).fetchall())
    events = rows(conn.execute(
        "SELECT event_type, task_id, attempt_no, payload_json, created_at FROM events WHERE run_id=? AND event_type IN"
        " ('task_done','task_landed','task_conflicts','task_dispatched') ORDER BY event_id", (run_id,)).fetchall())
    landed = [{"task_id": r["task_id"], "wave": waves.get(r["task_id"], 0), "attempt_no": r["attempt_no"],
               "commit": r["landed_commit"], "strategy": r["strategy"], "by": r["landed_by"],
               "landed_at": r["landed_at"], "pr_number": r["pr_number"], "pr_url": r["pr_url"]}
              for r in lands if r["status"] == "landed"]
    landed.sort(key=lambda x: x["landed_at"])
    prs = [{"task_id": r["task_id"], "attempt_no": r["attempt_no"], "number": r["pr_number"], "url": r["pr_url"],
            "landed": r["status"] == "landed"} for r in lands if r["pr_url"]]
    landed_by_task = {x["task_id"]: x for x in landed}
    conflicts = []
    for e in events:
        if e["event_type"] != "task_conflicts":
            continue
        p = loads(e["payload_json"], {}) or {}
        done = landed_by_task.get(e["task_id"])
        if done is None:
            how = "open"
        elif done["attempt_no"] > (e["attempt_no"] or 0):
            how = f"resolved by attempt {done['attempt_no']}, landed at {done['commit'][:12]}"
        else:
            how = f"cleared without a new attempt, landed at {done['commit'][:12]}"
        conflicts.append({"task_id": e["task_id"], "attempt_no": e["attempt_no"], "files": p.get("files", []),
                          "target_commit": p.get("target_commit", ""), "at": e["created_at"], "resolution": how})
    # per wave: from each task's last task_done to its task_landed
    done_at: dict[str, float] = {}
    wait: dict[str, float] = {}
    for e in events:
        if e["event_type"] == "task_done":
            done_at[e["task_id"]] = parse_ts(e["created_at"])
        elif e["event_type"] == "task_landed" and e["task_id"] in done_at:
            wait[e["task_id"]] = max(0.0, parse_ts(e["created_at"]) - done_at[e["task_id"]])
    per_wave: dict[int, list[float]] = defaultdict(list)
    unlanded: dict[int, int] = defaultdict(int)
    for t, w in waves.items():
        if t in wait:
            per_wave[w].append(wait[t])
        elif t in done_at:
            unlanded[w] += 1
    wave_rows = [{"wave": w, "landed": len(per_wave.get(w, [])), "done_not_landed": unlanded.get(w, 0),
                  "wait_total_seconds": round(sum(per_wave.get(w, [])), 2),
                  "wait_max_seconds": round(max(per_wave.get(w, [0.0])), 2)}
                 for w in sorted(set(per_wave) | set(unlanded))]
    return {"target": target_of(conn, run_id), "gate": gate_on(conn, run_id), "landed": landed, "prs": prs,
            "conflicts": conflicts, "waves": wave_rows}


def to_markdown(section: dict[str, Any], cell: Any) -> list[str]:
    """The section's lines; cell escapes one table cell (report._md)."""
    if not (section["landed"] or section["conflicts"] or section["prs"]):
        return []
    out = ["## Landing", "", f"**Target:** {cell(section['target'])}"
           + (" (dependants wait for their dependencies to land)" if section["gate"] else ""), ""]
    if section["landed"]:
        out += ["| task | wave | attempt | commit | strategy | by | landed at | PR |",
                "|---|---|---|---|---|---|---|---|"]
        for x in section["landed"]:
            pr = f"#{x['pr_number']} {x['pr_url']}" if x["pr_url"] else ""
            out.append("| " + " | ".join([cell(x["task_id"]), str(x["wave"]), str(x["attempt_no"]), x["commit"][:12],
                                          x["strategy"], cell(x["by"]), cell(x["landed_at"]), cell(pr)]) + " |")
        out.append("")
    open_prs = [p for p in section["prs"] if not p["landed"]]
    if open_prs:
        out += ["Open pull requests: " + ", ".join(f"{cell(p['task_id'])} #{p['number']} {cell(p['url'])}"
                                                   for p in open_prs), ""]
    if section["conflicts"]:
        out += ["### Conflicts", "", "| task | attempt | files | target at | resolution |", "|---|---|---|---|---|"]
        for c in section["conflicts"]:
            out.append("| " + " | ".join([cell(c["task_id"]), str(c["attempt_no"]), cell(", ".join(c["files"]), 200),
                                          c["target_commit"][:12], cell(c["resolution"])]) + " |")
        out.append("")
    if section["waves"]:
        out += ["### Waiting for landing", "", "| wave | landed | done, not landed | total wait | longest wait |",
                "|---|---|---|---|---|"]
        for w in section["waves"]:
            out.append(f"| {w['wave']} | {w['landed']} | {w['done_not_landed']} | {w['wait_total_seconds']}s | "
                       f"{w['wait_max_seconds']}s |")
        out.append("")
    return out
