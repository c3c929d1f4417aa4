"""Attention: how fast a screen waiting for the leader is recognised (issue 12, DESIGN.md section 10).

Part one (this file today): the recogniser itself. Times `screens.classify` on every capture of
the corpus of real agent screens (tests/agents/corpus/, index.toml), --repeat passes, and prints
p50 / p95 / max per capture kind and overall, the accuracy on the corpus (every capture's verdict
against its true state), and the cost of `screens.fingerprint` (the timer-masked screen hash the
watcher compares between ticks).

Part two (to come with the watcher's use of it): from a real agent showing a permission menu or
question in tmux to the console marking the attempt as needing the leader, screen only and with
hooks (targets: p95 <= 1 s from the screen, <= 200 ms from a hook).

    .venv/bin/python bench/attention_bench.py
    .venv/bin/python bench/attention_bench.py --repeat 50 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "agents" / "corpus"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=200, help="passes over the corpus (default 200)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    from orch_console.console.runtime import screens

    index = tomllib.loads((CORPUS / "index.toml").read_text())["capture"]
    caps = [(e, (CORPUS / e["file"]).read_text()) for e in index]
    wrong = []
    for e, text in caps:
        v = screens.classify(text, e["agent"])
        if (v.state, v.kind) != (e["state"], e["kind"]):
            wrong.append(f"{e['file']}: {v.state}/{v.kind}, expected {e['state']}/{e['kind']}")
    times: dict[str, list[float]] = {}
    fp: list[float] = []
    for _ in range(a.repeat):
        for e, text in caps:
            t0 = time.perf_counter()
            screens.classify(text, e["agent"])
            t1 = time.perf_counter()
            screens.fingerprint(text)
            t2 = time.perf_counter()
            times.setdefault(f"{e['state']}{'/' + e['kind'] if e['kind'] else ''}", []).append((t1 - t0) * 1e3)
            fp.append((t2 - t1) * 1e3)
    every = [x for xs in times.values() for x in xs]
    out = {
        "captures": len(caps), "agents": sorted({e["agent"] for e, _ in caps}), "repeat": a.repeat,
        "accuracy": f"{len(caps) - len(wrong)}/{len(caps)}", "wrong": wrong,
        "classify_ms": {"p50": round(statistics.median(every), 3), "p95": round(pct(every, 95), 3),
                        "max": round(max(every), 3)},
        "fingerprint_ms": {"p50": round(statistics.median(fp), 3), "p95": round(pct(fp, 95), 3)},
        "by_state": {k: {"n": len(v) // a.repeat, "p50": round(statistics.median(v), 3), "p95": round(pct(v, 95), 3)}
                     for k, v in sorted(times.items())},
    }
    if a.json:
        print(json.dumps(out))
        return 0 if not wrong else 1
    print(f"recogniser on the corpus: {out['captures']} real captures ({', '.join(out['agents'])}), "
          f"{a.repeat} passes")
    print(f"  accuracy       {out['accuracy']} right")
    for w in wrong:
        print(f"    WRONG {w}")
    print(f"  classify       p50 {out['classify_ms']['p50']:.3f} ms   p95 {out['classify_ms']['p95']:.3f} ms   "
          f"max {out['classify_ms']['max']:.3f} ms")
    print(f"  fingerprint    p50 {out['fingerprint_ms']['p50']:.3f} ms   p95 {out['fingerprint_ms']['p95']:.3f} ms")
    for k, s in out["by_state"].items():
        print(f"    {k:26} n={s['n']:<3} p50 {s['p50']:.3f} ms   p95 {s['p95']:.3f} ms")
    return 0 if not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
