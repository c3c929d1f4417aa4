"""The attention queue: everything in a run that waits on the leader, ranked by what answering it
unblocks.

Sources: a blocked task's open question, a worker's screen waiting for input, and an escalation
(retries exhausted, a launch that cannot proceed), a permission request. The rank: first an item on
the critical path of the unfinished work (its dependants reach the deepest unfinished wave), then
the one with the most unfinished tasks downstream of it (directly or transitively), then the one
that has waited longest. Each item says how long it has waited, so
the leader sees both what matters most and what has been left longest.
"""

from __future__ import annotations

import time
from typing import Any

from .db import Store
from .records import rows
from .states import FINISHED_TASK, sql_in
from .validate import check_id, parse_ts
from .views import blocked_questions

DONE_SQL = sql_in(FINISHED_TASK)


def _downstream(conn: Any, run_id: str, roots: list[str]) -> dict[str, tuple[int, int]]:
    """For each root task: how many unfinished tasks wait on it, directly or transitively, and the
    deepest wave among them (tasks keep their wave: the longest chain of dependencies below them)."""
    if not roots:
        return {}
    marks = ",".join("?" * len(roots))
    found = conn.execute(
        "WITH RECURSIVE down(root, id) AS ("
        f" SELECT depends_on, task_id FROM deps WHERE run_id=? AND depends_on IN ({marks})"
        " UNION SELECT down.root, d.task_id FROM deps d JOIN down ON d.depends_on=down.id WHERE d.run_id=?)"
        " SELECT down.root, count(*), max(t.wave) FROM down JOIN tasks t ON t.run_id=? AND t.task_id=down.id"
        f" WHERE t.status NOT IN {DONE_SQL} GROUP BY down.root", (run_id, *roots, run_id, run_id)).fetchall()
    return {r[0]: (int(r[1]), int(r[2])) for r in found}


def _first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def queue(store: Store, *, run_id: str, now: float | None = None) -> dict[str, Any]:
    """The ranked queue (`orch attention`, the console's blocked pane)."""
    check_id(run_id, "--run")
    now = time.time() if now is None else now
    with store.snapshot() as conn:
        from .runs import get_run

        get_run(conn, run_id)
        questions = blocked_questions(conn, run_id)
        flagged = rows(conn.execute(
            "SELECT x.task_id, x.attempt_no, x.kind, x.reason, x.created_at, a.assigned_to, a.thread_id, t.title"
            " FROM attention x JOIN tasks t ON t.run_id=x.run_id AND t.task_id=x.task_id"
            " JOIN attempts a ON a.run_id=x.run_id AND a.task_id=x.task_id AND a.attempt_no=x.attempt_no"
            f" WHERE x.run_id=? AND t.status NOT IN {DONE_SQL} AND x.attempt_no=(SELECT max(attempt_no)"
            " FROM attempts b WHERE b.run_id=x.run_id AND b.task_id=x.task_id)"
            " AND (x.kind<>'waiting_input' OR a.liveness='waiting_input')", (run_id,)).fetchall())
        items: list[dict[str, Any]] = []
        for q in questions.values():
            if q["answered"]:  # answered: its worker's turn to resume, nothing waits on the leader
                continue
            question = q["question"]
            items.append({"task_id": q["task_id"], "title": q["title"], "kind": "question",
                          "text": _first_line(question["summary"]) or _first_line(question["body"]),
                          "agent": q["asked_by"], "attempt_no": q["attempt_no"], "thread_id": q["thread_id"],
                          "since": q["asked_at"], "message_id": question["message_id"], "question": question})
        # A permission request waiting on the leader (an agent's hook, issue 12) is listed in place
        # of its task's waiting_input flag: the watcher saw the same request on the screen.
        from .approvals import attention_items

        requests = attention_items(conn, run_id)
        items += requests
        seen = {(i["task_id"], i["kind"]) for i in items} | {(r["task_id"], "waiting_input") for r in requests}
        for f in flagged:
            kind = "waiting_input" if f["kind"] == "waiting_input" else "escalation"
            if (f["task_id"], kind) in seen:
                continue
            items.append({"task_id": f["task_id"], "title": f["title"], "kind": kind,
                          "text": _first_line(f["reason"]), "agent": f["assigned_to"],
                          "attempt_no": f["attempt_no"], "thread_id": f["thread_id"], "since": f["created_at"],
                          "message_id": None, "question": None, "reason": f["reason"]})
        roots = sorted({i["task_id"] for i in items})
        downstream = _downstream(conn, run_id, roots)
        # The critical path of the unfinished work ends in its deepest wave: an item whose unfinished
        # dependants reach that wave holds the run's end back (one indexed max over tasks_wave).
        last_wave = conn.execute(f"SELECT max(wave) FROM tasks WHERE run_id=? AND status NOT IN {DONE_SQL}",
                                 (run_id,)).fetchone()[0] if items else None
    for i in items:
        count, deepest = downstream.get(i["task_id"], (0, -1))
        i["unblocks"] = count
        i["critical"] = bool(count) and last_wave is not None and deepest == last_wave
        i["waited_seconds"] = round(max(0.0, now - parse_ts(i["since"])), 1)
    items.sort(key=lambda i: (not i["critical"], -i["unblocks"], i["since"], i["task_id"]))
    for rank, i in enumerate(items, 1):
        i["rank"] = rank
    return {"items": items, "count": len(items)}
