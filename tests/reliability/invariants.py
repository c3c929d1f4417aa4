"""Checks shared by the reliability tests: the database is intact, every acknowledged write is in
it, and no transition is half applied. Each function returns a list of problems (empty = ok) so a
test can report all of them at once."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from orch_console.store.fold import run_status_probe
from orch_console.store.states import THREAD_TO_TASK

# every message is written together with exactly one of these events, carrying its message_id
MESSAGE_EVENTS = ("thread_created", "thread_message", "thread_claim", "lease_renewed", "thread_update",
                  "thread_result", "thread_reply", "thread_cancelled")


def connect(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def integrity(db: str) -> list[str]:
    conn = connect(db)
    try:
        res = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    out = [] if res == ["ok"] else [f"integrity_check: {res[:5]}"]
    if fk:
        out.append(f"foreign_key_check: {[tuple(r) for r in fk[:5]]}")
    return out


def consistency(db: str) -> list[str]:
    """No half-applied transition anywhere in the database."""
    conn = connect(db)
    problems: list[str] = []
    try:
        threads = {r["thread_id"]: dict(r) for r in conn.execute("SELECT * FROM threads")}
        attempts = [dict(r) for r in conn.execute("SELECT * FROM attempts ORDER BY run_id, task_id, attempt_no")]
        tasks = {(r["run_id"], r["task_id"]): dict(r) for r in conn.execute("SELECT * FROM tasks")}
        # 1. every attempt mirrors its thread
        for a in attempts:
            t = threads.get(a["thread_id"])
            if t is None:
                problems.append(f"attempt {a['task_id']}#{a['attempt_no']} has no thread {a['thread_id']}")
                continue
            if a["status"] != t["status"]:
                problems.append(f"attempt {a['task_id']}#{a['attempt_no']} is {a['status']} but its thread "
                                f"{a['thread_id']} is {t['status']}")
            if t["status"] in ("done", "failed", "cancelled") and (t["lease_owner"] or not a["ended_at"]):
                problems.append(f"ended thread {a['thread_id']} ({t['status']}) still leased or attempt not ended")
        # 2. every task with attempts agrees with its latest attempt's thread
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for a in attempts:
            latest[(a["run_id"], a["task_id"])] = a
        for key, task in tasks.items():
            a = latest.get(key)
            if a is None:
                if task["status"] not in ("planned", "ready", "cancelled"):
                    problems.append(f"task {key[1]} is {task['status']} without an attempt")
                continue
            th = threads.get(a["thread_id"])
            if th is None:
                continue
            want = THREAD_TO_TASK[th["status"]]
            ok = {want}
            if want == "done":
                ok.add("verifying")
            if task["status"] == "cancelled":
                ok.add("cancelled")
            if task["status"] not in ok:
                problems.append(f"task {key[1]} is {task['status']} but its latest attempt #{a['attempt_no']}'s "
                                f"thread is {th['status']} (expects {sorted(ok)})")
        # 3. planned/ready agree with dependencies
        deps: dict[tuple[str, str], list[str]] = {}
        for d in conn.execute("SELECT * FROM deps"):
            deps.setdefault((d["run_id"], d["task_id"]), []).append(d["depends_on"])
        for key, task in tasks.items():
            undone = [d for d in deps.get(key, []) if tasks[(key[0], d)]["status"] != "done"]
            if task["status"] == "ready" and undone:
                problems.append(f"task {key[1]} is ready but waits on {undone}")
            if task["status"] == "planned" and not undone:
                problems.append(f"task {key[1]} is planned but all its dependencies are done")
        # 4. events agree with rows
        msg_ids = {r[0] for r in conn.execute("SELECT message_id FROM messages")}
        q = ",".join("?" * len(MESSAGE_EVENTS))
        ev_msgs = Counter(r[0] for r in conn.execute(
            f"SELECT message_id FROM events WHERE event_type IN ({q})", MESSAGE_EVENTS))
        missing = [m for m in ev_msgs if m not in msg_ids]
        if missing:
            problems.append(f"{len(missing)} message events without their message, e.g. {missing[:3]}")
        # the watcher's verdict (stalled/crashed/timed_out) writes its result message beside an
        # attempt_<reason> event on the same thread, in the same transaction, without a message_id
        verdicts = {r[0] for r in conn.execute(
            "SELECT thread_id FROM events WHERE event_type IN ('attempt_stalled','attempt_crashed',"
            "'attempt_timed_out')")}
        watcher_results = {r[0] for r in conn.execute(
            "SELECT message_id FROM messages WHERE from_agent='watcher' AND kind='result' AND thread_id IN "
            "(SELECT thread_id FROM events WHERE event_type IN ('attempt_stalled','attempt_crashed',"
            "'attempt_timed_out'))")}
        per_verdict = Counter(r[0] for r in conn.execute(
            "SELECT thread_id FROM messages WHERE from_agent='watcher' AND kind='result'"))
        for th, n in per_verdict.items():
            if th not in verdicts or n != 1:
                problems.append(f"thread {th}: {n} watcher verdict messages, verdict event: {th in verdicts}")
        unevented = [m for m in msg_ids if m not in ev_msgs and m not in watcher_results]
        if unevented:
            problems.append(f"{len(unevented)} messages without their event, e.g. {sorted(unevented)[:3]}")
        twice = [m for m, n in ev_msgs.items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} messages with two events, e.g. {twice[:3]}")
        for r in conn.execute("SELECT e.event_id, e.event_type, m.kind FROM events e LEFT JOIN messages m "
                              "ON m.message_id=e.message_id WHERE e.event_type IN ('thread_result',"
                              "'task_answered')"):
            want = {"thread_result": "result", "task_answered": "answer"}[r["event_type"]]
            if r["kind"] != want:
                problems.append(f"event {r['event_id']} {r['event_type']} has no {want} message ({r['kind']})")
        # a task_dispatched event for every attempt, and no more
        per_task = Counter((a["run_id"], a["task_id"]) for a in attempts)
        disp = Counter((r[0], r[1]) for r in conn.execute(
            "SELECT run_id, task_id FROM events WHERE event_type='task_dispatched'"))
        for key in set(per_task) | set(disp):
            if per_task[key] != disp[key]:
                problems.append(f"task {key[1]}: {per_task[key]} attempts but {disp[key]} task_dispatched events")
        results = Counter(r[0] for r in conn.execute(
            "SELECT thread_id FROM events WHERE event_type='thread_result'"))
        for th, n in results.items():
            if n != 1 or threads.get(th, {}).get("status") not in ("done", "failed"):
                problems.append(f"thread {th}: {n} thread_result events, status {threads.get(th, {}).get('status')}")
        for th in threads.values():
            if th["status"] in ("done", "failed") and results[th["thread_id"]] != 1:
                problems.append(f"thread {th['thread_id']} is {th['status']} with {results[th['thread_id']]} "
                                "thread_result events")
        # 5. each run's status follows from its tasks
        for r in conn.execute("SELECT run_id, status FROM runs"):
            want = run_status_probe(conn, r["run_id"], r["status"])
            if want != r["status"]:
                problems.append(f"run {r['run_id']} is {r['status']} but its tasks say {want}")
    finally:
        conn.close()
    return problems


def read_acks(paths: list[Path]) -> list[dict[str, Any]]:
    """Every complete acknowledgement line (a line cut by SIGKILL is not an acknowledgement)."""
    out = []
    for p in paths:
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("op") not in ("start", "call", "refused"):
                out.append(doc)
    return out


def kills_inside_calls(paths: list[Path]) -> int:
    """How many processes were killed between entering a store call and its acknowledgement."""
    n = 0
    for p in paths:
        if not p.exists():
            continue
        last = None
        for line in p.read_text().splitlines():
            try:
                op = json.loads(line).get("op")
            except ValueError:
                op = "cut"
            if op == "start" and last == "call":
                n += 1
            last = op
        n += last == "call"
    return n


def acked_writes_present(db: str, acks: list[dict[str, Any]]) -> list[str]:
    """Every acknowledged store call left its rows."""
    conn = connect(db)
    problems: list[str] = []

    def one(sql: str, *params: Any) -> Any:
        return conn.execute(sql, params).fetchone()

    try:
        for a in acks:
            op = a["op"]
            if op == "claim":
                if not a["already"] and not one(
                        "SELECT 1 FROM events WHERE event_type='thread_claim' AND thread_id=? AND agent=? AND "
                        "created_at=?", a["thread"], a["agent"], a["at"]):
                    problems.append(f"acked claim missing: {a}")
            elif op == "renew":
                if not one("SELECT 1 FROM events WHERE event_type='lease_renewed' AND thread_id=? AND agent=? AND "
                           "created_at=?", a["thread"], a["agent"], a["at"]):
                    problems.append(f"acked renew missing: {a}")
            elif op in ("update", "finish", "answer"):
                kind = {"update": "question" if a.get("status") == "blocked" else "progress",
                        "finish": "result", "answer": "answer"}[op]
                m = one("SELECT thread_id, kind, summary FROM messages WHERE message_id=?", a["message"])
                if m is None or (m["thread_id"], m["kind"], m["summary"]) != (a["thread"], kind, a["summary"]):
                    problems.append(f"acked {op} missing or different: {a} -> {m and dict(m)}")
                if op == "finish":
                    st = one("SELECT status FROM threads WHERE thread_id=?", a["thread"])
                    if st is None or st[0] != a["status"]:
                        problems.append(f"acked {a['status']} of {a['thread']} but the thread is {st and st[0]}")
                if op == "answer" and not one("SELECT 1 FROM events WHERE event_type='task_answered' AND "
                                              "message_id=?", a["message"]):
                    problems.append(f"acked answer without task_answered: {a}")
            elif op in ("dispatch", "retry", "reassign"):
                if not one("SELECT 1 FROM attempts WHERE task_id=? AND attempt_no=? AND thread_id=?",
                           a["task"], a["attempt_no"], a["thread"]):
                    problems.append(f"acked {op} has no attempt: {a}")
                if not one("SELECT 1 FROM messages WHERE message_id=? AND thread_id=? AND kind='task'",
                           a["message"], a["thread"]):
                    problems.append(f"acked {op} has no task message: {a}")
            elif op == "task_add":
                if not one("SELECT 1 FROM tasks WHERE task_id=?", a["task"]):
                    problems.append(f"acked task_add missing: {a}")
            elif op == "dep_add":
                if not one("SELECT 1 FROM deps WHERE task_id=? AND depends_on=?", a["task"], a["on"]):
                    problems.append(f"acked dep_add missing: {a}")
            else:
                problems.append(f"unknown ack {a}")
    finally:
        conn.close()
    return problems
