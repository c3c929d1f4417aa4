"""Live refresh for the board: one long-lived thread reads what changed and hands it over.

What wakes it: watchfiles on the database's directory (the file and its -wal, in a thread of its
own whose loop is blocking Rust), and `request()` (timers, leader actions). It also reads
`PRAGMA data_version` itself (a few µs, no I/O): as the fallback when idle, more often while no
file watch delivers (no inotify, say), and every ACTIVE_POLL_SECONDS while commits keep coming,
since watchfiles batches a steady stream up to its debounce, which would then be the latency. A
burst of commits costs one read.

That same `data_version` read is how it notices the database failing (missing, locked, corrupt)
and coming back. It reports both through callbacks and retries every FAILING_RETRY_SECONDS in
between; there is no second poller.

`LiveRefresh` is a plain object over callbacks, so it runs and can be tested without an App. The
board screen supplies the reads, its current view and what to do with the results.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orch_console.console.tui.messages import BoardChanged
from orch_console.console.tui.reader import error_text
from orch_console.store.models import Changes, Header, Page, TaskFilter, TaskRow

IDLE_POLL_SECONDS = 0.1            # data_version fallback while watchfiles delivers (6 µs per call)
IDLE_POLL_UNWATCHED_SECONDS = 0.02  # ... while it does not (no inotify, no watchfiles)
ACTIVE_POLL_SECONDS = 0.008        # while commits keep coming
FAILING_RETRY_SECONDS = 1.0        # while the database fails ("retrying every second", says the banner)
WATCH_STEP_MS = 5        # watchfiles step: latency is step..2*step, see perf-reliability.md §2
# watchfiles keeps collecting while changes keep coming, up to the debounce: under a steady stream
# of commits (1,000/s) that bound *is* the latency, so it must stay well under the 50 ms target.
WATCH_DEBOUNCE_MS = 25
WATCH_STOP_CHECK_MS = 500  # how soon the watch thread notices the console closing


@dataclass(frozen=True)
class View:
    """What the board shows, taken by the refresh thread before each read."""

    gen: int                 # bumped whenever the board's run, window or filter is replaced
    last_event_id: int       # the newest event the board has applied
    window: list[TaskRow]    # the rows the task table holds
    filter: TaskFilter


# What a read returns: the changes, and the header, rows, window and blocked list they touched.
Refreshed = tuple[Changes, Header | None, list[TaskRow], Page | None, list[dict[str, Any]] | None]


class LiveRefresh:
    """The board's refresh thread and its file watch.

    version: `PRAGMA data_version` on the reader (raises while the database fails).
    read: the events after a cursor and what they touched, for a view (ConsoleData.refresh).
    view: what the board shows now, called from the refresh thread; None while no run is open.
    post: receives each `BoardChanged` (from the refresh thread: must be thread-safe).
    on_failure: the database or a read failed, with the reason (once per failure, from the thread).
    on_recover: the database answers again after failing (from the thread): re-open the run.
    reset: drop the reader's connection after a failure, so the next try opens afresh.
    live: poll and watch files; without it (tests, screenshots) only `request()` refreshes.
    watch: the database path whose directory watchfiles watches (None: no file watch).
    """

    def __init__(self, *, version: Callable[[], int], read: Callable[[int, View], Refreshed],
                 view: Callable[[], View | None], post: Callable[[BoardChanged], object],
                 on_failure: Callable[[str], None], on_recover: Callable[[], None],
                 reset: Callable[[], None] = lambda: None, live: bool = True, watch: str | None = None) -> None:
        self._version, self._read, self._view, self._post = version, read, view, post
        self._on_failure, self._on_recover, self._reset = on_failure, on_recover, reset
        self.live = live
        self._watch_path = watch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.files_watched = False   # set by the watch thread once watchfiles delivers
        self.failing = False         # the last data_version read failed

    # -- control (any thread) ----------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def pending(self) -> bool:
        """A wake the refresh thread has not taken yet."""
        return self._wake.is_set()

    def start(self) -> None:
        """Start the refresh thread (and, when live and given a path, the file watch); idempotent."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, name="console-refresh", daemon=True)
            self._thread.start()
            if self.live and self._watch_path is not None:
                # The import of watchfiles (70-200 ms) happens in that thread, off the UI thread.
                threading.Thread(target=self._watch_files, name="console-watchfiles", daemon=True).start()

    def request(self) -> None:
        """Ask for a refresh. Requests while one runs cause exactly one more."""
        if self._stop.is_set():
            return
        self._wake.set()
        self.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- the threads ---------------------------------------------------------------------------
    def _timeout(self, active: bool) -> float | None:
        if not self.live:
            return None
        if self.failing:
            return FAILING_RETRY_SECONDS
        if active:
            return ACTIVE_POLL_SECONDS
        return IDLE_POLL_SECONDS if self.files_watched else IDLE_POLL_UNWATCHED_SECONDS

    def _loop(self) -> None:
        cursor = 0
        seen_gen = -1
        seen_version: int | None = None
        active = False
        while not self._stop.is_set():
            woken = self._wake.wait(self._timeout(active))
            if self._stop.is_set():
                return
            try:
                version = self._version()
            except Exception as exc:  # banner, not traceback; keep trying until it comes back
                self._wake.clear()
                if not self.failing:
                    self.failing = True
                    self._on_failure(error_text(exc))
                self._reset()
                seen_version, active = None, False
                continue
            if self.failing:
                # The re-open reads everything (what a wake asked for included); the polls that
                # follow, or the next request, read what comes after it.
                self._wake.clear()
                self.failing = False
                seen_version, active = version, False
                self._on_recover()
                continue
            if not woken and version == seen_version:
                active = False
                continue
            self._wake.clear()
            view = self._view()
            if view is None:   # no run open: nothing to read (a re-open comes through on_recover)
                seen_version, active = version, False
                continue
            if view.gen != seen_gen:
                # Start from what the board has applied (a re-opened database may count lower).
                cursor, seen_gen = 0, view.gen
            try:
                ch, header, rows, page, blocked = self._read(max(cursor, view.last_event_id), view)
            except Exception as exc:
                self._on_failure(error_text(exc))
                active = False
                continue
            seen_version = version
            cursor = max(cursor, ch.last_event_id)
            active = not ch.empty
            if not ch.empty or ch.task_ids:
                self._post(BoardChanged(ch.last_event_id, header, rows, page, blocked, ch.task_ids, ch.alerts,
                                        view_gen=view.gen))

    def _watch_files(self) -> None:
        """Every watchfiles batch wakes the refresh thread directly, with no hop through the UI
        thread. Without inotify, or without watchfiles, the data_version poll carries on alone."""
        try:
            from watchfiles import watch  # deferred: 70-200 ms, paid in this thread
        except ImportError:
            return
        assert self._watch_path is not None
        folder = os.path.dirname(os.path.abspath(self._watch_path)) or "."
        names = {os.path.basename(self._watch_path), os.path.basename(self._watch_path) + "-wal"}

        def only_db(_change: Any, path: str) -> bool:
            return os.path.basename(path) in names

        try:
            for _ in watch(folder, watch_filter=only_db, step=WATCH_STEP_MS, debounce=WATCH_DEBOUNCE_MS,
                           recursive=False, stop_event=self._stop, rust_timeout=WATCH_STOP_CHECK_MS,
                           raise_interrupt=False):
                self.files_watched = True
                self._wake.set()
        except (OSError, RuntimeError):
            pass  # no inotify here (or the folder went away): the poll carries on
        finally:
            self.files_watched = False
