"""Issue 15, M5/M6/M7 as a soak: `orch dispatch --launch` (code mode, real git, real worker
processes) SIGKILLed at random moments, then restarted the way a leader would (dispatch again if
the task is still ready, launch if the attempt was never launched) and one watcher pass. After
every round and at the end: no worktree or branch without its attempt, no committed code attempt
without its worktree, no worker process the store does not know (by pid), never two workers for
one attempt. KILL_SOAK_ROUNDS sets the rounds (default 12)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import Store
from tests.conftest import ORCH, Cli, git_env

ROUNDS = int(os.environ.get("KILL_SOAK_ROUNDS", "12"))


def _workers(db: str) -> dict[str, list[int]]:
    """Live processes of this database's workers, by ORCH_THREAD."""
    want = f"ORCH_DB={Path(db).resolve()}".encode()
    out: dict[str, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if want not in env or stat[stat.rindex(")") + 2] in "ZX":
            continue
        if os.getpgid(int(name)) != int(name):
            continue  # count process-group leaders: one per launched worker
        th = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"ORCH_THREAD=")), "")
        out.setdefault(th, []).append(int(name))
    return out


def _git_branches(repo: Path) -> set[str]:
    out = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname:short)", "refs/heads/orch"],
                         capture_output=True, text=True, env=git_env(), check=True).stdout
    # the run's land target (orch/<run>/_land, issue 14) is the run's, not an attempt's
    return {ln.strip() for ln in out.splitlines() if ln.strip() and not ln.strip().endswith("/_land")}


def _check(db: str, repo: Path) -> None:
    s = Store(db)
    try:
        atts = [dict(r) for r in s.all("SELECT * FROM attempts")]
    finally:
        s.close()
    owned = {a["branch_name"] for a in atts if a["branch_name"]}
    assert _git_branches(repo) == owned, "a branch without its attempt (or the reverse)"
    root = repo / ".orch" / "worktrees" / "r"
    on_disk = {str(p) for p in root.glob("*/a*")} if root.exists() else set()
    assert on_disk == {a["worktree_path"] for a in atts if a["worktree_path"]}, "a worktree without its attempt"
    for a in atts:
        if a["worktree_path"]:
            assert (Path(a["worktree_path"]) / ".git").is_file(), f"committed attempt lost its worktree: {a}"
    workers = _workers(db)
    by_thread = {a["thread_id"]: a for a in atts}
    for th, pids in workers.items():
        assert len(pids) == 1, f"two workers for one attempt: {th} {pids}"
        a = by_thread.get(th)
        assert a is not None, f"a worker with no attempt: {th}"
        assert a["pid"] == pids[0], f"a worker the store does not know: {a['task_id']} pid {pids[0]} vs {a['pid']}"


def test_sigkill_dispatch_and_launch_at_random_moments(cli: Cli, repo: Path) -> None:
    (Path(cli.db).parent / "orch.toml").write_text('[agents.w]\ncommand = "exec sleep 300"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "soak")
    rng = random.Random(int(os.environ.get("KILL_SOAK_SEED", "15")))
    killed = 0
    try:
        for i in range(ROUNDS):
            task = f"T{i}"
            cli.ok("orch", "task", "add", "--run", "r", "--task", task, "--title", task, "--default-to", "w")
            p = subprocess.Popen([ORCH, "--db", cli.db, "--json", "dispatch", "--run", "r", "--task", task,
                                  "--execution-mode", "code", "--repo-path", str(repo), "--launch", "--profile", "w"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cli.cwd, env=git_env())
            time.sleep(rng.uniform(0.05, 0.9))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed += 1
            p.wait(timeout=30)
            # the restart a leader does: dispatch again while ready, launch what was never launched
            st = {t["task_id"]: t for t in cli.ok("orch", "status", "--run", "r")["tasks"]}
            if st[task]["status"] == "ready":
                cli.ok("orch", "dispatch", "--run", "r", "--task", task, "--execution-mode", "code",
                       "--repo-path", str(repo))
            s = Store(cli.db)
            try:
                a = dict(s.one("SELECT * FROM attempts WHERE task_id=? ORDER BY attempt_no DESC LIMIT 1", (task,)))
                if not a["runtime"]:
                    launcher.launch(s, run_id="r", task_id=task, profile="w")
            finally:
                s.close()
            w = Watcher(cli.db, "r")
            try:
                w.tick(force_liveness=True)
            finally:
                w.close()
            _check(cli.db, repo)
    finally:
        s = Store(cli.db)
        try:
            for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
                launcher.stop(cli.db, dict(a), grace=0.3)
        finally:
            s.close()
        for pids in _workers(cli.db).values():
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
    print(f"dispatch/launch kill soak: {ROUNDS} rounds, {killed} SIGKILLs mid-command")
    assert killed > 0
