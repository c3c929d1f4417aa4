"""kill -9 soak: worker and leader processes doing real store operations are SIGKILLed at random
moments, hundreds of times, and restarted (perf-reliability.md section 4.1, over the product's own
operations instead of a toy schema).

Every kill is counted by role (worker, leader). The soak runs on until it has STORE_SOAK_KILLS
(tests/reliability/helpers.py: its share of the 500 SIGKILLs the soaks must survive, the rest is
test_dispatch_kill_soak.py's), at least STORE_SOAK_PER_ROLE of each role, and asserts it.

Knobs: SOAK_KILLS (kills to aim for, default STORE_SOAK_KILLS; the floor is the smaller of the two),
SOAK_SECONDS (past this the soak stops once it has its floor, default 35; it gives up, failing, at
SOAK_SECONDS * 12), SOAK_WORKERS (worker processes, default 3; one leader process besides them),
SOAK_SEED.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from orch_console.store import Store, runs
from tests.conftest import ORCH, git_env
from tests.reliability import invariants as inv
from tests.reliability.helpers import SOAK_KILLS_TOTAL, STORE_SOAK_KILLS, STORE_SOAK_PER_ROLE

AGENT = Path(__file__).with_name("soak_agent.py")
KILLS = int(os.environ.get("SOAK_KILLS", str(STORE_SOAK_KILLS)))
SECONDS = float(os.environ.get("SOAK_SECONDS", "35"))
# On a loaded machine processes take longer to get past their imports, so fewer kills fit in
# SECONDS: the soak then runs on until it has MIN_KILLS (and PER_ROLE of each role), up to
# SECONDS * 12 (an outcome, not a rate).
MIN_KILLS = min(KILLS, STORE_SOAK_KILLS)
PER_ROLE = min(STORE_SOAK_PER_ROLE, MIN_KILLS // 4)
WORKERS = int(os.environ.get("SOAK_WORKERS", "3"))
SEED = int(os.environ.get("SOAK_SEED", str(random.randrange(1 << 30))))


class Proc:
    def __init__(self, db: str, ack: Path, role: str, name: str, rng: random.Random) -> None:
        self.db, self.ack, self.role, self.name, self.rng = db, ack, role, name, rng
        self.p: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = dict(os.environ, SOAK_WORKERS=str(WORKERS), SOAK_LEASE_SECONDS="3")
        self.p = subprocess.Popen([sys.executable, str(AGENT), self.db, str(self.ack), self.role, self.name,
                                   str(self.rng.randrange(1 << 30))], env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(str(self.ack) + ".stderr", "ab"))
        self.started = time.monotonic()
        self.size0 = self.ack.stat().st_size if self.ack.exists() else 0
        self.live_at = 0.0

    def ready(self, now: float) -> bool:
        """Past its imports (it wrote its start line) plus a random stretch of writing."""
        if not self.live_at:
            if not self.ack.exists() or self.ack.stat().st_size <= self.size0:
                return False
            self.live_at = now + self.rng.uniform(0.0, 0.3)
        return now >= self.live_at

    def kill(self) -> None:
        assert self.p is not None
        if self.p.poll() is not None:  # it died by itself: that is a failure
            raise AssertionError(f"{self.name} exited with {self.p.returncode} before being killed; see "
                                 f"{self.ack}.stderr:\n{Path(str(self.ack) + '.stderr').read_text()[-3000:]}")
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def writing(self) -> bool:
        """Past its imports: it wrote its start line (a kill before that tests nothing)."""
        return bool(self.live_at) or (self.ack.exists() and self.ack.stat().st_size > self.size0)


def test_kill9_soak_loses_no_acknowledged_write_and_tears_no_transition(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = str(tmp_path / "coord.db")
    s = Store(db)
    runs.run_init(s, run_id="soak", goal="kill -9 soak")
    s.close()
    procs = [Proc(db, tmp_path / "leader.ack", "leader", "leader", rng)]
    procs += [Proc(db, tmp_path / f"w{i}.ack", "worker", f"w{i}", rng) for i in range(WORKERS)]
    for p in procs:
        p.start()
    by_role: Counter[str] = Counter()

    def short() -> bool:
        return sum(by_role.values()) < MIN_KILLS or min(by_role["worker"], by_role["leader"]) < PER_ROLE

    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < SECONDS * 12 and \
                (short() or (sum(by_role.values()) < KILLS and time.monotonic() - t0 < SECONDS)):
            time.sleep(rng.uniform(0.01, 0.06))
            # a process is worth killing once it is past its imports and writing
            now = time.monotonic()
            ready = [p for p in procs if p.ready(now)]
            if not ready:
                continue
            victims = ready if rng.random() < 0.05 else rng.sample(ready, rng.randint(1, min(2, len(ready))))
            for p in victims:
                p.kill()
                by_role[p.role] += 1
            for p in victims:
                p.start()
    finally:
        for p in procs:
            if p.p is not None and p.p.poll() is None:
                counted = p.writing()  # one just restarted and still in its imports is not counted
                os.kill(p.p.pid, signal.SIGKILL)
                p.p.wait()
                by_role[p.role] += counted
    elapsed = time.monotonic() - t0
    kills = sum(by_role.values())
    roles = ", ".join(f"{n} {r}" for r, n in sorted(by_role.items()))

    assert kills >= MIN_KILLS and min(by_role["worker"], by_role["leader"]) >= PER_ROLE, \
        (f"only {kills} kills ({roles}) in {elapsed:.0f}s; the floor is {MIN_KILLS}, at least {PER_ROLE} of each "
         f"role (this soak's share of the {SOAK_KILLS_TOTAL} the soaks must survive)")
    errors = [p.name + ": " + Path(str(p.ack) + ".err").read_text()
              for p in procs if Path(str(p.ack) + ".err").exists()]
    assert not errors, "unexpected errors inside the agents (seed %d):\n%s" % (SEED, "\n".join(errors)[:5000])

    assert inv.integrity(db) == []
    acks = inv.read_acks([p.ack for p in procs])
    ops = {op: sum(1 for a in acks if a["op"] == op) for op in sorted({a["op"] for a in acks})}
    assert inv.acked_writes_present(db, acks) == [], f"seed {SEED}"
    assert inv.consistency(db) == [], f"seed {SEED}"
    # the kills were spread over real work: every kind of operation was acknowledged many times
    for op in ("claim", "update", "finish", "dispatch", "answer", "retry", "task_add"):
        assert ops.get(op, 0) > 0, (op, ops)
    # and the store works afterwards: reconcile runs, and the fold status runs first finds nothing
    # lagging (no fold was lost; status's updated_tasks is what its repair moved, reconcile's is every
    # change since the run's previous reconcile)
    p = subprocess.run([ORCH, "--db", db, "--json", "reconcile", "--run", "soak"], capture_output=True, text=True,
                       env=git_env(), timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([ORCH, "--db", db, "--json", "status", "--run", "soak"], capture_output=True, text=True,
                       env=git_env(), timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["data"]["updated_tasks"] == []
    conn = inv.connect(db)
    rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("tasks", "attempts", "messages",
                                                                                  "events")}
    conn.close()
    inside = inv.kills_inside_calls([p.ack for p in procs])
    # the kills really landed inside store calls (how many depends on the machine's load)
    assert inside >= min(20, kills // 4), (inside, kills)
    print(f"\nkill -9 soak (seed {SEED}): {kills} kills survived ({roles}) / {len(acks)} acknowledged writes "
          f"checked in {elapsed:.1f}s; {inside} kills landed inside a store call; {ops}; rows {rows}")
