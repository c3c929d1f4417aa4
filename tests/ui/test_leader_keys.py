"""LeaderKeys over a stand-in host: the key flows' choices, without an App."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from orch_console.console.tui.config import ConsoleConfig
from orch_console.console.tui.keys import LeaderHost, LeaderKeys
from orch_console.store.board import TaskFilter


class FakeHost:
    """Records what the flows ask of the board; runs 'workers' inline."""

    def __init__(self, run_id: str | None = "r1", selected: str | None = None,
                 blocked: list[dict[str, Any]] | None = None) -> None:
        self.db_path, self.config, self.filter = "x.db", ConsoleConfig(), TaskFilter()
        self.run_id, self.selected, self.blocked = run_id, selected, blocked or []
        self.calls: list[tuple[Any, ...]] = []

    def notify(self, message: str, **kw: Any) -> None:
        self.calls.append(("notify", message, kw.get("severity")))

    def focus_answer(self, task_id: str) -> None:
        self.calls.append(("focus_answer", task_id))

    def push_screen(self, screen: Any, callback: Callable[[Any], None]) -> None:
        self.calls.append(("push_screen", type(screen).__name__))
        self.dismiss = callback

    def set_filter(self, f: TaskFilter) -> None:
        self.calls.append(("set_filter", f))

    def show_pane(self, pane: str) -> None:
        self.calls.append(("show_pane", pane))

    def __getattr__(self, name: str) -> Any:   # everything else: recorded, does nothing
        return lambda *a, **kw: self.calls.append((name, *a))


def keys_for(host: FakeHost) -> LeaderKeys:
    # A stand-in, not a LeaderHost: it has only what these flows touch (and records the rest).
    return LeaderKeys(cast(LeaderHost, host))


def test_keys_that_need_a_task_say_why_when_there_is_none() -> None:
    host = FakeHost(run_id=None)
    keys = keys_for(host)
    keys.dispatch()
    host.run_id = "r1"
    keys.retry()
    assert host.calls == [("notify", "no run is open", "error"), ("notify", "select a task to retry", "warning")]


def test_answer_goes_to_the_selected_blocked_task_else_the_oldest_question() -> None:
    host = FakeHost(selected="t2", blocked=[{"task_id": "t1"}, {"task_id": "t2"}])
    keys_for(host).answer()
    host.selected = "t9"
    keys_for(host).answer()
    host.blocked = []
    keys_for(host).answer()
    assert host.calls == [("focus_answer", "t2"), ("focus_answer", "t1"),
                          ("notify", "no blocked questions", "warning")]


def test_filter_keeps_the_view_and_shows_the_board() -> None:
    host = FakeHost()
    host.filter = TaskFilter(view="failed", text="old")
    keys_for(host).filter()
    assert host.calls == [("push_screen", "FilterScreen")]
    host.dismiss("  login ")
    assert host.calls[1:] == [("set_filter", TaskFilter(view="failed", text="login")), ("show_pane", "board")]
