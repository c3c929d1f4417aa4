"""Lease expiry and re-claim: a worker that comes back after its lease ran out and another worker
claimed the thread gets `lease_conflict` (exit 20) on update/done/fail/renew/claim, changes nothing,
and can never overwrite the new owner's result. All through the real inbox CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import INBOX, db_snapshot
from tests.reliability import invariants as inv
from tests.reliability.helpers import fifo_race


def _dispatched(cli, task: str = "t1") -> str:  # type: ignore[no-untyped-def]
    cli.ok("orch", "task", "add", "--run", "r1", "--task", task, "--title", f"lease {task}", "--default-to", "w1")
    return cli.ok("orch", "dispatch", "--run", "r1", "--task", task, "--execution-mode", "analysis")["attempt"]["thread_id"]


def _stale_writes(th: str) -> list[list[str]]:
    return [["update", "--agent", "w1", "--thread", th, "--status", "in_progress", "--summary", "stale progress"],
            ["update", "--agent", "w1", "--thread", th, "--status", "blocked", "--summary", "stale question"],
            ["done", "--agent", "w1", "--thread", th, "--summary", "stale result"],
            ["fail", "--agent", "w1", "--thread", th, "--summary", "stale failure"],
            ["renew", "--agent", "w1", "--thread", th],
            ["claim", "--agent", "w1", "--thread", th]]


def test_expired_owner_gets_lease_conflict_and_cannot_overwrite(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "lease takeover")
    th = _dispatched(cli)
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", th, "--lease-seconds", "1")
    cli.ok("inbox", "update", "--agent", "w1", "--thread", th, "--status", "in_progress", "--summary", "w1 working")
    time.sleep(1.3)
    # the watcher notes the expiry (as it would in a real run)
    p = cli.orch("watch", "--run", "r1", "--once")
    assert p.returncode == 0, p.stdout + p.stderr
    assert inv.connect(cli.db).execute("SELECT count(*) FROM events WHERE event_type='lease_expired'").fetchone()[0] == 1
    took = cli.ok("inbox", "claim", "--agent", "w2", "--thread", th, "--lease-seconds", "600")
    assert took["already_claimed"] is False and took["thread"]["lease_owner"] == "w2"
    cli.ok("inbox", "update", "--agent", "w2", "--thread", th, "--status", "in_progress", "--summary", "w2 working")

    # w1 comes back while w2 holds a live lease: every write is a lease_conflict and changes nothing
    before = db_snapshot(cli.db)
    for argv in _stale_writes(th):
        err = cli.err("inbox", *argv, code="lease_conflict", exit_code=20)
        assert "w2" in err["message"], err
        assert db_snapshot(cli.db) == before, argv
    # also without --json: a readable line, no traceback, exit 20
    p = cli.inbox("done", "--agent", "w1", "--thread", th, "--summary", "stale", json_out=False)
    assert p.returncode == 20 and "lease_conflict" in p.stderr and "Traceback" not in p.stderr

    cli.ok("inbox", "done", "--agent", "w2", "--thread", th, "--summary", "w2 result")
    # after the new owner's result: the thread is terminal, w1 gets invalid_state, the result stands
    before = db_snapshot(cli.db)
    for argv in _stale_writes(th):
        cli.err("inbox", *argv, code="invalid_state", exit_code=30)
    assert db_snapshot(cli.db) == before
    shown = cli.ok("inbox", "show", "--thread", th)
    results = [m for m in shown["messages"] if m["kind"] == "result"]
    assert [(m["from_agent"], m["summary"]) for m in results] == [("w2", "w2 result")]
    status = cli.ok("orch", "status", "--run", "r1")
    assert status["tasks"][0]["status"] == "done"
    assert inv.integrity(cli.db) == [] and inv.consistency(cli.db) == []


def test_stale_owner_done_racing_the_new_claim(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The old owner's `done` and another worker's `claim` of the expired lease released together:
    exactly one wins; if the claim won, the stale done is a lease_conflict and no result exists."""
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "lease race")
    outcomes = []
    for i in range(6):
        th = _dispatched(cli, f"t{i}")
        cli.ok("inbox", "claim", "--agent", "w1", "--thread", th, "--lease-seconds", "1")
        time.sleep(1.1)
        done, claim = fifo_race(tmp_path, ["--db", cli.db, "--json", "done", "--agent", "w1", "--thread", th,
                                           "--summary", "late result"],
                                ["--db", cli.db, "--json", "claim", "--agent", "w2", "--thread", th],
                                exe=INBOX)
        assert "Traceback" not in done.stderr + claim.stderr
        codes = (done.returncode, claim.returncode)
        outcomes.append(codes)
        thread = cli.ok("inbox", "show", "--thread", th)
        results = [m for m in thread["messages"] if m["kind"] == "result"]
        if codes == (0, 30):      # the late done landed first: its result stands, the claim sees a done thread
            assert json.loads(claim.stdout)["error"]["code"] == "invalid_state"
            assert thread["thread"]["status"] == "done" and len(results) == 1
        elif codes == (20, 0):    # the claim landed first: w2 owns it, w1's result was refused
            assert json.loads(done.stdout)["error"]["code"] == "lease_conflict"
            assert thread["thread"]["lease_owner"] == "w2" and results == []
            assert thread["thread"]["status"] == "claimed"
        else:
            raise AssertionError((codes, done.stdout, claim.stdout))
    assert inv.integrity(cli.db) == [] and inv.consistency(cli.db) == []
    print(f"\nlate done vs re-claim: {outcomes}")
