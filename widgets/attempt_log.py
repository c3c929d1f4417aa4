"""The attempt log: an attempt selector, a kind filter, the thread's messages, the worker's
output tail and the worktree's diff stat. A `Log` (Line API, plain text) holds the long part, so a
100,000-character line or 10,000 lines of output stay cheap and can never be read as markup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Log, Select, Static

from orch_console.store.models import AttemptLog, OutputView
from orch_console.store.states import MESSAGE_KINDS as KINDS
from orch_console.store.sanitize import clean

from .text import STATUS_GLYPH, plain

MAX_LINE = 20_000  # display cap per line; Log scrolls sideways, but nobody reads past this


class AttemptLogPane(Vertical):
    @dataclass
    class AttemptChosen(Message):
        task_id: str
        attempt_no: int | None
        kinds: tuple[str, ...] | None

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.log_data: AttemptLog | None = None
        self.output_lines: list[str] = []   # the worker's screen last shown (raw)
        self._quiet = False

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        with Horizontal(id="log-controls"):
            yield Select[int]([], prompt="attempt", id="attempt-select", allow_blank=True)
            yield Select[str]([(k, k) for k in KINDS], prompt="all kinds", id="kind-select", allow_blank=True)
        yield Static(id="log-diff")
        yield Log(id="log-lines", highlight=False, auto_scroll=False)
        yield Static(id="log-output-title", markup=False)
        yield Log(id="log-output", highlight=False, auto_scroll=True)

    def show(self, data: AttemptLog) -> None:
        self.log_data = data
        a = data.attempt
        title = Text()
        title.append(f"{data.task_id}", style="bold")
        title.append(f"  {STATUS_GLYPH.get(data.task_status, '')} {data.task_status}  ")
        title.append(plain(data.title))
        if a is not None:
            title.append(f"\nattempt {a.attempt_no} of {len(data.attempts)} · {a.assigned_to} · {a.execution_mode}"
                         f" · {a.status}{' (' + a.end_reason + ')' if a.end_reason else ''}")
            if a.branch_name:
                title.append(f" · {clean(a.branch_name)} [{a.workspace_status}]")
        else:
            title.append("\nnot dispatched yet")
        self.query_one("#log-title", Static).update(title)
        self._quiet = True
        try:
            sel = self.query_one("#attempt-select", Select)
            sel.set_options([(f"attempt {x.attempt_no} · {x.assigned_to} · {x.status}", x.attempt_no)
                             for x in data.attempts])
            if a is not None:
                sel.value = a.attempt_no
        finally:
            self.call_after_refresh(self._unquiet)
        diff = self.query_one("#log-diff", Static)
        diff.update(plain(("diff stat vs base:\n" + data.diff_stat) if data.diff_stat else
                          ("worktree: " + a.workspace_status if a and a.worktree_path else "")))
        log = self.query_one("#log-lines", Log)
        log.clear()
        lines: list[str] = []
        counts = " · ".join(f"{k} {v}" for k, v in sorted(data.kind_counts.items()))
        if counts:
            lines.append(f"messages: {counts}")
        if data.truncated_messages:
            lines.append(f"({data.truncated_messages} older messages not shown)")
        for m in data.messages:
            lines.append(f"── {m.created_at[11:19]} {m.kind.upper():8} {clean(m.from_agent)} → {clean(m.to_agent)}")
            lines += ["  " + ln for ln in self._text_lines(m.summary)]
            if m.body and m.body != m.summary:
                lines += ["    " + ln for ln in self._text_lines(m.body)]
            if m.payload_json and m.kind not in ("task", "event"):
                lines += ["    payload: " + ln for ln in self._text_lines(m.payload_json)]
        log.write_lines(lines)
        if a is None or not a.runtime:
            self.show_output(None)

    def show_output(self, out: OutputView | None) -> None:
        """The worker's screen (tmux) or log tail (process) below the messages; hidden when the
        attempt has no launched worker. Rewritten only when the text changed."""
        title = self.query_one("#log-output-title", Static)
        log = self.query_one("#log-output", Log)
        shown = out is not None
        title.display = log.display = shown
        if out is None:
            self._output_key = None
            self.output_lines = []
            return
        heading = f"── {out.source}{'  · live' if out.live else ''} ──"
        title.update(heading)
        self.output_lines = list(out.lines)
        key = (out.task_id, out.attempt_no, tuple(out.lines))
        if key == getattr(self, "_output_key", None):
            return
        self._output_key = key
        log.clear()
        log.write_lines(self._text_lines("\n".join(out.lines)) if out.lines else ["(no output yet)"])

    def _unquiet(self) -> None:
        self._quiet = False

    @staticmethod
    def _text_lines(text: str) -> list[str]:
        out = []
        for ln in clean(text).split("\n"):
            ln = ln.replace("\t", "    ")
            out.append(ln if len(ln) <= MAX_LINE else ln[:MAX_LINE] + f"… (+{len(ln) - MAX_LINE} chars)")
        return out

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if self._quiet or self.log_data is None:
            return
        att = self.query_one("#attempt-select", Select).value
        kind = self.query_one("#kind-select", Select).value
        self.post_message(self.AttemptChosen(
            self.log_data.task_id, att if isinstance(att, int) else None,
            (str(kind),) if isinstance(kind, str) else None))
