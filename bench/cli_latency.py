"""Wall time of the two hot CLI calls on a 10,000-task run (DESIGN.md section 10, issue 2).

Builds one database holding a run of N tasks (default 10,000) the way the store would have made
it, then times real subprocess invocations of the installed console scripts:

    inbox --db X --json update --agent A --thread T --status in_progress --summary s
    orch  --db X --json status --run R
    orch  --db X status --run R            (readable Rich output)

plus `python -c pass` (interpreter start-up) and `python -c "import orch_console.console.cli.orch"` for
reference. Prints min / median / p90 / max over --repeat runs of each.

The database: the run is made with `store.runs.run_init`; the tasks, their dependencies and their
`task_added` / `task_ready` / `dep_added` events are bulk-inserted with the same rows and values
`task_add` and `dep_add` would write (wave 0 = the first --width tasks, ready; every later task
depends on the task --width before it, planned). Then --dispatch tasks are dispatched, claimed and
moved along through the real store functions (so attempts, threads, messages, folds and promoted
dependants exist), and --history extra progress messages per thread (with their `thread_update`
events) are bulk-inserted to give the threads a realistic history.

    .venv/bin/python bench/cli_latency.py
    .venv/bin/python bench/cli_latency.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from orch_console.store import dispatch as st_dispatch  # noqa: E402
from orch_console.store import inbox as st_inbox  # noqa: E402
from orch_console.store import runs as st_runs  # noqa: E402
from orch_console.store import views as st_views  # noqa: E402
from orch_console.store.db import Store  # noqa: E402
from orch_console.store.validate import now_ts  # noqa: E402

from store_bench import machine, print_machine  # noqa: E402

RUN_ID = "big"
LEADER = "leader"
TARGET_MS = 150.0


def build(db: str, n_tasks: int, width: int, n_dispatch: int, history: int) -> dict:
    s = Store(db, sync="normal")  # building only; the timed CLI calls use the default (FULL)
    try:
        st_runs.run_init(s, run_id=RUN_ID, goal="CLI latency benchmark: a 10,000-task run")
        t = time.monotonic()

        def bulk(conn) -> None:
            now = now_ts()
            task_rows, events, deps = [], [], []
            for i in range(n_tasks):
                tid = f"t{i:05d}"
                title = f"task {i}: implement part {i} of the plan"
                status = "ready" if i < width else "planned"
                task_rows.append((RUN_ID, tid, title, "", "worker", status, "[]", "[]", "{}", "", "", 0,
                                  now, now))
                events.append(("task_added", RUN_ID, tid, title, "", now))
                events.append(("task_ready", RUN_ID, tid, "no dependencies", "", now))
                if i >= width:
                    dep = f"t{i - width:05d}"
                    deps.append((RUN_ID, tid, dep))
                    events.append(("dep_added", RUN_ID, tid, f"{tid} depends on {dep}",
                                   json.dumps({"depends_on": dep}, separators=(",", ":")), now))
            conn.executemany(
                "INSERT INTO tasks (run_id, task_id, title, summary, default_to, status, paths_json,"
                " required_checks_json, check_cmds_json, acceptance_json, spec, priority, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", task_rows)
            conn.executemany("INSERT INTO deps (run_id, task_id, depends_on) VALUES (?,?,?)", deps)
            # bulk rows bypass dep add, which keeps tasks.wave: store the waves as it would
            from orch_console.store.waves import recompute_waves

            recompute_waves(conn, RUN_ID)
            conn.executemany(
                "INSERT INTO events (event_type, run_id, task_id, summary, payload_json, created_at)"
                " VALUES (?,?,?,?,?,?)", events)

        s.write(bulk)
        bulk_s = time.monotonic() - t

        # Real store operations on part of wave 0.
        t = time.monotonic()
        threads = []
        for i in range(n_dispatch):
            out = st_dispatch.dispatch(s, run_id=RUN_ID, task_id=f"t{i:05d}", execution_mode="analysis",
                                       to=f"agent{i % 8}")
            threads.append((out["attempt"]["thread_id"], f"agent{i % 8}"))
        for th, agent in threads:
            st_inbox.claim(s, agent=agent, thread_id=th)
            st_inbox.update(s, agent=agent, thread_id=th, status="in_progress", summary="started")
        n_done = n_dispatch // 3
        n_blocked = n_dispatch // 10
        for th, agent in threads[:n_done]:
            st_inbox.finish(s, agent=agent, thread_id=th, outcome="done", summary="finished")
        for th, agent in threads[n_done:n_done + n_blocked]:
            st_inbox.update(s, agent=agent, thread_id=th, status="blocked", summary="which API version?",
                            body="The spec names two versions; which one should I target?")
        real_s = time.monotonic() - t

        # Bulk history: progress messages and their thread_update events, as update would write.
        t = time.monotonic()

        def hist(conn) -> None:
            for th, agent in threads:
                for k in range(history):
                    now = now_ts()
                    m = conn.execute(
                        "INSERT INTO messages (thread_id, from_agent, to_agent, kind, summary, body,"
                        " payload_json, created_at) VALUES (?,?,?,?,?,?,?,?) RETURNING message_id",
                        (th, agent, LEADER, "progress", f"step {k}", "did some work\n" * 3, "", now)
                    ).fetchone()[0]
                    conn.execute(
                        "INSERT INTO events (event_type, run_id, task_id, thread_id, agent, message_id,"
                        " summary, payload_json, created_at) VALUES ('thread_update', ?,"
                        " (SELECT task_id FROM threads WHERE thread_id=?), ?,?,?,?,?,?)",
                        (RUN_ID, th, th, agent, m, f"step {k}", '{"status":"in_progress"}', now))

        if history:
            s.write(hist)
        hist_s = time.monotonic() - t
        lag = st_views.reconcile(s, run_id=RUN_ID)["updated_tasks"]
        s.checkpoint("TRUNCATE")
        counts = {r[0]: r[1] for r in s.all("SELECT status, count(*) FROM tasks WHERE run_id=? GROUP BY status",
                                           (RUN_ID,))}
        sizes = {t: s.scalar(f"SELECT count(*) FROM {t}") for t in ("tasks", "deps", "attempts", "threads",
                                                                     "messages", "events")}
        live = [(th, a) for th, a in threads[n_done + n_blocked:]]
        return {"counts": counts, "sizes": sizes, "live": live, "lagging_after_build": len(lag),
                "bulk_s": bulk_s, "real_s": real_s, "hist_s": hist_s,
                "db_bytes": os.path.getsize(db)}
    finally:
        s.close()


def timeit(cmd: list[str], repeat: int, env: dict, check_exit: int = 0) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        times.append((time.perf_counter() - t) * 1e3)
        if p.returncode != check_exit:
            raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-500:]}"
                             f"{p.stdout.decode()[-500:]}")
        size = len(p.stdout)
    return times, size


def stats(xs: list[float]) -> dict[str, float]:
    ys = sorted(xs)
    return {"min": ys[0], "median": statistics.median(ys), "p90": ys[min(len(ys) - 1, int(0.9 * len(ys)))],
            "max": ys[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=1_000, help="tasks per wave (wave 0 is ready)")
    ap.add_argument("--dispatch", type=int, default=300, help="tasks moved through the real store functions")
    ap.add_argument("--history", type=int, default=20, help="extra progress messages per dispatched thread")
    ap.add_argument("--repeat", type=int, default=20, help="timed invocations of each command")
    ap.add_argument("--quick", action="store_true", help="5 invocations each")
    ap.add_argument("--bin", default=str(Path(sys.executable).parent),
                    help="directory holding the orch and inbox scripts (default: this venv's bin)")
    ap.add_argument("--pyc", choices=("cached", "none", "both"), default="both",
                    help="time with a .pyc cache (as a normal install), without one, or both (default)")
    ap.add_argument("--keep", action="store_true", help="keep the database and print its path")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.repeat = 5
    m = machine()
    print_machine(m)
    tmp = tempfile.mkdtemp(prefix="orch-cli-bench-")
    db = os.path.join(tmp, "coord.db")
    try:
        t = time.monotonic()
        info = build(db, a.tasks, a.width, a.dispatch, a.history)
        print(f"database: {db} ({info['db_bytes'] / 1e6:.1f} MB) built in {time.monotonic() - t:.1f}s "
              f"(bulk tasks {info['bulk_s']:.1f}s, real dispatch/claim/update/done {info['real_s']:.1f}s, "
              f"history {info['hist_s']:.1f}s); lagging folds after build: {info['lagging_after_build']}")
        print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in info["sizes"].items()))
        print("  task status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(info["counts"].items())))
        base = {k: v for k, v in os.environ.items() if k not in ("ORCH_SYNC", "ORCH_DB")}
        # Bytecode: a normal install reads cached .pyc files. This sandbox exports
        # PYTHONDONTWRITEBYTECODE=1 and the package is installed editable, so without help every
        # call would recompile store/ and console/ from source; a private PYTHONPYCACHEPREFIX gives
        # the cached case without writing into the source tree.
        envs = {}
        if a.pyc in ("cached", "both"):
            envs["pyc cached"] = dict({k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"},
                                      PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"))
        if a.pyc in ("none", "both"):
            envs["no pyc cache"] = dict(base, PYTHONDONTWRITEBYTECODE="1")
        py = sys.executable
        inbox_bin, orch_bin = os.path.join(a.bin, "inbox"), os.path.join(a.bin, "orch")
        live = info["live"]
        results: dict[str, dict] = {}

        def update_cmds():
            i = 0
            while True:
                th, agent = live[i % len(live)]
                i += 1
                yield [inbox_bin, "--db", db, "--json", "update", "--agent", agent, "--thread", th,
                       "--status", "in_progress", "--summary", "s"]

        gen = update_cmds()
        cases = [
            ("python -c pass", lambda: [py, "-c", "pass"]),
            ("python -c 'import orch_console.console.cli.orch'", lambda: [py, "-c", "import orch_console.console.cli.orch"]),
            ("inbox --json update --status in_progress", lambda: next(gen)),
            ("orch --json status --run R", lambda: [orch_bin, "--db", db, "--json", "status", "--run", RUN_ID]),
            ("orch status --run R (text)", lambda: [orch_bin, "--db", db, "status", "--run", RUN_ID]),
        ]
        # Untimed warm-ups (page cache, .pyc), then interleaved rounds so a burst of load from other
        # users of this shared machine hits every command alike.
        sizes = {}
        for env in envs.values():
            for _ in range(2):
                for name, mk in cases:
                    _, sizes[name] = timeit(mk(), 1, env)
        times: dict[tuple[str, str], list[float]] = {(e, n): [] for e in envs for n, _ in cases}
        for _ in range(a.repeat):
            for ename, env in envs.items():
                for name, mk in cases:
                    ts, sizes[name] = timeit(mk(), 1, env)
                    times[(ename, name)] += ts
        print(f"wall time of {a.repeat} invocations each (ms), ORCH_SYNC unset (FULL), "
              f"load avg now {' '.join(f'{x:.2f}' for x in os.getloadavg())}:")
        for ename in envs:
            print(f"  [{ename}]")
            print(f"  {'command':44} {'min':>7} {'median':>7} {'p90':>7} {'max':>7}  {'stdout':>9}  target")
            for name, _ in cases:
                st = stats(times[(ename, name)])
                results[f"{ename}: {name}"] = dict(st, stdout_bytes=sizes[name])
                tgt = ""
                if name.startswith(("inbox", "orch")):
                    tgt = f"<= {TARGET_MS:.0f} ms median: {'MET' if st['median'] <= TARGET_MS else 'MISSED'}"
                print(f"  {name:44} {st['min']:7.1f} {st['median']:7.1f} {st['p90']:7.1f} {st['max']:7.1f}"
                      f"  {sizes[name]:>9,}  {tgt}")
        if a.json:
            print(json.dumps({"machine": m, "build": {k: v for k, v in info.items() if k != "live"},
                              "results": results}))
        if a.keep:
            print(f"kept {db}")
        missed = [n for n in results if n.startswith("pyc cached: ") and
                  n.split(": ", 1)[1].startswith(("inbox", "orch")) and results[n]["median"] > TARGET_MS]
        return 1 if missed else 0
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
