"""The structure of a screen: where its prompt is, its last menu and options, a row of buttons,
the question above a menu, the latest turn, and whether a line is a status banner.

Reading structure rather than the last line or two is what lets the recogniser tell a live menu
from one left in the transcript (a menu above the prompt is history) and find a question many
lines above its options. These readers return positions and options; which verdict they lead to
is decided in screens.classify. They are parametrised by an agent's profile (screen_agents.py)
where the agents differ, and otherwise shared.

Pure: no Textual, no SQL, no tmux.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .screen_agents import AgentScreen
from .screen_patterns import MENU_FOOTER, OPTION, RULE

MENU_WINDOW = 45     # how far up from the bottom a menu may start (Codex's approval overlay is tall)
QUESTION_WINDOW = 14  # how far above a menu's first option its question may sit


@dataclass(frozen=True)
class Option:
    """One answer a menu offers. It lives here, beside the readers that build it, and screens.py
    re-exports it as part of its verdicts (screens.Option)."""

    key: str          # "1", "y"
    label: str        # "Yes, and always allow access to repo/ from this project"
    selected: bool = False


def find_composer(lines: list[str], prof: AgentScreen) -> int | None:
    """Index of the prompt line the user types into, if this agent's screen shows one."""
    if prof.composer is None:
        return None
    lo = max(0, len(lines) - MENU_WINDOW)
    for i in range(len(lines) - 1, lo - 1, -1):
        ln = lines[i]
        if not prof.composer.match(ln) or OPTION.match(ln):
            continue
        if prof.composer_needs_rule_above and not (i > 0 and RULE.match(lines[i - 1])):
            continue
        if prof.composer_footer is not None and not any(prof.composer_footer.search(x) for x in lines[i + 1:i + 5]):
            continue
        return i
    return None


def find_menu(lines: list[str], composer: int | None,
              boxed: list[bool] | None = None) -> tuple[int, int, list[Option], str] | None:
    """(first option, last option, options, footer line) of the last numbered menu on screen: at
    least 2 options numbered from 1, and a footer hint under them, or a selected option in a box
    (Gemini's dialogs have no footer; a plain numbered list in the transcript has neither)."""
    lo = max(0, len(lines) - MENU_WINDOW)
    last = None
    for i in range(len(lines) - 1, lo - 1, -1):
        if OPTION.match(lines[i]):
            last = i
            break
    if last is None or (composer is not None and composer > last):
        return None
    found: list[tuple[int, re.Match[str]]] = []
    gap = 0
    i = last
    while i >= lo:
        m = OPTION.match(lines[i])
        if m:
            if found and int(m["num"]) != int(found[-1][1]["num"]) - 1:
                break
            found.append((i, m))
            gap = 0
            if m["num"] == "1":
                break
        else:
            gap += 1
            if gap > 3:
                break
        i -= 1
    if len(found) < 2 or found[-1][1]["num"] != "1":
        return None
    found.reverse()
    # options below the last one found continue the numbering (a rule may split them)
    j, n = last + 1, int(found[-1][1]["num"])
    while j < len(lines) and j <= last + 4:
        m = OPTION.match(lines[j])
        if m and int(m["num"]) == n + 1:
            found.append((j, m))
            n += 1
            last = j
        j += 1
    footer = next((lines[k] for k in range(last + 1, min(len(lines), last + 8)) if MENU_FOOTER.search(lines[k])), "")
    selected = any(m["cur"] for _, m in found)
    in_box = boxed is not None and all(k < len(boxed) and boxed[k] for k, _ in found)
    if not footer and not (selected and (in_box or any(MENU_FOOTER.search(m["label"]) for _, m in found))):
        return None
    options = [Option(m["num"], m["label"], bool(m["cur"])) for _, m in found]
    return found[0][0], last, options, footer


# opencode's permission row: "Allow once   Allow always   Reject      ctrl+f fullscreen  ⇆ select  enter
# confirm" on one line; the first hint ends the buttons
BUTTON_FOOTER = re.compile(r"\benter (to )?confirm\b", re.IGNORECASE)
BUTTON_HINT = re.compile(r"ctrl\+|⇆|\benter\b|\besc\b|fullscreen|select", re.IGNORECASE)


def find_buttons(lines: list[str]) -> tuple[int, list[Option]] | None:
    """(line, options) of a row of buttons followed on the same line by an "enter confirm" hint."""
    for i in range(len(lines) - 1, max(-1, len(lines) - 16), -1):
        if not BUTTON_FOOTER.search(lines[i]):
            continue
        labels = []
        for item in re.split(r"\s{3,}", lines[i].strip()):
            if BUTTON_HINT.search(item):
                break
            labels.append(item.strip())
        if 2 <= len(labels) <= 6 and all(0 < len(x) <= 30 for x in labels):
            # which button is highlighted is a colour the text capture does not keep: none is marked
            return i, [Option(str(n), x, False) for n, x in enumerate(labels, 1)]
    return None


def question_above(lines: list[str], first: int) -> str:
    """The question a menu answers: the nearest line above it ending in '?', else the nearest text."""
    nearest = ""
    for k in range(first - 1, max(-1, first - QUESTION_WINDOW - 1), -1):
        s = lines[k].strip()
        if not s or RULE.match(s):
            continue
        if s.endswith("?") or re.search(r"\?\s", s):
            return s
        nearest = nearest or s
    return nearest


def latest_turn(lines: list[str], composer: int | None, prof: AgentScreen) -> list[str]:
    """The lines of the latest turn: after the last echoed prompt, above the composer."""
    end = composer if composer is not None else len(lines)
    start = max(0, end - 40)
    if prof.echo is not None:
        for i in range(end - 1, start - 1, -1):
            if prof.echo.match(lines[i]) and not OPTION.match(lines[i]):
                return lines[i + 1:end]
    return lines[start:end]


def is_banner(line: str) -> bool:
    """Error words on a status or result line, not inside quoted output or a tool's text."""
    s = line.strip()
    return bool(re.match(r"^([●✻✶✳✢*⎿■✕×!⚠•◦└]|\S*Error|Unable|Failed|Not logged|API|Connection|litellm)", s))
