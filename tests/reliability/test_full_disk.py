"""A full disk: writes through both CLIs fail with a clear error (internal_error, exit 50, a message
saying there is no space; never a traceback), leave the database exactly as it was and intact, and
everything works again once there is room.

Two ways: a real size-limited file system (a 4 MB tmpfs mounted for the test, filled up with a
filler file; skipped if mount is not allowed), and a per-process file-size limit (RLIMIT_FSIZE with
SIGXFSZ ignored, so the write fails with EFBIG), which needs no privilege.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.store import Store, dispatch, inbox, runs
from tests.conftest import INBOX, ORCH, db_snapshot, git_env
from tests.reliability import invariants as inv

BIG = "z" * 900_000  # under the 1 MiB field cap, bigger than what is left


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a size-limited tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _seed(db: str) -> str:
    s = Store(db)
    runs.run_init(s, run_id="r1", goal="full disk")
    for t in ("t1", "t2", "t3"):
        runs.task_add(s, run_id="r1", task_id=t, title=f"task {t}", default_to="w1")
    th = dispatch.dispatch(s, run_id="r1", task_id="t1", execution_mode="analysis")["attempt"]["thread_id"]
    inbox.claim(s, agent="w1", thread_id=th)
    s.close()
    return th


def _fill(mnt: Path) -> Path:
    filler = mnt / "filler"
    # Unbuffered: a partial block left in a buffer would fail again when the file is closed.
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


BIG_FILE = Path(os.environ.get("TMPDIR", "/tmp")) / f"orch-full-disk-body-{os.getpid()}.txt"


def _writes(th: str) -> list[tuple[str, list[str]]]:
    if not BIG_FILE.exists():
        BIG_FILE.write_text(BIG)
    big = str(BIG_FILE)
    return [("inbox", ["update", "--agent", "w1", "--thread", th, "--status", "in_progress", "--summary", "big",
                       "--body-file", big]),
            ("inbox", ["send", "--from", "w1", "--to", "leader", "--subject", "note", "--body-file", big]),
            ("orch", ["task", "add", "--run", "r1", "--task", "t9", "--title", "new", "--spec-file", big]),
            ("inbox", ["done", "--agent", "w1", "--thread", th, "--summary", "finished", "--body-file", big])]


@pytest.fixture(autouse=True, scope="module")
def _big_file() -> Iterator[None]:
    yield
    BIG_FILE.unlink(missing_ok=True)


def _cli(exe: str, db: str, argv: list[str], as_json: bool = True, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([ORCH if exe == "orch" else INBOX, "--db", db] + (["--json"] if as_json else []) + argv,
                          capture_output=True, text=True, timeout=60, env=git_env(), **kw)


def _assert_disk_full(p: subprocess.CompletedProcess[str], what: str, also: tuple[str, ...] = ()) -> None:
    assert p.returncode == 50, (what, p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout, (what, p.stderr)
    if p.stdout.strip():
        err = json.loads(p.stdout)["error"]
        assert err["code"] == "internal_error", err
        msg = err["message"].lower()
    else:
        assert p.stderr.startswith("error (internal_error): "), p.stderr
        msg = p.stderr.lower()
    assert any(w in msg for w in ("no space", "disk is full", *also)), (what, msg)


def test_full_file_system(small_fs: Path) -> None:
    """The disk fills up while the system runs (a reader such as the console or the watcher holds the
    database open, so its -wal and -shm files exist)."""
    db = str(small_fs / "coord.db")
    th = _seed(db)
    keeper = inv.connect(db)
    keeper.execute("SELECT count(*) FROM tasks").fetchone()
    filler = _fill(small_fs)
    before = db_snapshot(db)
    for exe, argv in _writes(th):
        p = _cli(exe, db, argv)
        _assert_disk_full(p, f"{exe} {argv[0]}")
        assert db_snapshot(db) == before, argv[0]
    exe, argv = _writes(th)[0]
    _assert_disk_full(_cli(exe, db, argv, as_json=False), "update, text mode")
    # reads still answer on a full disk
    p = _cli("orch", db, ["status", "--run", "r1"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert inv.integrity(db) == [] and inv.consistency(db) == []
    # room again: the same commands now succeed, in order, and the database is sound
    filler.unlink()
    for exe, argv in _writes(th):
        p = _cli(exe, db, argv)
        assert p.returncode == 0, (argv[0], p.stdout[-500:], p.stderr[-500:])
    assert inv.integrity(db) == [] and inv.consistency(db) == []
    status = json.loads(_cli("orch", db, ["status", "--run", "r1"]).stdout)["data"]
    assert {t["task_id"]: t["status"] for t in status["tasks"]}["t1"] == "done"
    keeper.close()


def test_full_file_system_cold_start_says_disk_full(small_fs: Path) -> None:
    """The disk is full and nothing holds the database open: every command fails (even a read cannot
    make the -shm file), and the message must say why."""
    db = str(small_fs / "coord.db")
    th = _seed(db)
    filler = _fill(small_fs)
    try:
        for exe, argv in [("orch", ["status", "--run", "r1"]), _writes(th)[0]]:
            _assert_disk_full(_cli(exe, db, argv), f"{exe} {argv[0]} on a full disk, cold")
    finally:
        filler.unlink()
    assert inv.integrity(db) == []
    assert _cli("orch", db, ["status", "--run", "r1"]).returncode == 0


def _limit_fsize(limit: int):  # type: ignore[no-untyped-def]
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_file_size_limit(tmp_path: Path) -> None:
    db = str(tmp_path / "coord.db")
    th = _seed(db)
    size = max(os.path.getsize(db), os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
    limit = size + 200_000  # any file growing past this fails with EFBIG
    before = db_snapshot(db)
    for exe, argv in _writes(th):
        p = _cli(exe, db, argv, preexec_fn=_limit_fsize(limit))
        # EFBIG reaches SQLite as SQLITE_IOERR_WRITE: the disk is not full, an I/O error is the honest message
        _assert_disk_full(p, f"{exe} {argv[0]} under RLIMIT_FSIZE", also=("i/o error",))
        assert db_snapshot(db) == before, argv[0]
    assert inv.integrity(db) == [] and inv.consistency(db) == []
    for exe, argv in _writes(th):
        p = _cli(exe, db, argv)
        assert p.returncode == 0, (argv[0], p.stdout[-500:], p.stderr[-500:])
    assert inv.integrity(db) == [] and inv.consistency(db) == []
