"""What the watcher makes of a worker's screen (issue 12, items 4, 7 and 8).

The per-agent recogniser (console/runtime/screens.py) says what a screen shows; this module puts
that verdict in the liveness judge's terms (store/liveness.py Facts.pane_state: active,
waiting_input, error), writes the line the leader reads, and says whether the screen is a reason
to hold the profile (store/holds.py: a usage limit, an unreachable API, a login problem).

Attempts of a known agent (their profile runs claude, codex, gemini, aider or opencode, or the
screen itself shows one) get the agent's recogniser; when none of its rules fires the screen is no
signal either way (never a guess), and the other signals decide. Every other worker (the simulated
one, a custom command) keeps the generic prompt and error patterns of store/liveness.py.

Headless: no Textual, no SQL, no tmux.
"""

from __future__ import annotations

from dataclasses import dataclass

from orch_console.store.liveness import classify_pane

from . import screens

# Walls the next worker of the same profile would hit too (store/holds.py). An API error is one
# request's answer (a 400, an overloaded moment the agent retries): shown, not held.
HOLD_KINDS = ("usage_limit", "network", "auth")
FIRST_RUN_KINDS = ("login", "dialog")                   # screens an agent shows before it can work


@dataclass(frozen=True)
class ScreenRead:
    pane_state: str            # '' | 'active' | 'waiting_input' | 'error' (liveness Facts terms)
    line: str = ""             # what the leader reads: the kind, the question and the options
    settled: bool = False      # a known agent's menu or field: reported at once, it does not flash by
    hold_kind: str = ""        # a reason to hold the profile ('' for none)
    agent: str = ""
    state: str = ""            # the recogniser's own state (working, idle, ...), '' for generic rules
    kind: str = ""


def read(text: str, agent: str = "", *, claimed: bool = True) -> ScreenRead:
    """The watcher's reading of one screen. agent: the attempt's known agent ('' when its profile
    runs none; then the screen may still show one). claimed: the worker has claimed its thread; a
    login or start-up dialog before that is the reason the launch cannot proceed."""
    name = agent if agent in screens.AGENTS else screens.detect_agent(text or "")
    if not name:
        state, line = classify_pane(text)
        return ScreenRead(state, line)
    v = screens.classify(text, name)
    if v.state == "waiting_input":
        return ScreenRead("waiting_input", describe(v, claimed=claimed), settled=True, agent=name,
                          state=v.state, kind=v.kind,
                          hold_kind="auth" if v.kind == "login" else "")
    if v.state == "error" and v.kind == "exited":
        return _exited(text, name, v)
    if v.state == "error":
        line = f"{v.kind or 'error'}: {v.line}"
        return ScreenRead("error", line, agent=name, state=v.state, kind=v.kind,
                          hold_kind=v.kind if v.kind in HOLD_KINDS else "")
    if v.state == "unknown":
        return ScreenRead("", agent=name, state=v.state)
    return ScreenRead("active", agent=name, state=v.state)  # working, idle at its prompt, starting


def read_exit(log_tail: str, agent: str) -> ScreenRead:
    """Why a headless agent (runtime process) exited, from the last lines of its log: an error it
    printed last, with the profile hold it calls for; else no reading."""
    lines = [ln for ln in (log_tail or "").replace("\r", "").split("\n") if ln.strip()][-6:]
    for ln in reversed(lines):
        kind = screens.error_kind(ln)
        if kind:
            return ScreenRead("error", f"exited after {kind}: {ln.strip()}"[:500], agent=agent, state="error",
                              kind="exited", hold_kind=kind if kind in HOLD_KINDS else "")
    return ScreenRead("")


def _exited(text: str, agent: str, v: screens.Verdict) -> ScreenRead:
    """The agent exited (tmux kept its dead pane): why, from what it printed last ("Unable to
    connect to Anthropic services" is a network problem the next launch would meet too)."""
    lines = (text or "").replace("\r", "").split("\n")
    while lines and (not lines[-1].strip() or screens.PANE_DEAD.match(lines[-1].strip())):
        lines.pop()
    before = screens.classify("\n".join(lines), agent) if lines else None
    if before is not None and before.state == "error" and before.kind not in ("", "exited"):
        return ScreenRead("error", f"exited after {before.kind}: {before.line}"[:500], agent=agent, state="error",
                          kind="exited", hold_kind=before.kind if before.kind in HOLD_KINDS else "")
    last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
    return ScreenRead("error", (f"exited: {last}" if last else f"exited: {v.line}")[:500], agent=agent,
                      state="error", kind="exited")


def describe(v: screens.Verdict, *, claimed: bool = True) -> str:
    """One line for the leader: what the agent asks and what it offers."""
    what = v.question or v.line
    opts = " | ".join(f"{o.key}. {o.label}" for o in v.options[:6])
    text = f"{v.kind or 'input'}: {what}" + (f" [{opts}]" if opts else "")
    if not claimed and v.kind in FIRST_RUN_KINDS:
        hint = (f"give the profile credentials in its env, or log in once with `{v.agent}` in the agent's home"
                if v.kind == "login" else "answer it (attach, or type the key), or pre-set it in the agent's home")
        text = f"the launch cannot proceed: {v.agent} stopped at a first-run {v.kind} screen ({text}); {hint}"
    return text[:500]
