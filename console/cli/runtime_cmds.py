"""The runtime's commands on `orch`: `dispatch --launch`, `watch`, `demo`.

Kept apart from orch.py so the runtime's flags and handlers live in one place; orch.py only
registers them. Imports no textual (the console is imported lazily by `demo` alone).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .common import Context, command


# -- dispatch --launch -----------------------------------------------------------------------
def add_launch_flags(c: argparse.ArgumentParser) -> None:
    c.add_argument("--launch", action="store_true",
                   help="start the worker too: render the brief to a file and run the agent profile's command "
                        "in the attempt's worktree (tmux session or captured process)")
    c.add_argument("--profile", metavar="NAME",
                   help="agent profile from .agents/orch.toml, or built-in sim / sim-tmux (default: the run's "
                        "profile, else the agent's name)")
    c.add_argument("--runtime", choices=["tmux", "process"], help="override the profile's runtime")
    c.add_argument("--model", metavar="M",
                   help="with --launch: the model this attempt's agent runs with, over the profile's `model` "
                        "(claude --model, codex -m, gemini -m, aider --model, opencode --model provider/model); "
                        "kept by its retries")
    c.add_argument("--effort", metavar="E",
                   help="with --launch: the reasoning effort, over the profile's `effort`: minimal, low, medium, "
                        "high, xhigh or max, as the agent takes it (claude: low..max; codex, aider, "
                        "opencode-headless: all; gemini and opencode's TUI: none, refused); kept by its retries")


def check_launch_flags(args: argparse.Namespace, ctx: Context) -> None:
    """Refuse bad launch flags before anything is dispatched."""
    from orch_console.store.errors import InvalidInput

    if not getattr(args, "launch", False):
        given = [f for f in ("profile", "runtime", "model", "effort") if getattr(args, f, None) is not None]
        if given:
            raise InvalidInput(f"{', '.join('--' + f for f in given)}: "
                               f"{'needs' if len(given) == 1 else 'need'} --launch")
        return
    from orch_console.store.validate import check_effort, check_model

    check_model(args.model)  # before the profile: a bad value is the first thing said
    check_effort(args.effort)
    from orch_console.console.runtime import launcher
    from orch_console.store import runtime as rt
    from orch_console.store.runs import get_task

    from orch_console.store.validate import check_id

    task = get_task(ctx.store.conn, check_id(args.run, "--run"), check_id(args.task, "--task"))
    cfg = rt.run_settings_config(ctx.store, args.run)
    prof = launcher.resolve_profile(launcher.load_profiles(ctx.store.path), args.profile, cfg.get("profile"),
                                    args.to or task["default_to"])
    from orch_console.console.runtime.agents import require_binary

    require_binary(prof.command, prof.env)  # a real agent that is not installed: exit 30, nothing dispatched
    from orch_console.console.runtime import model_effort

    model_effort.apply(prof, args.model or "", args.effort or "")  # one its agent cannot take: the same


def launch_after_dispatch(args: argparse.Namespace, ctx: Context, out: dict[str, Any]) -> dict[str, Any]:
    if not getattr(args, "launch", False):
        return out
    from orch_console.console.runtime import launcher

    launched = launcher.launch_or_queue(ctx.store, run_id=args.run, task_id=args.task,
                                        attempt_no=out["attempt"]["attempt_no"], profile=args.profile,
                                        runtime=args.runtime)
    if launched.get("queued"):
        out["launch"] = launched
        return out
    out["attempt"] = launched["attempt"]
    out["launch"] = {k: launched[k] for k in ("profile", "runtime", "model", "effort", "command", "cwd", "attach",
                                              "prepared", "hooks") if k in launched}
    return out


# -- watch -----------------------------------------------------------------------------------
def h_watch(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    import signal
    import threading

    from orch_console.console.runtime.watcher import Watcher

    if args.run:
        from orch_console.store import runs

        runs.run_show(ctx.store, run_id=args.run)  # not_found before watching a run that does not exist
    out = sys.stderr if ctx.json else sys.stdout

    def show(line: str, bell: bool) -> None:
        out.write(f"{time.strftime('%H:%M:%S')} {line}\n{chr(7) if bell else ''}")
        out.flush()

    w = Watcher(ctx.store.path, args.run, autopilot=args.autopilot, on_action=show)
    try:
        if args.once:
            res = w.tick(force_liveness=True)
            if not ctx.json:
                show(f"one pass: {res.events} new event(s), {len(res.actions)} action(s), cursor {res.cursor}", False)
                raise SystemExit(0)
            return {"once": True, "events": res.events, "cursor": res.cursor, "actions": res.actions}
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if not ctx.json:
            show(f"watching {args.run or 'every active run'} in {ctx.store.path}"
                 f"{' with autopilot' if args.autopilot else ''} (Ctrl-C stops)", False)
        w.run_forever(stop)
        cursor = w.last_tick.cursor if w.last_tick else 0
        if not ctx.json:
            show(f"stopped at event {cursor}", False)
            raise SystemExit(0)
        return {"once": False, "cursor": cursor}
    finally:
        w.close()


# -- demo ------------------------------------------------------------------------------------
def h_demo(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.console.cli import demo

    result = demo.main(directory=args.dir, headless=args.headless, as_json=ctx.json,
                       timeout=args.timeout_seconds, tmux=args.tmux, db=args.db)
    if result["headless"] and not result["all_done"]:
        from orch_console.store.errors import InvalidState

        raise InvalidState(f"demo ended with {result['not_done']} task(s) not done", data=result)
    if not ctx.json:
        raise SystemExit(0)  # the report is already printed; no envelope in human mode
    return result


def add_runtime_commands(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "watch", h_watch, "the headless watcher: liveness, stall and crash detection, bounded "
                "self-healing (nudge, retry with backoff, escalate); Ctrl-C stops")
    c.add_argument("--run", help="watch one run (default: every active run)")
    c.add_argument("--autopilot", action="store_true",
                   help="also dispatch and launch ready tasks, up to the run's concurrency cap")
    c.add_argument("--once", action="store_true", help="one pass, then exit (for scripts and cron)")

    c = command(sub, "demo", h_demo, "a fresh scratch repository and run of 12 tasks in 4 waves with "
                "simulated workers, autopilot on, and the console open on it")
    c.add_argument("--headless", action="store_true",
                   help="no screen: run to the end, answer questions with a default answer, print the wave report; "
                        "exit 0 only if every task is done")
    c.add_argument("--dir", metavar="PATH", help="where to create it (default: a new temporary directory)")
    c.add_argument("--timeout-seconds", type=float, default=110.0, help="headless: give up after this long")
    c.add_argument("--tmux", action="store_true", help="run the simulated workers in tmux sessions")
