"""Readable output of the landing commands and of the status lines about landing (issue 14)."""

from __future__ import annotations

import sys
from typing import Any

from .output import line, text


def land(d: dict[str, Any], args: Any = None) -> None:
    if "pr" in d:
        pr = d["pr"]
        what = "pull request already open: " if d.get("noop") else "opened pull request "
        line(what + f"#{pr['number']} {pr['url']}")
        return
    if d.get("dry_run"):
        p = d["plan"]
        line(f"{p['task_id']} attempt {p['attempt_no']} would land cleanly into {p['target']} at "
             f"{p['target_commit'][:12]} ({p['strategy']})"
             + (" — already contained" if p["already_contained"] else ""))
        return
    if d.get("noop"):
        line(d["message"] + " (nothing to do)")
        return
    ld = d["land"]
    line("landed ", text(f"{ld['task_id']} attempt {ld['attempt_no']}", "bold"),
         f" into {ld['target']} at {ld['landed_commit'][:12]} ({ld['strategy']}, by {ld['landed_by']})")
    for v in d.get("verified", []):
        line(f"  verified {v['name']}: {v['status']} in {v['seconds']}s")
    for w in d.get("warnings", []):
        line("  warning: ", text(w))


def diff(d: dict[str, Any], args: Any = None) -> None:
    sys.stdout.write(d["diff"])
    if d["uncommitted"]:
        line(f"(uncommitted in the worktree, not shown: {', '.join(d['uncommitted'][:20])})")


def land_tag(d: dict[str, Any], task_id: str, status: Any) -> Any:
    """A task's status cell in `orch status`, with its land state: `done, landed` or `done, conflicts`."""
    v = ((d.get("land") or {}).get("tasks") or {}).get(task_id)
    if not v or v["status"] not in ("landed", "conflicts"):
        return status
    return text(f"{status.plain}, {v['status']}", "red" if v["status"] == "conflicts" else status.style)


def status_lines(d: dict[str, Any]) -> None:
    """After `orch status`'s table: the land target and the tasks that conflict or landed."""
    ld = d.get("land") or {}
    tasks = ld.get("tasks") or {}
    if not tasks and not ld.get("gate"):
        return
    landed = sorted(t for t, v in tasks.items() if v["status"] == "landed")
    line(f"land target {ld.get('target')}" + (" (graph gate on)" if ld.get("gate") else "")
         + f": {len(landed)} landed")
    for t, v in sorted(tasks.items()):
        if v["status"] == "conflicts":
            line("  ", text(t, "bold"), " ", text("conflicts", "red"), f" (attempt {v['attempt_no']}): ",
                 text(", ".join(v["conflicts"])))
        if v.get("pr_url"):
            line(f"  {t}: pull request #{v['pr_number']} {v['pr_url']}")


def rework(d: dict[str, Any], args: Any = None) -> None:
    if d.get("replied"):
        a = d["attempt"]
        line(f"sent the review to {a['assigned_to']} on {a['task_id']} attempt {a['attempt_no']} (still running)")
        return
    a = d["attempt"]
    line("dispatched ", text(f"{a['task_id']} attempt {a['attempt_no']}", "bold"), f" to {a['assigned_to']}"
         f" on the land target's tip {a['base_commit'][:12]} (worktree {a['worktree_path']})")
    if d.get("conflicts"):
        line(f"  conflicting files named in the brief: {', '.join(d['conflicts'])}")


RENDERERS = {"land": land, "diff": diff, "rework": rework}
