"""Is a running attempt alive? A pure judgement over the facts the watcher gathered.

Signals, any of which counts as life: the lease heartbeat (renew, and every update folded into
the attempt), the last message, the newest write in the worktree, the last commit, a change of
the worker's screen (tmux pane hash) or log. Against them: the process gone, a screen waiting at
a prompt, a quiet stretch past the run's thresholds (store/policy.py Settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .policy import Settings
from .states import LIVE_THREAD

# Same families as the task-orchestrator check script (seeds/001): input prompts, then errors.
WAITING_INPUT = re.compile(r"(Continue\?|\[y/n\]|\(y/n\)|\by/n\b|\[Y/n\]|\[y/N\]|\(yes/no\)|Press any key"
                           r"|Press Enter|Do you want to proceed|Are you sure)", re.IGNORECASE)
ERROR = re.compile(r"(\berror:|\bfailed:|\bFATAL\b|\bpanic\b|Traceback \(most recent call last\))",
                   re.IGNORECASE)

ANSWERS = ("y", "n", "yes", "no")

# A screen whose only change is a ticking timer, a token counter or a spinner is not progress: an
# agent stuck retrying an unreachable API shows "Working (48s • esc to interrupt)" for ever. The
# signature the watcher hashes leaves those out: status lines (a leading spinner glyph, "esc to
# interrupt") count as one fixed line, and every run of digits as one character.
_SPINNER_LINE = re.compile(r"^\s*[\u2800-\u28ff\u2722-\u273f\u00b7\u2219\u22c6\u25cf\u25d0-\u25d3"
                           r"*+\u2726\u2727\u2736\u273b\u273d]\s")
_BUSY_HINT = re.compile(r"esc to interrupt|ctrl\+c to interrupt|\besc to cancel\b.*\d+s", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")


def classify_pane(text: str, tail_lines: int = 6) -> tuple[str, str]:
    """(state, line): 'waiting_input' when the last lines hold a prompt, 'error' when they hold an
    error, else 'active'. Only the tail counts: an old error scrolled up is history."""
    lines = [ln.rstrip() for ln in (text or "").splitlines() if ln.strip()]
    tail = lines[-tail_lines:]
    for ln in reversed(tail[-2:]):
        matches = list(WAITING_INPUT.finditer(ln))
        # "Continue? [y/n] y" is a prompt already answered (the keys echo after it).
        if matches and ln[matches[-1].end():].strip().lower() not in ANSWERS:
            return "waiting_input", ln.strip()[:200]
    for ln in reversed(tail):
        if ERROR.search(ln):
            return "error", ln.strip()[:200]
    return "active", ""


def screen_signature(text: str) -> str:
    """The part of a screen that changes only when the worker makes progress (see above)."""
    out = []
    for ln in (text or "").splitlines():
        if _BUSY_HINT.search(ln) or _SPINNER_LINE.match(ln):
            out.append("<busy>")
        else:
            out.append(_DIGITS.sub("0", ln.rstrip()))
    return "\n".join(out)


@dataclass(frozen=True)
class Facts:
    now: float
    started_at: float
    thread_status: str
    launched: bool                    # started by orch (has a runtime)
    process_alive: bool | None = None  # None: unknown (not launched, or no pid yet)
    dead_since: float = 0.0           # first time the watcher saw the process gone
    lease_owner: str = ""
    lease_expires_at: float = 0.0
    heartbeat_at: float = 0.0
    last_message_at: float = 0.0
    worktree_write_at: float = 0.0
    last_commit_at: float = 0.0
    output_changed_at: float = 0.0    # pane hash or log size last changed
    pane_state: str = ""              # '' | 'active' | 'waiting_input' | 'error'
    pane_line: str = ""
    answered_at: float = 0.0          # the leader answered the blocked thread's question (0: not yet)


@dataclass(frozen=True)
class Verdict:
    liveness: str     # starting alive blocked quiet idle waiting_input error stalled crashed timed_out
    action: str       # '' | 'nudge' | 'attention' | 'stalled' | 'crashed' | 'timed_out'
    reason: str
    last_signal_at: float


def last_signal(f: Facts) -> float:
    return max(f.started_at, f.heartbeat_at, f.last_message_at, f.worktree_write_at, f.last_commit_at,
               f.output_changed_at, f.answered_at)


def judge(f: Facts, s: Settings) -> Verdict:
    sig = last_signal(f)
    quiet = max(0.0, f.now - sig)
    if f.thread_status not in LIVE_THREAD:
        return Verdict("", "", "attempt has ended", sig)
    if f.process_alive is False:
        gone = f.now - f.dead_since if f.dead_since else 0.0
        if gone >= s.crash_grace_seconds:
            return Verdict("crashed", "crashed",
                           f"worker process exited while its thread was {f.thread_status}, without "
                           f"reporting done or fail", sig)
        return Verdict("exited", "", "worker process has exited; waiting for its last report", sig)
    # A screen waiting for input is the leader's to see: never nudged, stalled, timed out or killed,
    # however long it has waited (the attention flag says so at once).
    if f.pane_state == "waiting_input":
        return Verdict("waiting_input", "attention", f"waiting for input: {f.pane_line}", sig)
    # Likewise a worker blocked on a question: the time is the leader's, not the worker's. Once it
    # is answered the worker is due to resume (update --status in_progress; a reply leaves the
    # thread blocked) and is watched as any other, its quiet counted from the answer.
    if f.thread_status == "blocked" and not f.answered_at:
        return Verdict("blocked", "", "blocked on a question to the leader", sig)
    if s.attempt_timeout_seconds > 0 and f.now - f.started_at > s.attempt_timeout_seconds:
        return Verdict("timed_out", "timed_out",
                       f"running for {f.now - f.started_at:.0f}s, past attempt_timeout_seconds="
                       f"{s.attempt_timeout_seconds:g}", sig)
    lease_gone = not f.lease_owner or (f.lease_expires_at and f.lease_expires_at < f.now)
    # An attempt nobody launched and nobody claimed is simply waiting for its agent to pick it up.
    watched = f.launched or (f.thread_status != "pending")
    if watched and quiet >= s.stall_seconds and (f.launched or lease_gone):
        what = "lease expired, " if (lease_gone and f.lease_owner) else ""
        return Verdict("stalled", "stalled",
                       f"{what}no heartbeat, message, worktree write, commit or output for {quiet:.0f}s "
                       f"(stall_seconds={s.stall_seconds:g})", sig)
    if watched and quiet >= s.nudge_seconds:
        return Verdict("quiet", "nudge" if s.nudge else "",
                       f"no sign of life for {quiet:.0f}s (nudge_seconds={s.nudge_seconds:g})", sig)
    if f.pane_state == "error":
        return Verdict("error", "", f"screen shows an error: {f.pane_line}", sig)
    if f.thread_status == "pending":
        return Verdict("starting", "", "launched; waiting for the worker to claim", sig)
    if f.output_changed_at and f.now - f.output_changed_at >= s.idle_seconds and f.pane_state:
        return Verdict("idle", "", f"screen unchanged for {f.now - f.output_changed_at:.0f}s", sig)
    return Verdict("alive", "", "", sig)
