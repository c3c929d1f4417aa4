"""The plain view models the console and the widgets receive: frozen dataclasses of text and
numbers, filled by the read models (board.py, board_dag.py, board_log.py). No sqlite3 and no
store.db here, so a widget that imports these pulls in no SQL layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .states import ATTENTION_LIVENESS, ATTENTION_TASK, FINISHED_TASK

Key = tuple[int, int]  # (wave, tasks.rowid): the keyset paging key
FIRST_KEY: Key = (-1, -1)


# -- the task window (board.py) ---------------------------------------------------------------
@dataclass(frozen=True)
class TaskRow:
    """One line of the task table (raw text: the renderer sanitises it)."""

    key: Key
    task_id: str
    wave: int
    title: str
    owner: str
    status: str
    attempt_no: int
    last_activity: str
    liveness: str
    end_reason: str
    attention: str = ""   # the open store.runtime.attention kind (escalate, waiting_input), if any
    latest: str = ""      # the summary of the worker's latest progress, question or result

    def cells(self) -> tuple[Any, ...]:
        """The values the table compares to decide which cells changed."""
        return (self.wave, self.task_id, self.title, self.owner, self.status, self.attempt_no,
                self.last_activity, self.liveness, self.attention, self.latest)

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention) or self.status in ATTENTION_TASK or (
            self.liveness in ATTENTION_LIVENESS and self.status not in FINISHED_TASK)


@dataclass(frozen=True)
class TaskFilter:
    view: str = "all"
    text: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[TaskRow]
    has_prev: bool
    has_next: bool
    total: int          # rows matching the filter
    offset: int         # position of rows[0] among them


@dataclass(frozen=True)
class Header:
    run_id: str
    goal: str
    status: str
    counts: dict[str, int]
    waves: list[tuple[int, int, int]]   # (wave, done, total)
    autopilot: bool
    total: int
    attention: int = 0                  # tasks the needs-attention view shows
    held: tuple[tuple[str, str, str], ...] = ()  # profiles held (profile, kind, until_at): store/holds.py


@dataclass
class Changes:
    """What the events since the last refresh touched."""

    last_event_id: int
    task_ids: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    structure: bool = False
    alerts: list[tuple[str, str, str, str]] = field(default_factory=list)  # (event type, task, agent, summary)

    @property
    def empty(self) -> bool:
        return not self.types


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    goal: str
    status: str
    total: int
    updated_at: str


# -- the DAG (board_dag.py) -------------------------------------------------------------------
@dataclass(frozen=True)
class DagNode:
    task_id: str
    title: str
    status: str
    wave: int
    row: int
    deps: tuple[str, ...]
    dependants: tuple[str, ...]


@dataclass(frozen=True)
class DagLayout:
    nodes: dict[str, DagNode]
    columns: list[list[str]]          # wave -> task ids, top to bottom
    first_wave: int                   # wave number of columns[0]
    edges: list[tuple[str, str]]      # (depends_on, task)
    critical: frozenset[str]          # longest chain of unfinished work
    total: int                        # tasks in the run
    partial: bool                     # True when only a neighbourhood is shown

    def upstream(self, task_id: str) -> set[str]:
        """Everything task_id waits on (transitively, within the layout)."""
        return _reach(task_id, {n.task_id: n.deps for n in self.nodes.values()})

    def downstream(self, task_id: str) -> set[str]:
        return _reach(task_id, {n.task_id: n.dependants for n in self.nodes.values()})


def _reach(start: str, nxt: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    stack = list(nxt.get(start, ()))
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.add(t)
            stack.extend(nxt.get(t, ()))
    return seen


# -- the attempt log (board_log.py) -----------------------------------------------------------
@dataclass(frozen=True)
class AttemptInfo:
    attempt_no: int
    thread_id: str
    assigned_to: str
    execution_mode: str
    status: str
    end_reason: str
    started_at: str
    ended_at: str
    worktree_path: str
    branch_name: str
    base_commit: str
    workspace_status: str
    runtime: str
    runtime_ref: str
    log_path: str
    liveness: str


@dataclass(frozen=True)
class LogMessage:
    message_id: int
    kind: str
    from_agent: str
    to_agent: str
    summary: str
    body: str
    payload_json: str
    created_at: str


@dataclass(frozen=True)
class AttemptLog:
    run_id: str
    task_id: str
    title: str
    task_status: str
    attempts: list[AttemptInfo]
    attempt: AttemptInfo | None
    messages: list[LogMessage]
    kind_counts: dict[str, int] = field(default_factory=dict)
    diff_stat: str = ""
    output: list[str] = field(default_factory=list)
    output_source: str = ""
    truncated_messages: int = 0


@dataclass(frozen=True)
class OutputView:
    """What the attempt log shows of a launched worker: its live screen (a tmux capture, taken by
    console/runtime/launcher.py) or the tail of its process log. Raw text: the renderer sanitises it."""

    task_id: str
    attempt_no: int
    lines: list[str]
    source: str
    live: bool


@dataclass(frozen=True)
class Preview:
    """What the board shows of the selected task under the table: what its worker said last, what
    it asks (an open question, a screen waiting for input, an escalation), and the live tail of its
    screen or log. Raw text: the renderer sanitises it."""

    task_id: str
    title: str
    status: str
    owner: str
    attempt: AttemptInfo | None
    latest: LogMessage | None
    asks: str = ""            # what waits on the leader, first lines
    asks_kind: str = ""       # question, waiting_input, escalation
    asks_key: str = ""        # the console key that answers it
    tail: list[str] = field(default_factory=list)
    tail_source: str = ""
