"""Eight processes claiming the same pending threads at the same moment: each thread is claimed
exactly once, every loser gets lease_conflict (exit 20), and nothing else goes wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from cli_flow import INBOX, ROOT, Cli, git_env, query

WORKERS = 8
THREADS = 40

# One worker process: wait for the start file, then claim every thread through the inbox CLI's
# entry point (argv parsing, JSON envelope and exit code included), each claim a separate
# invocation with its own store connection, exactly as `inbox --json claim` runs it.
WORKER = r"""
import contextlib, io, json, os, sys, time
from orch_console.console.cli import inbox as cli

db, agent, go, order = sys.argv[1:5]
threads = json.load(open(sys.argv[5]))
if order == "reverse":
    threads = threads[::-1]
while not os.path.exists(go):
    time.sleep(0.001)
results = []
for t in threads:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["--db", db, "--json", "claim", "--agent", agent, "--thread", t])
    results.append({"thread": t, "rc": rc, "out": buf.getvalue()})
print(json.dumps(results))
"""


def make_threads(db: str, n: int) -> list[str]:
    from orch_console.store import Store
    from orch_console.store import inbox as store_inbox

    s = Store(db)
    try:
        return [store_inbox.send(s, from_agent="leader", to_agent="pool", subject=f"job {i}",
                                 run_id="race")["thread"]["thread_id"] for i in range(n)]
    finally:
        s.close()


def claim_events(db: str) -> list[dict[str, Any]]:
    return [dict(r) for r in query(db, "SELECT thread_id, agent FROM events WHERE event_type='thread_claim'")]


def test_eight_processes_claim_each_of_40_threads_exactly_once(tmp_path: Path) -> None:
    db = str(tmp_path / "coord.db")
    threads = make_threads(db, THREADS)
    ids_file = tmp_path / "threads.json"
    ids_file.write_text(json.dumps(threads))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db, f"w{i}", str(go),
                               "reverse" if i % 2 else "forward", str(ids_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=git_env())
             for i in range(WORKERS)]
    time.sleep(1.0)  # let every worker import and reach the start line
    go.write_text("go")
    results: dict[str, list[dict[str, Any]]] = {}
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "Traceback" not in err
        results[f"w{i}"] = json.loads(out)

    winners: dict[str, list[str]] = defaultdict(list)
    losers: Counter[str] = Counter()
    for agent, rs in results.items():
        assert len(rs) == THREADS
        for r in rs:
            doc = json.loads(r["out"])
            if r["rc"] == 0:
                assert doc["ok"] is True and doc["data"]["already_claimed"] is False, doc
                assert doc["data"]["thread"]["lease_owner"] == agent
                winners[r["thread"]].append(agent)
            else:
                assert (r["rc"], doc["ok"], doc["error"]["code"]) == (20, False, "lease_conflict"), r
                losers[r["thread"]] += 1

    # One winner per thread, every other worker told lease_conflict.
    assert sorted(winners) == sorted(threads)
    assert all(len(w) == 1 for w in winners.values()), {t: w for t, w in winners.items() if len(w) != 1}
    assert all(losers[t] == WORKERS - 1 for t in threads), losers
    # The database agrees: one thread_claim event per thread, by the winner, who holds the lease.
    ev = claim_events(db)
    assert Counter(e["thread_id"] for e in ev) == Counter({t: 1 for t in threads})
    assert {e["thread_id"]: e["agent"] for e in ev} == {t: w[0] for t, w in winners.items()}
    owners = {r["thread_id"]: (r["status"], r["lease_owner"], r["assigned_to"])
              for r in query(db, "SELECT thread_id, status, lease_owner, assigned_to FROM threads")}
    assert owners == {t: ("claimed", w[0], w[0]) for t, w in winners.items()}
    claimed_msgs = Counter(r[0] for r in query(db, "SELECT thread_id FROM messages WHERE kind='event' "
                                                   "AND summary='thread claimed'"))
    assert claimed_msgs == Counter({t: 1 for t in threads})
    # Contention was real: more than one worker won something.
    assert len({w[0] for w in winners.values()}) > 1


def test_eight_inbox_claim_executables_racing_for_one_thread_have_one_winner(tmp_path: Path) -> None:
    db = str(tmp_path / "coord.db")
    cli = Cli(db, tmp_path)
    for thread in make_threads(db, 3):
        procs = [subprocess.Popen([INBOX, "--db", db, "--json", "claim", "--agent", f"w{i}", "--thread", thread],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                 for i in range(WORKERS)]
        outcomes = []
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=60)
            assert "Traceback" not in err
            doc = json.loads(out)
            outcomes.append((p.returncode, doc["ok"], doc.get("error", {}).get("code"), f"w{i}"))
        wins = [o for o in outcomes if o[0] == 0]
        assert len(wins) == 1, outcomes
        assert sorted(o[:3] for o in outcomes if o[0] != 0) == [(20, False, "lease_conflict")] * (WORKERS - 1)
        shown = cli.ok("inbox", "show", "--thread", thread)["thread"]
        assert shown["lease_owner"] == wins[0][3] and shown["status"] == "claimed"
    per_thread = Counter(e["thread_id"] for e in claim_events(db))
    assert len(per_thread) == 3 and set(per_thread.values()) == {1}
