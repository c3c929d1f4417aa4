"""Readable output of each orch command (without --json)."""

from __future__ import annotations

import json
from typing import Any

from orch_console.store.sanitize import one_line
from orch_console.store.states import NEEDS_LOOK_ORDER, STATUS_ORDER

from .output import block, kv, line, status_text, table, text

ORDER = STATUS_ORDER
NEEDS_LOOK = NEEDS_LOOK_ORDER
STATUS_LIMIT = 50


def _counts(counts: dict[str, int]) -> str:
    return "  ".join(f"{s} {counts[s]}" for s in ORDER if counts.get(s)) or "no tasks"


def _run(d: dict[str, Any], args: Any = None) -> None:
    r = d["run"]
    kv([("run", r["run_id"]), ("status", status_text(r["status"])), ("goal", r["goal"]),
        ("tasks", _counts(r.get("counts", {})))]
       + ([("settings", ", ".join(f"{k}={v}" for k, v in sorted(r["config"].items())))] if r.get("config") else []))


def _run_list(d: dict[str, Any], args: Any = None) -> None:
    table(None, ["run", "status", "tasks", "goal", "created"],
          [[r["run_id"], status_text(r["status"]), _counts(r["counts"]), r["goal"], r["created_at"]]
           for r in d["runs"]])


def _task(d: dict[str, Any], args: Any = None) -> None:
    t = d["task"]
    line("task ", text(t["task_id"], "bold"), " ", status_text(t["status"]), "  ", text(t["title"]))


def _tasks(d: dict[str, Any], args: Any = None) -> None:
    table(None, ["task", "priority", "title", "default to"],
          [[t["task_id"], t["priority"], t["title"], t["default_to"] or "-"] for t in d["tasks"]])
    line(f"{d['count']} ready")


def _dispatch(d: dict[str, Any], args: Any = None) -> None:
    a = d["attempt"]
    line("dispatched ", text(f"{a['task_id']} attempt {a['attempt_no']}", "bold"), f" to {a['assigned_to']}"
         f" ({a['execution_mode']}) on thread {a['thread_id']}")
    if a["worktree_path"]:
        line(f"  worktree {a['worktree_path']}  branch {a['branch_name']}  base {a['base_commit'][:12]}")
    if d.get("previous_attempt"):
        p = d["previous_attempt"]
        line(f"  previous attempt {p['attempt_no']}: {p['end_reason'] or p['status']}")


def _status(d: dict[str, Any], args: Any = None) -> None:
    _run(d)
    tasks = d["tasks"]
    show_all = bool(getattr(args, "all", False))
    shown = tasks if show_all or len(tasks) <= STATUS_LIMIT else \
        sorted([t for t in tasks if t["status"] in NEEDS_LOOK],
               key=lambda t: NEEDS_LOOK.index(t["status"]))[:STATUS_LIMIT]
    from .render_land import land_tag

    rows = []
    for t in shown:
        a = t["latest_attempt"] or {}
        m = t["blocked_question"] or t["latest_message"] or {}
        rows.append([t["wave"], t["task_id"], land_tag(d, t["task_id"], status_text(t["status"])),
                     a.get("assigned_to") or t["default_to"] or "-",
                     a.get("attempt_no") or "-", one_line(m.get("summary", ""), 60) or "-"])
    table(None, ["wave", "task", "status", "owner", "attempt", "latest"], rows)
    total = d["run"].get("total_tasks", len(tasks))
    if len(shown) < total:
        line(f"showing {len(shown)} of {total} tasks (those needing a look first); --all lists every task")
    if d.get("updated_tasks"):
        line(f"reconciled: {len(d['updated_tasks'])} task(s) moved")
    from .render_land import status_lines

    status_lines(d)


def _blocked(d: dict[str, Any], args: Any = None) -> None:
    if not d["tasks"]:
        line("no blocked tasks")
        return
    for b in d["tasks"]:
        q = b["question"]
        line(text(b["task_id"], "bold"),
             f"  asked by {b['asked_by']}, {int(b['age_seconds'])}s ago, thread {b['thread_id']}")
        line("  ", text(q["summary"]))
        if q["body"]:
            block(q["body"])
        if q.get("payload") is not None:
            block("payload: " + json.dumps(q["payload"], ensure_ascii=False))
        if b.get("answered") and b.get("answer"):
            line("  answered: ", text(b["answer"]["summary"]), "  (waiting for the worker to resume)")


def _attention(d: dict[str, Any], args: Any = None) -> None:
    if not d["items"]:
        line("nothing waits on the leader")
        return
    rows = [[i["rank"], i["task_id"], i["kind"], i["agent"] or "-", f"{int(i['waited_seconds'])}s",
             f"{i['unblocks']}{' *' if i['critical'] else ''}", one_line(i["text"], 70) or "-"] for i in d["items"]]
    table(None, ["#", "task", "kind", "agent", "waited", "unblocks", "first line"], rows)
    if any(i["critical"] for i in d["items"]):
        line("* on the critical path of the unfinished work")


def _answer(d: dict[str, Any], args: Any = None) -> None:
    line("answered ", text(d["task"]["task_id"], "bold"), " on thread ", d["thread"]["thread_id"],
         "; task is ", status_text(d["task"]["status"]), " until its worker resumes" if d["task"]["status"] == "blocked"
         else "")


def _cancel(d: dict[str, Any], args: Any = None) -> None:
    line(f"cancelled {len(d['cancelled_tasks'])} task(s): {', '.join(d['cancelled_tasks']) or '-'}; "
         f"run is {d['run']['status']}")


def _cleanup(d: dict[str, Any], args: Any = None) -> None:
    for c in d["cleaned"]:
        line(f"removed {c['worktree_path']} (branch {c['branch_name']} kept)")
    for s in d["skipped"]:
        line(f"skipped {s['worktree_path']}: {s['reason']}")
    line(f"{d['count']} worktree(s) removed")


def _reconcile(d: dict[str, Any], args: Any = None) -> None:
    for u in d["updated_tasks"]:
        line(f"{u['task_id']}: {u['from'] or '(new)'} -> {u['to']}")
    _run(d)


def _wait(d: dict[str, Any], args: Any = None) -> None:
    for e in d["events"]:
        line(f"#{e['event_id']} {e['event_type']} {e['task_id']}  ", text(e["summary"]))
    line(f"next event: {d['next_event_id']}")


def _verify(d: dict[str, Any], args: Any = None) -> None:
    g = d["gate"]
    line(text(d["task_id"], "bold"), " gate ", status_text(g["status"]), "  task ", status_text(d["task_status"]))
    for c in g["checks"]:
        line(f"  {c['name']}: ", status_text(c["status"]), "  ", text(c["summary"]))


def _plan(d: dict[str, Any], args: Any = None) -> None:
    line(f"run {d['run_id']}: {d['task_count']} tasks in {len(d['waves'])} waves; "
         f"concurrency cap {d['concurrency_cap']}")
    for w in d["waves"]:
        names = ", ".join(t["task_id"] + ("*" if t["critical"] else "") for t in w["tasks"])
        line(text(f"wave {w['wave']}", "bold"), f" ({len(w['tasks'])}): ", text(names))
    if d["critical_path"]:
        line("critical path (*): ", text(" -> ".join(d["critical_path"])))
    for o in d["overlaps"]:
        how = "already ordered by a dependency" if o["ordered_by_dependency"] else "will be serialized"
        line(f"overlap {o['tasks'][0]} / {o['tasks'][1]} on {o['path']}: {how}")


def _import(d: dict[str, Any], args: Any = None) -> None:
    line(f"run {d['run_id']}{' (created)' if d['run_created'] else ''}: {len(d['added_tasks'])} task(s) and "
         f"{len(d['added_dependencies'])} dependencies added, {len(d['existing_tasks'])} task(s) already there")
    if d.get("references_outside_file"):
        line("references to issues outside the file (ignored): " + ", ".join(d["references_outside_file"]))


def _report(d: dict[str, Any], args: Any = None) -> None:
    if "out" in d:
        line(f"wrote the {d['format']} report to {d['out']} ({d['bytes']:,} bytes)")
    else:
        import sys

        sys.stdout.write(d["report"])


def _approve(d: dict[str, Any], args: Any = None) -> None:
    a = d["approval"]
    line(f"{a['decision']} {a['task_id']} #{a['approval_id']} {a['tool']}: {a['subject'][:100]} "
         f"(delivered by {d.get('delivered', 'hook')})" + (f"; rule: always allow {d['rule']['tool']} "
                                                          f"{d['rule']['pattern']}".rstrip() if d.get("rule") else ""))


def _approvals(d: dict[str, Any], args: Any = None) -> None:
    for a in d["approvals"]:
        line(f"#{a['approval_id']} {a['task_id']} {a.get('status', 'pending')} {a['tool']}: {a['subject'][:100]}")
    for r in d["rules"]:
        line(f"rule #{r['rule_id']}: always allow {r['tool']} {r['pattern']}".rstrip())
    line(f"{len(d['approvals'])} approval(s), {len(d['rules'])} rule(s)")


RENDERERS = {
    "approve": _approve, "approvals": _approvals,
    "run": _run, "run-list": _run_list, "task": _task, "ready": _tasks, "dispatch": _dispatch,
    "dep": lambda d, a=None: line(f"{d['dependency']['task_id']} depends on {d['dependency']['depends_on']}"
                                  f"{'' if d['created'] else ' (already)'}; "
                                  f"{d['task']['task_id']} is {d['task']['status']}"),
    "brief": lambda d, a=None: block(d["brief"]), "reconcile": _reconcile, "wait": _wait, "blocked": _blocked,
    "attention": _attention,
    "answer": _answer, "cancel": _cancel, "cleanup": _cleanup, "status": _status, "verify": _verify,
    "plan": _plan, "import": _import, "report": _report,
}
from .render_land import RENDERERS as _LAND  # noqa: E402 (issue 14)

RENDERERS.update(_LAND)
