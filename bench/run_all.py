"""Run every benchmark in bench/ and rewrite docs/PERFORMANCE.md from their output.

    .venv/bin/python bench/run_all.py            # the full figures (several minutes)
    .venv/bin/python bench/run_all.py --quick    # smaller runs of each (about 3 minutes)
    .venv/bin/python bench/run_all.py --no-write # print the document instead of writing it

Benchmarks (each a separate process, one after the other, so they do not compete for the cores):
  store_bench.py   contended worker writes through the store, FULL and NORMAL (--json)
  cli_latency.py   `inbox update` and `orch status` wall time on a 10,000-task run (--json)
  console_bench.py first paint, key latency, freshness and RSS of the console (its --child JSON)
  watch_bench.py   watcher freshness and idle CPU (its printed figures)
  land_bench.py    landing in graph order against a bare git merge (--json)

Every figure in the document comes from this run; the targets (DESIGN.md section 10) stand beside
them. Benchmarks are not CI gates: a missed target is reported, the exit status is 0 unless a
benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
DOC = ROOT / "docs" / "PERFORMANCE.md"


def run(args: list[str], timeout: float) -> tuple[str, float]:
    t = time.monotonic()
    print(f"$ {' '.join(Path(a).name if a.endswith('.py') or a == sys.executable else a for a in args)}",
          flush=True)
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    took = time.monotonic() - t
    if p.returncode not in (0, 1):  # 1 = a target missed; anything else is a crash
        raise RuntimeError(f"{args[0]} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    print(p.stdout[-1500:], flush=True)
    return p.stdout, took


def last_json(out: str) -> Any:
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def store_bench(quick: bool) -> dict[str, Any]:
    args = [str(BENCH / "store_bench.py"), "--json", "--repeat", "3", "--ceiling"] + (["--quick"] if quick else [])
    out, took = run(args, 3600)
    runs = last_json(out)
    res = {"cmd": "bench/store_bench.py --repeat 3 --ceiling" + (" --quick" if quick else ""), "s": took,
           "runs": [x for x in runs if x["source"] != "bare-sql"],
           "ceiling": next(x for x in runs if x["source"] == "bare-sql")}
    many = [str(BENCH / "store_bench.py"), "--json", "--procs", "100", "--cycles", "6" if quick else "30",
            "--sync", "full"]
    out, took = run(many, 3600)
    res["many"] = last_json(out)
    res["many_cmd"] = f"bench/store_bench.py --procs 100 --cycles {'6' if quick else '30'} --sync full"
    return res


def cli_latency(quick: bool) -> dict[str, Any]:
    args = [str(BENCH / "cli_latency.py"), "--json", "--pyc", "cached"] + (["--quick"] if quick else [])
    out, took = run(args, 3600)
    return {"cmd": "bench/cli_latency.py --pyc cached" + (" --quick" if quick else ""), "doc": last_json(out),
            "s": took}


def console_bench(quick: bool) -> dict[str, Any]:
    secs = "4" if quick else "10"
    out = {}
    for label, extra in (("10k", ["--tasks", "10000", "--messages", "200000", "--writer", "--seconds", secs]),
                         ("50k", ["--tasks", "50000", "--messages", "0"])):
        text, took = run([str(BENCH / "console_bench.py"), "--child", *extra], 3600)
        out[label] = last_json(text) | {"s": took}
    out["cmd"] = f"bench/console_bench.py (its two scenarios, writer window {secs} s)"
    return out


def watch_bench(quick: bool) -> dict[str, Any]:
    updates, idle = ("100", "4") if quick else ("300", "10")
    text, took = run([str(BENCH / "watch_bench.py"), "--updates", updates, "--idle-seconds", idle], 3600)
    f = re.search(r"(\d+) updates from another process: p50 ([\d.]+) ms, p95 ([\d.]+) ms, max ([\d.]+) ms", text)
    i = re.search(r"idle CPU of `orch watch`.*?: ([\d.]+)% of one core", text)
    b = re.search(r"5 tmux workers blocked.*?: ([\d.]+)% of one core", text)
    if not (f and i and b):
        raise RuntimeError(f"watch_bench output not understood:\n{text}")
    return {"cmd": f"bench/watch_bench.py --updates {updates} --idle-seconds {idle}", "n": int(f.group(1)),
            "p50": float(f.group(2)), "p95": float(f.group(3)), "max": float(f.group(4)),
            "idle": float(i.group(1)), "busy": float(b.group(1)), "s": took}


def land_bench(quick: bool) -> dict[str, Any]:
    args = [str(BENCH / "land_bench.py"), "--json"] + (["--tasks", "60", "--waves", "3"] if quick else [])
    text, took = run(args, 3600)
    out = last_json(text)
    out["cmd"] = "bench/land_bench.py" + (" --tasks 60 --waves 3" if quick else "")
    out["wall"] = took
    return out


def met(ok: bool | None) -> str:
    return "" if ok is None else "**met**" if ok else "**missed**"


def render(m: dict[str, str], r: dict[str, Any], quick: bool, started: str, load_end: str) -> str:
    st, cl, co, wa = r["store"], r["cli"], r["console"], r["watch"]
    by_sync = {x["sync"]: x for x in st["runs"]}
    many = st["many"][0]
    res = cl["doc"]["results"]

    def cli_row(name: str) -> dict[str, float]:
        return next(v for k, v in res.items() if k.endswith(name))

    upd, js, tx = (cli_row("inbox --json update --status in_progress"), cli_row("orch --json status --run R"),
                   cli_row("orch status --run R (text)"))
    c10, c50 = co["10k"], co["50k"]
    rows = [
        ("Store: 16 procs, synchronous=NORMAL, committed tx/s", f"{by_sync['normal']['tx_s']:,.0f}", ">= 5,000",
         by_sync["normal"]["tx_s"] >= 5000),
        ("Store: 16 procs, synchronous=FULL, committed tx/s", f"{by_sync['full']['tx_s']:,.0f}", ">= 2,000",
         by_sync["full"]["tx_s"] >= 2000),
        ("Store: the same row changes as bare SQL, 16 procs, NORMAL (ceiling, no target)",
         f"{st['ceiling']['tx_s']:,.0f}", "-", None),
        ("Store: errors / duplicate claims (16 procs, both modes)",
         f"{sum(x['errors'] for x in st['runs'])} / {sum(x['duplicates'] for x in st['runs'])}", "0 / 0",
         all(x["errors"] == 0 and x["duplicates"] == 0 for x in st["runs"])),
        ("Store: 100 procs, errors / duplicates", f"{many['errors']} / {many['duplicates']}", "0 / 0",
         many["errors"] == 0 and many["duplicates"] == 0),
        ("Freshness: worker commit -> watcher reconciled, p95", f"{wa['p95']:.1f} ms", "<= 50 ms", wa["p95"] <= 50),
        ("Freshness: worker commit -> console refreshed, p95", f"{c10['fresh_p95_ms']:.0f} ms", "<= 50 ms",
         c10["fresh_p95_ms"] <= 50),
        ("Console: first paint, 10k tasks + 200k messages", f"{c10['first_paint_s']:.2f} s", "<= 0.5 s",
         c10["first_paint_s"] <= 0.5),
        ("Console: first paint, 50k tasks", f"{c50['first_paint_s']:.2f} s", "<= 1.5 s", c50["first_paint_s"] <= 1.5),
        ("Console: key press under 1,000 events/s, p95", f"{c10['key_p95_ms']:.0f} ms "
         f"({c10['events_per_s']:,.0f} events/s reached)", "<= 100 ms", c10["key_p95_ms"] <= 100),
        ("Console: RSS (10k / 50k)", f"{c10['rss_mb']:.0f} / {c50['rss_mb']:.0f} MB", "<= 200 MB",
         max(c10["rss_mb"], c50["rss_mb"]) <= 200),
        ("CLI: `inbox update`, 10k-task run, median wall", f"{upd['median']:.0f} ms", "<= 150 ms",
         upd["median"] <= 150),
        ("CLI: `orch status` (text), 10k-task run, median wall", f"{tx['median']:.0f} ms", "<= 150 ms",
         tx["median"] <= 150),
        ("CLI: `orch --json status`, 10k-task run, median wall", f"{js['median']:.0f} ms", "<= 150 ms",
         js["median"] <= 150),
        ("Watcher: `orch watch` idle CPU", f"{wa['idle']:.2f} % of a core", "< 2 %", wa["idle"] < 2),
    ]
    la = r.get("land")
    if la:
        rows.append((f"Landing: {la['tasks']} tasks, {la['waves']} waves, graph order, time per land / bare "
                     "`git merge` (p50 / p95)", f"{la['ratio_p50']:.2f}x / {la['ratio_p95']:.2f}x, "
                     f"{la['lost']} commits lost", "<= 1.5x, 0 lost", la["ratio_p50"] <= 1.5 and la["lost"] == 0))
    L = ["# Performance", "",
         "Generated by `bench/run_all.py`" + (" --quick" if quick else "") + f" on {started}. Every figure below "
         "comes from that one run of the scripts in `bench/`, one after the other; the targets are DESIGN.md "
         "section 10. Benchmarks are not CI gates. Regenerate with `.venv/bin/python bench/run_all.py` "
         "(`--quick` for smaller runs: fewer store cycles, 5 CLI invocations, a shorter writer window).", "",
         "## Machine", "", "| | |", "|---|---|",
         f"| CPU | {m['cores']} cores, {m['cpu']} |", f"| RAM | {m['ram']} |", f"| OS | {m['os']} |",
         f"| Python | {m['python']} |", f"| SQLite | {m['sqlite']} |",
         f"| load average | {m['load']} at the start, {load_end.split(' | ')[0]} at the end |",
         *([f"| CPU steal | {load_end.split(': ')[1]} of the machine's time during the run |"]
           if " | " in load_end else []), "",
         "The machine is shared with other developers' test suites and benchmarks; the same command has given "
         "up to 2x different results minutes apart. Treat the figures as lower bounds of what the code does on "
         "an idle machine of this size.", "",
         "## Summary", "", "| figure | measured | target | |", "|---|---|---|---|"]
    L += [f"| {a} | {b} | {c} | {met(d)} |" for a, b, c, d in rows]
    L += ["", "## Store: `bench/store_bench.py`", "",
          "N worker processes race for the same pending threads of one SQLite file and, through the real store "
          "functions, run `claim -> update in_progress -> renew -> done` on each thread they win (4 committed "
          "write transactions per thread). Threads are made by dispatching the tasks of one run, so every "
          "claim/update/done is also folded into its attempt, task and run in the same transaction. A lost claim "
          "race (`lease_conflict`/`invalid_state`) is not an error. Duplicates are checked afterwards from the "
          "database (one `thread_claim` and one `thread_result` per thread, claimer == finisher). Each worker "
          "fetches the 32 newest pending threads (the same ones every worker sees) and goes down that list, "
          "fetching again when it is used up. Latency is the wall time of each successful store write call; "
          "with FULL (the store's default) that includes the flush of the WAL the store does after COMMIT, "
          "outside the write lock, before the call returns. Each configuration runs 3 times; the table gives "
          "the median run, with every run's tx/s in brackets, and errors and duplicates summed over the 3.", "",
          "`--ceiling` also runs the same row changes as bare SQL statements (no validation, no guards, no "
          "reads, no fold decisions, no claim race), through the same write turn and `BEGIN IMMEDIATE`, at "
          "NORMAL: what SQLite alone commits on this machine, the ceiling for any store logic on top. "
          f"It gave **{st['ceiling']['tx_s']:,.0f} tx/s** (median; runs: "
          f"{', '.join(format(v, ',') for v in st['ceiling'].get('tx_s_all', [round(st['ceiling']['tx_s'])]))}).", "",
          "| command | sync | procs | threads | committed tx/s | latency p50 / p99 / max | errors | duplicates |"
          " not done | integrity |", "|---|---|---|---|---|---|---|---|---|---|"]
    for cmd, runs in ((st["cmd"], st["runs"]), (st["many_cmd"], st["many"])):
        for x in runs:
            L.append(f"| `{cmd}` | {x['sync'].upper()} | {x['procs']} | {x.get('threads', '')} | "
                     f"{x['tx_s']:,.0f}{' (' + ', '.join(format(v, ',') for v in x['tx_s_all']) + ')' if 'tx_s_all' in x else ''}"
                     f" | {x['p50_ms']:.2f} / {x['p99_ms']:.1f} / {x['max_ms']:,.0f} ms | "
                     f"{x['errors']} | {x['duplicates']} | {x['not_done']} | {'ok' if x['integrity_ok'] else 'FAILED'} |")
    b = cl["doc"]["build"]
    L += ["", "## CLI: `bench/cli_latency.py`", "",
          f"A run of {b['sizes'].get('tasks', 10000):,} tasks (bulk-inserted with the rows `task_add`/`dep_add` "
          f"write, then tasks dispatched, claimed, updated, finished and blocked through the real store functions, "
          f"plus a message history): " + ", ".join(f"{k} {v:,}" for k, v in b["sizes"].items()) +
          f"; {b['db_bytes'] / 1e6:.1f} MB. Each command is a real subprocess of the venv's console script, "
          "wall time, interleaved rounds, `ORCH_SYNC` unset (FULL), with a private `PYTHONPYCACHEPREFIX` so "
          "bytecode is cached as in a normal install (this sandbox sets `PYTHONDONTWRITEBYTECODE`).", "",
          f"`{cl['cmd']}`:", "", "| command | min | median | p90 | max | stdout | target |", "|---|---|---|---|---|---|---|"]
    for k, v in res.items():
        name = k.split(": ", 1)[1]
        tgt = ("<= 150 ms median: " + met(v["median"] <= 150)) if name.startswith(("inbox", "orch")) else ""
        L.append(f"| `{name}` | {v['min']:.0f} ms | {v['median']:.0f} ms | {v['p90']:.0f} ms | {v['max']:.0f} ms | "
                 f"{v['stdout_bytes']:,} B | {tgt} |")
    L += ["", "## Console: `bench/console_bench.py`", "",
          "Headless `App.run_test(size=(160, 50))`, each scenario in a fresh process (so RSS is the console's "
          "own). First paint counts from constructing the App to the first frame with the board rendered, so it "
          "includes Textual's start-up. Key latency: a real `down`/`up` key event posted to the app until the "
          "cursor moved and the screen refreshed, while a writer process commits `inbox update`s (each a message "
          "+ event + fold) as fast as it can up to 1,000/s. Freshness: the writer's commit (CLOCK_MONOTONIC) to "
          "the refresh after the console applied that task's change.", "",
          f"`{co['cmd']}`:", "",
          "| scenario | first paint | target | key p50 / p95 | freshness p50 / p95 | writer | RSS |",
          "|---|---|---|---|---|---|---|",
          f"| 10k tasks, 200k messages, writer | {c10['first_paint_s']:.2f} s | <= 0.5 s | {c10['key_p50_ms']:.0f} / "
          f"{c10['key_p95_ms']:.0f} ms | {c10['fresh_p50_ms']:.0f} / {c10['fresh_p95_ms']:.0f} ms "
          f"({c10['fresh_n']} commits) | {c10['events_per_s']:,.0f} commits/s | {c10['rss_mb']:.0f} MB |",
          f"| 50k tasks | {c50['first_paint_s']:.2f} s | <= 1.5 s | - | - | - | {c50['rss_mb']:.0f} MB |",
          "", "## Watcher: `bench/watch_bench.py`", "",
          "Freshness: a writer process commits `inbox update`s (8 threads, 10-40 ms apart) while a `Watcher` runs "
          "`run_forever`; latency from the commit to the watcher's reconcile that reached that event. Idle CPU: "
          "`orch watch` as a process, CPU time over a window after start-up, with nothing happening and with 5 "
          "tmux workers blocked on questions (liveness probes every 2 s).", "",
          f"`{wa['cmd']}`:", "", "| figure | measured | target |", "|---|---|---|",
          f"| commit -> reconciled, p50 / p95 / max ({wa['n']} updates) | {wa['p50']:.1f} / {wa['p95']:.1f} / "
          f"{wa['max']:.1f} ms | p95 <= 50 ms: {met(wa['p95'] <= 50)} |",
          f"| `orch watch` CPU, idle | {wa['idle']:.2f} % of a core | < 2 %: {met(wa['idle'] < 2)} |",
          f"| `orch watch` CPU, 5 blocked tmux workers | {wa['busy']:.2f} % of a core | |",
          *(["", "## Landing: `bench/land_bench.py`", "",
              "A run under a land target: each wave dispatched from the target's tip (dependants start from "
              "their parents' landed work), each task one small commit, then the wave landed in graph order with "
              "`store.land.land`; each land is followed by a bare `git merge --no-ff` of the same branch in a "
              "checkout of the same base, so both see the same load. Lost: task commits not in the target.", "",
              f"`{la['cmd']}` ({la['dependencies']} dependencies):", "",
              "| figure | orch land | bare `git merge --no-ff` | ratio |", "|---|---|---|---|",
              f"| p50 | {la['land_p50_ms']:.1f} ms | {la['merge_p50_ms']:.1f} ms | {la['ratio_p50']:.2f}x |",
              f"| p95 | {la['land_p95_ms']:.1f} ms | {la['merge_p95_ms']:.1f} ms | {la['ratio_p95']:.2f}x |",
              f"| mean | {la['land_mean_ms']:.1f} ms | {la['merge_mean_ms']:.1f} ms | |", "",
              f"Commits lost: {la['lost']}; task files missing from the target: {la['missing_files']}; dependants "
              f"missing a parent's file at dispatch: {la['missing_parents']}; target tree equal to the bare merge's: "
              f"{'yes' if la['same_tree'] else 'NO'}."] if la else []),
          "", "## Run times", "",
          "| benchmark | wall time |", "|---|---|",
          f"| store_bench (16 procs x 2 modes, then 100 procs) | {st['s']:.0f} s + |",
          f"| cli_latency | {cl['s']:.0f} s |",
          f"| console_bench | {c10['s'] + c50['s']:.0f} s |",
          f"| watch_bench | {wa['s']:.0f} s |",
          *([f"| land_bench | {la['wall']:.0f} s |"] if la else []), ""]
    return "\n".join(L)


def _cpu_times() -> list[int]:
    """The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return [0] * 8


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs of every benchmark")
    ap.add_argument("--no-write", action="store_true", help="print the document instead of writing it")
    ap.add_argument("--out", default=str(DOC), help="where to write (default docs/PERFORMANCE.md)")
    a = ap.parse_args(argv)
    from store_bench import machine

    m = machine()
    started = time.strftime("%Y-%m-%d %H:%M")
    cpu0 = _cpu_times()
    r = {"store": store_bench(a.quick), "cli": cli_latency(a.quick), "console": console_bench(a.quick),
         "watch": watch_bench(a.quick), "land": land_bench(a.quick)}
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu1 = _cpu_times()
    total = sum(cpu1) - sum(cpu0)
    # steal: time the hypervisor gave our virtual CPUs to other guests, a direct measure of noise
    load_end += f" | CPU steal during the run: {100 * (cpu1[7] - cpu0[7]) / total:.1f} %" if total > 0 else ""
    text = render(m, r, a.quick, started, load_end)
    if a.no_write:
        print(text)
    else:
        Path(a.out).write_text(text, encoding="utf-8")
        print(f"wrote {a.out}")
        print(text.split("## Store")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
