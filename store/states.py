"""The state vocabulary, defined once: task, thread (and attempt), run and check statuses, end
reasons, message kinds, the groupings the domain reasons in, and the events a transition appends.

Every other module imports these instead of spelling status tuples itself. The enums are
str-valued (StrEnum), so a member equals, hashes and encodes exactly like the text stored in
SQLite; the tuples below are what `status IN (...)` checks and SQL IN-lists are built from.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class TaskStatus(StrEnum):
    PLANNED = "planned"
    READY = "ready"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    BLOCKED = "blocked"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ThreadStatus(StrEnum):
    """A worker thread's status; an attempt mirrors its thread's (the fold keeps them equal)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


AttemptStatus = ThreadStatus


class RunStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EndReason(StrEnum):
    """Why an attempt ended ('' while it runs)."""

    NONE = ""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CHECK_FAILED = "check_failed"
    STALLED = "stalled"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    REASSIGNED = "reassigned"


class MessageKind(StrEnum):
    TASK = "task"
    PROGRESS = "progress"
    QUESTION = "question"
    ANSWER = "answer"
    RESULT = "result"
    CONTROL = "control"
    EVENT = "event"


class CheckStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


_T, _TH, _R, _E = TaskStatus, ThreadStatus, RunStatus, EndReason  # short names for the tables below

# -- the whole vocabularies (the schema's CHECK constraints) ----------------------------------
TASK_STATUSES: tuple[str, ...] = tuple(TaskStatus)
THREAD_STATUSES: tuple[str, ...] = tuple(ThreadStatus)
RUN_STATUSES: tuple[str, ...] = tuple(RunStatus)
END_REASONS: tuple[str, ...] = tuple(EndReason)
MESSAGE_KINDS: tuple[str, ...] = tuple(MessageKind)
CHECK_STATUSES: tuple[str, ...] = tuple(CheckStatus)
# A check without a result yet (the watcher runs it, or is running it).
OPEN_CHECK: tuple[str, ...] = (CheckStatus.PENDING, CheckStatus.RUNNING)
# What `orch verify record` may record: a result, never a state in between.
CHECK_RESULTS: tuple[str, ...] = (CheckStatus.PASSED, CheckStatus.FAILED)
# The order the console lists and colours task statuses in.
STATUS_ORDER = TASK_STATUSES

# -- threads and attempts ---------------------------------------------------------------------
LIVE_THREAD: tuple[str, ...] = (_TH.PENDING, _TH.CLAIMED, _TH.IN_PROGRESS, _TH.BLOCKED)
TERMINAL_THREAD: tuple[str, ...] = (_TH.DONE, _TH.FAILED, _TH.CANCELLED)
# Statuses in which a thread can hold a lease (claimed and not yet finished).
HELD_THREAD: tuple[str, ...] = (_TH.CLAIMED, _TH.IN_PROGRESS, _TH.BLOCKED)
# Attempts share their thread's vocabulary.
LIVE_ATTEMPT = LIVE_THREAD
ENDED_ATTEMPT = TERMINAL_THREAD

# -- tasks ------------------------------------------------------------------------------------
# Finished for good: nothing waits on it any more and no retry follows.
FINISHED_TASK: tuple[str, ...] = (_T.DONE, _T.CANCELLED)
# A worker is (or is about to be) on it; counts against the autopilot's cap.
IN_FLIGHT_TASK: tuple[str, ...] = (_T.DISPATCHED, _T.RUNNING, _T.BLOCKED, _T.VERIFYING)
# A failed task that is waiting for its retry still owns its files.
HOLDS_PATHS_TASK: tuple[str, ...] = IN_FLIGHT_TASK + (_T.FAILED,)
# Which task states a fold may move a task out of: never out of a terminal or unstarted state.
FOLDABLE_TASK: tuple[str, ...] = (_T.DISPATCHED, _T.RUNNING, _T.BLOCKED)
# Work that can still move without the leader: a run with a failed task is failed only when none is left.
MOVING_TASK: tuple[str, ...] = (_T.READY, _T.DISPATCHED, _T.RUNNING, _T.VERIFYING)
UNFINISHED_TASK: tuple[str, ...] = tuple(s for s in TASK_STATUSES if s not in FINISHED_TASK)
# Not dispatched yet: dependencies can still be added.
UNSTARTED_TASK: tuple[str, ...] = (_T.PLANNED, _T.READY)
# The order a person's status view lists tasks in: what most needs the leader first.
NEEDS_LOOK_ORDER: tuple[str, ...] = (_T.BLOCKED, _T.FAILED, _T.VERIFYING, _T.RUNNING, _T.DISPATCHED, _T.READY)
# What the console's needs-attention view holds by status alone.
ATTENTION_TASK: tuple[str, ...] = (_T.BLOCKED, _T.FAILED)

# Runs that ended (the report gives them a finish time).
ENDED_RUN: tuple[str, ...] = (_R.DONE, _R.CANCELLED, _R.FAILED)
# Runs the watcher still looks after (a done or cancelled run needs nothing; a failed one may retry).
WATCHED_RUN: tuple[str, ...] = (_R.ACTIVE, _R.BLOCKED, _R.FAILED)
# Runs `latest_run` picks from (still going).
OPEN_RUN: tuple[str, ...] = (_R.ACTIVE, _R.BLOCKED)

# -- liveness (attempts.liveness, written by the watcher from store/liveness.py's verdicts) ---
# The verdicts that also end the attempt (store.runtime.end_attempt).
ENDING_LIVENESS: tuple[str, ...] = (_E.STALLED, _E.CRASHED, _E.TIMED_OUT)
# What makes a task need the leader, besides its own state (ATTENTION_TASK) and an open escalation or
# prompt (store.runtime.attention): these verdicts of the watcher about its worker.
ATTENTION_LIVENESS: tuple[str, ...] = ("waiting_input", "error", *ENDING_LIVENESS)
# What an ended attempt keeps: its end verdict, or nothing.
KEPT_LIVENESS: tuple[str, ...] = ("", *ENDING_LIVENESS)
# Why a worker still running for an ended attempt is stopped (the watcher's sweep).
STOP_REASONS: tuple[str, ...] = (_E.STALLED, _E.TIMED_OUT, _E.CRASHED, _E.CANCELLED, _E.REASSIGNED)

# -- transitions ------------------------------------------------------------------------------
# thread status -> task status for the task's latest attempt
THREAD_TO_TASK: dict[str, str] = {
    _TH.PENDING: _T.DISPATCHED,
    _TH.CLAIMED: _T.RUNNING,
    _TH.IN_PROGRESS: _T.RUNNING,
    _TH.BLOCKED: _T.BLOCKED,
    _TH.DONE: _T.DONE,
    _TH.FAILED: _T.FAILED,
    _TH.CANCELLED: _T.FAILED,
}
# A terminal thread's default end reason for its attempt.
END_REASON_OF_THREAD: dict[str, str] = {_TH.DONE: _E.SUCCEEDED, _TH.FAILED: _E.FAILED, _TH.CANCELLED: _E.CANCELLED}

# What a run's status depends on (fold.run_status): whether every task is done or cancelled
# (D), any is blocked (B), any failed (F), any is live (L). A task moving inside one class
# (dispatched -> running) cannot change its run's status, so that transition skips the probes.
RUN_CLASS: dict[str, str] = {_T.DONE: "D", _T.CANCELLED: "D", _T.BLOCKED: "B", _T.FAILED: "F", _T.PLANNED: "P",
                             _T.READY: "L", _T.DISPATCHED: "L", _T.RUNNING: "L", _T.VERIFYING: "L"}

# -- events -----------------------------------------------------------------------------------
# The event a task transition appends.
TASK_EVENT: dict[str, str] = {
    _T.RUNNING: "task_running",
    _T.BLOCKED: "task_blocked",
    _T.VERIFYING: "task_verifying",
    _T.DONE: "task_done",
    _T.FAILED: "task_failed",
    _T.CANCELLED: "task_cancelled",
    _T.DISPATCHED: "task_dispatched",
    _T.READY: "task_ready",
}
# Events after which store.runtime.attention() can answer differently.
ATTENTION_EVENTS = frozenset({"task_escalated", "attempt_waiting_input", "attempt_input_sent", "attempt_stalled",
                              "attempt_crashed", "attempt_timed_out", "task_dispatched", "task_auto_dispatched",
                              "task_auto_retried", "task_done", "task_cancelled", "task_failed", "task_running",
                              "thread_result", "run_cancelled"})
# Events the leader is called for (a bell and a notification in the console).
ALERT_EVENTS = frozenset({"task_escalated", "attempt_waiting_input", "task_blocked", "approval_requested",
                          "profile_held"})
# What each alert asks of the leader, and the console key that answers it.
ALERT_KIND = {"task_blocked": "question", "attempt_waiting_input": "waiting_input", "task_escalated": "escalation",
              "approval_requested": "approval", "profile_held": "hold"}
# Event types after which the wave layout may be stale (the plan changed).
STRUCTURE_EVENTS = frozenset({"task_added", "dep_added", "task_removed", "dep_removed", "run_created"})
# Events that end a worker's thread (the watcher clears the attempt's liveness label).
THREAD_END_EVENTS = ("thread_result", "thread_cancelled")


def sql_in(values: Iterable[str]) -> str:
    """An SQL IN-list of literals, `('a','b')`, from the constants above (never from input).

    Literals rather than `?` marks: the partial index threads_live is only usable when the
    query's IN-list matches its own, and a literal list costs no parameter binding."""
    return "(" + ",".join(f"'{v}'" for v in values) + ")"
