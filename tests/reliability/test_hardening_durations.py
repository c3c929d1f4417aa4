"""Issue 15, M1 and L10: every duration has a documented maximum (invalid_input above it, nothing
changed), and no row a worker can write stops the watcher: a bad row is skipped and said as an
event, and the pass goes on for every other attempt."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orch_console.console.runtime.watcher import Watcher
from orch_console.store import validate
from tests.conftest import Cli, db_snapshot


def _thread(cli: Cli, run: str, task: str) -> str:
    st = cli.ok("orch", "status", "--run", run)
    return [t for t in st["tasks"] if t["task_id"] == task][0]["latest_attempt"]["thread_id"]


@pytest.fixture
def dispatched(cli: Cli) -> str:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "analysis")
    return _thread(cli, "r", "T1")


# (0 or less is the default lease, 900 s, as the original CLI documents: tests/cli/test_contract.py)
@pytest.mark.parametrize("seconds", ["300000000000", "99999999999999", str(validate.MAX_LEASE_SECONDS + 1),
                                     "1e3", "nan"])
def test_m1_claim_lease_seconds_out_of_bounds_is_invalid_input(cli: Cli, dispatched: str, seconds: str) -> None:
    before = db_snapshot(cli.db)
    cli.err("inbox", "--agent", "w", "claim", "--thread", dispatched, "--lease-seconds", seconds,
            code="invalid_input", exit_code=30)
    assert db_snapshot(cli.db) == before


def test_m1_renew_lease_seconds_out_of_bounds_is_invalid_input(cli: Cli, dispatched: str) -> None:
    cli.ok("inbox", "--agent", "w", "claim", "--thread", dispatched)
    before = db_snapshot(cli.db)
    for bad in ("300000000000", str(validate.MAX_LEASE_SECONDS + 1)):
        cli.err("inbox", "--agent", "w", "renew", "--thread", dispatched, "--lease-seconds", bad,
                code="invalid_input", exit_code=30)
    assert db_snapshot(cli.db) == before
    # the maximum itself is accepted, and the lease is not stealable
    cli.ok("inbox", "--agent", "w", "renew", "--thread", dispatched, "--lease-seconds",
           str(validate.MAX_LEASE_SECONDS))
    cli.err("inbox", "--agent", "mallory", "claim", "--thread", dispatched, code="lease_conflict", exit_code=20)


@pytest.mark.parametrize("args", [
    ("orch", "wait", "--run", "r", "--for", "task_done", "--timeout-seconds", "nan"),
    ("orch", "wait", "--run", "r", "--for", "task_done", "--timeout-seconds", "inf"),
    ("orch", "wait", "--run", "r", "--for", "task_done", "--timeout-seconds", "1e12"),
    ("inbox", "wait-reply", "--thread", "THREAD", "--timeout-seconds", "1e12"),
    ("inbox", "--agent", "w", "watch", "--timeout-seconds", "nan"),
    ("orch", "verify", "run", "--run", "r", "--task", "T1", "--timeout-seconds", "1e12"),
    ("orch", "verify", "run", "--run", "r", "--task", "T1", "--timeout-seconds", "-1"),
])
def test_m1_timeouts_out_of_bounds_are_invalid_input(cli: Cli, dispatched: str, args: tuple[str, ...]) -> None:
    args = tuple(dispatched if a == "THREAD" else a for a in args)
    before = db_snapshot(cli.db)
    cli.err(args[0], *args[1:], code="invalid_input", exit_code=30)
    assert db_snapshot(cli.db) == before


def _raw(db: str, sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("bad", ["11533-07-17T00:00:00.000000Z", "not a time", "9999-99-99T99:99:99Z"])
def test_m1_a_bad_timestamp_row_never_stops_the_watcher(cli: Cli, bad: str) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    for t in ("T1", "T2"):
        cli.ok("orch", "task", "add", "--run", "r", "--task", t, "--title", t, "--default-to", "w")
        cli.ok("orch", "dispatch", "--run", "r", "--task", t, "--execution-mode", "analysis")
        cli.ok("inbox", "--agent", "w", "claim", "--thread", _thread(cli, "r", t))
    # a row as an older version (or a worker with raw access) could leave it; launched, so judged
    th1 = _thread(cli, "r", "T1")
    _raw(cli.db, "UPDATE threads SET lease_expires_at=? WHERE thread_id=?", (bad, th1))
    _raw(cli.db, "UPDATE attempts SET runtime='process', pid=NULL, started_at=? WHERE run_id='r'",
         ("2020-01-01T00:00:00.000000Z",))
    _raw(cli.db, "UPDATE attempts SET last_activity_at=? WHERE thread_id=?", (bad, th1))

    w = Watcher(cli.db, "r")
    try:
        w.tick(force_liveness=True)
        w.tick(force_liveness=True)
    finally:
        w.close()
    conn = sqlite3.connect(cli.db)
    try:
        evs = conn.execute("SELECT task_id, summary, payload_json FROM events WHERE event_type='watcher_bad_row'"
                           ).fetchall()
        liveness = dict(conn.execute("SELECT task_id, liveness FROM attempts").fetchall())
    finally:
        conn.close()
    # said once per bad column (two ticks), for the bad row only
    assert sorted((e[0], json.loads(e[2])["column"]) for e in evs) == [("T1", "last_activity_at"),
                                                                       ("T1", "lease_expires_at")]
    assert all(json.loads(e[2])["value"] == bad for e in evs)
    assert liveness["T2"] not in ("", "launching")   # the pass went on for the other attempt

    p = cli.orch("watch", "--once", "--run", "r")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["ok"] is True


def test_m1_parse_ts_is_total() -> None:
    assert validate.parse_ts("2026-01-01T00:00:00.5Z") == pytest.approx(1767225600.5)
    for bad in ("11533-07-17T00:00:00.000000Z", "garbage", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            validate.parse_ts(bad)
        assert validate.parse_ts_or(bad, -1.0) == -1.0


@pytest.mark.parametrize("key,value", [("stall_seconds", "1e300"), ("retry_backoff_max_seconds", "inf"),
                                       ("nudge_seconds", "nan"), ("check_timeout_seconds", "-3"),
                                       ("concurrency", "0"), ("max_attempts", "0"), ("runtime", "bogus"),
                                       ("execution_mode", "xx")])
def test_l10_run_config_values_are_validated(cli: Cli, key: str, value: str) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    before = db_snapshot(cli.db)
    cli.err("orch", "run", "config", "--run", "r", "--set", f"{key}={value}", code="invalid_input", exit_code=30)
    assert db_snapshot(cli.db) == before


def test_l10_run_config_accepts_sane_values(cli: Cli, tmp_path: Path) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "run", "config", "--run", "r", "--set", "stall_seconds=120", "--set", "runtime=tmux",
           "--set", "execution_mode=code", "--set", "concurrency=3", "--set", "attempt_timeout_seconds=0")
