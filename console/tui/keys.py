"""The leader's keys: each gathers what it needs (a form, a confirmation), then runs the store
operation in a thread worker through console/ops.py and reports back as `ActionFinished`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import work

from orch_console.console.tui import ops
from orch_console.console.tui.reader import error_text
from orch_console.console.tui.messages import ActionFinished

if TYPE_CHECKING:
    from orch_console.console.tui.app import OrchConsole


class ActionsMixin:
    # -- plumbing --------------------------------------------------------------------------
    @work(thread=True, group="actions", exit_on_error=False, description="leader action")
    def leader_action(self: OrchConsole, title: str, fn: Callable[[], str], task_id: str | None = None) -> None:
        try:
            msg = fn()
        except Exception as exc:  # OrchError.message, or a clear line for anything else
            self.post_message(ActionFinished(title, error_text(exc), False, task_id))
            return
        self.post_message(ActionFinished(title, msg, True, task_id))
        self.call_from_thread(self.request_refresh)

    def _need_task(self: OrchConsole, what: str) -> str | None:
        if not self.run_id:
            self.notify("no run is open", severity="error")
            return None
        if not self.selected:
            self.notify(f"select a task to {what}", severity="warning")
            return None
        return self.selected

    @work(thread=True, group="prefill", exit_on_error=False)
    def _with_prefill(self: OrchConsole, task_id: str, then: Callable[[dict[str, Any]], None]) -> None:
        try:
            info = ops.prefill(self.db_path, self.run_id or "", task_id)
        except Exception as exc:
            self.post_message(ActionFinished("read task", error_text(exc), False, task_id))
            return
        self.call_from_thread(then, info)

    # -- keys ------------------------------------------------------------------------------
    def action_dispatch(self: OrchConsole) -> None:
        task = self._need_task("dispatch")
        if task:
            self._with_prefill(task, lambda info: self._dispatch_form(task, info))

    def _dispatch_form(self: OrchConsole, task: str, info: dict[str, Any]) -> None:
        from orch_console.console.tui.screens.modals import DispatchForm, DispatchScreen

        t, a = info["task"], info["attempt"]
        mode = (a or {}).get("execution_mode") or ("code" if t.get("paths_json", "[]") not in ("", "[]") else "analysis")
        to = (a or {}).get("assigned_to") or t.get("default_to") or ""
        repo = self.config.repo_path or (a or {}).get("repo_path") or os.getcwd()

        def done(form: DispatchForm | None) -> None:
            if form is None:
                return
            rid = self.run_id or ""
            self.leader_action("dispatch", lambda: ops.dispatch(
                self.db_path, rid, task, mode=form.mode, to=form.to, body=form.body,
                repo_path=form.repo_path, workspace_root=self.config.workspace_root or None,
                launch_profile=form.launch_profile), task)

        self.push_screen(DispatchScreen(task, t["title"], mode, to, repo, profiles=info.get("profiles"),
                                        profile=info.get("profile", "sim"), launch=bool(info.get("launch")),
                                        problem=info.get("problem", "")), done)

    def action_answer(self: OrchConsole) -> None:
        """The selected task if it is blocked, else the oldest blocked question."""
        if not self.blocked_items:
            self.notify("no blocked questions", severity="warning")
            return
        ids = [b["task_id"] for b in self.blocked_items]
        target = self.selected if self.selected in ids else ids[0]
        from orch_console.widgets.blocked_list import BlockedPane

        self.base("#panes").active = "blocked"  # type: ignore[attr-defined]
        pane = self.base("#blocked-pane", BlockedPane)
        pane.select(target)
        self.call_after_refresh(pane.focus_answer)

    def on_blocked_pane_answer_submitted(self: OrchConsole, m: Any) -> None:
        rid = self.run_id or ""
        from orch_console.widgets.blocked_list import BlockedPane

        self.base("#blocked-pane", BlockedPane).clear_answer()
        self.leader_action("answer", lambda: ops.answer(self.db_path, rid, m.task_id, m.text), m.task_id)

    def action_retry(self: OrchConsole) -> None:
        task = self._need_task("retry")
        if task:
            self._with_prefill(task, lambda info: self._instruction_form(task, info, reassign=False))

    def action_reassign(self: OrchConsole) -> None:
        task = self._need_task("reassign")
        if task:
            self._with_prefill(task, lambda info: self._instruction_form(task, info, reassign=True))

    def _instruction_form(self: OrchConsole, task: str, info: dict[str, Any], *, reassign: bool) -> None:
        from orch_console.console.tui.screens.modals import InstructionForm, InstructionScreen

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
            rid = self.run_id or ""
            if reassign:
                self.leader_action("reassign", lambda: ops.reassign(self.db_path, rid, task, to=form.to,
                                                                      body=form.body), task)
            else:
                self.leader_action("retry", lambda: ops.retry(self.db_path, rid, task, to=form.to,
                                                                body=form.body), task)

        self.push_screen(InstructionScreen(title, detail, prev, to="" if reassign else "", need_to=reassign), done)

    def action_cancel_task(self: OrchConsole) -> None:
        task = self._need_task("cancel")
        if not task:
            return
        from orch_console.console.tui.screens.modals import ConfirmScreen

        rid = self.run_id or ""

        def done(yes: bool | None) -> None:
            if yes:
                self.leader_action("cancel", lambda: ops.cancel(self.db_path, rid, task), task)

        self.push_screen(ConfirmScreen(f"Cancel {task}?", "Its live attempt is cancelled and the worker told "
                                       "to stop. Work not yet committed may be lost."), done)

    def action_cleanup(self: OrchConsole) -> None:
        task = self._need_task("clean up")
        if task:
            self._with_prefill(task, lambda info: self._cleanup_confirm(task, info))

    def _cleanup_confirm(self: OrchConsole, task: str, info: dict[str, Any]) -> None:
        from orch_console.console.tui.screens.modals import ConfirmScreen

        rid = self.run_id or ""
        if not info.get("dirty"):
            self.leader_action("cleanup", lambda: ops.cleanup(self.db_path, rid, task, force=False), task)
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.leader_action("cleanup", lambda: ops.cleanup(self.db_path, rid, task, force=True), task)

        path = (info.get("attempt") or {}).get("worktree_path", "")
        self.push_screen(ConfirmScreen(f"Discard uncommitted work of {task}?",
                                       f"{path} has uncommitted changes. Removing it loses them "
                                       f"(the branch is kept)."), done)

    def action_export(self: OrchConsole) -> None:
        if self.run_id:
            rid = self.run_id
            self.leader_action("export", lambda: ops.export_report(self.db_path, rid, self.config.report_dir or None))

    def action_autopilot(self: OrchConsole) -> None:
        """Flip the run config's `autopilot`; the console's watcher engine reads it on its next
        pass (woken at once) and dispatches and launches ready tasks."""
        if self.run_id:
            rid = self.run_id

            def toggle() -> str:
                msg = ops.toggle_autopilot(self.db_path, rid)
                self.engine_wake.set()
                return msg

            self.leader_action("autopilot", toggle)

    def action_review(self: OrchConsole) -> None:
        """Issue 14: the selected task's changed files and diff; land or request changes from there."""
        from orch_console.console.tui.screens.review import open_review

        open_review(self)

    # -- the worker's terminal --------------------------------------------------------------
    def action_send_keys(self: OrchConsole) -> None:
        task = self._need_task("type into")
        if task:
            self._worker_then(task, "send keys", self._send_keys_form)

    def action_attach(self: OrchConsole) -> None:
        task = self._need_task("attach to")
        if task:
            self._worker_then(task, "attach", self._attach)

    @work(thread=True, group="prefill", exit_on_error=False)
    def _worker_then(self: OrchConsole, task: str, title: str, then: Callable[[str, dict[str, Any], list[str]], None]
                     ) -> None:
        """Read the task's latest attempt (and its tmux attach command) off the UI thread."""
        try:
            a = ops.worker_attempt(self.db_path, self.run_id or "", task)
            argv = ops.attach_argv(self.db_path, self.run_id or "", task)
            if title == "send keys":
                from orch_console.console.runtime import launcher

                a["screen"] = launcher.capture(self.db_path, a, lines=60)
        except Exception as exc:
            self.post_message(ActionFinished(title, error_text(exc), False, task))
            return
        self.call_from_thread(then, task, a, argv)

    def _send_keys_form(self: OrchConsole, task: str, a: dict[str, Any], argv: list[str]) -> None:
        from orch_console.store.liveness import classify_pane
        from orch_console.store.sanitize import one_line

        from orch_console.console.tui.screens.modals import SendKeysScreen

        state, line = classify_pane(a.get("screen", ""))
        rid = self.run_id or ""

        def done(text: str | None) -> None:
            if text is None:
                return
            self.leader_action("send keys", lambda: ops.send_keys(self.db_path, rid, task, text), task)
            self.set_timer(0.3, self._poll_output)

        self.push_screen(SendKeysScreen(task, a["runtime_ref"], one_line(line, 100) if state == "waiting_input"
                                        else ""), done)

    def _attach(self: OrchConsole, task: str, a: dict[str, Any], argv: list[str]) -> None:
        """Hand the terminal to `tmux attach` (detach with the tmux prefix, then d) and take it back."""
        import shlex
        import subprocess

        from textual.app import SuspendNotSupported

        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # attaching from inside tmux is fine here
        try:
            with self.suspend():
                rc = subprocess.call(argv, env=env)
        except SuspendNotSupported:
            self.notify(f"this terminal cannot be handed over; run: {shlex.join(argv)}", title="attach",
                        severity="warning", timeout=15, markup=False)
            return
        self.notify(f"back from {a['runtime_ref']}" + (f" (tmux exited {rc})" if rc else ""), title="attach",
                    markup=False)
        self.request_refresh()
        self._poll_output()

    def action_filter(self: OrchConsole) -> None:
        from orch_console.store.board import TaskFilter

        from orch_console.console.tui.screens.modals import FilterScreen

        def done(text: str | None) -> None:
            if text is not None:
                self.set_filter(TaskFilter(view=self.filter.view, text=text.strip()))
                self.action_pane("board")

        self.push_screen(FilterScreen(self.filter.text), done)

    def action_pick_run(self: OrchConsole) -> None:
        self._load_runs()

    @work(thread=True, group="runs", exit_on_error=False)
    def _load_runs(self: OrchConsole) -> None:
        from orch_console.store.board import run_summaries

        try:
            with self.data.lock:
                found = run_summaries(self.data.store())
        except Exception as exc:
            self.post_message(ActionFinished("runs", error_text(exc), False))
            return
        self.call_from_thread(self._show_picker, found)

    def _show_picker(self: OrchConsole, found: list[Any]) -> None:
        from orch_console.console.tui.screens.modals import RunPickerScreen

        def done(run_id: str | None) -> None:
            if run_id and run_id != self.run_id:
                self.open_run(run_id)

        self.push_screen(RunPickerScreen(found, self.run_id), done)
