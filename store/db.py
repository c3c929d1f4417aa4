"""The connection policy: one place that opens the SQLite file and runs every write.

Rules (DESIGN.md section 2): WAL, synchronous FULL unless ORCH_SYNC=normal, a long busy timeout,
autocommit mode with an explicit BEGIN IMMEDIATE for every write transaction, and an
application-level retry with jitter on SQLITE_BUSY. Reads never leave a cursor unfinished, so no
read snapshot outlives the call that made it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import _thread  # its RLock, without importing threading (a few ms of every CLI call)
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import InvalidInput, OrchError, StoreUnavailable
from .schema import ensure_schema

T = TypeVar("T")

DEFAULT_DB = ".agents/coord.db"
BUSY_TIMEOUT_MS = 15_000
# On top of SQLite's own busy handler: how long we keep retrying a write that still sees BUSY.
WRITE_RETRY_SECONDS = 60.0
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
AUTOCHECKPOINT_PAGES = JOURNAL_SIZE_LIMIT // 4096
# A backstop under the 1 MiB per-field cap enforced in validate.py.
SQLITE_LENGTH_LIMIT = 8 * 1024 * 1024


def _back_off(delay: float) -> float:
    """Sleep about `delay` (jittered) after SQLITE_BUSY; returns the next, doubled, delay."""
    import random  # only when a write meets SQLITE_BUSY; not at start-up

    time.sleep(delay * (0.5 + random.random()))
    return min(delay * 2, 0.25)


def default_db_path() -> str:
    return os.environ.get("ORCH_DB") or DEFAULT_DB


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def translate(exc: sqlite3.Error, path: str) -> OrchError:
    """Turn a sqlite3 failure into an error a person can act on."""
    text = str(exc)
    low = text.lower()
    if "file is not a database" in low or "malformed" in low or "not a database" in low:
        return StoreUnavailable(f"{path} is not a usable orch database ({text})")
    if "readonly" in low or "read-only" in low:
        return StoreUnavailable(f"{path} is read-only: cannot write ({text})")
    if "disk is full" in low or "database or disk is full" in low:
        return StoreUnavailable(f"no space left to write {path}; nothing was changed ({text})")
    if "unable to open" in low or "disk i/o" in low:
        # SQLite cannot tell why it failed to create the -wal/-shm files; the file system can.
        if _disk_full(path):
            return StoreUnavailable(f"no space left on the file system of {path}; nothing was changed ({text})")
        if _read_only(path):
            return StoreUnavailable(f"{path} is on a read-only file system or in a directory we cannot write "
                                    f"(SQLite needs to write its -wal and -shm files beside it) ({text})")
        if "unable to open" in low:
            return StoreUnavailable(f"cannot open database {path} ({text})")
        return StoreUnavailable(f"I/O error on {path} ({text})")
    if "too big" in low:
        return InvalidInput(f"value too large to store ({text})")
    if _is_busy(exc):
        return StoreUnavailable(f"database {path} stayed locked; try again ({text})")
    return StoreUnavailable(f"database error on {path}: {text}")


def _disk_full(path: str) -> bool:
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _read_only(path: str) -> bool:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(directory, os.W_OK)


class Store:
    """One open SQLite connection with the project's policy applied."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, sync: str | None = None,
                 migrate: bool = True, create_dirs: bool | None = None) -> None:
        """create_dirs: make a missing parent directory. By default only for the default path
        (`.agents/`); a mistyped explicit --db in a directory that does not exist is an error, not
        a new empty database somewhere unexpected."""
        self.path = str(path or default_db_path())
        parent = os.path.dirname(os.path.abspath(self.path))
        if os.path.isdir(self.path):
            raise InvalidInput(f"--db {self.path} is a directory, not a database file")
        if not os.path.exists(parent):
            if create_dirs is None:
                create_dirs = path is None and not os.environ.get("ORCH_DB")
            if not create_dirs:
                raise InvalidInput(f"directory {parent} does not exist (for a new database there, "
                                       f"run `inbox --db {self.path} init`)")
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create {parent}: {exc.strerror}") from exc
        sync = (sync or os.environ.get("ORCH_SYNC") or "full").lower()
        if sync not in ("full", "normal", "extra"):
            raise InvalidInput(f"ORCH_SYNC must be full, normal or extra, not {sync!r}")
        self.sync = sync
        # synchronous=FULL would fsync the WAL inside COMMIT, while this writer holds the write
        # lock, so every other writer waits for the disk too. Instead FULL runs the connection at
        # NORMAL and fsyncs the WAL itself right after COMMIT, outside the lock, before the call
        # returns: an acknowledged commit is as durable as with FULL, and writers that commit in
        # the meantime share one flush (group commit). See sync_after_commit().
        self._sync_after_commit = sync == "full"
        self._synced_wal_ino: int | None = None
        self._lock_fd: int | None = None
        # threads sharing one Store take turns (flock alone does not order threads of one fd)
        self._thread_lock = _thread.RLock()
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                        check_same_thread=False)
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_LENGTH_LIMIT)
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute(f"PRAGMA synchronous={'NORMAL' if sync == 'full' else sync.upper()}")
            self.conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            # Checkpoints belong to the watcher (RESTART past 64 MB); a writer only checkpoints as a
            # safety net at the same size, instead of every 1,000 pages inside some worker's COMMIT.
            self.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            if migrate:
                ensure_schema(self.conn, self.path)
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            self.conn.close()
            raise translate(exc, self.path) from exc
        except BaseException:
            self.conn.close()
            raise

    # -- reads ------------------------------------------------------------------------------
    def all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def data_version(self) -> int:
        """Changes whenever another connection commits; cheap enough to poll."""
        return int(self.scalar("PRAGMA data_version"))

    # -- writes -----------------------------------------------------------------------------
    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn inside BEGIN IMMEDIATE ... COMMIT, retrying the whole body on SQLITE_BUSY.

        fn must be safe to re-run: it only touches the database through the connection given.
        An OrchError raised by fn rolls the transaction back and propagates unchanged.

        Writers of this file first queue on a blocking advisory lock (the write turn). SQLite's
        busy handler makes waiting writers sleep-poll (up to 100 ms a try, no order), so under
        contention the lock sits idle while a starved writer waits seconds; a kernel lock queue
        hands the turn over at once. The OS drops it if the holder dies; a writer that does not
        take it (the sqlite3 shell) still meets the busy timeout, so it only adds order. (Inline
        rather than a context manager: this is every write's hot path.)
        """
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        with self._thread_lock:  # threads sharing one Store take turns (flock does not order them)
            fd = self._lock_fd if self._lock_fd is not None else self._open_write_lock()
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                before = self.conn.total_changes
                result = self._write_locked(fn, deadline, 0.002)
                changed = self.conn.total_changes != before
            finally:
                if fd >= 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        if changed and self._sync_after_commit:
            self.sync_after_commit()
        return result

    def _open_write_lock(self) -> int:
        try:
            self._lock_fd = os.open(self.path + ".write-lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            self._lock_fd = -1  # read-only directory: fall back to SQLite's own locking
        return self._lock_fd

    def sync_after_commit(self) -> None:
        """Make every commit so far durable: fdatasync the WAL (and, the first time for a new WAL
        file, its directory, so the file itself survives a power cut). Frames are appended in
        commit order and recovery replays a prefix of them, so one flush covers this writer's
        commit and every earlier one; a reader may see a commit a few hundred microseconds before
        it is on disk, but no caller is told it succeeded before it is. When SQLite checkpoints,
        it syncs the WAL and the database file itself."""
        wal = self.path + "-wal"
        try:
            fd = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:
            wal, fd = self.path, os.open(self.path, os.O_RDONLY)  # not (or no longer) in WAL mode
        except OSError as exc:
            raise StoreUnavailable(f"the change to {self.path} was written but could not be flushed to "
                                   f"disk: {exc.strerror}") from exc
        try:
            os.fdatasync(fd)
            ino = os.fstat(fd).st_ino
            if ino != self._synced_wal_ino:
                dfd = os.open(os.path.dirname(os.path.abspath(wal)) or ".", os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
                self._synced_wal_ino = ino
        except OSError as exc:
            raise StoreUnavailable(f"the change to {self.path} was written but the disk did not confirm it "
                                   f"(fsync: {exc.strerror})") from exc
        finally:
            os.close(fd)

    def _write_locked(self, fn: Callable[[sqlite3.Connection], T], deadline: float, delay: float) -> T:
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    delay = _back_off(delay)
                    continue
                raise translate(exc, self.path) from exc
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
            try:
                result = fn(self.conn)
                self.conn.execute("COMMIT")
                return result
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc) \
                        and time.monotonic() < deadline:
                    delay = _back_off(delay)
                    continue
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path) from exc
                raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent multi-query read. Held only for the with-block, never between refreshes."""
        try:
            self.conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        try:
            yield self.conn
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        finally:
            self._rollback()

    def checkpoint(self, mode: str = "RESTART", *, wait_ms: int = 200) -> tuple[int, int, int]:
        """(busy, wal pages, pages checkpointed). Waits at most wait_ms for readers and writers:
        a checkpoint that cannot run now is retried on the watcher's next pass, rather than
        stalling that pass for the whole busy timeout."""
        if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise ValueError(f"unknown checkpoint mode {mode}")
        self.conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            row = self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc
        finally:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return tuple(row)

    def wal_size(self) -> int:
        try:
            return os.path.getsize(self.path + "-wal")
        except OSError:
            return 0

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass
        if self._lock_fd is not None and self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str | os.PathLike[str] | None = None, **kw: Any) -> Store:
    return Store(path, **kw)
