"""Typed, past-tense messages the console's thread workers post back to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from orch_console.store.models import AttemptLog, DagLayout, Header, OutputView, Page, TaskRow


@dataclass
class BoardOpened(Message):
    """A run was opened (or reopened after a plan change): everything at once."""

    run_id: str
    header: Header
    page: Page
    blocked: list[dict[str, Any]]
    last_event_id: int
    select: str | None = None
    late_first: bool = False       # the start-up read, arrived after the first frame (see BoardScreen)


@dataclass
class WavesReady(Message):
    """The waves of a big run, computed after its first paint."""

    header: Header


@dataclass
class PageLoaded(Message):
    page: Page
    cursor: str | int = 0          # a row index (from 0; _load_page resolves "from the end"), or a task id


@dataclass
class BoardChanged(Message):
    """The incremental refresh: only what the new events touched."""

    last_event_id: int
    header: Header | None
    rows: list[TaskRow]
    page: Page | None              # a re-read window (filtered views, new tasks), else None
    blocked: list[dict[str, Any]] | None
    task_ids: set[str]
    alerts: list[tuple[str, str, str]] = field(default_factory=list)   # (event type, task, summary)
    view_gen: int = -1             # the run/window/filter it was read for (BoardScreen.view_gen)


@dataclass
class DagLoaded(Message):
    layout: DagLayout
    focus: str | None
    unblocks: int


@dataclass
class LogLoaded(Message):
    log: AttemptLog


@dataclass
class StoreFailed(Message):
    """The database is missing, locked or corrupt: show the banner, keep running."""

    message: str
    late_first: bool = False       # the start-up read, arrived after the first frame


@dataclass
class ActionFinished(Message):
    """A leader action ran: its result or its error, for a notification."""

    title: str
    message: str
    ok: bool
    task_id: str | None = None


@dataclass
class OutputLoaded(Message):
    """The worker's screen (tmux capture) or log tail, for the attempt log pane."""

    view: OutputView | None
