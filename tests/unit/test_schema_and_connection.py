"""The connection policy and the migrations, on real SQLite files."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orch_console.store import InvalidInput, Store, StoreUnavailable
from orch_console.store.schema import SCHEMA_VERSION


def test_new_database_is_wal_with_schema_version(db_path: str) -> None:
    s = Store(db_path)
    assert s.scalar("PRAGMA journal_mode") == "wal"
    assert s.scalar("PRAGMA user_version") == SCHEMA_VERSION
    assert s.scalar("PRAGMA foreign_keys") == 1
    assert s.scalar("PRAGMA busy_timeout") >= 10_000
    names = [r[0] for r in s.all("SELECT name FROM _sqlite_migrations WHERE migration_set='orch' ORDER BY id")]
    assert names[0] == "m001_initial" and len(names) == SCHEMA_VERSION
    s.close()


def test_full_durability_by_default_and_normal_on_request(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """FULL (the default) flushes the WAL after every write that changed something, before the
    call returns, outside the write lock; the WAL's directory once per WAL file. NORMAL does not."""
    import os

    from orch_console.store import runs

    flushed: list[str] = []
    under_lock: list[bool] = []
    real_fdatasync, real_fsync = os.fdatasync, os.fsync
    opened: list[Store] = []

    def fdatasync(fd: int) -> None:
        flushed.append("data:" + os.readlink(f"/proc/self/fd/{fd}"))
        under_lock.append(opened[-1]._thread_lock._is_owned())
        real_fdatasync(fd)

    def fsync(fd: int) -> None:
        flushed.append("dir:" + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.delenv("ORCH_SYNC", raising=False)
    with Store(db_path) as s:
        opened.append(s)
        assert s.sync == "full"
        flushed.clear()
        runs.run_init(s, run_id="r", goal="g")
        assert flushed == [f"data:{db_path}-wal", f"dir:{os.path.dirname(db_path)}"]
        runs.task_add(s, run_id="r", task_id="a", title="t")
        assert flushed[2:] == [f"data:{db_path}-wal"]              # the directory only once
        assert under_lock and not any(under_lock)                   # flushed after the lock
        s.write(lambda conn: conn.execute("SELECT 1").fetchall())   # nothing changed: no flush
        assert len(flushed) == 3
    monkeypatch.setenv("ORCH_SYNC", "normal")
    with Store(db_path) as s:
        assert s.scalar("PRAGMA synchronous") == 1  # NORMAL
        flushed.clear()
        runs.task_add(s, run_id="r", task_id="b", title="t")
        assert flushed == []


def test_reopening_does_not_migrate_again(db_path: str) -> None:
    Store(db_path).close()
    with Store(db_path) as s:
        assert s.scalar("SELECT count(*) FROM _sqlite_migrations") == SCHEMA_VERSION


def _open(path: str, results: "mp.Queue[str]") -> None:
    import traceback

    try:
        Store(path).close()
        results.put("ok")
    except BaseException:
        results.put(traceback.format_exc())


def test_concurrent_first_open_migrates_once(db_path: str) -> None:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(db_path, results)) for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    assert outcomes == ["ok"] * len(procs), [o for o in outcomes if o != "ok"][0]
    with Store(db_path) as s:
        assert s.scalar("SELECT count(*) FROM _sqlite_migrations") == SCHEMA_VERSION


def test_failed_write_rolls_back_everything(store: Store) -> None:
    def tx(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO runs (run_id, goal, created_at, updated_at) VALUES ('r','g','t','t')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.write(tx)
    assert store.scalar("SELECT count(*) FROM runs") == 0
    assert not store.conn.in_transaction


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable, match="not a usable orch database"):
        Store(str(bad))


def test_directory_as_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="directory"):
        Store(str(tmp_path))


def test_status_enums_are_enforced_by_the_schema(store: Store) -> None:
    store.write(lambda c: c.execute("INSERT INTO runs (run_id, goal, created_at, updated_at) VALUES ('r','g','t','t')"))
    with pytest.raises(Exception):
        store.write(lambda c: c.execute("UPDATE runs SET status='exploded' WHERE run_id='r'"))
    assert store.scalar("SELECT status FROM runs") == "active"


def test_store_imports_no_ui_packages() -> None:
    code = ("import sys, pkgutil, importlib\nimport orch_console.store as store\n"
            "for m in pkgutil.walk_packages(store.__path__, 'orch_console.store.'): importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual','rich') or "
            "m.startswith(('orch_console.console', 'orch_console.widgets', 'orch_console.themes'))]\n"
            "assert not bad, bad\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_cli_json_path_imports_no_textual(tmp_path: Path) -> None:
    code = ("import sys\nfrom orch_console.console.cli import orch, inbox\n"
            f"orch.main(['--db', {str(tmp_path / 'c.db')!r}, '--json', 'run', 'list'])\n"
            f"inbox.main(['--db', {str(tmp_path / 'c.db')!r}, '--json', 'list'])\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'git')]\n"
            "assert not bad, bad\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_explicit_db_in_missing_directory_is_an_error_but_init_creates_it(tmp_path: Path) -> None:
    from tests.conftest import INBOX, ORCH

    target = tmp_path / "no" / "such" / "coord.db"
    p = subprocess.run([ORCH, "--db", str(target), "--json", "run", "list"], capture_output=True, text=True)
    assert p.returncode == 30 and "does not exist" in p.stdout and not target.parent.exists()
    p = subprocess.run([INBOX, "--db", str(target), "--json", "init"], capture_output=True, text=True)
    assert p.returncode == 0 and target.exists()


def test_checkpoint_does_not_wait_out_the_busy_timeout(db_path: str) -> None:
    import time

    store = Store(db_path)
    store.write(lambda c: c.execute("INSERT INTO meta (key, value) VALUES ('a', 'b')"))
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock a RESTART needs
    start = time.monotonic()
    busy, _log, _done = store.checkpoint("RESTART")
    assert busy == 1 and time.monotonic() - start < 2.0
    assert store.scalar("PRAGMA busy_timeout") >= 10_000
    other.execute("ROLLBACK")
    other.close()
    store.close()


def test_timestamps_are_right_across_seconds_and_going_back() -> None:
    """now_ts reuses the formatted second; it must not reuse it for another second."""
    import time

    from orch_console.store.validate import now_ts

    for t in (1e9 + 0.25, 1e9 + 0.999999, 1e9 + 1.0, 1e9 + 1.5, 1e9 + 0.5, 1763700000.000001, 59.0, 60.0):
        whole = int(t)
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1e6):06d}Z"
        assert now_ts(t) == want


def test_a_written_message_is_returned_as_stored(store: Store) -> None:
    """add_message builds its result without reading the row back: it must equal the stored row."""
    from orch_console.store import inbox

    out = inbox.send(store, from_agent="lead", to_agent="w1", subject="s", summary="ünïcode ✓",
                     body="line 1\nline 2 \x00 end", payload_json='{"k": [1, "é"]}')
    m = out["message"]
    stored = dict(store.one("SELECT * FROM messages WHERE message_id=?", (m["message_id"],)))
    assert {k: m[k] for k in stored} == stored
    assert m["payload"] == {"k": [1, "é"]}
    assert m["artifacts"] == []
