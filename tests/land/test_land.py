"""Landing (issue 14) with real git, a real SQLite file and the real `orch` CLI: graph order over
simulated workers, conflicts known before any merge and resolved through a new attempt, every
refusal leaving git and the database unchanged, strategies, --verify, --pr against a bare remote,
and kill -9 in the middle of a land."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from orch_console.store import land, views
from orch_console.store.checks import verify_run
from tests.conftest import ORCH, Cli, db_snapshot, git_env
from tests.land.conftest import LandRig, git, head, is_ancestor

TARGET = "orch/r1/_land"


def _ls(repo: Path, ref: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", ref).split())


# -- graph order over simulated workers -----------------------------------------------------------
def test_three_wave_run_with_sim_workers_lands_in_graph_order(lrig: LandRig, cli: Cli) -> None:
    """auto_land + autopilot in a real `orch watch` process: each dependant starts from the
    target's tip after its parents landed, and the target ends with every task's work."""
    from orch_console.console.runtime import launcher
    from tests.runtime.conftest import FAST

    dag = {"a1": [], "a2": [], "b1": ["a1"], "b2": ["a1", "a2"], "c1": ["b1", "b2"]}
    lrig.run(**(FAST | {"autopilot": True, "auto_land": True, "concurrency": 3, "profile": "sim",
                        "execution_mode": "code", "liveness_interval_seconds": 0.5,
                        "worker_env": {"ORCH_SIM_STEP_SECONDS": "0.1", "ORCH_SIM_LEASE_SECONDS": "10"}}))
    for tid, deps in dag.items():
        lrig.task(tid, deps=tuple(deps), paths=[f"src/{tid}.txt"], spec="sim-script: progress*2,done")
    assert lrig.status("b1") == "planned"
    main_before = head(lrig.repo, "main")
    watch = subprocess.Popen([ORCH, "--db", lrig.store.path, "watch", "--run", lrig.run_id, "--autopilot"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             env=git_env(), cwd=str(lrig.repo))
    try:
        deadline = time.monotonic() + 150
        while len(lrig.events("task_landed")) < len(dag):
            assert time.monotonic() < deadline, [dict(r) for r in lrig.store.all("SELECT task_id, status FROM tasks")]
            time.sleep(0.3)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
            watch.wait()
        for a in lrig.store.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(lrig.store.path, dict(a), grace=0.5)

    repo = lrig.repo
    heads = {tid: head(repo, lrig.attempt(tid)["branch_name"]) for tid in dag}
    landed = {e["task_id"]: json.loads(e["payload_json"]) for e in lrig.events("task_landed")}
    for tid, deps in dag.items():
        att = lrig.attempt(tid)
        for d in deps:
            # the dependant's worktree holds its parent's commits and its parent's landed commit
            assert is_ancestor(repo, heads[d], att["base_commit"]), (tid, d)
            assert is_ancestor(repo, landed[d]["commit"], head(att["worktree_path"], "HEAD"))
            assert (Path(att["worktree_path"]) / f"src/{d}.txt").exists()
        # it was dispatched only after every parent landed
        disp = lrig.events("task_dispatched", tid)[0]["event_id"]
        for d in deps:
            assert lrig.events("task_landed", d)[0]["event_id"] < disp
    tip = head(repo, TARGET)
    files = _ls(repo, TARGET)
    for tid in dag:
        assert is_ancestor(repo, heads[tid], tip), tid
        assert f"src/{tid}.txt" in files
    # graph order: a parent's land precedes its dependants' lands
    order = [e["task_id"] for e in lrig.events("task_landed")]
    for tid, deps in dag.items():
        assert all(order.index(d) < order.index(tid) for d in deps)
    st = cli.ok("orch", "status", "--run", "r1")
    assert st["land"]["gate"] is True and st["land"]["target"] == TARGET
    assert {t for t, v in st["land"]["tasks"].items() if v["status"] == "landed"} == set(dag)
    # the leader's working tree (main checkout) was never touched
    assert git(repo, "status", "--porcelain") == "" and head(repo, "main") == main_before


# -- conflicts ------------------------------------------------------------------------------------
def test_conflict_known_before_merge_then_resolved_by_a_new_attempt(lrig: LandRig, cli: Cli) -> None:
    repo = lrig.repo
    lrig.run(land_target="main")
    lrig.task("x")
    lrig.task("y")
    lrig.dispatch("x")
    lrig.dispatch("y")
    lrig.work("x", {"README.md": "written by x\n"})
    lrig.work("y", {"README.md": "written by y\n"})
    # x lands into main, which the leader has checked out clean: the checkout follows
    out = cli.ok("orch", "land", "--run", "r1", "--task", "x")
    assert out["land"]["landed_commit"] == head(repo, "main")
    assert (repo / "README.md").read_text() == "written by x\n" and git(repo, "status", "--porcelain") == ""

    main_before = head(repo, "main")
    status_before = git(repo, "status", "--porcelain")
    readme_before = (repo / "README.md").read_text()
    # the watcher's pass (what runs under a land target) finds the conflict without merging
    found = land.scan(lrig.store, "r1")
    assert [(f["task_id"], f["conflicts"]) for f in found] == [("y", ["README.md"])]
    st = cli.ok("orch", "status", "--run", "r1")
    assert st["land"]["tasks"]["y"]["status"] == "conflicts"
    assert st["land"]["tasks"]["y"]["conflicts"] == ["README.md"]
    ev = lrig.events("task_conflicts", "y")
    assert len(ev) == 1 and json.loads(ev[0]["payload_json"])["files"] == ["README.md"]
    human = cli.orch("status", "--run", "r1", json_out=False).stdout
    assert "done, conflicts" in human and "done, landed" in human and "README.md" in human
    # landing refuses, naming the file; nothing moved, no working tree touched
    err = cli.err("orch", "land", "--run", "r1", "--task", "y", code="invalid_state", exit_code=30)
    assert "README.md" in err["message"]
    assert head(repo, "main") == main_before
    assert git(repo, "status", "--porcelain") == status_before and (repo / "README.md").read_text() == readme_before
    assert git(lrig.attempt("y")["worktree_path"], "status", "--porcelain") == ""
    assert len(lrig.events("task_conflicts", "y")) == 1  # said once

    # the leader sends it back: a new attempt on the current target, the brief names both sides
    y1 = lrig.attempt("y")
    rw = cli.ok("orch", "rework", "--run", "r1", "--task", "y", "--body", "keep both lines")
    assert rw["attempt"]["attempt_no"] == 2 and rw["attempt"]["base_commit"] == main_before
    brief = cli.ok("orch", "brief", "--run", "r1", "--task", "y")["brief"]
    assert "README.md" in brief and "main" in brief and y1["branch_name"] in brief
    assert "x: work" in brief and "y: work" in brief and "keep both lines" in brief
    lrig.work("y", {"README.md": "written by x\nwritten by y\n"})
    out = cli.ok("orch", "land", "--run", "r1", "--task", "y")
    assert out["land"]["attempt_no"] == 2
    assert git(repo, "show", "main:README.md") == "written by x\nwritten by y"
    assert (repo / "README.md").read_text() == "written by x\nwritten by y\n"
    st = cli.ok("orch", "status", "--run", "r1")
    assert st["land"]["tasks"]["y"]["status"] == "landed"
    # the report: what landed, what conflicted and how it was resolved, how long each wave waited
    rep = json.loads(cli.ok("orch", "report", "--run", "r1", "--format", "json")["report"])["landing"]
    assert [(x["task_id"], x["attempt_no"], x["strategy"]) for x in rep["landed"]] == \
        [("x", 1, "merge"), ("y", 2, "merge")]
    assert rep["landed"][1]["commit"] == head(repo, "main")
    assert [(c["task_id"], c["attempt_no"], c["files"]) for c in rep["conflicts"]] == [("y", 1, ["README.md"])]
    assert rep["conflicts"][0]["resolution"].startswith("resolved by attempt 2")
    assert rep["waves"] == [dict(rep["waves"][0], wave=0, landed=2, done_not_landed=0)]
    assert rep["waves"][0]["wait_max_seconds"] > 0
    md = cli.ok("orch", "report", "--run", "r1", "--format", "md")["report"]
    assert "## Landing" in md and "resolved by attempt 2" in md and head(repo, "main")[:12] in md
    assert "Landing into main" in cli.ok("orch", "report", "--run", "r1", "--format", "html")["report"]


# -- refusals -------------------------------------------------------------------------------------
def _unchanged(cli: Cli, repo: Path, ref: str, *args: str, msg: str) -> None:
    before_db = db_snapshot(cli.db)
    before_ref = head(repo, ref)
    err = cli.err("orch", "land", "--run", "r1", *args, code="invalid_state", exit_code=30)
    assert msg in err["message"], err
    assert head(repo, ref) == before_ref
    assert db_snapshot(cli.db) == before_db


def test_refusals_change_nothing_and_landing_twice_is_a_noop(lrig: LandRig, cli: Cli) -> None:
    repo = lrig.repo
    lrig.run()
    lrig.task("busy")
    lrig.task("dirty")
    lrig.task("checked", required_checks=["unit"], check_cmds={"unit": "false"})
    lrig.task("ok")
    for t in ("busy", "dirty", "checked", "ok"):
        lrig.dispatch(t)
    # not done
    _unchanged(cli, repo, TARGET, "--task", "busy", msg="only a done task lands")
    # uncommitted changes in the worktree
    a = lrig.work("dirty", {"d.txt": "d\n"})
    (Path(a["worktree_path"]) / "stray.txt").write_text("not committed\n")
    _unchanged(cli, repo, TARGET, "--task", "dirty", msg="uncommitted changes")
    # failed checks
    lrig.work("checked", {"c.txt": "c\n"})
    assert lrig.status("checked") == "verifying"
    verify_run(lrig.store, run_id="r1", task_id="checked")
    assert lrig.status("checked") == "failed"
    _unchanged(cli, repo, TARGET, "--task", "checked", msg="failed its required checks")
    # landing twice: the second is a no-op
    lrig.work("ok", {"ok.txt": "ok\n"})
    first = cli.ok("orch", "land", "--run", "r1", "--task", "ok", "--strategy", "squash")
    tip = head(repo, TARGET)
    assert first["land"]["landed_commit"] == tip and git(repo, "rev-list", "--count", f"{tip}^@") == "1"
    before = db_snapshot(cli.db)
    again = cli.ok("orch", "land", "--run", "r1", "--task", "ok")
    assert again["noop"] is True and again["land"]["landed_commit"] == tip
    assert head(repo, TARGET) == tip and db_snapshot(cli.db) == before
    assert len(lrig.events("task_landed", "ok")) == 1


def test_target_checked_out_and_dirty_is_refused(lrig: LandRig, cli: Cli) -> None:
    repo = lrig.repo
    lrig.run(land_target="main")
    lrig.task("t")
    lrig.dispatch("t")
    lrig.work("t", {"t.txt": "t\n"})
    (repo / "README.md").write_text("the leader's own edit\n")
    _unchanged(cli, repo, "main", "--task", "t", msg="checked out in")
    assert (repo / "README.md").read_text() == "the leader's own edit\n"
    assert not (repo / "t.txt").exists()
    git(repo, "checkout", "--", "README.md")
    assert cli.ok("orch", "land", "--run", "r1", "--task", "t")["landed"] is True
    assert (repo / "t.txt").read_text() == "t\n"


# -- strategies, diff, --verify -------------------------------------------------------------------
def test_rebase_and_verify_on_the_landed_result(lrig: LandRig, cli: Cli) -> None:
    repo = lrig.repo
    lrig.run()
    lrig.task("p")
    lrig.task("q", required_checks=["alone"], check_cmds={"alone": "test ! -f p.txt"})
    lrig.task("r")
    for t in ("p", "q", "r"):
        lrig.dispatch(t)
    lrig.work("p", {"p.txt": "p\n"})
    lrig.work("q", {"q.txt": "q\n"})
    verify_run(lrig.store, run_id="r1", task_id="q")
    assert lrig.status("q") == "done"  # passes on its own branch
    d = cli.ok("orch", "diff", "--run", "r1", "--task", "q", "--name-only")
    assert d["files"] == ["q.txt"] and d["diff"].strip() == "q.txt"
    assert "+q" in cli.ok("orch", "diff", "--run", "r1", "--task", "q")["diff"]
    cli.ok("orch", "land", "--run", "r1", "--task", "p")
    before = head(repo, TARGET)
    # --verify runs `alone` on the landed result, where p.txt exists: refused, target unchanged
    err = cli.err("orch", "land", "--run", "r1", "--task", "q", "--verify", code="invalid_state", exit_code=30)
    assert "alone" in err["message"] and head(repo, TARGET) == before
    assert not [w for w in git(repo, "worktree", "list").splitlines() if "orch-land-verify" in w]
    # rebase replays r's commit on top of the moved target: linear history, r's author kept
    lrig.work("r", {"r.txt": "r\n"})
    out = cli.ok("orch", "land", "--run", "r1", "--task", "r", "--strategy", "rebase", "--verify")
    tip = head(repo, TARGET)
    assert out["land"]["landed_commit"] == tip and git(repo, "rev-parse", f"{tip}^") == before
    assert git(repo, "log", "-1", "--format=%s", tip) == "r: work"
    assert _ls(repo, TARGET) >= {"p.txt", "r.txt", "README.md"} and "q.txt" not in _ls(repo, TARGET)


# -- pull requests --------------------------------------------------------------------------------
def test_land_pr_pushes_to_a_bare_remote_and_records_the_pr(lrig: LandRig, cli: Cli, tmp_path: Path) -> None:
    """No forge is reachable from these machines, so `gh` is a stand-in script on PATH that records
    its arguments and prints a PR address the way `gh pr create` does. The push is real, into a
    local bare repository."""
    repo = lrig.repo
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "gh-args.json"
    (bindir / "gh").write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "print('https://github.com/example/repo/pull/42')\n")
    (bindir / "gh").chmod(0o755)
    lrig.run(land_target="main")
    lrig.task("feat", summary="add the feature")
    lrig.dispatch("feat")
    lrig.work("feat", {"feat.txt": "feature\n"})
    branch = lrig.attempt("feat")["branch_name"]
    env = git_env() | {"PATH": f"{bindir}:{os.environ['PATH']}"}
    p = subprocess.run([ORCH, "--db", cli.db, "--json", "land", "--run", "r1", "--task", "feat", "--pr"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(p.stdout)["data"]
    assert data["pr"] == {"number": 42, "url": "https://github.com/example/repo/pull/42"}
    assert git(bare, "rev-parse", f"refs/heads/{branch}") == head(repo, branch)
    args = json.loads(record.read_text())
    assert args[:2] == ["pr", "create"]
    assert args[args.index("--base") + 1] == "main" and args[args.index("--head") + 1] == branch
    assert args[args.index("--title") + 1] == "feat: task feat"
    assert "add the feature" in args[args.index("--body") + 1] and "feat.txt" in args[args.index("--body") + 1]
    st = cli.ok("orch", "status", "--run", "r1")
    assert st["land"]["tasks"]["feat"]["pr_number"] == 42 and st["land"]["tasks"]["feat"]["status"] == "clean"
    assert lrig.events("task_pr_opened", "feat")
    rep = json.loads(cli.ok("orch", "report", "--run", "r1", "--format", "json")["report"])["landing"]
    assert rep["prs"] == [{"task_id": "feat", "attempt_no": 1, "number": 42,
                           "url": "https://github.com/example/repo/pull/42", "landed": False}]
    record.unlink()
    p = subprocess.run([ORCH, "--db", cli.db, "--json", "land", "--run", "r1", "--task", "feat", "--pr"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert json.loads(p.stdout)["data"]["noop"] is True and not record.exists()
    assert git(bare, "rev-parse", "refs/heads/main") == head(repo, "main")  # merging stays the leader's choice


# -- kill -9 --------------------------------------------------------------------------------------
def _land_proc(cli: Cli, task: str, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([ORCH, "--db", cli.db, "--json", "land", "--run", "r1", "--task", task],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                            env=git_env() | env_extra, start_new_session=True)


def _settled(cli: Cli, lrig: LandRig, task: str, before: str) -> bool:
    """After recovery (status settles interrupted lands): landed with its commit recorded and the
    target at or past it, or not landed and the target exactly as before. Returns landed."""
    st = cli.ok("orch", "status", "--run", "r1")
    info = st["land"]["tasks"].get(task, {})
    tip = head(lrig.repo, TARGET)
    rows = lrig.store.all("SELECT status, landed_commit FROM lands WHERE run_id='r1' AND task_id=?", (task,))
    assert all(r["status"] != "landing" for r in rows), [dict(r) for r in rows]
    if info.get("status") == "landed":
        assert info["landed_commit"] and is_ancestor(lrig.repo, info["landed_commit"], tip)
        assert tip == info["landed_commit"]
        assert len(lrig.events("task_landed", task)) == 1
        return True
    assert tip == before, (task, tip, before)
    assert not lrig.events("task_landed", task)
    return False


def test_kill_9_mid_land_never_leaves_an_in_between_state(lrig: LandRig, cli: Cli, tmp_path: Path) -> None:
    lrig.run()
    tasks = [f"k{i}" for i in range(8)]
    for t in tasks:
        lrig.task(t)
        lrig.dispatch(t)
        lrig.work(t, {f"{t}.txt": f"{t}\n"})
    hook = tmp_path / "hook.txt"
    outcomes = {}
    # deterministic points: after the intent is written, and after the ref moved (before recording)
    for t, step in (("k0", "intent"), ("k1", "ref"), ("k2", "intent"), ("k3", "ref")):
        before = head(lrig.repo, TARGET)
        hook.write_text("")
        p = _land_proc(cli, t, {"ORCH_LAND_HOOK_FILE": str(hook), "ORCH_LAND_PAUSE": "5"})
        deadline = time.monotonic() + 30
        while step not in hook.read_text().split():
            assert p.poll() is None and time.monotonic() < deadline, hook.read_text()
            time.sleep(0.02)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        outcomes[t] = _settled(cli, lrig, t, before)
    assert outcomes == {"k0": False, "k1": True, "k2": False, "k3": True}
    # random points, no pauses
    rng = random.Random(14)
    for t in tasks[4:]:
        before = head(lrig.repo, TARGET)
        p = _land_proc(cli, t, {})
        time.sleep(rng.uniform(0.05, 0.6))
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        outcomes[t] = _settled(cli, lrig, t, before)
    # whatever was interrupted lands cleanly afterwards, and nothing is lost
    for t in tasks:
        cli.ok("orch", "land", "--run", "r1", "--task", t)
    tip = head(lrig.repo, TARGET)
    for t in tasks:
        assert is_ancestor(lrig.repo, head(lrig.repo, lrig.attempt(t)["branch_name"]), tip)
        assert len(lrig.events("task_landed", t)) == 1
    assert views.status(lrig.store, run_id="r1")["land"]["tasks"]["k0"]["status"] == "landed"


# -- the leader's commands: config, graph gate by hand, request changes ---------------------------
def test_gate_by_hand_through_the_cli(cli: Cli, repo: Path) -> None:
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "g")
    cli.err("orch", "run", "config", "--run", "r1", "--set", "land_target=bad..name", code="invalid_input",
            exit_code=30)
    cfg = cli.ok("orch", "run", "config", "--run", "r1", "--set", "land_target=integration")
    assert cfg["run"]["config"]["land_target"] == "integration"
    for t in ("a", "b"):
        cli.ok("orch", "task", "add", "--run", "r1", "--task", t, "--title", t, "--default-to", "w")
    cli.ok("orch", "dep", "add", "--run", "r1", "--task", "b", "--depends-on", "a")
    a = cli.ok("orch", "dispatch", "--run", "r1", "--task", "a", "--execution-mode", "code",
               "--repo-path", str(repo))["attempt"]
    assert head(repo, "integration") == a["base_commit"] == head(repo, "main")  # created at the first dispatch
    wt = Path(a["worktree_path"])
    cli.ok("inbox", "claim", "--agent", "w", "--thread", a["thread_id"])
    (wt / "a.txt").write_text("a\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "a: work")
    # a running attempt: a review is a control reply to its worker, not a new attempt
    rq = cli.ok("orch", "rework", "--run", "r1", "--task", "a", "--body", "also add a test")
    assert rq["replied"] is True
    shown = cli.ok("inbox", "show", "--thread", a["thread_id"])
    assert any(m["kind"] == "control" and "also add a test" in m["body"] for m in shown["messages"])
    cli.ok("inbox", "done", "--agent", "w", "--thread", a["thread_id"], "--summary", "ok")
    st = cli.ok("orch", "status", "--run", "r1")
    assert {t["task_id"]: t["status"] for t in st["tasks"]} == {"a": "done", "b": "planned"}  # waits for a to land
    cli.ok("orch", "land", "--run", "r1", "--task", "a", "--dry-run")
    assert head(repo, "integration") == head(repo, "main")  # a dry run moves nothing
    landed = cli.ok("orch", "land", "--run", "r1", "--task", "a")["land"]["landed_commit"]
    assert cli.ok("orch", "ready", "--run", "r1")["count"] == 1
    b = cli.ok("orch", "dispatch", "--run", "r1", "--task", "b", "--execution-mode", "code",
               "--repo-path", str(repo))["attempt"]
    assert b["base_commit"] == landed and (Path(b["worktree_path"]) / "a.txt").exists()
    assert head(repo, "main") != landed  # main (the leader's checkout) never moved
    out = cli.orch("land", "--run", "r1", "--task", "a", json_out=False)
    assert out.returncode == 0 and "already landed" in out.stdout
    d = cli.orch("diff", "--run", "r1", "--task", "a", "--stat", json_out=False)
    assert d.returncode == 0 and "a.txt" in d.stdout
    cli.err("orch", "land", "--run", "r1", "--task", "nope", code="not_found", exit_code=40)
    cli.err("orch", "diff", "--run", "r1", "--task", "a", "--attempt", "9", code="not_found", exit_code=40)
    cli.err("orch", "diff", "--run", "r1", "--task", "a", "--stat", "--name-only", code="invalid_input", exit_code=30)
    cli.err("orch", "land", "--run", "r1", "--task", "b", "--pr", "--dry-run", code="invalid_input", exit_code=30)
    cli.err("orch", "rework", "--run", "r1", "--task", "a", code="invalid_state", exit_code=30)  # landed


def test_dependency_added_later_respects_the_gate(lrig: LandRig) -> None:
    from orch_console.store import runs

    lrig.run(auto_land=True)
    for t in ("a", "b", "c"):
        lrig.task(t)
    lrig.dispatch("a")
    lrig.work("a", {"a.txt": "a\n"})
    runs.dep_add(lrig.store, run_id="r1", task_id="b", depends_on="a")
    assert lrig.status("b") == "planned"  # a is done but not landed: b waits
    out = land.auto_land(lrig.store, "r1")
    assert [o["task_id"] for o in out if o["landed"]] == ["a"]
    assert lrig.status("b") == "ready"
    runs.dep_add(lrig.store, run_id="r1", task_id="c", depends_on="a")
    assert lrig.status("c") == "ready"  # a has landed: c stays ready
    assert lrig.dispatch("b")["base_commit"] == head(lrig.repo, TARGET)


def test_demo_lands_in_graph_order_so_ui_sees_api(tmp_path: Path) -> None:
    """The issue's own repro: in `orch demo`, wave 2's `ui` worktree now holds wave 1's `api` files,
    and the run's target ends with every task's work."""
    root = tmp_path / "demo"
    p = subprocess.run([ORCH, "--json", "demo", "--headless", "--dir", str(root)], capture_output=True, text=True,
                       timeout=300, env=git_env())
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    repo = root / "repo"
    ui = next((root / "repo" / ".orch" / "worktrees" / "demo" / "ui").glob("a*"))
    assert (ui / "src" / "api").is_dir() and list((ui / "src" / "api").iterdir())
    tip = head(repo, "orch/demo/_land")
    latest: dict[str, int] = {}
    for branch in git(repo, "branch", "--list", "orch/demo/*/a*", "--format=%(refname:short)").split():
        task, attempt = branch.split("/")[2:4]
        latest[task] = max(latest.get(task, 0), int(attempt[1:]))
    assert len(latest) == 12
    for task, n in latest.items():  # a failed attempt is not landed; the one that succeeded is
        assert is_ancestor(repo, f"orch/demo/{task}/a{n}", tip), task
    assert git(repo, "status", "--porcelain") == ""


def test_two_landers_of_the_same_task_land_it_once(lrig: LandRig, cli: Cli) -> None:
    """Two `orch land` processes race on one task (and two others on a second task, which both
    move the same target): each task lands exactly once and both changes are in the target."""
    lrig.run()
    for t in ("u", "v"):
        lrig.task(t)
        lrig.dispatch(t)
        lrig.work(t, {f"{t}.txt": f"{t}\n"})
    procs = [subprocess.Popen([ORCH, "--db", cli.db, "--json", "land", "--run", "r1", "--task", t],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=git_env())
             for t in ("u", "u", "v", "v")]
    outs = [(p.wait(timeout=60), json.loads(p.stdout.read())) for p in procs]
    for code, doc in outs:  # a loser is told why (in progress) or sees it landed already: never an error 50
        assert code in (0, 30), doc
        assert doc["ok"] or "in progress" in doc["error"]["message"] or "changed" in doc["error"]["message"]
    for t in ("u", "v"):
        cli.ok("orch", "land", "--run", "r1", "--task", t)  # settles whatever a loser left: a no-op or the land
        assert len(lrig.events("task_landed", t)) == 1
        assert is_ancestor(lrig.repo, head(lrig.repo, lrig.attempt(t)["branch_name"]), head(lrig.repo, TARGET))
    assert git(lrig.repo, "rev-list", "--count", "--merges", TARGET) == "2"


def test_auto_land_verifies_and_does_not_retry_a_refusal_until_something_moves(lrig: LandRig) -> None:
    lrig.run(auto_land=True)
    lrig.task("p")
    lrig.task("q", required_checks=["alone"], check_cmds={"alone": "test ! -f p.txt"})
    for t in ("p", "q"):
        lrig.dispatch(t)
    lrig.work("q", {"q.txt": "q\n"})
    verify_run(lrig.store, run_id="r1", task_id="q")
    lrig.work("p", {"p.txt": "p\n"})
    out = land.auto_land(lrig.store, "r1", verify=True)
    assert [(o["task_id"], o["landed"]) for o in out] == [("p", True), ("q", False)]  # wave 0, creation order
    assert "alone" in out[1]["error"]
    assert land.auto_land(lrig.store, "r1", verify=True) == []  # nothing moved: not tried again
    tip = head(lrig.repo, TARGET)
    assert "q.txt" not in _ls(lrig.repo, tip)
    # once the target moves, it is tried again (and, without --verify, lands)
    lrig.task("s")
    lrig.dispatch("s")
    lrig.work("s", {"s.txt": "s\n"})
    assert [o["task_id"] for o in land.auto_land(lrig.store, "r1") if o["landed"]] == ["s"]
    assert [o["task_id"] for o in land.auto_land(lrig.store, "r1") if o["landed"]] == ["q"]  # the next pass
    assert {"p.txt", "q.txt", "s.txt"} <= _ls(lrig.repo, TARGET)
