"""What is an agent's screen showing? Per-agent recognisers over tmux `capture-pane -p` text.

Pure functions: no Textual, no SQL, no tmux. `classify(text, agent)` reads the screen's structure
(the last menu and its numbered options, the footer hints under it, the question above it,
spinners and "esc to interrupt", the prompt line and its footer, the latest turn's error banners,
tmux's "Pane is dead" line) and returns a Verdict:

    working                              the agent is busy (spinner, "esc to interrupt")
    waiting_input  permission|question|dialog|login, with the options offered
    idle                                 at its prompt, nothing running
    error          auth|network|usage_limit|api|exited
    starting                             a blank screen or a start-up banner with no prompt yet
    unknown                              no rule fired: never a guess

Each verdict names the rule that fired, the line it fired on, and the agent's version when the
screen shows it. The rules were written against the corpus of real captures in
tests/agents/corpus/ (Claude Code 2.1.197, Codex 0.171.0, Gemini CLI 0.61.0, opencode
1.18.33, aider 0.86.2), which tests/agents/test_corpus.py checks. Agents without a profile get
the generic rules (structural menus, y/n prompts, the liveness patterns of store/liveness.py).

`fingerprint(text)` hashes a screen with its timers and spinners masked, so a ticking
"Working (48s • esc to interrupt)" is not mistaken for progress.

The recogniser is split by feature: screen_patterns.py holds the words and shapes (menu footers,
permission, dialog and login wording, the error families), screen_agents.py each agent's profile,
screen_structure.py the readers of a screen's structure (prompt, menu, buttons, question, latest
turn). This module holds the verdict and the decision procedure, `classify`, as ordered steps: it
is the one entry point the watcher, the hooks' fusion and `orch screen classify` import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from orch_console.store.liveness import ANSWERS, ERROR, WAITING_INPUT, screen_signature

from .screen_agents import AGENTS, GENERIC, AgentScreen
from .screen_patterns import (AIDER_YN, LOGIN, PANE_DEAD, PERMISSION, TEXT_FIELD_FOOTER, WORKING_ANY, clean,
                              error_kind, menu_kind)
from .screen_structure import (QUESTION_WINDOW, Option, find_buttons, find_composer, find_menu, is_banner,
                               latest_turn, question_above)

# The names other modules use: they import this module only, whichever module defines a name.
__all__ = ["AGENTS", "ERROR_KINDS", "PANE_DEAD", "STATES", "WAIT_KINDS", "AgentScreen", "Option", "Verdict",
           "classify", "detect_agent", "fingerprint"]

STATES = ("working", "waiting_input", "idle", "error", "starting", "unknown")
WAIT_KINDS = ("permission", "question", "dialog", "login")
ERROR_KINDS = ("auth", "network", "usage_limit", "api", "exited")


@dataclass(frozen=True)
class Verdict:
    state: str
    kind: str = ""
    rule: str = ""
    line: str = ""
    agent: str = ""
    version: str = ""
    question: str = ""
    options: tuple[Option, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = [asdict(o) for o in self.options]
        return d


def detect_agent(text: str) -> str:
    """The profile whose signature is on screen ('' for none): the first in AGENTS' order."""
    for a in AGENTS.values():
        if a.signature.search(text):
            return a.name
    return ""


# -- the recogniser ---------------------------------------------------------------------------------
def classify(text: str, agent: str | None = None) -> Verdict:
    """The verdict for one screen. agent: a profile name (claude, codex, gemini, opencode, aider), '' or
    None to detect it from the screen; any other agent gets the generic rules."""
    screen = _read(text, agent)
    if not screen.lines:
        return screen.verdict("starting", rule="blank_screen")
    # the first step that recognises the screen decides; their order is the rules' precedence
    for step in _STEPS:
        verdict = step(screen)
        if verdict is not None:
            return verdict
    return screen.verdict("unknown")


@dataclass
class _Screen:
    """One screen as the steps of classify() read it. What only some steps need is computed on
    first use and kept, so no step reads the prompt or the latest turn twice and a screen decided
    early (a dead pane) never reads them."""

    name: str          # the agent asked for, else the one detected ('' when none): the verdict's agent
    prof: AgentScreen  # its profile, GENERIC for an agent without one
    version: str       # the agent's version when the screen shows it, never guessed
    lines: list[str]   # box edges stripped, trailing blank lines dropped
    boxed: list[bool]  # per line: drawn inside a box (a selected option in a box needs no footer)

    @cached_property
    def composer(self) -> int | None:
        return find_composer(self.lines, self.prof)

    @cached_property
    def below(self) -> list[str]:
        """The lines under the prompt (its footer)."""
        return self.lines[self.composer + 1:] if self.composer is not None else []

    @cached_property
    def turn(self) -> list[str]:
        return latest_turn(self.lines, self.composer, self.prof)

    @property
    def last_line(self) -> str:
        return self.lines[-1].strip()

    def verdict(self, state: str, kind: str = "", rule: str = "", line: str = "", **kw: Any) -> Verdict:
        return Verdict(state, kind, rule, line.strip()[:300], self.name, self.version, **kw)


def _read(text: str, agent: str | None) -> _Screen:
    raw = (text or "").replace("\r", "")
    name = (agent or "").strip().lower() or detect_agent(raw)
    prof = AGENTS.get(name, GENERIC)
    raw_lines = raw.split("\n")
    lines = [clean(ln) for ln in raw_lines]
    while lines and not lines[-1].strip():
        lines.pop()
    # from the raw lines: clean() has already stripped the box edge this looks for
    boxed = [bool(re.match(r"^\s*[│┃║]", ln)) for ln in raw_lines[:len(lines)]]
    version = ""
    if prof.version:
        m = prof.version.search(raw)
        version = next((g for g in m.groups() if g), "") if m else ""
    return _Screen(name, prof, version, lines, boxed)


def _pane_dead(s: _Screen) -> Verdict | None:
    """1. tmux kept the pane after the agent exited (remain-on-exit)."""
    if PANE_DEAD.match(s.last_line):
        return s.verdict("error", "exited", "pane_dead", s.lines[-1])
    return None


def _menu(s: _Screen) -> Verdict | None:
    """2. a menu, with no prompt below it (a menu above the prompt is history)."""
    menu = find_menu(s.lines, s.composer, s.boxed)
    if menu is None:
        return None
    first, last, options, _footer = menu
    block = "\n".join(s.lines[max(0, first - QUESTION_WINDOW):last + 1])
    return s.verdict("waiting_input", menu_kind(block), "menu", s.lines[first], question=question_above(s.lines, first),
                     options=tuple(options))


def _buttons(s: _Screen) -> Verdict | None:
    """2b. a row of buttons over "enter confirm" (opencode: "Allow once   Allow always   Reject"),
    only while no prompt is on screen (a row left above the prompt was answered)."""
    if s.composer is not None:
        return None
    buttons = find_buttons(s.lines)
    if buttons is None:
        return None
    lines = s.lines
    i, options = buttons
    block = "\n".join(lines[max(0, i - QUESTION_WINDOW):i + 1])
    # the permission line names what is asked (opencode's "△ Permission required"), else the question
    q = next((lines[k].strip() for k in range(i - 1, max(-1, i - QUESTION_WINDOW - 1), -1)
              if PERMISSION.search(lines[k])), "") or question_above(lines, i)
    return s.verdict("waiting_input", menu_kind(block), "buttons", lines[i], question=q, options=tuple(options))


def _text_field(s: _Screen) -> Verdict | None:
    """3. a text field (Codex's API-key entry, Gemini's key prompt), while no prompt is on screen."""
    if s.composer is not None:
        return None
    tail = s.lines[-12:]
    for i in range(len(tail) - 1, -1, -1):
        if TEXT_FIELD_FOOTER.search(tail[i]):
            block = "\n".join(s.lines[-30:])
            # the question is the field's own prompt line, never the field's content (it may be a key)
            q = next((x.strip() for x in s.lines[-30:] if LOGIN.search(x) or x.strip().endswith("?")), "")
            return s.verdict("waiting_input", menu_kind(block), "text_field", tail[i], question=q)
    return None


def _yes_no_default(s: _Screen) -> Verdict | None:
    """4. aider's line-oriented "(Y)es/(N)o [Yes]:" on the last line; the bracketed default is the
    option marked selected."""
    last_line = s.last_line
    m = AIDER_YN.match(last_line)
    if not m:
        return None
    opts = tuple(Option(o[1].lower(), o[1] + o[3:].strip(), (o[1] + o[3:].strip()) == m["default"])
                 for o in re.findall(r"\([A-Za-z]\)[\w' ]+", m["opts"]))
    return s.verdict("waiting_input", menu_kind(m["q"]), "yes_no_default", last_line, question=m["q"].strip(),
                     options=opts)


def _yes_no(s: _Screen) -> Verdict | None:
    """4b. a "[y/n]"-style prompt (store/liveness.py's WAITING_INPUT) on one of the last two lines,
    unless an answer already follows it on that line."""
    for ln in reversed([x for x in s.lines if x.strip()][-2:]):
        ms = list(WAITING_INPUT.finditer(ln))
        if ms and ln[ms[-1].end():].strip().lower() not in ANSWERS:
            return s.verdict("waiting_input", menu_kind(ln), "yes_no", ln, question=ln.strip())
    return None


def _turn_error(s: _Screen) -> Verdict | None:
    """5. an error banner in the latest turn. Before the busy markers: a network retry shows
    "esc to interrupt" too. Only the latest turn: an error answered by a later prompt is history."""
    for ln in reversed(s.turn):
        kind = error_kind(ln)
        if kind and is_banner(ln):
            return s.verdict("error", kind, "turn_error", ln)
    return None


def _busy(s: _Screen) -> Verdict | None:
    """5b. busy: the agent's own markers, under the prompt and then in the latest turn's last lines;
    without them (the generic rules), an "esc to interrupt"-style hint near the bottom."""
    if s.prof.working:
        for ln in list(reversed(s.below)) + list(reversed(s.turn[-8:])):
            if s.prof.working.search(ln):
                return s.verdict("working", rule="busy_marker", line=ln)
    elif any(WORKING_ANY.search(ln) for ln in s.lines[-15:]):
        ln = next(ln for ln in reversed(s.lines[-15:]) if WORKING_ANY.search(ln))
        return s.verdict("working", rule="interrupt_hint", line=ln)
    return None


def _at_prompt(s: _Screen) -> Verdict | None:
    """6. at the prompt: idle, unless its footer says the agent is not logged in, or (Codex) the
    footer that shows once the session is up is not there yet."""
    prof = s.prof
    if s.composer is not None:
        for ln in s.below:
            if prof.idle_login and prof.idle_login.search(ln):
                return s.verdict("waiting_input", "login", "prompt_not_logged_in", ln)
        if prof.ready_footer and not any(prof.ready_footer.search(x) for x in s.below[:4]):
            return s.verdict("starting", rule="prompt_before_session", line=s.lines[s.composer])
        return s.verdict("idle", rule="prompt", line=s.lines[s.composer])
    if prof.prompt_last_line and prof.prompt_last_line.match(s.last_line):
        return s.verdict("idle", rule="prompt", line=s.last_line)
    return None


def _error_line(s: _Screen) -> Verdict | None:
    """7. generic: an error in the last lines (store/liveness.py's families, kind from the words);
    for a known agent, an error family's words alone are enough."""
    for ln in reversed(s.lines[-6:]):
        kind = error_kind(ln)
        if ERROR.search(ln) or (kind and s.prof is not GENERIC):
            return s.verdict("error", kind, "error_line", ln)
    return None


def _banner_only(s: _Screen) -> Verdict | None:
    """8. a start-up banner and nothing else yet."""
    if s.prof is not GENERIC and not any(ln.strip() for ln in s.lines[-8:]):
        return s.verdict("starting", rule="banner_only", line=next((x for x in s.lines if x.strip()), ""))
    return None


_STEPS: tuple[Callable[[_Screen], Verdict | None], ...] = (
    _pane_dead, _menu, _buttons, _text_field, _yes_no_default, _yes_no, _turn_error, _busy, _at_prompt,
    _error_line, _banner_only,
)


def fingerprint(text: str) -> str:
    """A hash of the screen that ignores what changes without progress (timers, token counts,
    spinners and their status lines): a hash of store.liveness.screen_signature, the one the
    watcher compares between passes."""
    return hashlib.sha1(screen_signature(text).encode()).hexdigest()
