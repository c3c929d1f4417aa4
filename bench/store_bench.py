"""Store throughput under contention (DESIGN.md section 10, issue 2 "Measured").

N worker processes race for the SAME pending threads of one SQLite file and run, through the
real store functions, the worker cycle on every thread they win:

    claim  ->  update in_progress  ->  renew  ->  done

Each worker fetches the newest pending threads (`store.inbox.fetch`, 32 of them, the same ones
every other worker sees), shuffles them and tries to claim them one after the other; after each
won cycle it goes on down the same list, and fetches again only when the list is used up (fetch is
discovery, not part of the measured cycle). A loser gets `lease_conflict` / `invalid_state` and
moves on (counted as "lost races", not errors). Processes start together on a multiprocessing
Event.

Printed per configuration: committed write transactions per second, latency of every store write
call (p50/p99/max), errors surfaced (anything but a lost claim race), and duplicate claims,
verified afterwards from the database (each thread: exactly one `thread_claim` event, one
`thread_result` event, and the agent that claimed it is the one that finished it; each worker's
won set disjoint from every other's).

FULL is the store's default durability: the write call returns only after the WAL holding its
commit was flushed (fdatasync), which the store does right after COMMIT, outside the write lock
(store/db.py); NORMAL skips that flush. Latency includes the flush.

Threads are made beforehand either by dispatching tasks of a run (`--source dispatch`, the
default: every claim/update/done is folded into its attempt, task and run in the same
transaction, as in real use) or as bare inbox threads (`--source send`).

`--ceiling` also runs the same row changes as bare SQL statements (no validation, no guards, no
fold decisions, no reads, no claim race: each worker takes its own threads), through the same write
turn and BEGIN IMMEDIATE at NORMAL. It is not a store mode: it measures how many of these
transactions SQLite itself commits on this machine, the ceiling for any store logic on top.

    .venv/bin/python bench/store_bench.py                     # 16 procs, FULL and NORMAL
    .venv/bin/python bench/store_bench.py --procs 100 --sync normal
    .venv/bin/python bench/store_bench.py --quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orch_console.store import dispatch as st_dispatch  # noqa: E402
from orch_console.store import inbox as st_inbox  # noqa: E402
from orch_console.store import runs as st_runs  # noqa: E402
from orch_console.store.db import Store  # noqa: E402
from orch_console.store.errors import InvalidState, LeaseConflict, NoMatchingWork  # noqa: E402

POOL_AGENT = "pool"
RUN_ID = "bench"
FETCH_LIMIT = 32


# -- machine ---------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": str(os.cpu_count()), "cpu": cpu or platform.processor(), "ram": mem,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "os": f"{platform.system()} {platform.release()}",
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def print_machine(m: dict[str, str]) -> None:
    print(f"machine: {m['cores']} cores ({m['cpu']}), RAM {m['ram']}, Python {m['python']}, "
          f"SQLite {m['sqlite']}, {m['os']}, load avg at start {m['load']}")


# -- setup -----------------------------------------------------------------------------------
def build(db: str, n_threads: int, source: str) -> list[str]:
    """Create n_threads pending threads through the real store functions; returns their ids."""
    s = Store(db, sync="normal")  # setup speed only; each worker opens with the sync under test
    try:
        ids = []
        if source == "send":
            for i in range(n_threads):
                out = st_inbox.send(s, from_agent="leader", to_agent=POOL_AGENT, subject=f"job {i}",
                                    summary=f"job {i}", body="do the thing")
                ids.append(out["thread"]["thread_id"])
        else:
            st_runs.run_init(s, run_id=RUN_ID, goal="store benchmark")
            for i in range(n_threads):
                st_runs.task_add(s, run_id=RUN_ID, task_id=f"t{i:05d}", title=f"task {i}",
                                 default_to=POOL_AGENT)
            for i in range(n_threads):
                out = st_dispatch.dispatch(s, run_id=RUN_ID, task_id=f"t{i:05d}",
                                           execution_mode="analysis", to=POOL_AGENT)
                ids.append(out["attempt"]["thread_id"])
        s.checkpoint("TRUNCATE")
        return ids
    finally:
        s.close()


# -- worker ----------------------------------------------------------------------------------
def worker(idx: int, db: str, sync: str, ready: mp.Queue, start: mp.Event, results: mp.Queue) -> None:
    agent = f"w{idx:03d}"
    rnd = random.Random(idx * 7919 + os.getpid())
    lat: list[float] = []          # seconds, every successful (committed) store write call
    lost_lat: list[float] = []     # claim calls that lost the race (rolled back, not committed)
    committed = lost = 0
    errors: dict[str, int] = {}
    samples: list[str] = []
    won: list[str] = []

    def error(where: str, exc: BaseException) -> None:
        key = f"{where}:{type(exc).__name__}:{getattr(exc, 'code', '')}"
        errors[key] = errors.get(key, 0) + 1
        if len(samples) < 5:
            samples.append(f"{agent} {where}: {type(exc).__name__}: {exc}")

    def timed(fn, **kw):
        t0 = time.perf_counter()
        out = fn(store, **kw)
        lat.append(time.perf_counter() - t0)
        return out

    try:
        store = Store(db, sync=sync)
    except BaseException as exc:  # noqa: BLE001
        error("open", exc)
        ready.put(idx)
        results.put({"idx": idx, "committed": 0, "lost": 0, "lat": [], "lost_lat": [], "errors": errors,
                     "samples": samples, "won": [], "t0": 0.0, "t1": 0.0})
        return
    ready.put(idx)
    start.wait()
    t0 = time.monotonic()
    idle_rounds = 0
    ids: list[str] = []
    while True:
        if not ids:  # discovery: the newest pending threads, which every other worker sees too
            try:
                pending = st_inbox.fetch(store, agent=POOL_AGENT, statuses=["pending"],
                                         limit=FETCH_LIMIT)["threads"]
            except NoMatchingWork:
                break
            except Exception as exc:  # noqa: BLE001
                error("fetch", exc)
                idle_rounds += 1
                if idle_rounds > 50:
                    break
                continue
            ids = [t["thread_id"] for t in pending]
            rnd.shuffle(ids)
        got = None
        while ids:
            tid = ids.pop()
            t1 = time.perf_counter()
            try:
                out = st_inbox.claim(store, agent=agent, thread_id=tid)
            except (LeaseConflict, InvalidState):
                lost_lat.append(time.perf_counter() - t1)
                lost += 1
                continue
            except Exception as exc:  # noqa: BLE001
                error("claim", exc)
                continue
            lat.append(time.perf_counter() - t1)
            committed += 1
            if out.get("already_claimed"):
                error("claim", RuntimeError(f"{tid} already claimed by {agent} (a second win)"))
            got = tid
            break
        if got is None:
            continue
        won.append(got)
        for step, fn, kw in (
                ("update", st_inbox.update, dict(agent=agent, thread_id=got, status="in_progress",
                                                 summary="working on it")),
                ("renew", st_inbox.renew, dict(agent=agent, thread_id=got, lease_seconds=900)),
                ("done", st_inbox.finish, dict(agent=agent, thread_id=got, outcome="done",
                                               summary="finished", payload_json='{"ok":true}'))):
            try:
                timed(fn, **kw)
                committed += 1
            except Exception as exc:  # noqa: BLE001
                error(step, exc)
    t1 = time.monotonic()
    store.close()
    results.put({"idx": idx, "committed": committed, "lost": lost, "lat": lat, "lost_lat": lost_lat,
                 "errors": errors, "samples": samples, "won": won, "t0": t0, "t1": t1})


def run_workers(target, procs: int, args: tuple) -> list[dict]:
    """Fork procs workers target(i, *args, ready, start, results), start them together once all
    are ready, and collect one result dict from each."""
    ctx = mp.get_context("fork")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=target, args=(i, *args, ready, start, results), daemon=True)
          for i in range(procs)]
    for p in ps:
        p.start()
    for _ in range(procs):
        ready.get(timeout=120)
    start.set()
    got = [results.get(timeout=900) for _ in range(procs)]
    for p in ps:
        p.join(timeout=30)
    return got


# -- ceiling: the same row changes as bare SQL -----------------------------------------------
def bare_cycle(tid: str, task_id: str, agent: str, now: str) -> tuple:
    """claim, update, renew, done: the rows each store call changes, as bare statements."""
    ev = ("INSERT INTO events (event_type, run_id, task_id, thread_id, agent, summary, created_at)"
          " VALUES (?,?,?,?,?,?,?)")
    msg = ("INSERT INTO messages (thread_id, from_agent, to_agent, kind, summary, payload_json, created_at)"
           " VALUES (?,?,?,?,?,?,?)")

    def claim(c: sqlite3.Connection) -> None:
        c.execute("UPDATE threads SET status='claimed', assigned_to=?, lease_owner=?, lease_expires_at=?,"
                  " updated_at=? WHERE thread_id=?", (agent, agent, now, now, tid))
        c.execute(msg, (tid, agent, "leader", "event", "thread claimed", '{"lease_seconds":900}', now))
        c.execute(ev, ("thread_claim", RUN_ID, task_id, tid, agent, f"claimed by {agent}", now))
        c.execute("UPDATE attempts SET status='claimed', last_activity_at=? WHERE thread_id=?", (now, tid))
        c.execute("UPDATE tasks SET status='running', updated_at=? WHERE run_id=? AND task_id=?", (now, RUN_ID, task_id))
        c.execute(ev, ("task_running", RUN_ID, task_id, tid, agent, f"claimed by {agent}", now))

    def update(c: sqlite3.Connection) -> None:
        c.execute("UPDATE threads SET status='in_progress', updated_at=? WHERE thread_id=?", (now, tid))
        c.execute(msg, (tid, agent, "leader", "progress", "working on it", "", now))
        c.execute(ev, ("thread_update", RUN_ID, task_id, tid, agent, "working on it", now))
        c.execute("UPDATE attempts SET status='in_progress', last_activity_at=? WHERE thread_id=?", (now, tid))

    def renew(c: sqlite3.Connection) -> None:
        c.execute("UPDATE threads SET lease_expires_at=?, updated_at=? WHERE thread_id=?", (now, now, tid))
        c.execute("UPDATE attempts SET last_activity_at=? WHERE thread_id=?", (now, tid))
        c.execute(msg, (tid, agent, "leader", "event", "lease renewed", '{"lease_seconds":900}', now))
        c.execute(ev, ("lease_renewed", RUN_ID, task_id, tid, agent, "lease renewed for 900s", now))

    def done(c: sqlite3.Connection) -> None:
        c.execute("UPDATE threads SET status='done', lease_owner='', lease_expires_at='', updated_at=?"
                  " WHERE thread_id=?", (now, tid))
        c.execute(msg, (tid, agent, "leader", "result", "finished", '{"ok":true}', now))
        c.execute(ev, ("thread_result", RUN_ID, task_id, tid, agent, "finished", now))
        c.execute("UPDATE attempts SET status='done', end_reason='succeeded', ended_at=?, last_activity_at=?"
                  " WHERE thread_id=?", (now, now, tid))
        c.execute("UPDATE tasks SET status='done', updated_at=? WHERE run_id=? AND task_id=?", (now, RUN_ID, task_id))
        c.execute(ev, ("task_done", RUN_ID, task_id, tid, agent, "finished", now))

    return claim, update, renew, done


def bare_worker(idx: int, db: str, procs: int, ready: mp.Queue, start: mp.Event, results: mp.Queue) -> None:
    from orch_console.store.validate import now_ts

    store = Store(db, sync="normal")
    mine = [tuple(r) for r in store.all("SELECT thread_id, task_id FROM attempts WHERE run_id=? ORDER BY"
                                        " thread_id", (RUN_ID,))][idx::procs]
    ready.put(idx)
    start.wait()
    t0 = time.monotonic()
    committed = 0
    for tid, task_id in mine:
        for fn in bare_cycle(tid, task_id, f"w{idx:03d}", now_ts()):
            store.write(fn)
            committed += 1
    t1 = time.monotonic()
    store.close()
    results.put({"committed": committed, "t0": t0, "t1": t1})


def run_ceiling(procs: int, cycles: int, workdir: str | None) -> dict:
    tmp = tempfile.mkdtemp(prefix="orch-bench-", dir=workdir)
    db = os.path.join(tmp, "bench.db")
    try:
        build(db, procs * cycles, "dispatch")
        got = run_workers(bare_worker, procs, (db, procs))
        wall = max(g["t1"] for g in got) - min(g["t0"] for g in got)
        committed = sum(g["committed"] for g in got)
        return {"procs": procs, "cycles": cycles, "sync": "normal", "source": "bare-sql",
                "committed": committed, "wall_s": wall, "tx_s": committed / wall}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- verification ----------------------------------------------------------------------------
def verify(db: str, ids: list[str], won: dict[str, list[str]], source: str) -> dict[str, int]:
    s = Store(db, sync="normal")
    try:
        claims = {r[0]: r[1] for r in s.all(
            "SELECT thread_id, count(*) FROM events WHERE event_type='thread_claim' GROUP BY thread_id")}
        results = {r[0]: r[1] for r in s.all(
            "SELECT thread_id, count(*) FROM events WHERE event_type='thread_result' GROUP BY thread_id")}
        claimers = {}
        for r in s.all("SELECT thread_id, agent FROM events WHERE event_type='thread_claim'"):
            claimers.setdefault(r[0], set()).add(r[1])
        finishers = {}
        for r in s.all("SELECT thread_id, from_agent FROM messages WHERE kind='result'"):
            finishers.setdefault(r[0], set()).add(r[1])
        status = {r[0]: r[1] for r in s.all("SELECT thread_id, status FROM threads")}
        owner_of: dict[str, list[str]] = {}
        for agent, tids in won.items():
            for t in tids:
                owner_of.setdefault(t, []).append(agent)
        dup = 0
        not_done = 0
        for t in ids:
            if claims.get(t, 0) > 1 or results.get(t, 0) > 1 or len(owner_of.get(t, [])) > 1 \
                    or len(claimers.get(t, ())) > 1 or len(finishers.get(t, ())) > 1 \
                    or (claimers.get(t) and finishers.get(t) and claimers[t] != finishers[t]):
                dup += 1
            if status.get(t) != "done" or claims.get(t, 0) != 1 or results.get(t, 0) != 1:
                not_done += 1
        out = {"duplicates": dup, "not_done": not_done}
        if source == "dispatch":
            out["tasks_not_done"] = int(s.scalar(
                "SELECT count(*) FROM tasks WHERE run_id=? AND status<>'done'", (RUN_ID,)))
            out["attempts_not_done"] = int(s.scalar(
                "SELECT count(*) FROM attempts WHERE run_id=? AND (status<>'done' OR end_reason<>'succeeded')",
                (RUN_ID,)))
            out["run_status_done"] = int(s.scalar("SELECT status='done' FROM runs WHERE run_id=?", (RUN_ID,)))
        out["integrity_ok"] = int(s.scalar("PRAGMA integrity_check") == "ok")
        return out
    finally:
        s.close()


# -- one configuration -----------------------------------------------------------------------
def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def run_one(procs: int, cycles: int, sync: str, source: str, workdir: str | None) -> dict:
    tmp = tempfile.mkdtemp(prefix="orch-bench-", dir=workdir)
    db = os.path.join(tmp, "bench.db")
    try:
        n_threads = procs * cycles
        t = time.monotonic()
        ids = build(db, n_threads, source)
        setup_s = time.monotonic() - t
        got = run_workers(worker, procs, (db, sync))
        wall = max(g["t1"] for g in got) - min(g["t0"] for g in got if g["t0"])
        lat = [x for g in got for x in g["lat"]]
        lost_lat = [x for g in got for x in g["lost_lat"]]
        committed = sum(g["committed"] for g in got)
        errors: dict[str, int] = {}
        for g in got:
            for k, v in g["errors"].items():
                errors[k] = errors.get(k, 0) + v
        samples = [s for g in got for s in g["samples"]][:5]
        won = {f"w{g['idx']:03d}": g["won"] for g in got}
        checks = verify(db, ids, won, source)
        wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
        per_worker = sorted(len(g["won"]) for g in got)
        return {"procs": procs, "cycles": cycles, "threads": n_threads, "sync": sync, "source": source,
                "setup_s": setup_s, "wall_s": wall, "committed": committed, "tx_s": committed / wall,
                "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "max_ms": max(lat) * 1e3,
                "lost": sum(g["lost"] for g in got), "lost_p50_ms": pct(lost_lat, 50) * 1e3,
                "errors": sum(errors.values()), "error_kinds": errors, "error_samples": samples,
                "won_min": per_worker[0], "won_max": per_worker[-1], "wal_bytes": wal, **checks}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_run(runs: list[dict]) -> dict:
    """The run with the median tx/s; with several runs, every run's tx/s beside it (tx_s_all)."""
    med = sorted(runs, key=lambda r: r["tx_s"])[len(runs) // 2]
    return dict(med, tx_s_all=[round(r["tx_s"]) for r in runs]) if len(runs) > 1 else med


def report(r: dict) -> None:
    print(f"  sync={r['sync'].upper():6} procs={r['procs']:<3} threads={r['threads']} ({r['source']}) "
          f"wall={r['wall_s']:.2f}s committed={r['committed']}  ->  {r['tx_s']:,.0f} tx/s")
    print(f"    commit latency p50={r['p50_ms']:.2f} ms  p99={r['p99_ms']:.2f} ms  max={r['max_ms']:.1f} ms"
          f"   | lost races={r['lost']} (p50 {r['lost_p50_ms']:.2f} ms)")
    extra = "".join(f" {k}={r[k]}" for k in ("tasks_not_done", "attempts_not_done", "run_status_done")
                    if k in r)
    print(f"    errors surfaced={r['errors']}  duplicate claims={r['duplicates']}  threads not done="
          f"{r['not_done']}{extra} integrity_ok={r['integrity_ok']}  won per worker {r['won_min']}.."
          f"{r['won_max']}  (setup {r['setup_s']:.1f}s)")
    for k, v in r["error_kinds"].items():
        print(f"      error {k}: {v}")
    for s in r["error_samples"]:
        print(f"      e.g. {s}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=16, help="worker processes (default 16)")
    ap.add_argument("--cycles", type=int, default=150,
                    help="threads per worker to create (total threads = procs x cycles; default 150)")
    ap.add_argument("--sync", choices=("full", "normal", "both"), default="both")
    ap.add_argument("--source", choices=("dispatch", "send"), default="dispatch",
                    help="make the threads by dispatching run tasks (default) or by inbox send")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration; the median is reported")
    ap.add_argument("--quick", action="store_true", help="small run (30 cycles per worker)")
    ap.add_argument("--dir", default=None, help="directory for the temp database (default: system temp)")
    ap.add_argument("--ceiling", action="store_true",
                    help="also run the same row changes as bare SQL at NORMAL (what SQLite alone commits here)")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    a = ap.parse_args(argv)
    if a.quick:
        a.cycles = min(a.cycles, 30)
    syncs = ("full", "normal") if a.sync == "both" else (a.sync,)
    print_machine(machine())
    print(f"store_bench: {a.procs} processes, {a.cycles} threads per process, cycle = claim + update "
          f"in_progress + renew + done (4 committed tx per thread), source={a.source}, "
          f"repeat={a.repeat}, db dir={a.dir or tempfile.gettempdir()}")
    all_results = []
    for sync in syncs:
        runs = []
        for i in range(a.repeat):
            r = run_one(a.procs, a.cycles, sync, a.source, a.dir)
            runs.append(r)
            if a.repeat > 1:
                print(f"  run {i + 1}/{a.repeat}: {r['tx_s']:,.0f} tx/s p99 {r['p99_ms']:.1f} ms "
                      f"max {r['max_ms']:.0f} ms errors {r['errors']} dup {r['duplicates']} "
                      f"(load avg {os.getloadavg()[0]:.2f})")
        med = median_run(runs)
        if a.repeat > 1:
            med = dict(med, errors=sum(r["errors"] for r in runs),
                       duplicates=sum(r["duplicates"] for r in runs))
            print(f"  median of {a.repeat} (errors and duplicates summed over all runs):")
        report(med)
        all_results.append(med)
    if a.ceiling:
        ceil = [run_ceiling(a.procs, a.cycles, a.dir) for _ in range(a.repeat)]
        c = median_run(ceil)
        print(f"  ceiling (bare SQL, NORMAL) procs={c['procs']:<3} committed={c['committed']}  ->  "
              f"{c['tx_s']:,.0f} tx/s" + (f"  (runs: {', '.join(format(v, ',') for v in c['tx_s_all'])})"
                                          if "tx_s_all" in c else ""))
        all_results.append(c)
    target = {"full": 2000, "normal": 5000}
    ok = True
    for r in all_results:
        if r["source"] == "bare-sql":
            continue
        need = target[r["sync"]] if r["procs"] == 16 else None
        good = r["errors"] == 0 and r["duplicates"] == 0 and r["not_done"] == 0 and \
            (need is None or r["tx_s"] >= need)
        ok &= good
        print(f"  target {r['sync'].upper()} procs={r['procs']}: "
              f"{'>= ' + format(need, ',') + ' tx/s, ' if need else ''}0 errors, 0 duplicates -> "
              f"{'MET' if good else 'MISSED'}")
    if a.json:
        print(json.dumps([{k: v for k, v in r.items() if k != 'error_samples'} for r in all_results]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
