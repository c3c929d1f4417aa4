"""How each agent's screen looks: one AgentScreen profile per agent the recogniser knows.

A profile holds only what differs between agents (the banner that names the agent and its
version, the prompt line and what must surround it, how a submitted prompt is echoed, the busy
markers); the rules that read them are the same for every agent (screens.classify), so a new
agent or a new version's wording is a change here, checked by the corpus
(tests/agents/test_corpus.py). Agents without a profile get GENERIC, which matches nothing.

This is not console/runtime/agents.py, which installs and launches the real agent CLIs.
Pure: no Textual, no SQL, no tmux.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AgentScreen:
    """What one agent's screen shows; None where the agent has no such thing (aider has no composer)."""

    name: str
    signature: re.Pattern[str]                 # tells this agent's screen from others
    version: re.Pattern[str] | None = None
    composer: re.Pattern[str] | None = None    # the prompt line the user types into
    composer_needs_rule_above: bool = False    # Claude draws its composer between two rules
    composer_footer: re.Pattern[str] | None = None  # Codex: a footer line must follow its composer
    echo: re.Pattern[str] | None = None        # how a submitted prompt shows in the transcript
    working: re.Pattern[str] | None = None     # busy markers in the latest turn or the footer
    idle_login: re.Pattern[str] | None = None  # at the prompt, but not logged in
    prompt_last_line: re.Pattern[str] | None = None  # line-oriented agents (aider): the prompt is the last line
    ready_footer: re.Pattern[str] | None = None  # at the prompt, this footer shows once the session is up


CLAUDE = AgentScreen(
    "claude",
    signature=re.compile(r"Claude Code v\d|Claude Code'll be able|\? for shortcuts · ← for agents|"
                         r"Unable to connect to Anthropic services|Tab to amend"),
    version=re.compile(r"Claude Code v(\d+\.\d+\.\d+)"),
    composer=re.compile(r"^❯(?:[\s\u00a0]|$)"),
    composer_needs_rule_above=True,
    echo=re.compile(r"^❯[\s\u00a0]+\S"),
    # "✶ Blanching… (11s · ↓ 20 tokens)" (a done turn reads "✻ Baked for 0s": no ellipsis)
    working=re.compile(r"^[✳✽✶✻✢·*]\s+\S.*…|esc to interrupt|ctrl\+c to interrupt|⎿\s+Running…"),
    idle_login=re.compile(r"Not logged in · Run /login"),
)
CODEX = AgentScreen(
    "codex",
    signature=re.compile(r"OpenAI Codex \(v|Ask Codex to do anything|Welcome to Codex|Codex can read, edit"),
    version=re.compile(r"OpenAI Codex \(v(\d+\.\d+\.\d+)\)"),
    composer=re.compile(r"^›\s"),
    composer_footer=re.compile(r"\? for shortcuts|^\s{2}\S.* · |esc to interrupt|context left|% left"),
    echo=re.compile(r"^›\s+\S"),
    working=re.compile(r"^[•◦]\s+Working \(|esc to interrupt|background terminals? running"),
    # "fake-model default · /path": the model line appears when the session is configured
    ready_footer=re.compile(r"^\s{2}\S.* · "),
)
AIDER = AgentScreen(
    "aider",
    signature=re.compile(r"^Aider v\d|\(Y\)es/\(N\)o|aider\.chat|^Main model: |^Repo-map:", re.MULTILINE),
    version=re.compile(r"Aider v(\d+\.\d+\.\d+)"),
    echo=re.compile(r"^\w*> \S"),
    working=re.compile(r"Waiting for \S+|Thinking\.\.\.|░█|█░|Retrying in \d"),
    prompt_last_line=re.compile(r"^(\w+ )?(architect|ask|code|diff|whole|multi)?>\s*$"),
)
GEMINI = AgentScreen(
    "gemini",
    signature=re.compile(r"Gemini CLI v\d|Type your message or @path/to/file|Trusting a folder allows Gemini CLI"),
    version=re.compile(r"Gemini CLI v(\d+\.\d+\.\d+)"),
    composer=re.compile(r"^\s*[>*!]\s"),  # ">" normal, "*" in YOLO mode, "!" in shell mode
    composer_footer=re.compile(r"workspace \(|no sandbox|/model|\bsandbox\b"),
    echo=re.compile(r"^\s*>\s+\S"),
    # "⠴ Thinking... (esc to cancel, 1s)"
    working=re.compile(r"esc to cancel|^\s*[⠁-⣿]\s+\S"),
)
OPENCODE = AgentScreen(
    "opencode",
    signature=re.compile(r"OpenCode \d|Ask anything…|tab agents\s+ctrl\+p commands|△ Permission required"),
    # "• OpenCode 1.18.33" in the sidebar, or the version alone at the end of the status line
    version=re.compile(r"OpenCode (\d+\.\d+\.\d+)|:\S+\s{20,}(\d+\.\d+\.\d+)\s*$", re.MULTILINE),
    composer=re.compile(r"^\s*Ask anything…"),
    working=re.compile(r"esc (to )?interrupt"),
)
# the generic rules: a signature that never matches, so detection never picks it, and no composer,
# echo or busy marker, so only the structural rules and store/liveness.py's families apply
GENERIC = AgentScreen("", signature=re.compile(r"(?!x)x"))
# by name; detection tries them in this order and takes the first whose signature is on screen
AGENTS: dict[str, AgentScreen] = {a.name: a for a in (CLAUDE, CODEX, AIDER, GEMINI, OPENCODE)}
