"""Console at scale (DESIGN.md section 10, issue 3 "Measured").

    .venv/bin/python bench/console_bench.py [--quick] [--repeat N] [--only 10k|50k] [--append]

Scenarios, each in its own process so RSS is the console's own:
  10k   a run of 10,000 tasks and 200,000 messages
  50k   a run of 50,000 tasks
For each: time to first paint (App constructed -> first frame with the board rendered), and for
10k also key-press latency (`down`/`up` through Pilot, so an upper bound) while a writer process
commits 1,000 inbox updates/s, freshness (writer's commit -> the console applied the change and
refreshed the screen, p50/p95), and peak RSS. Prints the figures and appends a "Console" section to
docs/PERFORMANCE.md.

The large databases are generated with bulk SQL in one transaction (store functions would take
minutes for 200,000 messages); the schema is the store's own, and the writer uses store.inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN = "bench"
WRITER_TASKS = 40       # tasks the writer keeps updating (all inside the first window)


def build(db: str, n_tasks: int, n_messages: int) -> None:
    from orch_console.store.db import Store
    from orch_console.store.validate import now_ts

    s = Store(db, sync="normal")
    now = now_ts()
    c = s.conn
    c.execute("BEGIN")
    c.execute("INSERT INTO runs (run_id, goal, status, created_at, updated_at) VALUES (?,?, 'active', ?, ?)",
              (RUN, "bench run", now, now))
    rng = random.Random(7)
    n_att = max(WRITER_TASKS, n_tasks // 2) if n_messages else WRITER_TASKS
    tasks = []
    for i in range(n_tasks):
        st = "running" if i < n_att else ("planned" if i >= 200 else "ready")
        tasks.append((RUN, f"t{i:05d}", f"task number {i} with a realistic title of some length", "w",
                      st, now, now))
    c.executemany("INSERT INTO tasks (run_id, task_id, title, default_to, status, created_at, updated_at)"
                  " VALUES (?,?,?,?,?,?,?)", tasks)
    # Dependencies: a layered graph, every task after the first 200 waits on one or two earlier ones.
    deps = set()
    for i in range(200, n_tasks):
        for _ in range(rng.choice((1, 2))):
            deps.add((RUN, f"t{i:05d}", f"t{rng.randrange(max(0, i - 400), i - 100):05d}"))
    c.executemany("INSERT INTO deps (run_id, task_id, depends_on) VALUES (?,?,?)", sorted(deps))
    from orch_console.store.waves import recompute_waves  # bulk rows bypass dep add, which keeps tasks.wave

    recompute_waves(c, RUN)
    threads = [(f"thr_b{i:010d}", RUN, f"t{i:05d}", "s", "leader", "w", "in_progress", "w", "2099-01-01T00:00:00.000000Z",
                now, now) for i in range(n_att)]
    c.executemany("INSERT INTO threads (thread_id, run_id, task_id, subject, created_by, assigned_to, status,"
                  " lease_owner, lease_expires_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", threads)
    c.executemany("INSERT INTO attempts (run_id, task_id, attempt_no, thread_id, assigned_to, execution_mode, status,"
                  " started_at, last_activity_at) VALUES (?,?,1,?, 'w', 'analysis', 'in_progress', ?, ?)",
                  [(RUN, t[2], t[0], now, now) for t in threads])
    if n_messages:
        per = n_messages // n_att
        c.executemany("INSERT INTO messages (thread_id, from_agent, to_agent, kind, summary, body, created_at)"
                      " VALUES (?, 'w', 'leader', 'progress', ?, ?, ?)",
                      ((threads[i % n_att][0], f"step {i}", "progress details " * 4, now)
                       for i in range(per * n_att)))
    c.executemany("INSERT INTO events (event_type, run_id, task_id, created_at) VALUES ('task_added', ?, ?, ?)",
                  [(RUN, t[1], now) for t in tasks])
    c.execute("COMMIT")
    s.close()


WRITER = r"""
import sys, time, os
sys.path.insert(0, sys.argv[3])
os.environ["ORCH_SYNC"] = "normal"
from orch_console.store.db import Store
from orch_console.store import inbox
s = Store(sys.argv[1])
rate, duration = 1000.0, float(sys.argv[2])
threads = [f"thr_b{i:010d}" for i in range(%d)]
t0 = time.monotonic(); n = 0
while time.monotonic() - t0 < duration:
    th = threads[n %% len(threads)]
    inbox.update(s, agent="w", thread_id=th, status="in_progress", summary=f"u{n}")
    print(th, time.monotonic(), flush=True)
    n += 1
    lag = t0 + n / rate - time.monotonic()
    if lag > 0:
        time.sleep(lag)
""" % WRITER_TASKS


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


async def scenario(db: str, with_writer: bool, seconds: float) -> dict:
    from orch_console.console.tui.app import OrchConsole

    t0 = time.perf_counter()
    app = OrchConsole(db, RUN, live=with_writer, engine=False)
    applied: list[tuple[float, set[str]]] = []
    app.board.on_applied = lambda ids: applied.append((time.monotonic(), ids))
    out: dict = {}
    async with app.run_test(size=(160, 50)):
        while app.board.first_paint_at is None:  # set by the app one refresh after the board was drawn
            await asyncio.sleep(0.005)
        out["first_paint_s"] = app.board.first_paint_at - t0
        t_paint = time.monotonic()
        out["rows_in_table"] = app.board.table.row_count
        if not with_writer:
            return out
        proc = subprocess.Popen([sys.executable, "-c", WRITER, db, str(seconds), str(ROOT)],
                                stdout=subprocess.PIPE, text=True)
        commits: list[tuple[str, float]] = []
        loop = asyncio.get_running_loop()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                th, t = line.split()
                commits.append((th, float(t)))

        reader = loop.run_in_executor(None, read)
        opened: list[float] = []

        async def watch_open() -> None:
            # When the console finished opening (its waves computed after the first paint): commits
            # before that are the start-up transient, reported apart from the steady state.
            while not (app.board.data.board is not None and app.board.data.board.waves_ready):
                await asyncio.sleep(0.005)
            opened.append(time.monotonic())

        opener = asyncio.ensure_future(watch_open())
        await asyncio.sleep(1.0)
        app.board.table.focus()
        app.board.table.move_cursor(row=5)
        lat = []
        keys = ["down", "up"]
        end = time.monotonic() + seconds - 2
        i = 0
        from textual import events

        while time.monotonic() < end:
            # A real key event through the app's key dispatch; done when the cursor moved and the
            # screen refreshed. (Pilot.press also waits for the whole app to go idle, which under a
            # continuous event stream measures the stream, not the key.)
            before = app.board.table.cursor_row
            painted = asyncio.Event()
            k0 = time.perf_counter()
            app.post_message(events.Key(keys[i % 2], None))
            while app.board.table.cursor_row == before:
                await asyncio.sleep(0.0005)
            app.call_after_refresh(painted.set)
            await painted.wait()
            lat.append(time.perf_counter() - k0)
            i += 1
            await asyncio.sleep(0.05)
        await reader
        proc.wait()
        await asyncio.sleep(0.3)
        task_of = {f"thr_b{i:010d}": f"t{i:05d}" for i in range(WRITER_TASKS)}
        await opener
        settled = opened[0] + 0.5
        fresh, steady = [], []
        for th, tc in commits:
            task = task_of[th]
            hit = next((ta for ta, ids in applied if ta >= tc and task in ids), None)
            if hit is not None:
                fresh.append(hit - tc)
                if tc >= settled:
                    steady.append(hit - tc)
        out.update(commits=len(commits), events_per_s=len(commits) / seconds, key_presses=len(lat),
                   key_p50_ms=pct(lat, 50) * 1000, key_p95_ms=pct(lat, 95) * 1000,
                   fresh_n=len(fresh), fresh_p50_ms=pct(fresh, 50) * 1000, fresh_p95_ms=pct(fresh, 95) * 1000,
                   steady_n=len(steady), steady_p50_ms=pct(steady, 50) * 1000, steady_p95_ms=pct(steady, 95) * 1000,
                   opened_after_paint_s=opened[0] - t_paint, refreshes=len(applied))
    return out


def cpu_times() -> list[int] | None:
    """The machine's CPU counters (/proc/stat: user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def cpu_share(before: list[int] | None, after: list[int] | None) -> dict[str, float]:
    """Busy and steal percentages of all CPUs between two readings (steal: time the hypervisor
    gave our virtual CPUs to someone else; a noisy host shows here)."""
    if not before or not after:
        return {}
    d = [b - a for a, b in zip(before, after)]
    total = sum(d) or 1
    return {"cpu_busy_pct": round(100 * (total - d[3] - d[4]) / total, 1), "cpu_steal_pct": round(100 * d[7] / total, 1)}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "coord.db")
        t = time.perf_counter()
        build(db, args.tasks, args.messages)
        built = time.perf_counter() - t
        c0 = cpu_times()
        out = asyncio.run(scenario(db, args.writer, args.seconds))
        out.update(cpu_share(c0, cpu_times()))
    out.update(tasks=args.tasks, messages=args.messages, build_s=built,
               rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--writer", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="a 5 s writer window instead of 10 s")
    ap.add_argument("--repeat", type=int, default=1, help="run each scenario N times (fresh process each)")
    ap.add_argument("--only", choices=("10k", "50k"), help="run one scenario")
    ap.add_argument("--append", action="store_true", help="append the section to docs/PERFORMANCE.md")
    ap.add_argument("--no-append", action="store_true", help="(the default; kept for old command lines)")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    seconds = 5.0 if args.quick else args.seconds
    runs = [("10k", "10k tasks, 200k messages, 1,000 events/s writer", ["--tasks", "10000", "--messages", "200000",
                                                                        "--writer", "--seconds", str(seconds)]),
            ("50k", "50k tasks", ["--tasks", "50000", "--messages", "0"])]
    runs = [(label, extra) for key, label, extra in runs if args.only in (None, key)] * max(1, args.repeat)
    results = []
    for label, extra in runs:
        p = subprocess.run([sys.executable, __file__, "--child", *extra], capture_output=True, text=True)
        if p.returncode != 0:
            print(p.stderr[-3000:], file=sys.stderr)
            raise SystemExit(1)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results.append((label, r))
        print(label, json.dumps(r, indent=1))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = ["", "## Console", "",
             f"`{Path(sys.executable).name} bench/console_bench.py` on {os.cpu_count()} cores "
             f"({time.strftime('%Y-%m-%d')}, load average {load} at the end); headless `App.run_test(size=(160, 50))`; "
             "each scenario in a fresh process.",
             "", "| scenario | first paint | target | key p50 / p95 | freshness p50 / p95 (all) | freshness p50 / p95 "
             "(steady) | RSS | CPU busy / steal |", "|---|---|---|---|---|---|---|---|"]
    for label, r in results:
        target = "≤ 0.5 s" if r["tasks"] <= 10_000 else "≤ 1.5 s"
        keys = f"{r['key_p50_ms']:.0f} / {r['key_p95_ms']:.0f} ms" if "key_p50_ms" in r else "–"
        fresh = f"{r['fresh_p50_ms']:.0f} / {r['fresh_p95_ms']:.0f} ms ({r['fresh_n']} commits)" if "fresh_p50_ms" in r else "–"
        steady = f"{r['steady_p50_ms']:.0f} / {r['steady_p95_ms']:.0f} ms ({r['steady_n']})" if "steady_p50_ms" in r else "–"
        lines.append(f"| {label} | {r['first_paint_s']:.2f} s | {target} | {keys} | {fresh} | {steady} | {r['rss_mb']:.0f} MB |"
                     f" {r.get('cpu_busy_pct', float('nan')):.0f}% / {r.get('cpu_steal_pct', float('nan')):.1f}% |")
    w = results[0][1]
    lines += ["", f"Writer: {w.get('commits', 0)} `inbox update` commits in the window ({w.get('events_per_s', 0):.0f}/s, "
              "each a message + event + fold); key latency is a real `down`/`up` key event posted to the app "
              "until the cursor moved and the screen refreshed. First paint counts from constructing the App, "
              "so it includes Textual's own start-up. Freshness is the writer's commit (CLOCK_MONOTONIC, "
              "shared across processes) to the refresh after the console applied that task's change; \"all\" counts "
              "every commit from the first paint on, \"steady\" those made 0.5 s after the console finished opening "
              f"(the console had its waves {w.get('opened_after_paint_s', 0):.2f} s after its first paint). "
              "CPU busy / steal: the share of all cores busy (the bench itself included) and stolen by the "
              "hypervisor during the scenario, from /proc/stat. "
              "Targets: key ≤ 100 ms, freshness p95 ≤ 50 ms, RSS ≤ 200 MB.", ""]
    text = "\n".join(lines)
    print(text)
    if args.append and not args.no_append:
        perf = ROOT / "docs" / "PERFORMANCE.md"
        with perf.open("a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
