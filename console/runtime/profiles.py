"""An agent profile: how to start one kind of worker (the command, tmux or a process, its
environment, how many at once, the model and reasoning effort it runs with). Built-in ones live in
launcher.py (the simulated worker) and agents.py (Claude Code, Codex, Gemini CLI, aider, opencode);
`.agents/orch.toml` overrides and extends them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    command: str
    runtime: str = "process"
    env: dict[str, str] = field(default_factory=dict)
    max_parallel: int = 0  # 0: no limit of its own
    builtin: bool = False
    model: str = ""   # '' : the agent's own default (console/runtime/model_effort.py)
    effort: str = ""
