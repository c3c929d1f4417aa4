"""Issue 15, M5/M6/M7 as a soak: `orch dispatch --launch` (code mode, real git, real worker
processes) SIGKILLed at random moments, then restarted the way a leader would (dispatch again if
the task is still ready, launch if the attempt was never launched) and one watcher pass. After
every round and at the end: no worktree or branch without its attempt, no committed code attempt
without its worktree, no worker process the store does not know (by pid), never two workers for
one attempt, and every acknowledged dispatch and launch (a command that printed its envelope, a
restart that returned) is in the store as acknowledged; at the end, no half-applied transition
(tests/reliability/invariants.py). The workers of older rounds report done and are stopped, so a
few attempts are live at a time.

Each round aims its kill at one phase of the command, at a random moment within it: its dispatch
(from the moment it holds the database, past its imports, to the attempt's commit) or its launch
(from the attempt's commit to the launch's record). The window after the anchor adapts to how long
the phase takes on this machine. What the kill interrupted is read from the store afterwards: no
attempt yet (dispatch), an attempt not yet recorded as launched (launch), or nothing (the command
had made its last write: counted apart, not towards the floor). The soak runs on until it has
DISPATCH_SOAK_PER_PHASE kills of each phase (tests/reliability/helpers.py: with
test_kill9_soak.py's share, the 500 SIGKILLs the soaks must survive) and asserts it.

Knobs: KILL_SOAK_ROUNDS (at least this many rounds, default 12), KILL_SOAK_SECONDS (it gives up,
failing, after this long, default 420), KILL_SOAK_SEED."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import Store, inbox, runs
from tests.conftest import ORCH, Cli, git_env
from tests.reliability import invariants as inv
from tests.reliability.helpers import DISPATCH_SOAK_PER_PHASE, SOAK_KILLS_TOTAL

ROUNDS = int(os.environ.get("KILL_SOAK_ROUNDS", "12"))
LIMIT = float(os.environ.get("KILL_SOAK_SECONDS", "420"))
PHASES = ("dispatch", "launch")
# Attempts of older rounds are finished by their worker (and the worker stopped), so the watcher's
# pass looks at a few live attempts, not at every one of the soak's (its cost grows with them).
LIVE = 4


def _workers(db: str) -> dict[str, list[int]]:
    """Live processes of this database's workers, by ORCH_THREAD."""
    want = f"ORCH_DB={Path(db).resolve()}".encode()
    out: dict[str, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if want not in env or stat[stat.rindex(")") + 2] in "ZX":
            continue
        if os.getpgid(int(name)) != int(name):
            continue  # count process-group leaders: one per launched worker
        th = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"ORCH_THREAD=")), "")
        out.setdefault(th, []).append(int(name))
    return out


def _git_branches(repo: Path) -> set[str]:
    out = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(refname:short)", "refs/heads/orch"],
                         capture_output=True, text=True, env=git_env(), check=True).stdout
    # the run's land target (orch/<run>/_land, issue 14) is the run's, not an attempt's
    return {ln.strip() for ln in out.splitlines() if ln.strip() and not ln.strip().endswith("/_land")}


def _check(db: str, repo: Path) -> None:
    s = Store(db)
    try:
        atts = [dict(r) for r in s.all("SELECT * FROM attempts")]
    finally:
        s.close()
    owned = {a["branch_name"] for a in atts if a["branch_name"]}
    assert _git_branches(repo) == owned, "a branch without its attempt (or the reverse)"
    root = repo / ".orch" / "worktrees" / "r"
    on_disk = {str(p) for p in root.glob("*/a*")} if root.exists() else set()
    assert on_disk == {a["worktree_path"] for a in atts if a["worktree_path"]}, "a worktree without its attempt"
    for a in atts:
        if a["worktree_path"]:
            assert (Path(a["worktree_path"]) / ".git").is_file(), f"committed attempt lost its worktree: {a}"
    workers = _workers(db)
    by_thread = {a["thread_id"]: a for a in atts}
    for th, pids in workers.items():
        assert len(pids) == 1, f"two workers for one attempt: {th} {pids}"
        a = by_thread.get(th)
        assert a is not None, f"a worker with no attempt: {th}"
        assert a["pid"] == pids[0], f"a worker the store does not know: {a['task_id']} pid {pids[0]} vs {a['pid']}"


def _holds(pid: int, prefix: str) -> bool:
    """Whether the process has a file open whose path starts with prefix (the database, its WAL)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def _phase_reached(conn: Any, task: str) -> str:
    """How far the task's dispatch and launch got, by what the store holds."""
    a = conn.execute("SELECT thread_id FROM attempts WHERE run_id='r' AND task_id=? ORDER BY attempt_no DESC "
                     "LIMIT 1", (task,)).fetchone()
    if a is None:
        return "dispatch"  # no attempt committed yet
    if conn.execute("SELECT 1 FROM events WHERE event_type='attempt_launched' AND thread_id=?",
                    (a["thread_id"],)).fetchone() is None:
        return "launch"  # committed, its launch not yet recorded
    return "done"


def _acked_present(db: str, acks: list[dict[str, Any]]) -> list[str]:
    """Every acknowledged dispatch (and launch) is in the store as it was acknowledged."""
    conn = inv.connect(db)
    problems = []
    try:
        for ack in acks:
            att = ack["attempt"]
            a = conn.execute("SELECT * FROM attempts WHERE run_id='r' AND task_id=? AND attempt_no=?",
                             (att["task_id"], att["attempt_no"])).fetchone()
            if a is None or any(a[k] != att[k] for k in ("thread_id", "branch_name", "worktree_path")):
                problems.append(f"acked {ack['by']} of {att['task_id']}#{att['attempt_no']} missing or different: "
                                f"{a and dict(a)}")
                continue
            if "message" in ack and conn.execute(
                    "SELECT 1 FROM messages WHERE message_id=? AND thread_id=? AND kind='task'",
                    (ack["message"]["message_id"], a["thread_id"])).fetchone() is None:
                problems.append(f"acked {ack['by']} of {att['task_id']} has no task message")
            if ack["launched"]:
                if (a["runtime"], a["pid"]) != (att["runtime"], att["pid"]) or not att["pid"]:
                    problems.append(f"acked launch of {att['task_id']}: {att['runtime']} pid {att['pid']}, store "
                                    f"{a['runtime']} pid {a['pid']}")
                ev = conn.execute("SELECT payload_json FROM events WHERE event_type='attempt_launched' AND "
                                  "thread_id=?", (a["thread_id"],)).fetchall()
                if len(ev) != 1 or json.loads(ev[0][0]).get("pid") != att["pid"]:
                    problems.append(f"acked launch of {att['task_id']}: attempt_launched events {ev}")
    finally:
        conn.close()
    return problems


def _finish_older(s: Store, db: str, *, keep: int) -> None:
    """The worker of each live attempt but the newest `keep` reports done, then stops."""
    live = [dict(a) for a in s.all("SELECT * FROM attempts WHERE run_id='r' AND ended_at='' ORDER BY started_at")]
    for a in live[:-keep]:
        inbox.claim(s, agent=a["assigned_to"], thread_id=a["thread_id"])
        inbox.finish(s, agent=a["assigned_to"], thread_id=a["thread_id"], outcome="done", summary="soak: done")
        launcher.stop(db, a, grace=0.3)


def test_sigkill_dispatch_and_launch_at_random_moments(cli: Cli, repo: Path) -> None:
    (Path(cli.db).parent / "orch.toml").write_text('[agents.w]\ncommand = "exec sleep 300"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "soak")
    rng = random.Random(int(os.environ.get("KILL_SOAK_SEED", "15")))
    db_real = os.path.realpath(cli.db)
    killed: Counter[str] = Counter()  # what each SIGKILL interrupted: dispatch, launch, done
    window = {"dispatch": 0.1, "launch": 0.02}  # seconds after the phase's anchor; adapts
    acks: list[dict[str, Any]] = []
    watch = inv.connect(cli.db)
    s = Store(cli.db)
    t0 = time.monotonic()
    rounds = intents = 0

    def short() -> list[str]:
        return [ph for ph in PHASES if killed[ph] < DISPATCH_SOAK_PER_PHASE]

    try:
        while (rounds < ROUNDS or short()) and time.monotonic() - t0 < LIMIT:
            task = f"T{rounds}"
            rounds += 1
            first_ack = len(acks)
            runs.task_add(s, run_id="r", task_id=task, title=task, default_to="w")
            aim = rng.choice(short() or list(PHASES))
            p = subprocess.Popen([ORCH, "--db", cli.db, "--json", "dispatch", "--run", "r", "--task", task,
                                  "--execution-mode", "code", "--repo-path", str(repo), "--launch", "--profile", "w"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cli.cwd, env=git_env())
            # the anchor: it holds the database (dispatch), or its attempt is committed (launch)
            while p.poll() is None and not (_holds(p.pid, db_real) if aim == "dispatch"
                                            else _phase_reached(watch, task) != "dispatch"):
                time.sleep(0.001)
            time.sleep(rng.uniform(0, window[aim]))
            hit = ""
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=30)
                hit = _phase_reached(watch, task)
                killed[hit] += 1
                # a launch killed after reserving its attempt: the worker may be running unrecorded (M6)
                intents += hit == "launch" and watch.execute(
                    "SELECT runtime FROM attempts WHERE run_id='r' AND task_id=?", (task,)).fetchone()[0] != ""
            # too late: the window shrinks; in the phase aimed at: it may grow
            window[aim] = min(2.0, max(0.002, window[aim] * (1.1 if hit == aim else 0.8)))
            stdout, stderr = p.communicate(timeout=30)
            if not hit:
                assert p.returncode == 0, f"dispatch --launch of {task} -> {p.returncode}\n{stdout!r}\n{stderr!r}"
            try:
                doc = json.loads(stdout)
            except ValueError:
                doc = None  # killed before its envelope was out: nothing acknowledged
            if doc is not None:
                assert doc["ok"] is True, doc
                acks.append({"by": "dispatch --launch", "launched": True, **doc["data"]})
            # the restart a leader does: dispatch again while ready, launch what was never launched
            st = runs.get_task(s.conn, "r", task)["status"]
            if st == "ready":
                out = cli.ok("orch", "dispatch", "--run", "r", "--task", task, "--execution-mode", "code",
                             "--repo-path", str(repo))
                acks.append({"by": "dispatch (restart)", "launched": False, **out})
            a = dict(s.one("SELECT * FROM attempts WHERE task_id=? ORDER BY attempt_no DESC LIMIT 1", (task,)))
            if not a["runtime"]:
                out = launcher.launch(s, run_id="r", task_id=task, profile="w")
                acks.append({"by": "launch (restart)", "launched": True, **out})
            w = Watcher(cli.db, "r")
            try:
                w.tick(force_liveness=True)
            finally:
                w.close()
            _check(cli.db, repo)
            assert _acked_present(cli.db, acks[first_ack:]) == []
            _finish_older(s, cli.db, keep=LIVE)
    finally:
        watch.close()
        s.close()
        s = Store(cli.db)
        try:
            for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
                launcher.stop(cli.db, dict(a), grace=0.3)
        finally:
            s.close()
        for pids in _workers(cli.db).values():
            for pid in pids:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
    elapsed = time.monotonic() - t0
    counts = (f"{killed['dispatch']} inside dispatch, {killed['launch']} inside launch ({intents} after its launch "
              f"intent), {killed['done']} after the last write, {rounds - sum(killed.values())} round(s) finished "
              f"before the kill")
    assert not short(), (f"only {counts} in {rounds} rounds, {elapsed:.0f}s; the floor is "
                         f"{DISPATCH_SOAK_PER_PHASE} of each phase (this soak's share of the {SOAK_KILLS_TOTAL} "
                         f"the soaks must survive)")
    assert inv.integrity(cli.db) == []
    assert inv.consistency(cli.db) == []
    assert _acked_present(cli.db, acks) == []
    print(f"\ndispatch/launch kill soak: {sum(killed.values())} SIGKILLs survived ({counts}) in {rounds} rounds, "
          f"{elapsed:.1f}s; {len(acks)} acknowledged dispatches and launches checked")
