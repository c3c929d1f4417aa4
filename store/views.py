"""Read models over a run: status, blocked questions, reconcile, waves.

Queries are set-based (one per table, not one per task) so a 10,000-task run stays fast.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from typing import Any

from .db import Store
from .fold import fold_thread, refresh_run, run_status_from_counts, task_counts
from .plan import plan_from
from .records import RawJSON, loads, public_message, rows
from .runs import get_run, public_run
from .states import FOLDABLE_TASK, NEEDS_LOOK_ORDER, TASK_EVENT, THREAD_TO_TASK, TaskStatus, sql_in
from .validate import check_id, now_ts, parse_ts


# The thread -> task mapping as SQL (THREAD_TO_TASK), leaving out what a fold never applies: a
# pending thread never moves its task back to dispatched.
_THREAD_TO_TASK_SQL = " ".join(f"WHEN '{th}' THEN '{task}'" for th, task in THREAD_TO_TASK.items()
                               if task != TaskStatus.DISPATCHED)
# Attempts whose thread moved without them, or whose latest-attempt task disagrees with the thread.
LAGGING_SQL = f"""
SELECT th.* FROM attempts a
JOIN threads th ON th.thread_id=a.thread_id
JOIN tasks t ON t.run_id=a.run_id AND t.task_id=a.task_id
WHERE a.run_id=? AND (a.status<>th.status OR (
  t.status IN {sql_in(FOLDABLE_TASK)}
  AND a.attempt_no=(SELECT max(attempt_no) FROM attempts b WHERE b.run_id=a.run_id AND b.task_id=a.task_id)
  AND CASE th.status {_THREAD_TO_TASK_SQL} ELSE t.status END <> t.status))
"""


# Task status events -> the status they record: each transition's event (states.TASK_EVENT), plus
# task_added (a new task is ready until a dep add) and task_planned (a dep add took it back).
STATUS_EVENTS: dict[str, str] = {"task_added": str(TaskStatus.READY), "task_planned": str(TaskStatus.PLANNED),
                                 **{e: str(st) for st, e in TASK_EVENT.items()}}
# the status before an event that does not record it (events written before from_status was)
_FROM_DEFAULT = {"task_ready": TaskStatus.PLANNED, "task_planned": TaskStatus.READY}
# without a change to report, the cursor still moves past this many events of the run, so each
# reconcile scans a bounded stretch of the log
_CURSOR_SLACK = 5000


def _cursor_key(run_id: str) -> str:
    return f"reconcile_cursor:{run_id}"


def _reconcile_cursor(conn: Any, run_id: str) -> int:
    r = conn.execute("SELECT value FROM meta WHERE key=?", (_cursor_key(run_id),)).fetchone()
    return int(r[0]) if r is not None else 0


def _status_changes(conn: Any, run_id: str, after: int) -> list[dict[str, Any]]:
    """Each task whose status changed in the run's events after the cursor: from (its status at
    the cursor; None for a task added since) and to (its status at the last such event)."""
    q = ",".join("?" * len(STATUS_EVENTS))
    changes: dict[str, dict[str, Any]] = {}
    for event_type, task_id, payload_json in conn.execute(
            f"SELECT event_type, task_id, payload_json FROM events WHERE run_id=? AND event_id>? AND"
            f" event_type IN ({q}) AND task_id<>'' ORDER BY event_id", (run_id, after, *STATUS_EVENTS)):
        c = changes.get(task_id)
        if c is None:
            if event_type == "task_added":
                before = None
            else:
                before = loads(payload_json, {}).get("from_status") if payload_json else None
                before = before or str(_FROM_DEFAULT.get(event_type, ""))
            c = changes[task_id] = {"task_id": task_id, "from": before, "to": ""}
        c["to"] = str(STATUS_EVENTS[event_type])
    return list(changes.values())


def reconcile(store: Store, *, run_id: str, report: bool = True) -> dict[str, Any]:
    """Fold worker thread state into task state, and report what changed.

    Thread changes are folded eagerly, in the worker's own transaction, so the fold here is a
    repair and a check (normally nothing lags). updated_tasks reports every task whose status
    changed since the previous reconcile of the run (`orch reconcile`), each change once: a
    per-run cursor over the event log, kept in the store's meta table and moved in the same
    transaction that reads the changes. report=False (status, the watcher, the console) folds
    without reporting or moving the cursor; its updated_tasks lists only what the repair moved.
    """
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        run = get_run(conn, run_id)
        lagging = conn.execute(LAGGING_SQL, (run_id,)).fetchall()
        counts = task_counts(conn, run_id)
        pending = False
        if report:
            cursor = _reconcile_cursor(conn, run_id)
            last = conn.execute("SELECT coalesce(max(event_id), 0) FROM events WHERE run_id=?",
                                (run_id,)).fetchone()[0]
            pending = last > cursor and (last - cursor > _CURSOR_SLACK or conn.execute(
                f"SELECT 1 FROM events WHERE run_id=? AND event_id>? AND event_type IN "
                f"({','.join('?' * len(STATUS_EVENTS))}) LIMIT 1", (run_id, cursor, *STATUS_EVENTS)).fetchone()
                is not None)
    if not lagging and not pending and run_status_from_counts(counts, run["status"]) == run["status"]:
        return {"updated_tasks": [], "run": public_run(run, counts)}

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        updated = []
        for t in rows(conn.execute(LAGGING_SQL, (run_id,)).fetchall()):
            task = conn.execute("SELECT t.task_id, t.status FROM tasks t JOIN attempts a ON "
                                "a.run_id=t.run_id AND a.task_id=t.task_id WHERE a.thread_id=?",
                                (t["thread_id"],)).fetchone()
            before = task["status"]
            fold_thread(conn, t, now=now, summary="reconciled")
            after = conn.execute("SELECT status FROM tasks WHERE run_id=? AND task_id=?",
                                 (run_id, task["task_id"])).fetchone()[0]
            if after != before:
                updated.append({"task_id": task["task_id"], "from": before, "to": after})
        refresh_run(conn, run_id, now=now)
        if report:
            cursor = _reconcile_cursor(conn, run_id)
            updated = _status_changes(conn, run_id, cursor)
            last = conn.execute("SELECT coalesce(max(event_id), 0) FROM events WHERE run_id=?",
                                (run_id,)).fetchone()[0]
            if last > cursor:
                conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET"
                             " value=excluded.value", (_cursor_key(run_id), str(last)))
        return {"updated_tasks": updated, "run": public_run(get_run(conn, run_id), task_counts(conn, run_id))}

    return store.write(tx)


STATUS_ATTEMPT_KEYS = ("attempt_no", "thread_id", "assigned_to", "execution_mode", "status", "end_reason",
                       "base_commit", "branch_name", "worktree_path", "workspace_status", "runtime", "liveness",
                       "started_at", "ended_at", "last_activity_at")


def status(store: Store, *, run_id: str, reconcile_first: bool = True,
           needs_look_limit: int | None = None, encoded: bool = False) -> dict[str, Any]:
    """The run's operational view: every task with its latest attempt, message, question and gate.

    needs_look_limit keeps only that many tasks, the ones most in need of the leader (blocked,
    failed, verifying, running, ...), for a human-sized view of a huge run; counts stay complete.
    Built from a handful of set-based queries; fields are read as tuples because this is the
    hot path of a 10,000-task run.

    encoded=True (the CLI's --json) returns "tasks" as RawJSON built by SQLite, the same list
    (a test holds the two equal) without making and encoding 10,000 dicts in Python.
    """
    check_id(run_id, "--run")
    # status folds first but leaves the report of changes (and its cursor) to `orch reconcile`
    updated = reconcile(store, run_id=run_id, report=False)["updated_tasks"] if reconcile_first else []
    if reconcile_first:
        from .land_recover import recover_if_needed  # issue 14: settle a land interrupted by kill -9

        recover_if_needed(store, run_id)
    if encoded and needs_look_limit is None:
        return _status_encoded(store, run_id, updated)
    with store.snapshot() as conn:
        run = get_run(conn, run_id)
        counts = task_counts(conn, run_id)
        if needs_look_limit is not None and sum(counts.values()) <= needs_look_limit:
            needs_look_limit = None  # a small run is shown whole
        conn.row_factory = None
        try:
            cols = ("task_id, title, summary, status, default_to, priority, paths_json, required_checks_json,"
                    " updated_at, wave")
            if needs_look_limit is None:
                tasks = conn.execute(f"SELECT {cols} FROM tasks WHERE run_id=? ORDER BY rowid",  # creation order
                                     (run_id,)).fetchall()
                only = ""  # every task: run-wide queries below
                only_params: tuple[Any, ...] = ()
            else:  # a screenful, chosen in SQL: nothing is read for the other thousands of tasks
                rank = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(NEEDS_LOOK_ORDER))
                tasks = conn.execute(
                    f"SELECT {cols} FROM tasks WHERE run_id=? AND status IN ({','.join('?' * len(NEEDS_LOOK_ORDER))})"
                    f" ORDER BY CASE status {rank} END, rowid LIMIT ?",
                    (run_id, *NEEDS_LOOK_ORDER, needs_look_limit)).fetchall()
                only_params = tuple(t[0] for t in tasks)
                only = f" AND {{alias}}task_id IN ({','.join('?' * len(only_params))})" if only_params else " AND 0"
            f = lambda alias: only.format(alias=alias)  # noqa: E731
            deps = conn.execute(f"SELECT task_id, depends_on FROM deps WHERE run_id=?{f('')}",
                                (run_id, *only_params)).fetchall()
            att_cols = ", ".join(f"a.{k}" for k in STATUS_ATTEMPT_KEYS)
            attempts = {r[0]: r[1:] for r in conn.execute(
                f"SELECT a.task_id, {att_cols} FROM attempts a WHERE a.run_id=?{f('a.')} AND a.attempt_no=(SELECT "
                "max(attempt_no) FROM attempts b WHERE b.run_id=a.run_id AND b.task_id=a.task_id)",
                (run_id, *only_params))}
            latest_msgs = {r[0]: {"message_id": r[1], "kind": r[2], "summary": r[3], "from_agent": r[4],
                                  "created_at": r[5]} for r in conn.execute(
                "SELECT m.thread_id, m.message_id, m.kind, m.summary, m.from_agent, m.created_at FROM attempts a"
                " JOIN messages m ON m.message_id=(SELECT max(message_id) FROM messages x WHERE"
                f" x.thread_id=a.thread_id AND x.kind<>'event') WHERE a.run_id=?{f('a.')}", (run_id, *only_params))}
            checks = _checks_by_attempt(conn, run_id, f(""), only_params)
            waves = _wave_count(conn, run_id)
        finally:
            conn.row_factory = sqlite3.Row
        questions = blocked_questions(conn, run_id) if counts.get("blocked") else {}
        land_view = _land_summary(conn, run_id)
    dep_map: dict[str, list[str]] = defaultdict(list)
    for t, d in deps:
        dep_map[t].append(d)
    out_tasks = []
    for task_id, title, summary, st, default_to, priority, paths_json, checks_json, updated_at, wave in tasks:
        a = attempts.get(task_id)
        latest = dict(zip(STATUS_ATTEMPT_KEYS, a)) if a else None
        required = loads(checks_json, [])
        q = questions.get(task_id) if st == "blocked" else None
        out_tasks.append({
            "task_id": task_id, "title": title, "summary": summary, "status": st, "default_to": default_to,
            "priority": priority, "paths": loads(paths_json, []), "required_checks": required,
            "updated_at": updated_at, "wave": wave, "depends_on": sorted(dep_map.get(task_id, ())),
            "latest_attempt": latest,
            "latest_message": latest_msgs.get(latest["thread_id"]) if latest else None,
            "blocked_question": q["question"] if q else None,
            "gate": gate_of(required, checks.get((task_id, latest["attempt_no"]), []) if latest else []),
        })
    return {"run": public_run(run, counts), "tasks": out_tasks, "updated_tasks": updated, "waves": waves,
            "land": land_view}


def _task_json_sql() -> str:
    """One task of `status` as a JSON object, built by SQLite. blocked_question and gate are
    placeholders that _status_encoded fills for the few tasks that have one."""
    attempt = ", ".join(f"'{k}', a.{k}" for k in STATUS_ATTEMPT_KEYS)
    as_json = "CASE WHEN t.{0} IN ('', '[]') OR NOT json_valid(t.{0}) THEN json('[]') ELSE json(t.{0}) END"
    return (
        "SELECT t.task_id, t.status, t.required_checks_json, a.attempt_no, json_object("
        " 'task_id', t.task_id, 'title', t.title, 'summary', t.summary, 'status', t.status,"
        " 'default_to', t.default_to, 'priority', t.priority,"
        f" 'paths', {as_json.format('paths_json')}, 'required_checks', {as_json.format('required_checks_json')},"
        " 'updated_at', t.updated_at, 'wave', t.wave,"
        " 'depends_on', (SELECT json_group_array(depends_on) FROM (SELECT depends_on FROM deps d"
        "   WHERE d.run_id=t.run_id AND d.task_id=t.task_id ORDER BY depends_on)),"
        f" 'latest_attempt', CASE WHEN a.attempt_no IS NULL THEN NULL ELSE json_object({attempt}) END,"
        " 'latest_message', (SELECT json_object('message_id', m.message_id, 'kind', m.kind, 'summary',"
        "   m.summary, 'from_agent', m.from_agent, 'created_at', m.created_at) FROM messages m WHERE"
        "   m.message_id=(SELECT max(message_id) FROM messages x WHERE x.thread_id=a.thread_id AND"
        "   x.kind<>'event')),"
        " 'blocked_question', NULL,"
        """ 'gate', json('{"status":"none","required":[],"checks":[]}'))"""
        # the run's rowid range, read in rowid order: SQLite does not sort the JSON it built
        " FROM tasks t NOT INDEXED LEFT JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND"
        " a.attempt_no=(SELECT max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND"
        " b.task_id=t.task_id) WHERE t.rowid BETWEEN ? AND ? AND t.run_id=? ORDER BY t.rowid")


def _tasks_json_rows(conn: Any, run_id: str) -> list[tuple[Any, ...]]:
    """(task_id, status, required_checks_json, attempt_no, json) for every task of the run, in
    creation order: a scan of the run's rowid range (rows of other runs in it are skipped), so
    SQLite never sorts the 10,000 JSON texts it built."""
    lo, hi = conn.execute("SELECT min(rowid), max(rowid) FROM tasks WHERE run_id=?", (run_id,)).fetchone()
    if lo is None:
        return []
    return conn.execute(_task_json_sql(), (lo, hi, run_id)).fetchall()


def _status_encoded(store: Store, run_id: str, updated: list[dict[str, Any]]) -> dict[str, Any]:
    with store.snapshot() as conn:
        run = get_run(conn, run_id)
        counts = task_counts(conn, run_id)
        conn.row_factory = None
        try:
            found = _tasks_json_rows(conn, run_id)
            checks = _checks_by_attempt(conn, run_id)
            waves = _wave_count(conn, run_id)
        finally:
            conn.row_factory = sqlite3.Row
        questions = blocked_questions(conn, run_id) if counts.get("blocked") else {}
        land_view = _land_summary(conn, run_id)
    parts = []
    for task_id, st, checks_json, attempt_no, text in found:
        q = questions.get(task_id) if st == "blocked" else None
        if q is not None or checks_json not in ("", "[]"):  # the few tasks whose JSON Python finishes
            obj = json.loads(text)
            obj["blocked_question"] = q["question"] if q else None
            obj["gate"] = gate_of(obj["required_checks"],
                                  checks.get((task_id, attempt_no), []) if attempt_no is not None else [])
            text = json.dumps(obj, separators=(",", ":"))
        parts.append(text)
    return {"run": public_run(run, counts), "tasks": RawJSON("[" + ",".join(parts) + "]"),
            "updated_tasks": updated, "waves": waves, "land": land_view}


def _land_summary(conn: Any, run_id: str) -> dict[str, Any]:
    """Issue 14: the run's land target, its gate, and each task's land state (conflicts, landed)."""
    from .land_state import summary

    return summary(conn, run_id)


def _checks_by_attempt(conn: Any, run_id: str, only: str = "",
                       only_params: tuple[Any, ...] = ()) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """(task, attempt) -> its recorded checks; `only` narrows to some tasks (an SQL AND clause)."""
    checks: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in conn.execute(f"SELECT task_id, attempt_no, name, status, summary FROM checks WHERE run_id=?{only}",
                          (run_id, *only_params)):
        checks[(c[0], c[1])].append({"name": c[2], "status": c[3], "summary": c[4]})
    return checks


def _wave_count(conn: Any, run_id: str) -> int:
    max_wave = conn.execute("SELECT max(wave) FROM tasks WHERE run_id=?", (run_id,)).fetchone()[0]
    return (max_wave + 1) if max_wave is not None else 0


def gate_of(required: list[str], checks: list[dict[str, Any]]) -> dict[str, Any]:
    if not required:
        return {"status": "none", "required": [], "checks": []}
    by_name = {c["name"]: c for c in checks}
    states = [by_name[n]["status"] if n in by_name else "pending" for n in required]
    if any(s == "failed" for s in states):
        overall = "failed"
    elif all(s == "passed" for s in states):
        overall = "passed"
    else:
        overall = "pending"
    return {"status": overall, "required": required,
            "checks": [{"name": n, "status": s, "summary": by_name.get(n, {}).get("summary", "")}
                       for n, s in zip(required, states)]}


def blocked_questions(conn: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """task_id -> the latest question on its latest attempt's thread, for blocked tasks.

    A reply leaves the thread blocked until its worker resumes (`update --status in_progress`), so
    a blocked task may already have its answer: `answered` and `answer` say so, and whoever looks
    for questions to answer (the console's pane, the demo's stand-in leader) skips those."""
    out = {}
    for r in rows(conn.execute(
            "SELECT t.task_id, t.title, a.attempt_no, a.thread_id, a.assigned_to, m.message_id, m.kind,"
            " m.summary, m.body, m.payload_json, m.from_agent, m.created_at, (SELECT y.message_id FROM messages y"
            " WHERE y.thread_id=a.thread_id AND y.kind='answer' AND y.message_id>m.message_id"
            " ORDER BY y.message_id LIMIT 1) AS answer_id FROM tasks t"
            " JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND a.attempt_no=(SELECT"
            " max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
            " JOIN messages m ON m.message_id=(SELECT max(message_id) FROM messages x WHERE"
            " x.thread_id=a.thread_id AND x.kind='question')"
            " WHERE t.run_id=? AND t.status='blocked'", (run_id,)).fetchall()):
        q = public_message({k: r[k] for k in ("message_id", "kind", "summary", "body", "payload_json",
                                              "from_agent", "created_at")})
        answer = None
        if r["answer_id"] is not None:
            a = conn.execute("SELECT message_id, kind, summary, body, payload_json, from_agent, created_at"
                             " FROM messages WHERE message_id=?", (r["answer_id"],)).fetchone()
            answer = public_message(dict(a)) if a is not None else None
        out[r["task_id"]] = {"task_id": r["task_id"], "title": r["title"], "attempt_no": r["attempt_no"],
                             "thread_id": r["thread_id"], "asked_by": r["from_agent"],
                             "asked_at": r["created_at"], "question": q,
                             "answered": answer is not None, "answer": answer}
    return out


def blocked(store: Store, *, run_id: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        get_run(conn, run_id)
        found = list(blocked_questions(conn, run_id).values())
    now = time.time()
    for b in found:
        b["age_seconds"] = round(now - parse_ts(b["asked_at"]), 1)
    found.sort(key=lambda b: b["asked_at"])
    return {"tasks": found, "count": len(found), "unanswered": sum(1 for b in found if not b["answered"])}


def plan(store: Store, *, run_id: str) -> dict[str, Any]:
    """`orch plan`: the run's waves, critical path and overlaps (store/plan.py), from its rows."""
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        run = get_run(conn, run_id)
        tasks = rows(conn.execute("SELECT task_id, title, status, priority, paths_json, default_to FROM tasks "
                                  "WHERE run_id=? ORDER BY created_at, task_id", (run_id,)).fetchall())
        deps = [(r[0], r[1]) for r in conn.execute("SELECT task_id, depends_on FROM deps WHERE run_id=?",
                                                   (run_id,))]
    return plan_from(run, tasks, deps)
