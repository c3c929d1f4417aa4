"""`orch land --pr` (issue 14): push the attempt's branch to the remote and open a pull request
with `gh`, recording its number and address on the attempt (the `lands` row). Merging the PR
stays the leader's choice, so the task is not landed by this.

The same refusals as a land come first (a dry-run land: not done, failed checks, uncommitted
changes, conflicts), so a PR is never opened for work orch itself would not land.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from typing import Any

from . import git_ops as g
from .db import Store
from .errors import InvalidState
from .land import _attempt, land, public_land, target_of
from .records import add_event, row, rows
from .runs import get_task
from .validate import check_id, now_ts

PR_URL = re.compile(r"https?://\S+/pull/(\d+)\S*")


def _body(task: dict[str, Any], att: dict[str, Any], checks: list[dict[str, Any]], result: str, stat: str,
          target: str) -> str:
    lines = [task["summary"] or task["title"], "",
             f"Run `{task['run_id']}`, task `{task['task_id']}`, attempt {att['attempt_no']} by {att['assigned_to']}.",
             f"Branch `{att['branch_name']}` into `{target}`.", "", "## Checks"]
    lines += [f"- {c['name']}: {c['status']}" + (f" ({c['summary']})" if c["summary"] else "") for c in checks] \
        or ["- none required"]
    lines += ["", "## Worker's result", result or "(no result message)", "", "## Changes", "```", stat.strip(), "```",
              "", "Opened by orch (`orch land --pr`)."]
    return "\n".join(lines) + "\n"


def open_pr(store: Store, *, run_id: str, task_id: str, remote: str = "origin", gh: str = "gh") -> dict[str, Any]:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    pre = land(store, run_id=run_id, task_id=task_id, dry_run=True)
    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        att = _attempt(conn, run_id, task_id)
        lr = row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND attempt_no=?",
                              (run_id, task_id, att["attempt_no"])).fetchone())
        checks = rows(conn.execute("SELECT name, status, summary FROM checks WHERE run_id=? AND task_id=? AND"
                                   " attempt_no=? ORDER BY name", (run_id, task_id, att["attempt_no"])).fetchall())
        res = conn.execute("SELECT summary, body FROM messages WHERE thread_id=? AND kind='result' ORDER BY"
                           " message_id DESC LIMIT 1", (att["thread_id"],)).fetchone()
        target = target_of(conn, run_id)
    if lr and lr["pr_url"]:
        return {"noop": True, "pr": {"number": lr["pr_number"], "url": lr["pr_url"]}, "land": public_land(lr)}
    if pre.get("noop"):
        raise InvalidState(f"task {task_id} has already landed; no pull request needed")
    repo = att["repo_path"]
    if g.run(repo, "remote", "get-url", remote, check=False).returncode != 0:
        raise InvalidState(f"the repository {repo} has no remote {remote!r}; `orch land --pr` needs one")
    branch = att["branch_name"]
    g.run(repo, "push", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}")
    if not g.out(repo, "ls-remote", "--heads", remote, f"refs/heads/{target}"):
        g.run(repo, "push", "--quiet", remote, f"refs/heads/{target}:refs/heads/{target}")
    exe = shutil.which(gh)
    if exe is None:
        raise InvalidState(f"pushed {branch} to {remote}, but `{gh}` is not installed, so no pull request was opened")
    stat = g.diff(repo, att["base_commit"], f"refs/heads/{branch}", "stat")
    title = f"{task['task_id']}: {task['title']}"[:200]
    result = (res["summary"] + ("\n\n" + res["body"] if res["body"] else "")) if res else ""
    body = _body(task, att, checks, result, stat, target)
    p = subprocess.run([exe, "pr", "create", "--base", target, "--head", branch, "--title", title, "--body", body],
                       cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if p.returncode != 0:
        last = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()[-1]
        raise InvalidState(f"pushed {branch} to {remote}, but `gh pr create` failed: {last}")
    m = PR_URL.search(p.stdout) or PR_URL.search(p.stderr)
    if m is None:
        raise InvalidState(f"`gh pr create` did not print a pull request address: {p.stdout.strip()[-200:]}")
    url, number = m.group(0), int(m.group(1))

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        conn.execute(
            "INSERT INTO lands (run_id, task_id, attempt_no, status, target, head_commit, pr_number, pr_url,"
            " checked_at)"
            " VALUES (?,?,?, 'clean', ?,?,?,?,?) ON CONFLICT(run_id, task_id, attempt_no) DO UPDATE SET"
            " pr_number=excluded.pr_number, pr_url=excluded.pr_url",
            (run_id, task_id, att["attempt_no"], target, pre["plan"]["head_commit"], number, url, now))
        add_event(conn, "task_pr_opened", run_id=run_id, task_id=task_id, thread_id=att["thread_id"],
                  attempt_no=att["attempt_no"], summary=f"pull request #{number} {url} ({branch} -> {target})",
                  payload={"number": number, "url": url, "branch": branch, "target": target, "remote": remote}, now=now)
        return public_land(row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND attempt_no=?",
                                            (run_id, task_id, att["attempt_no"])).fetchone())) or {}

    rec = store.write(tx)
    return {"noop": False, "pr": {"number": number, "url": url}, "pushed": {"remote": remote, "branch": branch},
            "land": rec, "checks": [dict(c) for c in checks]}
