"""Planning time of a random DAG (the figure tests/waves keeps only as a loose margin).

    python bench/plan_bench.py [N ...]      (default 2500 5000 10000)

Prints, for each size, the best of five `plan_from` runs over a random DAG whose tasks depend on
up to three of the 200 tasks before them, each task owning one of ~N/6 paths.
"""

from __future__ import annotations

import json
import random
import sys
import time

from orch_console.store import plan


def random_dag(n: int, seed: int = 7) -> tuple[list[dict], list[tuple[str, str]]]:
    rnd = random.Random(seed)
    tasks = [{"task_id": f"T{i}", "title": "t", "status": "planned", "priority": 0, "default_to": "",
              "paths_json": json.dumps([f"src/m{rnd.randint(0, max(1, n // 6))}/f{rnd.randint(0, 3)}.py"])}
             for i in range(n)]
    deps = list({(f"T{i}", f"T{rnd.randint(max(0, i - 200), i - 1)}") for i in range(1, n)
                 for _ in range(rnd.randint(0, 3))})
    return tasks, deps


def main(sizes: list[int]) -> None:
    print(f"{'tasks':>7} {'deps':>7} {'waves':>6} {'best of 5':>10}")
    for n in sizes:
        tasks, deps = random_dag(n)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            p = plan.plan_from({"run_id": "r", "config_json": ""}, tasks, deps)
            best = min(best, time.perf_counter() - t)
        print(f"{n:>7} {len(deps):>7} {len(p['waves']):>6} {best * 1000:>8.0f}ms")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2500, 5000, 10000])
