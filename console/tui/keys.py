"""The leader's keys: each gathers what it needs (a form, a confirmation), then runs the store
operation in a thread worker through console/tui/ops.py and reports back as `ActionFinished`.

`LeaderKeys` works over a `LeaderHost`, the few things it needs from the screen that shows the
board (BoardScreen); the screen's `action_*` methods call it in one line each.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from textual.app import SuspendNotSupported
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from orch_console.console.tui import ops
from orch_console.console.tui.config import ConsoleConfig
from orch_console.console.tui.messages import ActionFinished
from orch_console.console.tui.reader import error_text
from orch_console.store.models import RunSummary, TaskFilter
from orch_console.store.sanitize import one_line

if TYPE_CHECKING:
    from orch_console.console.tui.screens.modals import DispatchForm, InstructionForm

# Deliberate start-up deferrals, imported by the flow that first needs them, not at start-up
# (each adds to the console's first paint): the modal forms (~12 ms: TextArea and its document
# model), the launcher (~9 ms) and the pane classifier (~5 ms, with the policy module).


class LeaderHost(Protocol):
    """What the key flows need from the board that hosts them."""

    @property
    def db_path(self) -> str: ...
    @property
    def config(self) -> ConsoleConfig: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def selected(self) -> str | None: ...
    @property
    def filter(self) -> TaskFilter: ...
    @property
    def blocked(self) -> list[dict[str, Any]]: ...

    # The UI, from the UI thread.
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object: ...
    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    def suspend(self) -> AbstractContextManager[None]: ...
    def set_timer(self, delay: float, callback: Callable[[], object]) -> object: ...
    # Threads: a worker on the host; from it, back to the UI thread.
    def run_worker(self, work: Callable[[], None], name: str | None = "", group: str = "default",
                   description: str = "", exit_on_error: bool = True, start: bool = True,
                   exclusive: bool = False, thread: bool = False) -> Worker[None]: ...
    def post_message(self, message: Message) -> bool: ...
    def call_from_thread(self, callback: Callable[..., object], *args: Any) -> object: ...
    # The board.
    def request_refresh(self) -> None: ...
    def set_filter(self, f: TaskFilter) -> None: ...
    def show_pane(self, pane: str) -> None: ...
    def focus_answer(self, task_id: str) -> None: ...
    def clear_answer(self) -> None: ...
    def open_run(self, run_id: str | None, select: str | None = None) -> object: ...
    def poll_output(self) -> None: ...
    def read_runs(self) -> list[RunSummary]: ...
    def wake_engine(self) -> None: ...


class LeaderKeys:
    def __init__(self, host: LeaderHost) -> None:
        self.host = host

    # -- plumbing --------------------------------------------------------------------------
    def _in_thread(self, fn: Callable[[], None], group: str, description: str = "") -> None:
        self.host.run_worker(fn, group=group, description=description, exit_on_error=False, thread=True)

    def leader_action(self, title: str, fn: Callable[[], str], task_id: str | None = None) -> None:
        """Run a store operation in a thread worker; its line (or error) comes back as ActionFinished."""
        self._in_thread(partial(self._run_action, title, fn, task_id), "actions", "leader action")

    def _run_action(self, title: str, fn: Callable[[], str], task_id: str | None) -> None:
        try:
            msg = fn()
        except Exception as exc:  # OrchError.message, or a clear line for anything else
            self.host.post_message(ActionFinished(title, error_text(exc), False, task_id))
            return
        self.host.post_message(ActionFinished(title, msg, True, task_id))
        self.host.call_from_thread(self.host.request_refresh)

    def _need_task(self, what: str) -> str | None:
        if not self.host.run_id:
            self.host.notify("no run is open", severity="error")
            return None
        if not self.host.selected:
            self.host.notify(f"select a task to {what}", severity="warning")
            return None
        return self.host.selected

    def _with_prefill(self, task_id: str, then: Callable[[dict[str, Any]], None]) -> None:
        """Read the task and its latest attempt off the UI thread, then continue on it."""
        db, rid = self.host.db_path, self.host.run_id or ""

        def read() -> None:
            try:
                info = ops.prefill(db, rid, task_id)
            except Exception as exc:
                self.host.post_message(ActionFinished("read task", error_text(exc), False, task_id))
                return
            self.host.call_from_thread(then, info)

        self._in_thread(read, "prefill")

    # -- keys ------------------------------------------------------------------------------
    def dispatch(self) -> None:
        task = self._need_task("dispatch")
        if task:
            self._with_prefill(task, lambda info: self._dispatch_form(task, info))

    def _dispatch_form(self, task: str, info: dict[str, Any]) -> None:
        from orch_console.console.tui.screens.modals import DispatchScreen  # deferred, see the top

        h = self.host
        t, a = info["task"], info["attempt"]
        has_paths = t.get("paths_json", "[]") not in ("", "[]")
        mode = (a or {}).get("execution_mode") or ("code" if has_paths else "analysis")
        to = (a or {}).get("assigned_to") or t.get("default_to") or ""
        repo = h.config.repo_path or (a or {}).get("repo_path") or os.getcwd()

        def done(form: DispatchForm | None) -> None:
            if form is None:
                return
            rid = h.run_id or ""
            self.leader_action("dispatch", lambda: ops.dispatch(
                h.db_path, rid, task, mode=form.mode, to=form.to, body=form.body,
                repo_path=form.repo_path, workspace_root=h.config.workspace_root or None,
                launch_profile=form.launch_profile), task)

        h.push_screen(DispatchScreen(task, t["title"], mode, to, repo, profiles=info.get("profiles"),
                                     profile=info.get("profile", "sim"), launch=bool(info.get("launch")),
                                     problem=info.get("problem", "")), done)

    def answer(self) -> None:
        """The selected task if it waits on the leader, else the first of the attention queue (the
        queue is ranked: critical path, then work unblocked, then age)."""
        if not self.host.blocked:
            self.host.notify("nothing waits on the leader", severity="warning")
            return
        ids: list[str] = [b["task_id"] for b in self.host.blocked]
        selected = self.host.selected
        self.host.focus_answer(selected if selected is not None and selected in ids else ids[0])

    def answer_submitted(self, task_id: str, text: str, kind: str = "question") -> None:
        """A question's answer goes through store.answer; a screen waiting for input gets the text
        typed into its terminal; an escalation takes no text (retry or reassign it)."""
        db, rid = self.host.db_path, self.host.run_id or ""
        if kind == "escalation":
            self.host.notify(f"{task_id} was escalated: retry it (r) or reassign it (R)", severity="warning")
            return
        self.host.clear_answer()
        if kind == "waiting_input":
            self.leader_action("send keys", lambda: ops.send_keys(db, rid, task_id, text), task_id)
        else:
            self.leader_action("answer", lambda: ops.answer(db, rid, task_id, text), task_id)

    def retry(self) -> None:
        task = self._need_task("retry")
        if task:
            self._with_prefill(task, lambda info: self._instruction_form(task, info, reassign=False))

    def reassign(self) -> None:
        task = self._need_task("reassign")
        if task:
            self._with_prefill(task, lambda info: self._instruction_form(task, info, reassign=True))

    def _instruction_form(self, task: str, info: dict[str, Any], *, reassign: bool) -> None:
        from orch_console.console.tui.screens.modals import InstructionScreen  # deferred, see the top

        h = self.host
        a = info["attempt"] or {}
        prev = a.get("instruction", "")
        if reassign:
            title, detail = f"Reassign {task}", (f"Cancels attempt {a.get('attempt_no', '?')} "
                                                  f"({a.get('assigned_to', '')}) and dispatches a new one.")
        else:
            title, detail = f"Retry {task}", (f"Attempt {a.get('attempt_no', '?')} ended "
                                              f"{a.get('end_reason') or a.get('status', '')}. Edit the instruction: "
                                              f"the same prompt again is refused.")

        def done(form: InstructionForm | None) -> None:
            if form is None:
                return
            rid = h.run_id or ""
            if reassign:
                self.leader_action("reassign", lambda: ops.reassign(h.db_path, rid, task, to=form.to,
                                                                      body=form.body), task)
            else:
                self.leader_action("retry", lambda: ops.retry(h.db_path, rid, task, to=form.to,
                                                                body=form.body), task)

        h.push_screen(InstructionScreen(title, detail, prev, to="" if reassign else "", need_to=reassign), done)

    def cancel_task(self) -> None:
        task = self._need_task("cancel")
        if not task:
            return
        from orch_console.console.tui.screens.modals import ConfirmScreen  # deferred, see the top

        db, rid = self.host.db_path, self.host.run_id or ""

        def done(yes: bool | None) -> None:
            if yes:
                self.leader_action("cancel", lambda: ops.cancel(db, rid, task), task)

        self.host.push_screen(ConfirmScreen(f"Cancel {task}?", "Its live attempt is cancelled and the worker told "
                                            "to stop. Work not yet committed may be lost."), done)

    def cleanup(self) -> None:
        task = self._need_task("clean up")
        if task:
            self._with_prefill(task, lambda info: self._cleanup_confirm(task, info))

    def _cleanup_confirm(self, task: str, info: dict[str, Any]) -> None:
        from orch_console.console.tui.screens.modals import ConfirmScreen  # deferred, see the top

        db, rid = self.host.db_path, self.host.run_id or ""
        if not info.get("dirty"):
            self.leader_action("cleanup", lambda: ops.cleanup(db, rid, task, force=False), task)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.leader_action("cleanup", lambda: ops.cleanup(db, rid, task, force=True), task)

        path = (info.get("attempt") or {}).get("worktree_path", "")
        self.host.push_screen(ConfirmScreen(f"Discard uncommitted work of {task}?",
                                            f"{path} has uncommitted changes. Removing it loses them "
                                            f"(the branch is kept)."), done)

    def export(self) -> None:
        if self.host.run_id:
            db, rid, folder = self.host.db_path, self.host.run_id, self.host.config.report_dir or None
            self.leader_action("export", lambda: ops.export_report(db, rid, folder))

    def autopilot(self) -> None:
        """Flip the run config's `autopilot`; the console's watcher engine reads it on its next
        pass (woken at once) and dispatches and launches ready tasks."""
        if self.host.run_id:
            db, rid = self.host.db_path, self.host.run_id

            def toggle() -> str:
                msg = ops.toggle_autopilot(db, rid)
                self.host.wake_engine()
                return msg

            self.leader_action("autopilot", toggle)

    def release_holds(self) -> None:
        """Lift the profile holds (store/holds.py) after the leader confirms: the limit was raised,
        the network is back, the agent is logged in."""
        from orch_console.console.tui.screens.modals import ConfirmScreen  # deferred, see the top

        db = self.host.db_path
        held = ops.held_profiles(db)
        if not held:
            self.host.notify("no profile is held", severity="information")
            return
        names = [h["profile"] for h in held]
        detail = "\n".join(f"{h['profile']}: {h['kind']}, {h['reason'][:160]}" for h in held)

        def done(yes: bool | None) -> None:
            if yes:
                def release() -> str:
                    msg = ops.release_holds(db, names)
                    self.host.wake_engine()
                    return msg

                self.leader_action("release", release)

        self.host.push_screen(ConfirmScreen(f"Release {', '.join(names)}?",
                                            "New work starts with them again.\n" + detail), done)

    def review(self) -> None:
        """Issue 14: the selected task's changed files and diff; land or request changes from there."""
        from orch_console.console.tui.screens.review import open_review  # deferred, see the top

        open_review(self)

    # -- the worker's terminal --------------------------------------------------------------
    def send_keys(self) -> None:
        task = self._need_task("type into")
        if task:
            self._worker_then(task, "send keys", self._send_keys_form)

    def attach(self) -> None:
        task = self._need_task("attach to")
        if task:
            self._worker_then(task, "attach", self._attach_terminal)

    def _worker_then(self, task: str, title: str, then: Callable[[str, dict[str, Any], list[str]], None]) -> None:
        """Read the task's latest attempt (and its tmux attach command) off the UI thread."""
        db, rid = self.host.db_path, self.host.run_id or ""

        def read() -> None:
            try:
                a = ops.worker_attempt(db, rid, task)
                argv = ops.attach_argv(db, rid, task)
                if title == "send keys":
                    from orch_console.console.runtime import launcher  # deferred, see the top

                    a["screen"] = launcher.capture(db, a, lines=60)
            except Exception as exc:
                self.host.post_message(ActionFinished(title, error_text(exc), False, task))
                return
            self.host.call_from_thread(then, task, a, argv)

        self._in_thread(read, "prefill")

    def _send_keys_form(self, task: str, a: dict[str, Any], argv: list[str]) -> None:
        from orch_console.console.tui.screens.modals import SendKeysScreen
        from orch_console.store.liveness import classify_pane  # deferred, see the top

        state, line = classify_pane(a.get("screen", ""))
        db, rid = self.host.db_path, self.host.run_id or ""

        def done(text: str | None) -> None:
            if text is None:
                return
            self.leader_action("send keys", lambda: ops.send_keys(db, rid, task, text), task)
            self.host.set_timer(0.3, self.host.poll_output)

        self.host.push_screen(SendKeysScreen(task, a["runtime_ref"], one_line(line, 100) if state == "waiting_input"
                                             else ""), done)

    def _attach_terminal(self, task: str, a: dict[str, Any], argv: list[str]) -> None:
        """Hand the terminal to `tmux attach` (detach with the tmux prefix, then d) and take it back."""
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # attaching from inside tmux is fine here
        try:
            with self.host.suspend():
                rc = subprocess.call(argv, env=env)
        except SuspendNotSupported:
            self.host.notify(f"this terminal cannot be handed over; run: {shlex.join(argv)}", title="attach",
                             severity="warning", timeout=15, markup=False)
            return
        self.host.notify(f"back from {a['runtime_ref']}" + (f" (tmux exited {rc})" if rc else ""), title="attach",
                         markup=False)
        self.host.request_refresh()
        self.host.poll_output()

    # -- views and runs -----------------------------------------------------------------------
    def filter(self) -> None:
        from orch_console.console.tui.screens.modals import FilterScreen  # deferred, see the top

        def done(text: str | None) -> None:
            if text is not None:
                self.host.set_filter(TaskFilter(view=self.host.filter.view, text=text.strip()))
                self.host.show_pane("board")

        self.host.push_screen(FilterScreen(self.host.filter.text), done)

    def pick_run(self) -> None:
        def read() -> None:
            try:
                found = self.host.read_runs()
            except Exception as exc:
                self.host.post_message(ActionFinished("runs", error_text(exc), False))
                return
            self.host.call_from_thread(self._show_picker, found)

        self._in_thread(read, "runs")

    def _show_picker(self, found: list[RunSummary]) -> None:
        from orch_console.console.tui.screens.modals import RunPickerScreen  # deferred, see the top

        def done(run_id: str | None) -> None:
            if run_id and run_id != self.host.run_id:
                self.host.open_run(run_id)

        self.host.push_screen(RunPickerScreen(found, self.host.run_id), done)


