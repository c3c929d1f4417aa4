"""Model and reasoning effort, per profile and per dispatch (issue 12): how each agent takes them.

    agent      model                      effort                               checked against
    claude     --model M                  --effort E (low medium high xhigh max) Claude Code 2.1.197 --help
    codex      -m M                       -c model_reasoning_effort=E          codex-cli 0.171.0 --help
    gemini     -m M                       none: refused                        Gemini CLI 0.61.0 --help
    aider      --model M                  --reasoning-effort E                 aider 0.86.2 (its args.py)
    opencode   --model provider/model     --variant E, `opencode run` only     opencode 1.18.33 --help

A profile sets them in `.agents/orch.toml` (`model = "opus"`, `effort = "high"`); `orch dispatch
--launch --model M --effort E` sets them for one attempt, stored with it (store/dispatch.py), so
the attempt's choice wins over its profile's and the watcher's retries of it launch with it too.

A built-in agent's command gets the flags right after its binary (after `exec` / `run` for `codex
exec` and `opencode run`), so no profile command has to be edited. A command that names {model} or
{effort} itself gets the value there, shell-quoted like every placeholder, and nothing is added
for it. What an agent cannot take (an effort for Gemini CLI or opencode's TUI, an effort outside
its list, a model without a provider for opencode, a value for a command of no known agent that
has no placeholder for it) is InvalidInput before anything is dispatched or launched.
Headless: imports no Textual and runs no SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orch_console.store.errors import InvalidInput
from orch_console.store.validate import EFFORTS, check_effort, check_model


@dataclass(frozen=True)
class Knobs:
    model: str                 # the flag and its placeholder, inserted as one piece
    effort: str = ""           # '' : the agent has no effort setting on its command line
    efforts: tuple[str, ...] = ()
    effort_needs: str = ""     # the subcommand that has the effort flag ('' : every form)
    subcommands: tuple[str, ...] = ()  # flags go after these words, not before them
    model_words: tuple[str, ...] = ()  # a command with one of these sets the model itself
    effort_words: tuple[str, ...] = ()
    model_hint: str = ""


KNOBS: dict[str, Knobs] = {
    # claude --help: "--effort <level>  Effort level for the current session (low, medium, high,
    # xhigh, max)"; it ignores any other value with a warning ("Unknown --effort value 'minimal'")
    "claude": Knobs("--model {model}", "--effort {effort}", ("low", "medium", "high", "xhigh", "max"),
                    model_words=("--model",), effort_words=("--effort",)),
    # codex --help: "-m, --model <MODEL>" and "-c, --config <key=value>"; model_reasoning_effort is
    # sent as the Responses API's reasoning.effort (minimal for the older reasoning models)
    "codex": Knobs("-m {model}", "-c model_reasoning_effort={effort}", EFFORTS, subcommands=("exec",),
                   model_words=("-m", "--model"), effort_words=("model_reasoning_effort",)),
    # gemini --help: "-m, --model  Model"; no effort or thinking flag
    "gemini": Knobs("-m {model}", model_words=("-m", "--model")),
    # aider: "--reasoning-effort  Set the reasoning_effort API parameter" (passed to the API as is)
    "aider": Knobs("--model {model}", "--reasoning-effort {effort}", EFFORTS,
                   model_words=("--model",), effort_words=("--reasoning-effort",)),
    # opencode --help: "-m, --model  model to use in the format of provider/model"; `opencode run
    # --help`: "--variant  model variant (provider-specific reasoning effort, e.g., high, max, minimal)"
    "opencode": Knobs("--model {model}", "--variant {effort}", EFFORTS, effort_needs="run", subcommands=("run",),
                      model_words=("-m", "--model"), effort_words=("--variant",), model_hint="provider/model"),
}

# The command's leading words: VAR=value assignments, the binary, and a lower-case word after it
# (a subcommand such as `exec`, when it is one of the agent's).
_LEAD = re.compile(r"""\s*(?:[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s'"])*\s+)*(?P<bin>[^\s'"]+)"""
                   r"""(?:\s+(?P<sub>[a-z][a-z-]*)(?=\s|$))?""")


def _sub(command: str, k: Knobs) -> str:
    m = _LEAD.match(command)
    return m.group("sub") if m and m.group("sub") in k.subcommands else ""


def _takes_effort(command: str, k: Knobs) -> bool:
    return bool(k.effort) and (not k.effort_needs or _sub(command, k) == k.effort_needs)


def efforts_of(command: str) -> tuple[str, ...]:
    """The efforts a profile's command can be given (a command of no known agent: any, if it
    has an {effort} placeholder)."""
    from .agents import agent_of

    k = KNOBS.get(agent_of(command))
    if "{effort}" in command:
        return k.efforts if k and k.efforts else EFFORTS
    return k.efforts if k and _takes_effort(command, k) else ()


def apply(prof: Any, model: str = "", effort: str = "", *, launching: bool = True) -> tuple[str, dict[str, str]]:
    """The profile's command with the flags for the model and effort (those given here, the
    attempt's, win over the profile's), and the values of {model} and {effort}. InvalidInput when
    the profile's agent cannot take them. launching=False (a profile being read): a placeholder
    without a value yet is fine, a dispatch can still give it."""
    model = check_model(model or prof.model or None, "model")
    effort = check_effort(effort or prof.effort or None, "effort")
    from .agents import agent_of

    command = prof.command
    agent = agent_of(command)
    k = KNOBS.get(agent)
    where = f"profile {prof.name}"
    words = {w.split("=", 1)[0] for w in command.split()}
    add: list[str] = []
    for what, value in (("model", model), ("effort", effort)):
        placeholder = "{" + what + "}"
        if placeholder in command:
            if not value and launching:
                raise InvalidInput(f"{where}'s command has {placeholder} but no {what} is set: set {what} = ... "
                                   f"for it in .agents/orch.toml, or pass --{what}")
            if value and what == "effort" and k is not None and k.efforts and value not in k.efforts:
                raise InvalidInput(f"{where}: {agent} takes the effort {', '.join(k.efforts)}, not {value!r}")
            continue
        if not value:
            continue
        if k is None:
            first = command.split()[0] if command.split() else command
            raise InvalidInput(f"{where} runs {first!r}, not an agent orch knows ({', '.join(KNOBS)}), so orch "
                               f"cannot add a {what} to its command: write {placeholder} in the command where "
                               f"the agent takes it, or leave the {what} out")
        if what == "effort" and not _takes_effort(command, k):
            why = (f"{agent} takes a reasoning effort only in `{agent} {k.effort_needs}` (its -headless profile)"
                   if k.effort else f"{agent} has no reasoning-effort setting on its command line")
            raise InvalidInput(f"{where}: {why}; leave the effort out (got {value!r})")
        if what == "effort" and value not in k.efforts:
            raise InvalidInput(f"{where}: {agent} takes the effort {', '.join(k.efforts)}, not {value!r}")
        if what == "model" and k.model_hint and "/" not in value:
            raise InvalidInput(f"{where}: {agent} takes the model as {k.model_hint} (for example "
                               f"anthropic/claude-sonnet-4-5), not {value!r}")
        own = sorted(words & set(k.model_words if what == "model" else k.effort_words))
        if own:
            raise InvalidInput(f"{where}'s command sets the {what} itself ({own[0]}): take that out of the command "
                               f"and set {what} = ... in .agents/orch.toml, or write {placeholder} there")
        add.append(k.model if what == "model" else k.effort)
    if add and k is not None:
        m = _LEAD.match(command)
        if m is not None:
            at = m.end("sub") if _sub(command, k) else m.end("bin")
            command = f"{command[:at]} {' '.join(add)}{command[at:]}"
    return command, {"model": model, "effort": effort}
