"""Landing in graph order (issue 14, DESIGN.md section 10 "Landing").

A run of N tasks (default 200) in W waves (default 6), each task depending on one or two tasks of
the wave before, under a land target (the graph gate on). Wave by wave, every ready task is
dispatched in code mode (its worktree branches from the target's tip, which holds its parents'
landed work), a worker stand-in claims it, makes one small commit in its worktree (its own file)
and finishes; then the wave's tasks are landed, in graph order, with `store.land.land` (the same
call `orch land` and the autopilot make), each timed.

The baseline, in the same run and measured alternately with the lands (each land is followed by
its bare merge, so both see the same machine load): the same branches merged in the same order
with a bare `git merge --no-ff` in a checkout of the same base (what a leader does by hand). Printed:
seconds per land p50/p95 for both, the ratio (target <= 1.5x), and commits lost: every task's
branch tip must be an ancestor of the landed target, and the target's tree must equal the bare
merge's tree. (With --strategy squash or rebase, commits are rewritten by design, so "lost"
counts tasks whose change is missing from the target's content instead.)

    .venv/bin/python bench/land_bench.py              # 200 tasks, 6 waves
    .venv/bin/python bench/land_bench.py --tasks 60 --waves 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def git(repo: Path | str, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def plan(n: int, waves: int, seed: int) -> list[list[tuple[str, list[str]]]]:
    rng = random.Random(seed)
    sizes = [n // waves + (1 if i < n % waves else 0) for i in range(waves)]
    out: list[list[tuple[str, list[str]]]] = []
    for w, size in enumerate(sizes):
        layer = []
        for i in range(size):
            tid = f"w{w}t{i:03d}"
            deps = [] if w == 0 else rng.sample([t for t, _ in out[-1]], k=min(len(out[-1]), rng.choice((1, 2))))
            layer.append((tid, deps))
        out.append(layer)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--waves", type=int, default=6)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--strategy", default="merge", choices=["merge", "squash", "rebase"])
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line (bench/run_all.py)")
    a = ap.parse_args()
    os.environ.update(ENV)

    from orch_console.store import Store, dispatch, inbox, land, runs

    tmp = Path(tempfile.mkdtemp(prefix="land-bench-"))
    repo = tmp / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("land bench\n")
    for i in range(50):  # a repository with some substance, so a merge's checkout is not empty
        (repo / "lib" / f"m{i:02d}.py").parent.mkdir(exist_ok=True)
        (repo / "lib" / f"m{i:02d}.py").write_text("".join(f"def f{j}():\n    return {j}\n" for j in range(40)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    target = "integration"
    store = Store(str(tmp / "coord.db"))
    runs.run_init(store, run_id="bench", goal="land bench", config={"land_target": target, "repo_path": str(repo)})
    graph = plan(a.tasks, a.waves, a.seed)
    for layer in graph:
        for tid, deps in layer:
            runs.task_add(store, run_id="bench", task_id=tid, title=f"task {tid}", default_to="w",
                          paths=[f"src/{tid}.txt"])
            for d in deps:
                runs.dep_add(store, run_id="bench", task_id=tid, depends_on=d)

    # the baseline, measured alternately with the lands (same machine state): a bare
    # `git merge --no-ff` of the same branch, same order, in a checkout of the same base
    bare = tmp / "bare-merge"
    git(repo, "worktree", "add", "-q", "-b", "bare-merge", str(bare), base)
    merge_s: list[float] = []
    t_all = time.perf_counter()
    land_s: list[float] = []
    order: list[str] = []
    branches: dict[str, str] = {}
    missing_parents = 0
    for layer in graph:
        for tid, deps in layer:
            st = store.scalar("SELECT status FROM tasks WHERE run_id='bench' AND task_id=?", (tid,))
            assert st == "ready", (tid, st)
            att = dispatch.dispatch(store, run_id="bench", task_id=tid, execution_mode="code",
                                    repo_path=str(repo))["attempt"]
            wt = Path(att["worktree_path"])
            for d in deps:  # the dependant starts from its parents' landed work
                if not (wt / "src" / f"{d}.txt").exists():
                    missing_parents += 1
            inbox.claim(store, agent="w", thread_id=att["thread_id"])
            (wt / "src").mkdir(exist_ok=True)
            (wt / "src" / f"{tid}.txt").write_text(f"{tid}\n")
            git(wt, "add", "-A")
            git(wt, "commit", "-q", "-m", f"{tid}: work")
            inbox.finish(store, agent="w", thread_id=att["thread_id"], outcome="done", summary="done")
            branches[tid] = att["branch_name"]
        for tid, _ in layer:
            t0 = time.perf_counter()
            out = land.land(store, run_id="bench", task_id=tid, strategy=a.strategy)
            land_s.append(time.perf_counter() - t0)
            assert out["landed"] and not out["noop"], out
            order.append(tid)
            t0 = time.perf_counter()
            subprocess.run(["git", "-C", str(bare), "merge", "-q", "--no-ff", "--no-edit", branches[tid]], check=True,
                           capture_output=True, env={**os.environ, **ENV})
            merge_s.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all

    tip = git(repo, "rev-parse", target)
    if a.strategy == "merge":  # every task's commit is in the target's history
        lost = sum(1 for tid in order if subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor",
                                                         branches[tid], tip]).returncode != 0)
    else:  # squash and rebase rewrite commits: every task's change must be in the target's content
        lost = sum(1 for tid in order if git(repo, "show", f"{tip}:src/{tid}.txt") != tid)
    same_tree = git(repo, "rev-parse", f"{tip}^{{tree}}") == git(repo, "rev-parse", "bare-merge^{tree}")
    files = set(git(repo, "ls-tree", "-r", "--name-only", tip, "src").split())
    missing_files = sum(1 for tid in order if f"src/{tid}.txt" not in files)
    landed_rows = store.scalar("SELECT count(*) FROM lands WHERE run_id='bench' AND status='landed'")
    p50, p95 = pct(land_s, 50), pct(land_s, 95)
    m50, m95 = pct(merge_s, 50), pct(merge_s, 95)
    print(f"land bench: {len(order)} tasks in {len(graph)} waves, strategy {a.strategy}, "
          f"{sum(len(d) for layer in graph for _, d in layer)} dependencies ({total:.1f}s end to end incl. dispatch)")
    print(f"  orch land (store.land.land, plumbing + CAS + 2 write transactions): "
          f"p50 {p50 * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  mean {statistics.mean(land_s) * 1000:.1f} ms")
    print(f"  bare `git merge --no-ff` of the same branches:                      "
          f"p50 {m50 * 1000:.1f} ms  p95 {m95 * 1000:.1f} ms  mean {statistics.mean(merge_s) * 1000:.1f} ms")
    print(f"  ratio p50 {p50 / m50:.2f}x  p95 {p95 / m95:.2f}x  (target <= 1.5x)")
    print(f"  commits lost: {lost}; task files missing from the target: {missing_files}; "
          f"dependants missing a parent's file at dispatch: {missing_parents}; landed rows {landed_rows}/{len(order)}; "
          f"target tree == bare merge tree: {same_tree}")
    if a.json:
        import json

        print(json.dumps({"tasks": len(order), "waves": len(graph), "strategy": a.strategy,
                          "dependencies": sum(len(d) for layer in graph for _, d in layer),
                          "land_p50_ms": p50 * 1000, "land_p95_ms": p95 * 1000,
                          "land_mean_ms": statistics.mean(land_s) * 1000,
                          "merge_p50_ms": m50 * 1000, "merge_p95_ms": m95 * 1000,
                          "merge_mean_ms": statistics.mean(merge_s) * 1000, "ratio_p50": p50 / m50,
                          "ratio_p95": p95 / m95, "lost": lost, "missing_files": missing_files,
                          "missing_parents": missing_parents, "same_tree": same_tree, "s": total}))
    store.close()
    ok = lost == 0 and missing_files == 0 and missing_parents == 0 and same_tree and landed_rows == len(order)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
