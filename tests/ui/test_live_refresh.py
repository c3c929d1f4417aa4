"""LiveRefresh on its own: no App, no database, only the callbacks the board gives it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orch_console.store.board import Changes, TaskFilter
from orch_console.store.errors import StoreUnavailable

from orch_console.console.tui.messages import BoardChanged
from orch_console.console.tui.refresh import LiveRefresh, Refreshed, View


def eventually(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Rig:
    """Callbacks that record what LiveRefresh does; `events` is what the next read finds."""

    def __init__(self) -> None:
        self.failing: Exception | None = None
        self.version = 1
        self.view: View | None = View(gen=1, last_event_id=10, window=[], filter=TaskFilter())
        self.events: list[tuple[int, str]] = []
        self.reads: list[int] = []
        self.posted: list[BoardChanged] = []
        self.failures: list[str] = []
        self.recoveries = 0
        self.resets = 0
        self.lock = threading.Lock()

    def read_version(self) -> int:
        if self.failing is not None:
            raise self.failing
        return self.version

    def read(self, after: int, view: View) -> Refreshed:
        self.reads.append(after)
        new = [(eid, task) for eid, task in self.events if eid > after]
        ch = Changes(max([after] + [e for e, _ in new]), {t for _, t in new}, {"thread_update"} if new else set())
        return ch, None, [], None, None

    def recover(self) -> None:
        self.recoveries += 1

    def reset(self) -> None:
        self.resets += 1

    def refresher(self, **kw: Any) -> LiveRefresh:
        return LiveRefresh(version=self.read_version, read=self.read, view=lambda: self.view, post=self.posted.append,
                           on_failure=self.failures.append, on_recover=self.recover, reset=self.reset, **kw)


def test_a_request_reads_after_the_boards_cursor_and_posts_what_changed() -> None:
    rig = Rig()
    r = rig.refresher(live=False)
    try:
        rig.events = [(11, "t1"), (12, "t2")]
        r.request()
        eventually(lambda: rig.posted, "a BoardChanged")
        m = rig.posted[0]
        assert rig.reads == [10] and m.last_event_id == 12 and m.task_ids == {"t1", "t2"} and m.view_gen == 1
        r.request()   # nothing new: read from its own cursor, nothing posted
        eventually(lambda: len(rig.reads) == 2, "the second read")
        assert rig.reads[1] == 12 and len(rig.posted) == 1
        # The board replaced its view (a re-opened database counts lower): the cursor restarts there.
        rig.view = View(gen=2, last_event_id=3, window=[], filter=TaskFilter())
        rig.events = [(4, "t9")]
        r.request()
        eventually(lambda: len(rig.posted) == 2, "the read for the new view")
        assert rig.reads[2] == 3 and rig.posted[1].view_gen == 2
    finally:
        r.stop()


def test_nothing_is_read_while_no_run_is_open() -> None:
    rig = Rig()
    rig.view = None
    r = rig.refresher(live=False)
    try:
        r.request()
        eventually(lambda: r.started and not r.pending, "the wake taken")
        time.sleep(0.05)
        assert rig.reads == [] and rig.posted == []
    finally:
        r.stop()


def test_a_failing_database_is_reported_once_reset_each_try_and_recovered() -> None:
    rig = Rig()
    rig.failing = StoreUnavailable("no database at x.db")
    r = rig.refresher(live=False)
    try:
        r.request()
        eventually(lambda: rig.resets == 1, "the first failed try")
        r.request()
        eventually(lambda: rig.resets == 2, "the second failed try")
        assert rig.failures == ["no database at x.db"] and r.failing and rig.reads == []
        rig.failing = None
        r.request()
        eventually(lambda: rig.recoveries == 1, "the recovery")
        assert not r.failing and rig.reads == []   # the re-open reads everything itself
        assert rig.failures == ["no database at x.db"]
    finally:
        r.stop()


def test_live_polls_data_version_and_reads_when_it_moves() -> None:
    """No request at all: a commit (data_version moved) is enough."""
    rig = Rig()
    r = rig.refresher(live=True)   # no watch path: the poll alone
    try:
        r.start()
        eventually(lambda: len(rig.reads) >= 1, "the first poll's read")
        rig.events = [(11, "t1")]
        rig.version = 2
        eventually(lambda: rig.posted, "the change")
        assert rig.posted[0].task_ids == {"t1"}
    finally:
        r.stop()

