"""Real agents on `orch`: `orch screen classify` (what an agent's screen shows, for scripts and
checks) and `orch agents` (the profiles, binaries found, versions, what is missing).

Kept apart from orch.py (which only registers them). The recogniser and the agent specs are
imported in the handlers, so they cost nothing to the other commands' start-up, and the CLI stays
free of Textual.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import Context, command, group

MAX_SCREEN_BYTES = 1 << 20  # a 200x50 pane is ~40 KB with its escapes; a scrollback is bounded too


def h_screen_classify(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store.errors import InvalidInput
    from orch_console.store.validate import check_id

    agent = check_id(args.agent, "--agent") if args.agent else ""
    if args.run or args.task:
        return _classify_attempt(args, ctx, agent)
    if args.file and args.file != "-":
        try:
            with open(args.file, "rb") as fh:
                raw = fh.read(MAX_SCREEN_BYTES + 1)
        except OSError as exc:
            raise InvalidInput(f"--file: cannot read {args.file}: {exc.strerror or exc}") from None
        source = args.file
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise InvalidInput("no screen to classify: give --file F, or pipe the screen on stdin "
                               "(for example: tmux capture-pane -p -t SESSION | orch screen classify --agent claude)")
        raw = sys.stdin.buffer.read(MAX_SCREEN_BYTES + 1)
        source = "stdin"
    if len(raw) > MAX_SCREEN_BYTES:
        raise InvalidInput(f"the screen is larger than {MAX_SCREEN_BYTES} bytes; give the visible pane, not a log")
    from orch_console.console.runtime import screens

    text = raw.decode("utf-8", errors="replace")
    verdict = screens.classify(text, agent)
    data = {"source": source, "agent_requested": agent, **verdict.to_dict(),
            "known_agent": verdict.agent in screens.AGENTS}
    if ctx.json:
        return data
    _print_verdict(verdict)
    raise SystemExit(0)


def _classify_attempt(args: argparse.Namespace, ctx: Context, agent: str) -> dict[str, Any]:
    """The live screen of a launched attempt (tmux pane, or the tail of a process worker's log)."""
    from orch_console.console.runtime import agents, launcher, screens
    from orch_console.store import runtime as rt
    from orch_console.store.errors import InvalidInput, InvalidState, NotFound
    from orch_console.store.validate import check_id

    if not (args.run and args.task) or args.file:
        raise InvalidInput("--run and --task go together, and not with --file")
    att = rt.get_attempt(ctx.store, check_id(args.run, "--run"), check_id(args.task, "--task"))
    if att is None:
        raise NotFound(f"task {args.task} in run {args.run} has no attempt")
    if not att["runtime"]:
        raise InvalidState(f"attempt {att['attempt_no']} of {args.task} was not launched; there is no screen to read")
    if not agent:
        prof = launcher.load_profiles(ctx.store.path).get(att["profile"] or "")
        agent = agents.agent_of(prof.command) if prof else ""
    verdict = screens.classify(launcher.capture(ctx.store.path, att), agent)
    data = {"source": f"{att['runtime']} {att['runtime_ref'] or att['pid'] or ''}".strip(),
            "run_id": att["run_id"], "task_id": att["task_id"], "attempt_no": att["attempt_no"],
            "agent_requested": agent, **verdict.to_dict(), "known_agent": verdict.agent in screens.AGENTS}
    if ctx.json:
        return data
    _print_verdict(verdict)
    raise SystemExit(0)


def _print_verdict(verdict: Any) -> None:
    kind = f"/{verdict.kind}" if verdict.kind else ""
    who = f"{verdict.agent or 'generic'}{' ' + verdict.version if verdict.version else ''}"
    out = [f"{verdict.state}{kind}  ({who}; rule {verdict.rule or '-'})"]
    if verdict.line:
        out.append(f"  line:     {verdict.line}")
    if verdict.question:
        out.append(f"  question: {verdict.question}")
    for o in verdict.options:
        out.append(f"  {'>' if o.selected else ' '} {o.key}. {o.label}")
    sys.stdout.write("\n".join(out) + "\n")


def h_agents(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.console.runtime import agents, launcher
    from orch_console.store.db import default_db_path

    db = getattr(args, "db", None) or default_db_path()
    profiles = launcher.load_profiles(db)
    if args.profile:
        profiles = {args.profile: launcher.resolve_profile(profiles, args.profile)}
    rows = agents.doctor(profiles, with_versions=not args.no_versions)
    from orch_console.console.runtime.model_effort import efforts_of

    for r in rows:
        r["efforts"] = list(efforts_of(r["command"]))  # what --effort this profile's command can take
    problems = sum(1 for r in rows if r["missing"])
    data = {"profiles_file": str(launcher.profiles_file(db)), "profiles": rows, "problems": problems}
    if ctx.json:
        return data
    out = [f"agent profiles (built-in, overridden by {data['profiles_file']}):",
           f"  {'PROFILE':20} {'RUNTIME':8} {'FROM':9} {'MODEL':18} {'EFFORT':8} {'STATUS':8} BINARY"]
    for r in rows:
        found = (r["binary"] + (f"  {r['version']}" if r["version"] else "")) if r["binary"] else "-"
        ok = "ok" if not r["missing"] else "MISSING"
        # '-': the agent's own default; 'n/a': no effort can be given to this profile's command
        effort = r["effort"] or ("-" if r["efforts"] else "n/a")
        out.append(f"  {r['profile']:20} {r['runtime']:8} {('built-in' if r['builtin'] else 'orch.toml'):9} "
                   f"{r['model'] or '-':18} {effort:8} {ok:8} {found if r['agent'] else '(no agent binary to check)'}")
        for m in r["missing"]:
            out.append(f"      - {m}")
    sys.stdout.write("\n".join(out) + "\n")
    raise SystemExit(0)


def add_agent_commands(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "agents", h_agents, "the agent profiles (built-in claude, codex, gemini, aider, opencode and "
                "their -headless / -approvals variants, plus .agents/orch.toml): model and effort, binary found, "
                "version, what is missing")
    c.add_argument("--profile", metavar="NAME", help="only this profile (unknown: exit 30)")
    c.add_argument("--no-versions", action="store_true", help="do not run each binary's --version")

    g = group(sub, "screen", "read an agent's screen (tmux capture-pane text)")
    c = command(g, "classify", h_screen_classify,
                "classify a screen: working, waiting_input (permission, question, dialog, login, with its options), "
                "idle, error (auth, network, usage_limit, api, exited), starting, or unknown; with the rule that "
                "fired, its line and the agent version shown", render_key="screen_classify")
    c.add_argument("--agent", metavar="NAME",
                   help="claude, codex, gemini, opencode or aider (per-agent rules); any other name or none: "
                        "detected from the screen, else the generic rules")
    c.add_argument("--file", metavar="F", help="read the screen from F (default: stdin)")
    c.add_argument("--run", help="with --task: read the live screen of the task's latest launched attempt")
    c.add_argument("--task", help="with --run (the agent comes from the attempt's profile unless --agent is given)")
