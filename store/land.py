"""Landing work in graph order (issue 14): the run's land target, conflicts known before any
merge, `land` with a compare-and-swap on the target ref, `rework` (a new attempt on the current
target), and the graph gate (a dependant is ready only when its dependencies are done *and*
landed).

Target. A run lands into `land_target` (run config) when set, else into its default run branch
`orch/<run>/_land`, created from the base of the run's first code dispatch. (Not `orch/<run>`:
git cannot hold a branch `orch/r1` beside the attempt branches `orch/r1/<task>/a<N>`; task ids
cannot start with `_`, so `_land` never collides.) The graph gate is on when `land_target` is
set or `auto_land` is true: then code dispatches without --base-ref, retries and reworks branch
from the target's tip, which holds the parents' landed work.

Crash safety. A land writes objects first (merge-tree, commit-tree: harmless if abandoned), then
records an intent row (`landing`: target_before -> landed_commit, with its pid), moves the target
with `git update-ref <new> <old>` (a compare-and-swap: it fails if the target moved), then marks
the row `landed`. Whoever next looks (land, status, the watcher) settles a dead lander's intent
from git itself: the target contains landed_commit -> landed; otherwise -> not landed, and the
target is whatever it was. So after kill -9 at any point a task is either landed with its commit
recorded, or not landed with the target unchanged.

The leader's working tree. Landing never writes a working tree, with one exception a user
expects: when the target branch is checked out somewhere (the leader's checkout of `main`, say)
and that checkout is clean, the branch moves and the checkout is fast-forwarded with
`git read-tree -m -u old new` (what `git merge --ff-only` would do there). If it is dirty, landing
refuses and names the checkout and its changed files.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from . import git_ops as g
from .db import Store
from .errors import InvalidInput, InvalidState, NotFound
from .records import add_event, compact_json, loads, row, rows
from .runs import get_task
from .states import TaskStatus
from .validate import check_id, check_text, now_ts

STRATEGIES = ("merge", "squash", "rebase")


# -- settings, the gate and the read model live in land_state.py (imported by status and the fold,
# which must not pay for subprocess and tempfile); re-exported here.
from .land_recover import _finalize, recover  # noqa: E402,F401
from .land_state import (  # noqa: E402,F401
    DEFAULT_SUFFIX,
    default_target,
    gate_on,
    is_landed,
    public_land,
    summary,
    target_of,
    unlanded_dependency_sql,
)
from .land_target import _record_target, after_code_dispatch, code_base  # noqa: E402,F401


def validate_target(name: str) -> str:
    g.check_branch_name(name)
    return name


# -- reading a task's land state ---------------------------------------------------------------
def _attempt(conn: Any, run_id: str, task_id: str, attempt_no: int | None = None) -> dict[str, Any]:
    if attempt_no is None:
        a = conn.execute("SELECT * FROM attempts WHERE run_id=? AND task_id=? ORDER BY attempt_no DESC LIMIT 1",
                         (run_id, task_id)).fetchone()
    else:
        a = conn.execute("SELECT * FROM attempts WHERE run_id=? AND task_id=? AND attempt_no=?",
                         (run_id, task_id, attempt_no)).fetchone()
    if a is None:
        raise (NotFound(f"task {task_id} has no attempt {attempt_no}") if attempt_no is not None
               else InvalidState(f"task {task_id} has not been dispatched; nothing to land"))
    return dict(a)


# -- conflicts ---------------------------------------------------------------------------------
def _record_check(store: Store, *, run_id: str, task_id: str, attempt_no: int, target: str, target_tip: str,
                  head: str, conflicts: list[str]) -> None:
    status = "conflicts" if conflicts else "clean"

    def tx(conn: sqlite3.Connection) -> None:
        now = now_ts()
        old = row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND attempt_no=?",
                               (run_id, task_id, attempt_no)).fetchone())
        if old and old["status"] in ("landing", "landed"):
            return
        conn.execute(
            "INSERT INTO lands (run_id, task_id, attempt_no, status, target, head_commit, checked_target,"
            " conflicts_json, checked_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, task_id, attempt_no) DO"
            " UPDATE SET status=excluded.status, target=excluded.target, head_commit=excluded.head_commit,"
            " checked_target=excluded.checked_target, conflicts_json=excluded.conflicts_json,"
            " checked_at=excluded.checked_at",
            (run_id, task_id, attempt_no, status, target, head, target_tip, compact_json(conflicts), now))
        changed = old is None or old["status"] != status or loads(old["conflicts_json"], []) != conflicts
        if conflicts and changed:
            add_event(conn, "task_conflicts", run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                      summary=f"conflicts with {target} at {target_tip[:12]}: {', '.join(conflicts)[:400]}",
                      payload={"target": target, "target_commit": target_tip, "head_commit": head,
                               "files": conflicts}, now=now)
        elif not conflicts and old is not None and old["status"] == "conflicts":
            add_event(conn, "task_conflicts_cleared", run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                      summary=f"merges cleanly into {target} at {target_tip[:12]} now", now=now)

    store.write(tx)


def check(store: Store, *, run_id: str, task_id: str) -> dict[str, Any]:
    """Would the task's latest attempt merge cleanly into the target now? Recorded; no tree touched."""
    with store.snapshot() as conn:
        att = _attempt(conn, run_id, task_id)
        target = target_of(conn, run_id)
    if not att["branch_name"]:
        raise InvalidState(f"task {task_id} attempt {att['attempt_no']} is an analysis attempt; it has no branch")
    repo = att["repo_path"]
    tip = g.rev(repo, f"refs/heads/{target}")
    head = g.rev(repo, f"refs/heads/{att['branch_name']}")
    if tip is None or head is None:
        raise InvalidState(f"branch {target if tip is None else att['branch_name']} does not exist in {repo}")
    m = g.merge_tree(repo, tip, head)
    _record_check(store, run_id=run_id, task_id=task_id, attempt_no=att["attempt_no"], target=target,
                  target_tip=tip, head=head, conflicts=m.conflicts)
    return {"task_id": task_id, "attempt_no": att["attempt_no"], "target": target, "target_commit": tip,
            "head_commit": head, "clean": m.clean, "conflicts": m.conflicts, "messages": m.messages}


def scan(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Check every done, unlanded code task whose (attempt, target tip) was not checked yet."""
    with store.snapshot() as conn:
        target = target_of(conn, run_id)
        cands = rows(conn.execute(
            "SELECT t.task_id, a.attempt_no, a.repo_path, a.branch_name, l.checked_target, l.head_commit"
            " FROM tasks t JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND a.attempt_no=(SELECT"
            " max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
            " LEFT JOIN lands l ON l.run_id=a.run_id AND l.task_id=a.task_id AND l.attempt_no=a.attempt_no"
            " WHERE t.run_id=? AND t.status='done' AND a.branch_name<>'' AND NOT EXISTS (SELECT 1 FROM lands x WHERE"
            " x.run_id=t.run_id AND x.task_id=t.task_id AND x.status IN ('landed','landing'))", (run_id,)).fetchall())
    out = []
    heads = _heads(run_id, target, {c["repo_path"] for c in cands})
    for c in cands:
        tip = heads.get((c["repo_path"], target))
        head = heads.get((c["repo_path"], c["branch_name"]))
        if not tip or not head or (c["checked_target"] == tip and c["head_commit"] == head):
            continue
        out.append(check(store, run_id=run_id, task_id=c["task_id"]))
    return out


def _heads(run_id: str, target: str, repos: set[str]) -> dict[tuple[str, str], str]:
    """(repo, branch) -> commit for the target and every attempt branch of the run: one
    for-each-ref per repository, whatever the number of tasks (the watcher asks every pass)."""
    found: dict[tuple[str, str], str] = {}
    for repo in repos:
        if not repo:
            continue
        for name, sha in g.branch_heads(repo, target, f"orch/{run_id}/").items():
            found[(repo, name)] = sha
    return found


# -- land --------------------------------------------------------------------------------------
def _pause(step: str) -> None:
    """Test hook: ORCH_LAND_HOOK_FILE gets a line per step; ORCH_LAND_PAUSE seconds of sleep after it."""
    path = os.environ.get("ORCH_LAND_HOOK_FILE")
    if path:
        with open(path, "a") as f:
            f.write(step + "\n")
            f.flush()
            os.fsync(f.fileno())
    pause = float(os.environ.get("ORCH_LAND_PAUSE", "0") or 0)
    if pause > 0:
        time.sleep(pause)


def _message(task: dict[str, Any], att: dict[str, Any], strategy: str, by: str, checks: list[dict[str, Any]],
             commits: list[str]) -> str:
    lines = [f"{task['task_id']}: {task['title']}", "",
             f"Landed by orch ({strategy}) from {att['branch_name']} (attempt {att['attempt_no']}, "
             f"worker {att['assigned_to']}).",
             f"Run: {task['run_id']}", f"Landed-by: {by}"]
    if checks:
        lines.append("Checks: " + ", ".join(f"{c['name']} {c['status']}" for c in checks))
    if strategy == "squash" and commits:
        lines += ["", "Squashed commits:"] + [f"  {c}" for c in commits[:50]]
    return "\n".join(lines) + "\n"


def _verify(repo: str, commit: str, task: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Run the task's required check commands on the landed result, in a temporary worktree."""
    from .checks import run_command

    required = loads(task["required_checks_json"], [])
    cmds = loads(task["check_cmds_json"], {})
    todo = [n for n in required if cmds.get(n)]
    if not todo:
        return []
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="orch-land-verify-")
    path = os.path.join(tmp, "wt")
    results = []
    try:
        g.run(repo, "worktree", "add", "--detach", "--quiet", path, commit)
        for name in todo:
            passed, output, seconds = run_command(cmds[name], path, timeout)
            results.append({"name": name, "status": "passed" if passed else "failed",
                            "seconds": round(seconds, 2), "output_tail": output[-1000:]})
    finally:
        g.run(repo, "worktree", "remove", "--force", path, check=False)
        g.run(repo, "worktree", "prune", check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def land(store: Store, *, run_id: str, task_id: str, strategy: str = "merge", dry_run: bool = False,
         verify: bool = False, by: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    if strategy not in STRATEGIES:
        raise InvalidInput(f"--strategy must be one of {', '.join(STRATEGIES)}")
    if by is None:
        from .dispatch import leader_name

        by = leader_name()
    with store.snapshot() as conn:
        get_task(conn, run_id, task_id)
        pending = conn.execute("SELECT count(*) FROM lands WHERE run_id=? AND status='landing'",
                               (run_id,)).fetchone()[0]
    if pending:
        recover(store, run_id)
    for _ in range(5):  # the target moved under us: compute again
        out = _land_once(store, run_id=run_id, task_id=task_id, strategy=strategy, dry_run=dry_run,
                         verify=verify, by=by, timeout=timeout)
        if out is not None:
            return out
    raise InvalidState(f"the target kept moving while landing {task_id}; try again")


def _land_once(store: Store, *, run_id: str, task_id: str, strategy: str, dry_run: bool, verify: bool,
               by: str, timeout: float | None) -> dict[str, Any] | None:
    from .views import gate_of

    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        done_before = row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND status='landed'"
                                       " ORDER BY attempt_no DESC LIMIT 1", (run_id, task_id)).fetchone())
        if done_before:
            return {"noop": True, "landed": True, "land": public_land(done_before),
                    "message": f"{task_id} already landed at {done_before['landed_commit'][:12]}"}
        att = _attempt(conn, run_id, task_id)
        busy = row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND status='landing'",
                                (run_id, task_id)).fetchone())
        checks = rows(conn.execute("SELECT name, status, summary FROM checks WHERE run_id=? AND task_id=? AND"
                                   " attempt_no=?", (run_id, task_id, att["attempt_no"])).fetchall())
        target = target_of(conn, run_id)
    if busy:
        raise InvalidState(f"another land of {task_id} is in progress (pid {busy['landing_pid']})")
    required = loads(task["required_checks_json"], [])
    gate = gate_of(required, checks)
    if gate["status"] == "failed":
        failed = [c["name"] for c in gate["checks"] if c["status"] == "failed"]
        raise InvalidState(f"task {task_id} failed its required checks ({', '.join(failed)}); nothing landed")
    if task["status"] != "done":
        raise InvalidState(f"task {task_id} is {task['status']}; only a done task lands")
    if gate["status"] != "passed" and required:
        raise InvalidState(f"task {task_id}'s required checks have not passed; nothing landed")
    if att["execution_mode"] != "code" or not att["branch_name"]:
        raise InvalidState(f"task {task_id} attempt {att['attempt_no']} ran in analysis mode; it has no branch to land")
    status = g.PendingStatus(att["worktree_path"] if att["workspace_status"] == "created" else "")
    try:
        return _land_checked(store, task=task, att=att, checks=checks, target=target, status=status,
                             strategy=strategy, dry_run=dry_run, verify=verify, by=by, timeout=timeout)
    finally:
        status.cancel()


def _refuse_dirty(task_id: str, att: dict[str, Any], status: g.PendingStatus) -> None:
    dirty = status.files()  # the worktree's `git status`, run meanwhile
    if dirty:
        raise InvalidState(f"task {task_id}'s worktree {att['worktree_path']} has uncommitted changes "
                           f"({', '.join(dirty[:10])}); commit or discard them first; nothing landed")


def _land_checked(store: Store, *, task: dict[str, Any], att: dict[str, Any], checks: list[dict[str, Any]],
                  target: str, status: g.PendingStatus, strategy: str, dry_run: bool, verify: bool, by: str,
                  timeout: float | None) -> dict[str, Any] | None:
    run_id, task_id, repo = task["run_id"], task["task_id"], att["repo_path"]
    tip, head, tip_tree = g.revs(repo, f"refs/heads/{target}", f"refs/heads/{att['branch_name']}",
                                 f"refs/heads/{target}^{{tree}}")
    if tip is None:
        g.check_branch_name(target)
        _refuse_dirty(task_id, att, status)
        tip = att["base_commit"]
        if not dry_run:
            created = g.create_branch(repo, target, tip)
            _record_target(store, run_id, repo, target, tip, created)
            tip = g.rev(repo, f"refs/heads/{target}") or tip
        tip_tree = g.tree_of(repo, tip)
    if head is None:
        raise InvalidState(f"branch {att['branch_name']} is gone from {repo}; nothing to land")
    checkouts = g.checkouts_of(repo, target)
    for c in checkouts:
        if c.dirty:
            raise InvalidState(f"the target branch {target} is checked out in {c.path} with uncommitted changes; "
                               f"landing never touches that working tree: commit or stash them there, or set "
                               f"another land_target; nothing landed")
    m = g.merge_tree(repo, tip, head)
    _refuse_dirty(task_id, att, status)
    if not m.clean or dry_run:  # a clean check is recorded with the intent below (one transaction less)
        _record_check(store, run_id=run_id, task_id=task_id, attempt_no=att["attempt_no"], target=target,
                      target_tip=tip, head=head, conflicts=m.conflicts)
    if not m.clean:
        raise InvalidState(f"task {task_id} conflicts with {target} at {tip[:12]} in {', '.join(m.conflicts)}; "
                           f"nothing landed (send it back with `orch rework --run {run_id} --task {task_id}`)")
    # contained only if merging changes nothing (then ask git whether it is really an ancestor)
    contained = head == tip or (m.tree == tip_tree and g.is_ancestor(repo, head, tip))
    plan = {"task_id": task_id, "attempt_no": att["attempt_no"], "target": target, "target_commit": tip,
            "branch": att["branch_name"], "head_commit": head, "strategy": strategy, "clean": True,
            "already_contained": contained}
    if dry_run:
        return {"dry_run": True, "landed": False, "plan": plan}
    commits: list[str] = []
    if strategy != "merge" and not contained:
        commits = g.commits_between(repo, g.out(repo, "merge-base", tip, head), head)
    if contained:
        new = tip
    elif strategy == "merge":
        new = g.commit_tree(repo, m.tree, [tip, head], _message(task, att, strategy, by, checks, commits))
    elif strategy == "squash":
        new = g.commit_tree(repo, m.tree, [tip], _message(task, att, strategy, by, checks,
                                                          [g.out(repo, "log", "-1", "--format=%h %s", c)
                                                           for c in commits]))
    elif g.is_ancestor(repo, tip, head):
        new = head  # rebase onto a target that has not moved: a fast-forward
    else:
        import tempfile

        fd, index = tempfile.mkstemp(prefix="orch-land-index-")
        os.close(fd)
        new = g.replay(repo, tip, commits, index)
    verified: list[dict[str, Any]] = []
    if verify and not contained:
        verified = _verify(repo, new, task, timeout or 600.0)
        bad = [v for v in verified if v["status"] != "passed"]
        if bad:
            raise InvalidState(f"--verify: {', '.join(v['name'] for v in bad)} failed on the landed result "
                               f"{new[:12]}; the target did not move. {bad[0]['output_tail'][-300:]}")
    intent = {"run_id": run_id, "task_id": task_id, "attempt_no": att["attempt_no"], "target": target,
              "target_before": tip, "landed_commit": new, "strategy": strategy, "landed_by": by}

    def write_intent(conn: sqlite3.Connection) -> None:
        t = get_task(conn, run_id, task_id)
        if t["status"] != "done" or is_landed(conn, run_id, task_id):
            raise InvalidState(f"task {task_id} changed while landing; nothing landed")
        other = conn.execute("SELECT landing_pid FROM lands WHERE run_id=? AND task_id=? AND status='landing'",
                             (run_id, task_id)).fetchone()
        if other is not None:
            raise InvalidState(f"another land of {task_id} is in progress (pid {other[0]}); nothing landed")
        conn.execute(
            "INSERT INTO lands (run_id, task_id, attempt_no, status, target, head_commit, checked_target,"
            " target_before, landed_commit, strategy, landed_by, landing_pid, checked_at) VALUES"
            " (?,?,?, 'landing', ?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, task_id, attempt_no) DO UPDATE SET"
            " status='landing', target=excluded.target, head_commit=excluded.head_commit,"
            " checked_target=excluded.checked_target, conflicts_json='[]', target_before=excluded.target_before,"
            " landed_commit=excluded.landed_commit,"
            " strategy=excluded.strategy, landed_by=excluded.landed_by, landing_pid=excluded.landing_pid,"
            " checked_at=excluded.checked_at",
            (run_id, task_id, att["attempt_no"], target, head, tip, tip, new, strategy, by, os.getpid(), now_ts()))

    store.write(write_intent)
    _pause("intent")
    if not contained and not g.cas_ref(repo, target, new, tip):
        def undo(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE lands SET status='clean', landing_pid=NULL WHERE run_id=? AND task_id=? AND"
                         " attempt_no=? AND status='landing'", (run_id, task_id, att["attempt_no"]))
        store.write(undo)
        return None  # the target moved: compute again
    _pause("ref")
    warnings = []
    for c in checkouts:
        if contained:
            break
        p = g.run(c.path, "read-tree", "-m", "-u", tip, new, check=False)
        if p.returncode != 0:
            warnings.append(f"{target} moved but its checkout in {c.path} was not updated: "
                            f"{(p.stderr.strip().splitlines() or ['?'])[-1]}; run `git reset --keep HEAD` there")
    result = _finalize(store, intent)
    _pause("recorded")
    return {"landed": True, "noop": False, "land": result, "plan": plan, "verified": verified,
            "checkouts_updated": [c.path for c in checkouts], "warnings": warnings}


# -- rework: a new attempt on the current target -----------------------------------------------
def rework(store: Store, *, run_id: str, task_id: str, to: str | None = None,
           body: str | None = None) -> dict[str, Any]:
    """Send a done, unlanded task back as a new attempt based on the target's tip. Its brief names
    the conflicting files and both sides (the target's commits and the attempt's commits that
    touch them), plus the leader's review comment (body)."""
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    body = check_text(body, "--body") if body is not None else None
    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        if is_landed(conn, run_id, task_id):
            raise InvalidState(f"task {task_id} has landed; there is nothing to rework")
        if task["status"] in (TaskStatus.DISPATCHED, TaskStatus.RUNNING):
            live = _attempt(conn, run_id, task_id)
        else:
            live = None
    if live is not None:  # the attempt still runs: the review goes to its worker as a reply
        if not (body or "").strip():
            raise InvalidInput(f"task {task_id} is still {task['status']}; say what to change with --body")
        return _request_changes(store, live, body or "")
    with store.snapshot() as conn:
        if task["status"] != "done":
            raise InvalidState(f"task {task_id} is {task['status']}; rework takes a done task that has not landed "
                               f"(use retry for a failed one)")
        att = _attempt(conn, run_id, task_id)
        lr = row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND attempt_no=?",
                              (run_id, task_id, att["attempt_no"])).fetchone())
        target = target_of(conn, run_id)
    if att["execution_mode"] != "code":
        raise InvalidState(f"task {task_id} ran in analysis mode; rework needs a code attempt")
    conflicts = loads(lr["conflicts_json"], []) if lr and lr["status"] == "conflicts" else []
    if not conflicts and not (body or "").strip():
        fresh = check(store, run_id=run_id, task_id=task_id)
        conflicts = fresh["conflicts"]
        if not conflicts:
            raise InvalidInput(f"task {task_id} merges cleanly into {target}; say what to change with --body")
    repo = att["repo_path"]
    tip = g.rev(repo, f"refs/heads/{target}") or ""
    head = g.rev(repo, f"refs/heads/{att['branch_name']}") or ""
    lines = [(att["instruction"] or task["title"]).rstrip(), ""]
    if conflicts:
        lines += [f"Attempt {att['attempt_no']} conflicts with the land target {target}. This attempt starts from "
                  f"the target's current tip {tip[:12]}, which already holds the other side; redo the task's "
                  f"change on top of it.", f"Conflicting files: {', '.join(conflicts)}",
                  f"Target side ({target} at {tip[:12]}), commits since your previous base touching them:"]
        lines += [f"  {c}" for c in g.log_touching(repo, att["base_commit"], tip, conflicts)] or ["  (none listed)"]
        lines += [f"Your previous side ({att['branch_name']} at {head[:12]}), its commits touching them:"]
        lines += [f"  {c}" for c in g.log_touching(repo, att["base_commit"], head, conflicts)] or ["  (none listed)"]
    if body and body.strip():
        lines += ["", "Review from the leader (requested changes):", body.strip()]
    from .dispatch import _new_attempt, _workspace_root_of

    out = _new_attempt(store, run_id=run_id, task_id=task_id, mode="code", to=to or att["assigned_to"],
                       repo_path=repo or None, base_ref=None, workspace_root=_workspace_root_of(att),
                       body="\n".join(lines), allowed_from=("done",), verb="rework")
    out["conflicts"] = conflicts
    out["target"] = target
    return out


def _request_changes(store: Store, att: dict[str, Any], body: str) -> dict[str, Any]:
    from .dispatch import leader_name
    from .inbox import reply_tx

    summary = "changes requested: " + " ".join(body.split())[:180]

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        out = reply_tx(conn, from_agent=leader_name(), to_agent=att["assigned_to"], thread_id=att["thread_id"],
                       summary=summary, body=body, payload="", kind="control", now=now_ts())
        add_event(conn, "task_changes_requested", run_id=att["run_id"], task_id=att["task_id"],
                  thread_id=att["thread_id"], attempt_no=att["attempt_no"], summary=summary, now=now_ts())
        return out

    out = store.write(tx)
    return {"replied": True, "attempt": {k: att[k] for k in ("run_id", "task_id", "attempt_no", "thread_id",
                                                               "assigned_to")}, "message": out["message"]}


# -- review ------------------------------------------------------------------------------------
def diff(store: Store, *, run_id: str, task_id: str, attempt_no: int | None = None,
         mode: str = "patch") -> dict[str, Any]:
    """The attempt's committed changes against the base it started from."""
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        att = _attempt(conn, run_id, task_id, attempt_no)
    if att["execution_mode"] != "code" or not att["branch_name"]:
        raise InvalidState(f"task {task_id} attempt {att['attempt_no']} ran in analysis mode; it has no diff")
    repo = att["repo_path"]
    head = g.rev(repo, f"refs/heads/{att['branch_name']}")
    if head is None:
        raise InvalidState(f"branch {att['branch_name']} is gone from {repo}")
    files = [f for f in g.diff(repo, att["base_commit"], head, "name-only").splitlines() if f]
    text = g.diff(repo, att["base_commit"], head, mode) if mode != "name-only" else \
        "\n".join(files) + ("\n" if files else "")
    dirty = g.dirty_files(att["worktree_path"]) if att["workspace_status"] == "created" else []
    return {"task_id": task_id, "attempt_no": att["attempt_no"], "branch": att["branch_name"],
            "base_commit": att["base_commit"], "head_commit": head, "mode": mode, "files": files,
            "diff": text, "uncommitted": dirty, "task_status": task["status"]}


# -- the autopilot's landing -------------------------------------------------------------------
def auto_land(store: Store, run_id: str, *, strategy: str = "merge", verify: bool = False) -> list[dict[str, Any]]:
    """Land every done, unlanded code task whose gate passed, in topological order (wave, then
    creation). A conflicting task is recorded (event task_conflicts) and skipped, and is not tried
    again until the target or its branch moves. Each land promotes what it unblocked."""
    from .land_recover import recover_if_needed

    recover_if_needed(store, run_id)
    with store.snapshot() as conn:
        target = target_of(conn, run_id)
        cands = rows(conn.execute(
            "SELECT t.task_id, a.repo_path, a.branch_name, l.status AS land_status, l.checked_target, l.head_commit"
            " FROM tasks t JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND a.attempt_no=(SELECT"
            " max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
            " LEFT JOIN lands l ON l.run_id=a.run_id AND l.task_id=a.task_id AND l.attempt_no=a.attempt_no"
            " WHERE t.run_id=? AND t.status='done' AND a.branch_name<>'' AND NOT EXISTS (SELECT 1 FROM lands x"
            " WHERE x.run_id=t.run_id AND x.task_id=t.task_id AND x.status='landed')"
            " ORDER BY t.wave, t.rowid", (run_id,)).fetchall())
    out = []
    heads = _heads(run_id, target, {c["repo_path"] for c in cands})
    for c in cands:
        tip = heads.get((c["repo_path"], target))
        mine = heads.get((c["repo_path"], c["branch_name"]))
        if c["land_status"] == "conflicts" and tip == c["checked_target"] and mine == c["head_commit"]:
            continue  # already known to conflict with this very target
        key = (store.path, run_id, c["task_id"])
        if _REFUSED.get(key) == (tip, mine):
            continue  # refused for another reason (a failed --verify, say) at these very commits
        try:
            out.append(land(store, run_id=run_id, task_id=c["task_id"], strategy=strategy, verify=verify,
                            by="autopilot")
                       | {"task_id": c["task_id"]})
            _REFUSED.pop(key, None)
            if out[-1].get("landed") and not out[-1].get("noop"):
                heads[(c["repo_path"], target)] = out[-1]["land"]["landed_commit"]
        except InvalidState as exc:  # remembered at the target as it is now (an earlier land may have moved it)
            _REFUSED[key] = (g.rev(c["repo_path"], f"refs/heads/{target}"), mine)
            out.append({"task_id": c["task_id"], "landed": False, "error": exc.message})
    return out


# auto_land's memory of refusals, per (database, run, task): the target and branch commits it was
# refused at; it tries again once either moves (a watcher restart forgets it: harmless).
_REFUSED: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}


__all__ = ["land", "check", "scan", "rework", "diff", "auto_land", "recover", "summary", "code_base",
           "gate_on", "target_of", "default_target", "STRATEGIES"]
