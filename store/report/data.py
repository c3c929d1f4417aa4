"""The wave report's data: everything gathered once with set-based queries; the formats
(markdown.py, html.py, JSON in __init__) only format what this returns."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from ..db import Store
from ..fold import task_counts
from ..plan import critical_path
from ..records import loads, rows
from ..runs import get_run
from ..sanitize import one_line
from ..states import ENDED_RUN, TaskStatus
from ..validate import now_ts, check_id, parse_ts

LINK_KEYS = {"pr": ("pr_url", "pr", "pull_request", "pr_number"), "ci": ("ci_url", "ci", "ci_status", "checks_url")}


def _duration(start: str, end: str) -> float | None:
    if not start:
        return None
    return round((parse_ts(end) if end else time.time()) - parse_ts(start), 1)


def _links(payloads: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in payloads:
        if not isinstance(p, dict):
            continue
        for name, keys in LINK_KEYS.items():
            for k in keys:
                if k in p and p[k] not in (None, "") and name not in out:
                    out[name] = one_line(str(p[k]), 300)
    return out


def report_data(store: Store, *, run_id: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        run = get_run(conn, run_id)
        counts = task_counts(conn, run_id)
        tasks = rows(conn.execute("SELECT * FROM tasks WHERE run_id=? ORDER BY created_at, task_id",
                                  (run_id,)).fetchall())
        deps = [(r[0], r[1]) for r in conn.execute("SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,))]
        attempts = rows(conn.execute("SELECT * FROM attempts WHERE run_id=? ORDER BY task_id, attempt_no",
                                     (run_id,)).fetchall())
        checks = rows(conn.execute("SELECT * FROM checks WHERE run_id=? ORDER BY name", (run_id,)).fetchall())
        msgs = rows(conn.execute(
            "SELECT m.*, a.task_id, a.attempt_no FROM messages m JOIN attempts a ON a.thread_id=m.thread_id "
            "WHERE a.run_id=? AND m.kind IN ('question','answer','result') ORDER BY m.message_id",
            (run_id,)).fetchall())
        last_event = conn.execute("SELECT max(created_at) FROM events WHERE run_id=?", (run_id,)).fetchone()[0]
        from .landing import land_section  # issue 14

        landing = land_section(conn, run_id)
        walls = _walls(conn, run_id)
    ids = [t["task_id"] for t in tasks]
    wave = {t["task_id"]: t["wave"] for t in tasks}
    crit = critical_path(ids, deps)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_task[a["task_id"]].append(a)
    checks_of: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in checks:
        checks_of[(c["task_id"], c["attempt_no"])].append(c)
    results: dict[str, list[Any]] = defaultdict(list)
    questions: list[dict[str, Any]] = []
    open_q: dict[str, dict[str, Any]] = {}
    last_result: dict[str, dict[str, Any]] = {}
    for m in msgs:
        if m["kind"] == "result":
            results[m["task_id"]].append(loads(m["payload_json"], None))
            last_result[m["task_id"]] = m
        elif m["kind"] == "question":
            q = {"task_id": m["task_id"], "attempt_no": m["attempt_no"], "asked_by": m["from_agent"],
                 "asked_at": m["created_at"], "question": m["summary"], "question_body": m["body"],
                 "question_payload": loads(m["payload_json"], None), "answer": None, "answer_body": "",
                 "answered_by": None, "answered_at": None}
            questions.append(q)
            open_q[m["thread_id"]] = q
        elif m["kind"] == "answer" and m["thread_id"] in open_q:
            q = open_q.pop(m["thread_id"])
            q.update(answer=m["summary"], answer_body=m["body"], answered_by=m["from_agent"],
                     answered_at=m["created_at"], answer_payload=loads(m["payload_json"], None))
    wave_rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    follow_ups = []
    for t in tasks:
        atts = by_task.get(t["task_id"], [])
        latest = atts[-1] if atts else None
        latest_checks = checks_of.get((t["task_id"], latest["attempt_no"]), []) if latest else []
        att_out = [{"attempt_no": a["attempt_no"], "assigned_to": a["assigned_to"], "status": a["status"],
                    "end_reason": a["end_reason"], "started_at": a["started_at"], "ended_at": a["ended_at"],
                    "branch_name": a["branch_name"], "execution_mode": a["execution_mode"],
                    "workspace_status": a["workspace_status"]} for a in atts]
        row = {"task_id": t["task_id"], "title": t["title"], "status": t["status"], "wave": wave[t["task_id"]],
               "owner": latest["assigned_to"] if latest else (t["default_to"] or ""), "attempts": att_out,
               "duration_seconds": _duration(atts[0]["started_at"], latest["ended_at"]) if latest else None,
               "branch": latest["branch_name"] if latest else "",
               "checks": [{"name": c["name"], "status": c["status"], "summary": c["summary"]} for c in latest_checks],
               "links": _links(results.get(t["task_id"], [])), "critical": t["task_id"] in crit,
               "result": last_result[t["task_id"]]["summary"] if t["task_id"] in last_result else ""}
        wave_rows[row["wave"]].append(row)
        if t["status"] in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            reason = (latest["end_reason"] if latest else "") or t["status"]
            follow_ups.append({"task_id": t["task_id"], "title": t["title"], "status": t["status"],
                               "reason": reason, "last_report": row["result"] or (
                                   next((q["question"] for q in reversed(questions)
                                         if q["task_id"] == t["task_id"]), ""))})
    done_at = last_event if run["status"] in ENDED_RUN else ""
    summary = {
        "completed": counts.get("done", 0),
        "in_flight": sum(counts.get(s, 0) for s in (TaskStatus.DISPATCHED, TaskStatus.RUNNING,
                                                      TaskStatus.VERIFYING)),
        "queued": counts.get("planned", 0) + counts.get("ready", 0),
        "blocked": counts.get("blocked", 0), "failed": counts.get("failed", 0),
        "cancelled": counts.get("cancelled", 0), "total": sum(counts.values()),
    }
    return {
        "run": {"run_id": run["run_id"], "goal": run["goal"], "summary": run["summary"], "status": run["status"],
                "created_at": run["created_at"], "finished_at": done_at,
                "duration_seconds": _duration(run["created_at"], done_at), "counts": summary},
        "waves": [{"wave": w, "tasks": wave_rows[w], "leader_wait": _leader_wait(w, wave, questions, done_at)}
                  for w in sorted(wave_rows)],
        "questions": questions, "follow_ups": follow_ups, "critical_path": crit,
        "dependencies": [{"task_id": a, "depends_on": b} for a, b in deps],
        "landing": landing,
        "walls": walls,
    }


def _walls(conn: Any, run_id: str) -> dict[str, Any]:
    """What the agents ran into (issue 12, item 8): profile holds for a usage limit, an
    unreachable API or a login, the starts they kept back, and the leader's releases."""
    holds = []
    for r in conn.execute("SELECT created_at, payload_json, summary FROM events WHERE run_id=? AND "
                          "event_type='profile_held' ORDER BY event_id", (run_id,)):
        p = loads(r[1], {}) or {}
        holds.append({"at": r[0], "profile": p.get("profile", ""), "kind": p.get("kind", ""),
                      "until_at": p.get("until_at", ""), "summary": r[2]})
    kept = conn.execute("SELECT count(*) FROM events WHERE run_id=? AND event_type='task_held_by_profile'",
                        (run_id,)).fetchone()[0]
    released = conn.execute("SELECT count(*) FROM events WHERE run_id=? AND event_type='profile_released'",
                            (run_id,)).fetchone()[0]
    by_kind: dict[str, int] = defaultdict(int)
    for h in holds:
        by_kind[h["kind"]] += 1
    return {"holds": holds, "by_kind": dict(by_kind), "starts_held_back": kept, "released": released}


def _leader_wait(w: int, wave: dict[str, int], questions: list[dict[str, Any]], done_at: str) -> dict[str, Any]:
    """How long a wave's tasks waited on the leader: each question from when it was asked to its
    answer (an open one: to the run's end, or to now while the run goes on)."""
    end = done_at or now_ts(time.time())
    waits = [_duration(q["asked_at"], q["answered_at"] or end) or 0.0 for q in questions
             if wave.get(q["task_id"]) == w]
    return {"questions": len(waits), "unanswered": sum(1 for q in questions if wave.get(q["task_id"]) == w
                                                      and q["answered_at"] is None),
            "total_seconds": round(sum(waits), 1), "longest_seconds": round(max(waits, default=0.0), 1)}
