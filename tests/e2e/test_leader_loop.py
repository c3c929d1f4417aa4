"""The whole leader loop through the two CLIs as real subprocesses, on a real repository."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import INBOX, ORCH, Cli, git_env


def background(cli: Cli, exe: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([exe, "--db", cli.db, "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cli.cwd, env=git_env())


def finish(p: subprocess.Popen[str], timeout: float = 30) -> tuple[int, dict]:
    out, err = p.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return p.returncode, json.loads(out)


def test_leader_loop_end_to_end(cli: Cli, repo: Path) -> None:
    cli.ok("inbox", "init")
    cli.ok("orch", "run", "init", "--run", "blog", "--goal", "Build blog MVP")
    cli.ok("orch", "task", "add", "--run", "blog", "--task", "T1", "--title", "Skeleton", "--default-to", "w1")
    cli.ok("orch", "task", "add", "--run", "blog", "--task", "T2", "--title", "Posts", "--default-to", "w2")
    cli.ok("orch", "task", "add", "--run", "blog", "--task", "T3", "--title", "Review", "--default-to", "qa")
    cli.ok("orch", "dep", "add", "--run", "blog", "--task", "T2", "--depends-on", "T1")
    assert sorted(t["task_id"] for t in cli.ok("orch", "ready", "--run", "blog")["tasks"]) == ["T1", "T3"]

    # analysis and code dispatch
    d3 = cli.ok("orch", "dispatch", "--run", "blog", "--task", "T3", "--execution-mode", "analysis")
    assert d3["attempt"]["worktree_path"] == ""
    d1 = cli.ok("orch", "dispatch", "--run", "blog", "--task", "T1", "--execution-mode", "code",
                "--repo-path", str(repo), "--body", "Create the app skeleton")
    th1, wt1 = d1["attempt"]["thread_id"], Path(d1["attempt"]["worktree_path"])
    assert wt1.is_dir() and d1["attempt"]["branch_name"] == "orch/blog/T1/a1"

    # the worker claims, works, blocks and waits for the answer
    assert cli.ok("inbox", "fetch", "--agent", "w1", "--status", "pending")["threads"][0]["thread_id"] == th1
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", th1)
    cli.ok("inbox", "update", "--agent", "w1", "--thread", th1, "--status", "in_progress", "--summary", "scaffolding")
    cli.ok("inbox", "update", "--agent", "w1", "--thread", th1, "--status", "blocked", "--summary", "Auth?",
           "--payload-json", '{"question": "email/password in MVP?"}')
    waiter = background(cli, INBOX, "wait-reply", "--agent", "w1", "--thread", th1, "--timeout-seconds", "30")
    blocked = cli.ok("orch", "blocked", "--run", "blog")["tasks"]
    assert [(b["task_id"], b["question"]["summary"]) for b in blocked] == [("T1", "Auth?")]
    st = cli.ok("orch", "status", "--run", "blog")
    assert st["run"]["status"] == "blocked"
    time.sleep(0.3)
    cli.ok("orch", "answer", "--run", "blog", "--task", "T1", "--body", "Yes, email/password.")
    code, reply = finish(waiter)
    assert code == 0 and reply["data"]["message"]["body"] == "Yes, email/password."
    cursor = reply["data"]["next_event_id"]
    cli.ok("inbox", "update", "--agent", "w1", "--thread", th1, "--status", "in_progress", "--summary", "resuming")

    # the leader waits for task_done while the worker finishes
    waiting = background(cli, ORCH, "wait", "--run", "blog", "--for", "task_done", "--after-event", str(cursor),
                         "--timeout-seconds", "30")
    time.sleep(0.3)
    (wt1 / "app.py").write_text("print('hello')\n")
    subprocess.run(["git", "-C", str(wt1), "add", "-A"], check=True, env=git_env())
    subprocess.run(["git", "-C", str(wt1), "commit", "-qm", "skeleton"], check=True, env=git_env())
    cli.ok("inbox", "done", "--agent", "w1", "--thread", th1, "--summary", "skeleton ready")
    code, woke = finish(waiting)
    assert code == 0 and woke["data"]["events"][0]["event_type"] == "task_done"
    assert woke["data"]["events"][0]["task_id"] == "T1"
    tasks = {t["task_id"]: t for t in cli.ok("orch", "status", "--run", "blog")["tasks"]}
    assert tasks["T1"]["status"] == "done" and tasks["T2"]["status"] == "ready"
    assert tasks["T1"]["latest_message"]["kind"] == "result"

    # a failed code task is retried in a fresh worktree
    d2 = cli.ok("orch", "dispatch", "--run", "blog", "--task", "T2", "--execution-mode", "code",
                "--repo-path", str(repo))
    th2 = d2["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w2", "--thread", th2)
    cli.ok("inbox", "fail", "--agent", "w2", "--thread", th2, "--summary", "schema mismatch")
    r = cli.ok("orch", "retry", "--run", "blog", "--task", "T2", "--body", "Retry after fixing the contract")
    assert r["attempt"]["attempt_no"] == 2 and r["previous_attempt"]["attempt_no"] == 1
    assert r["attempt"]["worktree_path"] != d2["attempt"]["worktree_path"]
    assert Path(r["attempt"]["worktree_path"]).is_dir()

    # reassign cancels the old thread
    old3 = d3["attempt"]["thread_id"]
    ra = cli.ok("orch", "reassign", "--run", "blog", "--task", "T3", "--to", "qa2")
    assert ra["attempt"]["assigned_to"] == "qa2"
    assert cli.ok("inbox", "show", "--thread", old3)["thread"]["status"] == "cancelled"

    # cleanup removes finished worktree directories and keeps their branches
    c = cli.ok("orch", "cleanup", "--run", "blog", "--all-completed")
    assert {x["task_id"] for x in c["cleaned"]} == {"T1", "T2"}
    assert not wt1.exists()
    br = subprocess.run(["git", "-C", str(repo), "branch", "--list", "orch/*"], capture_output=True, text=True).stdout
    assert "orch/blog/T1/a1" in br and "orch/blog/T2/a1" in br
