"""Command palette entries, titled "area: verb", each mapped to the same action as its key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from orch_console import themes

ENTRIES: list[tuple[str, str, str]] = [
    ("task: dispatch", "dispatch",
     "hand the selected ready task to a worker and launch it (mode, worker and profile prefilled)"),
    ("task: answer", "answer", "answer the selected blocked task, else the oldest question"),
    ("task: retry", "retry", "new attempt for the failed task, with a changed instruction"),
    ("task: reassign", "reassign", "cancel the current attempt and dispatch to another worker"),
    ("task: cancel", "cancel_task", "cancel the selected task (asks first)"),
    ("task: cleanup", "cleanup", "remove the task's finished worktrees (asks first if unmerged)"),
    ("worker: send keys", "send_keys", "type a line into the selected task's tmux worker (answer its prompt)"),
    ("worker: attach", "attach", "attach this terminal to the selected task's tmux worker (detach: prefix, d)"),
    ("run: export wave report", "export", "write the wave report as Markdown"),
    ("run: toggle autopilot", "autopilot", "dispatch ready tasks automatically"),
    ("run: open another run", "pick_run", "choose a run"),
    ("agents: release held profiles", "release_holds",
     "lift every profile hold (usage limit, API unreachable, login) so new work starts with them again"),
    ("view: filter tasks", "filter", "match task id, title, owner or status"),
    ("view: failed only", "view('failed')", "only failed tasks"),
    ("view: needs attention", "view('attention')", "blocked, failed, stalled or crashed tasks"),
    ("view: all tasks", "view('all')", "clear the failed/attention view"),
    ("pane: run board", "pane('board')", "the task table"),
    ("pane: task DAG", "pane('dag')", "tasks by wave with their edges"),
    ("pane: blocked questions", "pane('blocked')", "questions waiting for the leader"),
    ("pane: attempt log", "pane('log')", "the selected task's attempts and messages"),
    ("theme: next theme", "app.next_theme", "switch between the console themes"),
    ("help: keys", "app.help", "every key and what it does"),
]


class ConsoleCommands(Provider):
    def _run(self, action: str) -> Callable[[], Awaitable[bool]]:
        # Actions without a namespace are the board's: the first screen of the stack (under any
        # modal the palette was opened over), as its keys are.
        return partial(self.app.run_action, action, self.app.screen_stack[0])

    async def discover(self) -> Hits:
        for title, action, help_text in ENTRIES:
            yield DiscoveryHit(title, self._run(action), help=help_text)
        for name in themes.theme_names():
            yield DiscoveryHit(f"theme: {name}", partial(setattr, self.app, "theme", name), help="switch theme")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        items: list[tuple[str, Callable[[], object], str]] = [(t, self._run(a), h) for t, a, h in ENTRIES]
        items += [(f"theme: {n}", partial(setattr, self.app, "theme", n), "switch theme") for n in themes.theme_names()]
        for title, cb, help_text in items:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), cb, help=help_text)
