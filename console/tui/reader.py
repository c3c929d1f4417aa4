"""The console's reader: one SQLite connection, used only from thread workers and serialised by a
lock, holding the Board read model of the open run. Nothing here touches widgets; results go back
to the UI thread as messages.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from orch_console.store import attention
from orch_console.store.board import Board, last_event_id
from orch_console.store.db import Store
from orch_console.store.errors import NotFound, OrchError, StoreUnavailable
from orch_console.store.models import Changes, Header, Page, TaskFilter, TaskRow
from orch_console.store.runs import latest_run, run_exists
from orch_console.store.states import ATTENTION_EVENTS

LIVENESS_POLL_SECONDS = 0.5   # attempts.liveness changes carry no event: look for them this often

# Event types after which the attention queue (the blocked pane) can differ. A worker's progress update
# (thread_update) only matters for a task already in the list (a second question while blocked):
# a task becoming or ceasing to be blocked always comes with one of these task events.
BLOCKED_EVENTS = frozenset({"task_blocked", "task_answered", "task_running", "task_failed", "task_done",
                            "task_cancelled", "task_dispatched", "thread_result", "task_verifying", "run_cancelled",
                            "run_created", "approval_requested", "approval_decided",
                            "approval_expired"}) | ATTENTION_EVENTS
# Events that change nothing the header shows (counts, run status, autopilot, waves, attention):
# the stream of worker progress. A burst of them costs the rows they touch and nothing more.
QUIET_EVENTS = frozenset({"thread_update", "thread_message", "thread_reply", "lease_renewed", "thread_created",
                          "thread_claim", "attempt_nudged", "attempt_input_sent", "attempt_launched"})


class ConsoleData:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.lock = threading.Lock()
        self._store: Store | None = None
        self.board: Board | None = None
        self._liveness_seen = ""          # newest attempts.liveness_at already applied
        self._next_liveness = 0.0
        self._blocked_ids: set[str] = set()
        self._closed = False

    # -- connection ------------------------------------------------------------------------
    def store(self) -> Store:
        """The reader connection, opened on first use. A missing file is an error, not a new
        empty database: the console must not create databases as a side effect."""
        if self._store is None:
            if self._closed:
                raise StoreUnavailable("the console has closed its reader")
            if not os.path.exists(self.db_path):
                raise StoreUnavailable(f"no database at {self.db_path} (create one with `orch run init` "
                                       f"or pass --db)")
            self._store = Store(self.db_path)
        return self._store

    def reset(self) -> None:
        with self.lock:
            if self._store is not None:
                self._store.close()
            self._store = None
            self.board = None

    def close(self) -> None:
        """For good: a thread still running afterwards gets StoreUnavailable, not a new connection."""
        self._closed = True
        self.reset()

    def data_version(self) -> int:
        with self.lock:
            return self.store().data_version()

    # -- reads -----------------------------------------------------------------------------
    def pick_run(self, run_id: str | None) -> str:
        with self.lock:
            s = self.store()
            if run_id:
                if not run_exists(s, run_id):
                    raise NotFound(f"run {run_id} not found in {self.db_path}")
                return run_id
            r = latest_run(s)
            if r is None:
                raise NotFound(f"{self.db_path} has no runs yet (create one with `orch run init`)")
            return str(r["run_id"])

    def open(self, run_id: str, f: TaskFilter, *, limit: int, select: str | None = None
             ) -> tuple[Header, Page, list[dict[str, Any]], int]:
        with self.lock:
            s = self.store()
            cursor = last_event_id(s)  # read first: events after it are replayed, never missed
            self.board = b = Board(s, run_id, defer_waves=True)
            b.refresh_attention()
            self._liveness_seen = b.newest_liveness_at()
            page = b.quick_first_page(limit) if f == TaskFilter() and not select else None
            if page is None:
                b.rebuild_waves()
                page = (b.locate(select, f, limit=limit) if select else None) or b.page(f, limit=limit)
            return b.header(), page, self._blocked(), cursor

    def finish_waves(self) -> Header | None:
        """After a quick first paint: compute the waves, return the header with wave progress.
        The plan is read and levelled on a connection of its own, so the live refresh keeps
        going meanwhile; only the TEMP table swap holds the reader."""
        with self.lock:
            b = self.board
            if b is None or b.waves_ready:
                return None
            run_id = b.run_id
        side = Store(self.db_path)
        try:
            waves, blob = Board.read_waves(side, run_id)
        finally:
            side.close()
        with self.lock:
            if self.board is not b or b.waves_ready:
                return None
            b.apply_waves(waves, blob)
            return b.header()

    def _blocked(self) -> list[dict[str, Any]]:
        assert self.board is not None
        found = attention.queue(self.board.store, run_id=self.board.run_id)["items"]
        self._blocked_ids = {b["task_id"] for b in found}
        return found

    def page(self, f: TaskFilter, *, after: Any = None, before: Any = None, last: bool = False,
             limit: int) -> Page:
        with self.lock:
            b = self._need_board()
            return b.last_page(f, limit=limit) if last else b.page(f, after=after, before=before, limit=limit)

    def locate(self, task_id: str, f: TaskFilter, *, limit: int) -> Page | None:
        with self.lock:
            return self._need_board().locate(task_id, f, limit=limit)

    def _need_board(self) -> Board:
        if self.board is None:
            raise StoreUnavailable("no run is open")
        if not self.board.waves_ready:
            self.board.rebuild_waves()
        return self.board

    def refresh(self, after_event: int, *, window: list[TaskRow], f: TaskFilter, limit: int
                ) -> tuple[Changes, Header | None, list[TaskRow], Page | None, list[dict[str, Any]] | None]:
        """Read the events after `after_event` and only what they touched."""
        with self.lock:
            b = self.board
            if b is None:
                raise StoreUnavailable("no run is open")
            ch = b.changes_since(after_event)
            judged = self._liveness_changes(b)
            ch.task_ids |= judged
            if ch.empty and not ch.task_ids:
                return ch, None, [], None, None
            # store.runtime.attention counts a prompt only once its liveness verdict is written,
            # which the watcher commits after the event: re-read on either.
            if ch.types & ATTENTION_EVENTS or judged:
                b.refresh_attention()
            if ch.structure or (not b.waves_ready and (f != TaskFilter() or not window)):
                b.rebuild_waves()
            header = b.header() if (ch.types - QUIET_EVENTS) or judged else None
            blocked = self._blocked() if ch.types & BLOCKED_EVENTS or ch.structure \
                or (ch.task_ids & self._blocked_ids) else None
            in_window = {r.task_id for r in window}
            rows: list[TaskRow] = []
            page: Page | None = None
            if ch.structure or f != TaskFilter() or not window:
                # Membership or order may have changed: re-read the same window from its first key.
                start = None
                if window:
                    prev = b.page(f, before=window[0].key, limit=1).rows
                    start = prev[0].key if prev else None
                page = b.page(f, after=start, limit=limit)
            elif ch.task_ids & in_window:
                rows = b.rows_for(ch.task_ids & in_window)
            return ch, header, rows, page, blocked

    def _liveness_changes(self, b: Board) -> set[str]:
        """Tasks whose live attempt got a new liveness verdict (the watcher writes those without an
        event). At most every LIVENESS_POLL_SECONDS; an indexed read of the live attempts only."""
        now = time.monotonic()
        if now < self._next_liveness:
            return set()
        self._next_liveness = now + LIVENESS_POLL_SECONDS
        tasks, self._liveness_seen = b.liveness_changes_since(self._liveness_seen)
        return tasks


def error_text(exc: BaseException) -> str:
    if isinstance(exc, OrchError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
