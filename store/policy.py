"""The run's self-healing policy, as pure decisions: thresholds, bounded retries, backoff.

Settings live in the run's config (`store.runs.run_config`), as flat keys so a leader can change
one without restating the rest. Nothing here does IO: the watcher gathers facts, asks these
functions what to do, and records the answer through store/runtime.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from .errors import InvalidInput
from .states import EndReason
from .validate import MAX_DURATION_SECONDS

# End reasons a fresh attempt may fix. `cancelled` and `reassigned` were the leader's decision,
# so they are never retried behind the leader's back.
RETRYABLE: tuple[str, ...] = (EndReason.FAILED, EndReason.CRASHED, EndReason.STALLED, EndReason.TIMED_OUT,
                              EndReason.CHECK_FAILED)


@dataclass(frozen=True)
class Settings:
    """Per-run liveness thresholds and policy bounds (seconds unless named otherwise)."""

    liveness_interval_seconds: float = 2.0   # how often running attempts are probed
    nudge_seconds: float = 180.0             # quiet this long: one control message asks for status
    stall_seconds: float = 600.0             # quiet this long: the attempt is ended as stalled
    idle_seconds: float = 60.0               # tmux pane unchanged this long: shown as idle
    crash_grace_seconds: float = 1.0         # process gone this long without done/fail: crashed
    attempt_timeout_seconds: float = 3600.0  # wall-clock limit per attempt (0: none); time spent blocked
    #                                          on the leader or waiting at a prompt is never cut short
    answer_grace_seconds: float = 20.0       # an answer the worker has not picked up this long is typed
    #                                          into its session (tmux): it ended its turn instead of waiting
    check_timeout_seconds: float = 600.0     # one verification check's command, at most
    max_attempts: int = 3                    # attempts per task, the first one included
    retry_backoff_seconds: float = 10.0      # before retry n+1: base * 2**(n-1), capped
    retry_backoff_max_seconds: float = 300.0
    nudge: bool = True
    retry: bool = True
    escalate: bool = True
    concurrency: int = 5                     # autopilot: running tasks at most
    autopilot: bool = False
    profile: str = ""                        # agent profile autopilot and retries launch with
    runtime: str = ""                        # "" = the profile's runtime; or tmux / process
    execution_mode: str = ""                 # "" = code when repo_path is set, else analysis
    repo_path: str = ""
    workspace_root: str = ""
    land_target: str = ""                    # issue 14: branch to land into ("" = orch/<run>/_land, no gate)
    auto_land: bool = False                  # land what passes its gate, in graph order (implies the gate)
    land_strategy: str = "merge"             # auto_land's strategy: merge, squash or rebase
    land_verify: bool = False                # auto_land re-runs required checks on the landed result first
    require_worker_tokens: bool = True       # a launched attempt's thread takes worker writes only with its token
    profiles_sha: str = ""                   # the agent profiles file the leader confirmed (watcher launches)

    @classmethod
    def parse_updates(cls, items: list[str]) -> dict[str, Any]:
        """`KEY=VALUE` texts (`orch run config --set`) as typed config updates: the value is read as
        JSON when it parses, else taken as text, and must have the setting's type (numbers are
        never negative). InvalidInput names what is wrong."""
        known = {f.name for f in fields(cls)}
        updates: dict[str, Any] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise InvalidInput(f"--set takes KEY=VALUE with KEY one of: {', '.join(sorted(known))}")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            default = getattr(cls, key)
            ok = isinstance(value, bool) if isinstance(default, bool) else (
                isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
                if isinstance(default, (int, float)) else isinstance(value, str))
            if not ok:
                raise InvalidInput(f"--set {key}: expected {type(default).__name__}, not {raw!r}")
            updates[key] = value
        return updates

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Settings:
        cfg = config or {}
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in cfg or cfg[f.name] is None:
                continue
            value = cfg[f.name]
            default = getattr(cls, f.name)
            try:
                if isinstance(default, bool):
                    kw[f.name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    kw[f.name] = int(value)
                elif isinstance(default, float):
                    n = float(value)
                    # a value no leader command accepts (inf, nan, 1e300, < 0) keeps the default:
                    # a run's config must never stop the watcher (issue 15, M1)
                    if not (0 <= n <= MAX_DURATION_SECONDS):
                        continue
                    kw[f.name] = n
                else:
                    kw[f.name] = str(value)
            except (TypeError, ValueError):
                continue  # a bad value keeps the default rather than stopping the watcher
        return cls(**kw)

    def mode(self) -> str:
        if self.execution_mode in ("analysis", "code"):
            return self.execution_mode
        return "code" if self.repo_path else "analysis"


def backoff_seconds(attempt_no: int, s: Settings) -> float:
    """Delay before the attempt after attempt_no: exponential, capped."""
    n = max(1, int(attempt_no))
    return min(s.retry_backoff_seconds * (2 ** (n - 1)), s.retry_backoff_max_seconds)


@dataclass(frozen=True)
class FailureDecision:
    action: str          # "retry" | "wait" | "escalate"
    reason: str
    due_at: float = 0.0  # for "wait" and "retry": when the retry is (was) due


def decide_failure(*, attempt_no: int, end_reason: str, ended_at: float, now: float,
                   settings: Settings, launched: bool) -> FailureDecision:
    """What to do about a task whose latest attempt ended without success."""
    how = end_reason or "failed"
    if how not in RETRYABLE:
        return FailureDecision("escalate", f"attempt {attempt_no} ended {how}; the leader decides what next")
    if not settings.retry:
        return FailureDecision("escalate", f"attempt {attempt_no} ended {how}; automatic retry is off")
    if not launched:
        return FailureDecision("escalate", f"attempt {attempt_no} ended {how}; it was not launched by orch, "
                                           f"so there is no worker profile to retry with")
    if attempt_no >= settings.max_attempts:
        return FailureDecision("escalate", f"gave up after {attempt_no} attempt(s) "
                                           f"(max_attempts={settings.max_attempts}); last ended {how}")
    due = ended_at + backoff_seconds(attempt_no, settings)
    if now < due:
        return FailureDecision("wait", f"attempt {attempt_no} ended {how}; retry {attempt_no + 1} of "
                                       f"{settings.max_attempts} due in {due - now:.1f}s", due)
    return FailureDecision("retry", f"attempt {attempt_no} ended {how}; retry {attempt_no + 1} of "
                                    f"{settings.max_attempts} after {backoff_seconds(attempt_no, settings):g}s "
                                    f"backoff", due)
