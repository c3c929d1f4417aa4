"""Live refresh for the console: watchfiles on the database directory (the file and its -wal),
a `PRAGMA data_version` poll as the fallback (in the app's refresh thread, plus a slower one here
that owns the error banner), and the watcher engine's periodic pass. Each only *wakes* the one
refresh thread; a burst of commits costs one read."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from textual import work
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from orch_console.console.tui.app import OrchConsole

POLL_SECONDS = 0.1       # data_version fallback (measured: 6 µs per call)
WATCH_STEP_MS = 5        # watchfiles step: latency is step..2*step, see perf-reliability.md §2
# watchfiles keeps collecting while changes keep coming, up to the debounce: under a steady stream
# of commits (1,000/s) that bound *is* the latency, so it must stay well under the 50 ms target.
WATCH_DEBOUNCE_MS = 25
WATCH_STOP_CHECK_MS = 500  # how soon the watch thread notices the console closing
ENGINE_SECONDS = 1.0     # reconcile / lease expiry / liveness pass


class LiveMixin:
    """Mixed into the App; expects `data`, `db_path`, `request_refresh`, `run_id`."""

    def start_file_watch(self: OrchConsole) -> None:
        """watchfiles on the database's directory (the file and its -wal), in a plain thread whose
        every batch wakes the refresh thread directly: no hop through the UI thread, and the
        import (70-200 ms) happens off it. Without inotify, or without watchfiles, the refresh
        thread's own data_version poll keeps the board fresh on its own."""
        threading.Thread(target=self._watch_files, name="console-watchfiles", daemon=True).start()

    def _watch_files(self: OrchConsole) -> None:
        try:
            from watchfiles import watch
        except ImportError:
            return
        folder = os.path.dirname(os.path.abspath(self.db_path)) or "."
        names = {os.path.basename(self.db_path), os.path.basename(self.db_path) + "-wal"}

        def only_db(_change: Any, path: str) -> bool:
            return os.path.basename(path) in names

        try:
            for _ in watch(folder, watch_filter=only_db, step=WATCH_STEP_MS, debounce=WATCH_DEBOUNCE_MS,
                           recursive=False, stop_event=self._watch_stop, rust_timeout=WATCH_STOP_CHECK_MS,
                           raise_interrupt=False):
                self.files_watched = True
                self.wake_refresh()
        except (OSError, RuntimeError):
            pass  # no inotify here (or the folder went away): the poll carries on
        finally:
            self.files_watched = False

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False, description="poll data_version")
    def poll_data_version(self: OrchConsole) -> None:
        worker = get_current_worker()
        last: int | None = None
        failing = False
        while not worker.is_cancelled:
            try:
                dv = self.data.data_version()
                if failing:
                    failing = False
                    self.call_from_thread(self.recover)
                elif last is not None and dv != last:
                    self.call_from_thread(self.request_refresh)
                last = dv
            except Exception as exc:  # banner, not traceback; keep polling until it comes back
                from orch_console.console.tui.reader import error_text

                if not failing:
                    failing = True
                    self.call_from_thread(self.show_banner, error_text(exc))
                self.data.reset()
                last = None
                time.sleep(0.9)
            time.sleep(POLL_SECONDS)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, description="watcher engine")
    def run_engine(self: OrchConsole) -> None:
        """The watcher engine (console/watcher.py) on the open run: a pass per second, or at once
        when woken (autopilot switched on, say). It reads the run's config each pass, so `p`
        (run config `autopilot`) makes it dispatch and launch ready tasks. Re-made when another
        run is opened. Without the engine, the part the console cannot do without: reconcile and
        lease expiry."""
        worker = get_current_worker()
        engine: Any = None
        try:
            while not worker.is_cancelled:
                self.engine_wake.wait(ENGINE_SECONDS)
                self.engine_wake.clear()
                run_id = self.run_id
                if worker.is_cancelled or not run_id or not os.path.exists(self.db_path):
                    continue
                try:
                    if engine is None or engine.run_id != run_id:
                        if engine is not None:
                            engine.close()
                        engine = None
                        from orch_console.console.runtime.watcher import Watcher

                        engine = Watcher(self.db_path, run_id=run_id)
                    engine.tick()
                except ImportError:
                    self._reconcile_only(run_id)
                except Exception:  # a failed pass is retried next second; the banner comes from the poll
                    if engine is not None:
                        try:
                            engine.close()
                        except Exception:
                            pass
                    engine = None
        finally:
            if engine is not None:
                engine.close()

    def _reconcile_only(self: OrchConsole, run_id: str) -> None:
        from orch_console.store import inbox, views
        from orch_console.store.db import Store

        s = Store(self.db_path)
        try:
            views.reconcile(s, run_id=run_id, report=False)
            inbox.expire_leases(s)
        finally:
            s.close()
