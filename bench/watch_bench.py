"""Watcher figures (DESIGN.md section 10, issue 4):

1. Freshness: from a worker's commit (another process, through the store like `inbox update`)
   to the watcher having reconciled it, p50 / p95 / max. Target p95 <= 50 ms.
2. Idle CPU: `orch watch` with nothing happening, CPU time over a window as % of one core.
   Target < 2 %. Also measured with 5 live workers quietly blocked in tmux (liveness probes on).

    .venv/bin/python bench/watch_bench.py [--updates 300] [--idle-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRITER = r"""
import json, random, sys, time
from orch_console.store import Store, inbox
db, n = sys.argv[1], int(sys.argv[2])
threads = json.loads(sys.argv[3])
s = Store(db)
for t in threads:
    inbox.claim(s, agent="w", thread_id=t, lease_seconds=3600)
print("ready", flush=True)
sys.stdin.readline()
rng = random.Random(7)
for i in range(n):
    t = threads[i % len(threads)]
    out = inbox.update(s, agent="w", thread_id=t, status="in_progress", summary=f"step {i}")
    done = time.time()
    eid = s.scalar("SELECT event_id FROM events WHERE message_id=? AND event_type='thread_update'",
                   (out["message"]["message_id"],))
    print(json.dumps({"event_id": eid, "t": done}), flush=True)
    time.sleep(rng.uniform(0.01, 0.04))
"""


def setup(root: Path, tasks: int) -> tuple[str, list[str]]:
    from orch_console.store import Store, dispatch, runs

    db = str(root / "coord.db")
    with Store(db) as s:
        runs.run_init(s, run_id="bench", goal="watcher bench", config={"liveness_interval_seconds": 2.0})
        threads = []
        for i in range(tasks):
            runs.task_add(s, run_id="bench", task_id=f"t{i}", title=f"task {i}", default_to="w")
            threads.append(dispatch.dispatch(s, run_id="bench", task_id=f"t{i}",
                                             execution_mode="analysis")["thread"]["thread_id"])
    return db, threads


def freshness(updates: int) -> dict[str, float]:
    from orch_console.console.runtime.watcher import Watcher

    root = Path(tempfile.mkdtemp(prefix="orch-watch-bench-"))
    db, threads = setup(root, 8)
    seen: dict[int, float] = {}
    w = Watcher(db, "bench")

    def on_reconciled(cursor: int, t: float) -> None:
        seen.setdefault(cursor, t)

    w.on_reconciled = on_reconciled
    stop = threading.Event()
    th = threading.Thread(target=w.run_forever, args=(stop,), daemon=True)
    th.start()
    p = subprocess.Popen([sys.executable, "-c", WRITER, db, str(updates), json.dumps(threads)], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdin is not None
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    p.stdin.write("go\n")
    p.stdin.flush()
    commits = [json.loads(line) for line in p.stdout]
    p.wait()
    time.sleep(0.3)
    stop.set()
    th.join(timeout=5)
    w.close()
    cursors = sorted(seen)
    lat = []
    for c in commits:
        # the first reconcile whose cursor reached this event
        first = next((cur for cur in cursors if cur >= c["event_id"]), None)
        if first is not None:
            lat.append((seen[first] - c["t"]) * 1000)
    lat.sort()
    return {"samples": len(lat), "missed": len(commits) - len(lat), "p50_ms": statistics.median(lat),
            "p95_ms": lat[int(len(lat) * 0.95) - 1], "max_ms": lat[-1]}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(seconds: float, live_workers: int = 0) -> float:
    from orch_console.console.runtime import launcher
    from orch_console.store import Store, dispatch, runs

    root = Path(tempfile.mkdtemp(prefix="orch-watch-idle-"))
    db, _threads = setup(root, 0) if live_workers == 0 else (str(root / "coord.db"), [])
    if live_workers:
        with Store(db) as s:
            runs.run_init(s, run_id="bench", goal="idle with blocked workers",
                          config={"worker_env": {"ORCH_SIM_STEP_SECONDS": "0.05"}})
            for i in range(live_workers):
                runs.task_add(s, run_id="bench", task_id=f"t{i}", title=f"task {i}", default_to="sim",
                              spec="sim-script: block,done")
                dispatch.dispatch(s, run_id="bench", task_id=f"t{i}", execution_mode="analysis")
                launcher.launch(s, run_id="bench", task_id=f"t{i}", profile="sim-tmux")
            deadline = time.monotonic() + 30
            while s.scalar("SELECT count(*) FROM tasks WHERE status='blocked'") < live_workers:
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not block in time")
                time.sleep(0.1)
    orch = Path(sys.executable).parent / "orch"
    p = subprocess.Popen([str(orch), "--db", db, "watch", "--run", "bench"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        time.sleep(3.0)  # startup (imports, first full pass) is not idle time
        c0, t0 = _cpu_seconds(p.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = _cpu_seconds(p.pid), time.monotonic()
    finally:
        p.terminate()
        p.wait(timeout=10)
        if live_workers:
            launcher.kill_server(db)
    return (c1 - c0) / (t1 - t0) * 100


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    args = ap.parse_args()
    f = freshness(args.updates)
    print(f"freshness (worker commit -> watcher reconciled), {f['samples']} updates from another process: "
          f"p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms, max {f['max_ms']:.1f} ms"
          f"{', ' + str(f['missed']) + ' missed' if f['missed'] else ''}"
          f"  [target p95 <= 50 ms: {'PASS' if f['p95_ms'] <= 50 else 'FAIL'}]")
    idle = idle_cpu(args.idle_seconds)
    print(f"idle CPU of `orch watch` (nothing happening, {args.idle_seconds:g}s window): {idle:.2f}% of one core"
          f"  [target < 2%: {'PASS' if idle < 2 else 'FAIL'}]")
    busy = idle_cpu(args.idle_seconds, live_workers=5)
    print(f"CPU of `orch watch` with 5 tmux workers blocked on questions (liveness probes every 2 s): "
          f"{busy:.2f}% of one core")
    return 0 if f["p95_ms"] <= 50 and idle < 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
