"""`orch`: the leader's CLI. Plan a run as a task graph, dispatch ready tasks, answer blocked
questions, retry or reassign failures, clean up worktrees. Every command is one store function."""

from __future__ import annotations

import argparse
from typing import Any

from orch_console.store.errors import InvalidInput

from .common import (EXIT_HELP, Context, Parser, add_body, add_globals, body_of, command, csv_list, group, main_for,
                     top_commands)
from .land_cmds import add_land_commands
from .approval_cmds import add_approval_commands
from .runtime_cmds import add_launch_flags, add_runtime_commands
from .agent_cmds import add_agent_commands
from .hold_cmds import add_hold_commands

WAIT_TYPES = "task_blocked,task_verifying,task_done,task_failed"


def h_run_init(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs

    return runs.run_init(ctx.store, run_id=args.run, goal=args.goal, summary=args.summary)


def h_run_show(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs

    return runs.run_show(ctx.store, run_id=args.run)


def h_run_list(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs

    return runs.run_list(ctx.store)


def h_run_config(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs
    from orch_console.store.policy import Settings

    updates = Settings.parse_updates(args.set)
    if updates.get("land_target"):  # issue 14: a branch name git accepts
        from orch_console.store.land import validate_target

        validate_target(updates["land_target"])
    if updates.get("profiles_sha") == "current":  # the leader confirms the profiles file as it is
        from orch_console.console.runtime.launcher import profiles_digest

        updates["profiles_sha"] = profiles_digest(ctx.store.path)
    for key, value in updates.items():
        _check_setting(key, value, ctx)
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise InvalidInput("--concurrency must be at least 1")
        updates["concurrency"] = args.concurrency
    if not updates:
        return runs.run_show(ctx.store, run_id=args.run)
    return runs.run_config(ctx.store, run_id=args.run, updates=updates)


def _check_setting(key: str, value: Any, ctx: Context) -> None:
    """The value ranges of run settings (issue 15, L10): what a setting cannot mean is refused
    here, not found out at launch or silently replaced by a default."""
    from orch_console.store.validate import check_seconds

    if key.endswith("_seconds"):
        check_seconds(value, f"--set {key}", zero_ok=key != "liveness_interval_seconds")
    elif key in ("concurrency", "max_attempts"):
        if not isinstance(value, int) or not 1 <= value <= 1000:
            raise InvalidInput(f"--set {key}: a whole number from 1 to 1000, not {value!r}")
    elif key == "runtime" and value not in ("", "tmux", "process"):
        raise InvalidInput(f"--set runtime: tmux, process or \"\" (the profile's own), not {value!r}")
    elif key == "execution_mode" and value not in ("", "analysis", "code"):
        raise InvalidInput(f"--set execution_mode: analysis, code or \"\" (code when repo_path is set), "
                           f"not {value!r}")
    elif key == "profile" and value:
        from orch_console.console.runtime.launcher import load_profiles

        known = load_profiles(ctx.store.path)
        if value not in known:
            raise InvalidInput(f"--set profile: no agent profile {value!r}; known: {', '.join(sorted(known))}")


def _check_cmds(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, cmd = v.partition("=")
        if not sep or not name.strip() or not cmd.strip():
            raise InvalidInput(f"--check-cmd takes NAME=COMMAND, not {v!r}")
        out[name.strip()] = cmd.strip()
    return out


def h_task_add(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs
    from orch_console.store.validate import read_body

    spec = read_body(None, args.spec_file, "--spec-file") if args.spec_file else None
    return runs.task_add(ctx.store, run_id=args.run, task_id=args.task, title=args.title, summary=args.summary,
                         default_to=args.default_to, acceptance_json=args.acceptance_json, spec=spec,
                         paths=args.path, required_checks=args.required_check,
                         check_cmds=_check_cmds(args.check_cmd), priority=args.priority)


def h_dep_add(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs

    return runs.dep_add(ctx.store, run_id=args.run, task_id=args.task, depends_on=args.depends_on)


def h_ready(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs

    return runs.ready(ctx.store, run_id=args.run)


def h_dispatch(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    from .runtime_cmds import check_launch_flags, launch_after_dispatch

    check_launch_flags(args, ctx)
    out = dispatch.dispatch(ctx.store, run_id=args.run, task_id=args.task, execution_mode=args.execution_mode,
                            to=args.to, repo_path=args.repo_path, base_ref=args.base_ref,
                            workspace_root=args.workspace_root, body=body_of(args), model=args.model,
                            effort=args.effort)
    return launch_after_dispatch(args, ctx, out)


def h_brief(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import brief

    if args.dispatch_json:
        if args.run or args.task:
            raise InvalidInput("give --dispatch-json FILE or --run and --task, not both")
        text = brief.render_from_dispatch_json(ctx.store, args.dispatch_json)
    elif args.run and args.task:
        text = brief.render(ctx.store, run_id=args.run, task_id=args.task, attempt_no=args.attempt)
    else:
        raise InvalidInput("brief needs --dispatch-json FILE, or --run and --task")
    return {"brief": text}


def h_reconcile(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import views

    return views.reconcile(ctx.store, run_id=args.run)


def h_wait(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import runs, waits

    runs.run_show(ctx.store, run_id=args.run)  # not_found before waiting on a run that does not exist
    return waits.wait_events(ctx.store, run_id=args.run, types=csv_list(args.for_types) or [],
                             after_event=args.after_event, timeout_seconds=args.timeout_seconds)


def h_blocked(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import views

    return views.blocked(ctx.store, run_id=args.run)


def h_attention(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import attention

    return attention.queue(ctx.store, run_id=args.run)


def h_answer(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    return dispatch.answer(ctx.store, run_id=args.run, task_id=args.task, summary=args.summary,
                           body=body_of(args), payload_json=args.payload_json)


def h_retry(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    return dispatch.retry(ctx.store, run_id=args.run, task_id=args.task, to=args.to, body=body_of(args))


def h_reassign(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    return dispatch.reassign(ctx.store, run_id=args.run, task_id=args.task, to=args.to, body=body_of(args))


def h_cancel(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    return dispatch.cancel(ctx.store, run_id=args.run, task_id=args.task, reason=args.reason)


def h_cleanup(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import dispatch

    return dispatch.cleanup(ctx.store, run_id=args.run, task_id=args.task, attempt_no=args.attempt,
                            all_completed=args.all_completed, force=args.force)


def h_status(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import views

    # A person reads at most a screenful: without --json (and --all), build only the tasks shown.
    limit = None if ctx.json or args.all else 50
    return views.status(ctx.store, run_id=args.run, needs_look_limit=limit, encoded=ctx.json)


def h_verify_status(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import verify

    return verify.verify_status(ctx.store, run_id=args.run, task_id=args.task)


def h_verify_record(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import verify
    from orch_console.store.validate import read_body

    output = read_body(None, args.output_file, "--output-file") if args.output_file else None
    return verify.verify_record(ctx.store, run_id=args.run, task_id=args.task, name=args.check,
                                status=args.status, summary=args.summary, output=output)


def h_verify_run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import checks

    return checks.verify_run(ctx.store, run_id=args.run, task_id=args.task, timeout=args.timeout_seconds)


def h_plan(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import views

    return views.plan(ctx.store, run_id=args.run)


def h_import_manifest(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import imports

    return imports.import_manifest(ctx.store, path=args.file, run_id=args.run)


def h_import_gh(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import imports

    return imports.import_gh_issues(ctx.store, path=args.file, run_id=args.run)


def h_report(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import report

    text = report.render(ctx.store, run_id=args.run, fmt=args.format)
    if args.out:
        from pathlib import Path

        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out)
        except OSError as exc:
            raise InvalidInput(f"cannot write --out {args.out}: {exc.strerror or exc}") from None
        return {"format": args.format, "out": str(out.resolve()), "bytes": len(text.encode())}
    return {"format": args.format, "report": text}


def h_console(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    # Textual is imported here only, so every other command starts without it.
    from orch_console.store.db import default_db_path

    from orch_console.console.tui.app import run

    raise SystemExit(run(args.db or default_db_path(), args.run, theme=args.theme))


def build() -> Parser:
    p = Parser(prog="orch", description="orch: the leader side of Orch Console. Plan a run as a graph of tasks, "
               "dispatch ready tasks to workers, answer their blocked questions, retry or reassign what "
               "fails, and clean up their git worktrees.", epilog=EXIT_HELP,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_globals(p, top=True)
    sub = top_commands(p)

    runs = group(sub, "run", "create and inspect runs")
    c = command(runs, "init", h_run_init, "create a run", render_key="run")
    c.add_argument("--run", required=True, help="run id")
    c.add_argument("--goal", required=True, help="what the run is for")
    c.add_argument("--summary")
    c = command(runs, "show", h_run_show, "a run with its task counts", render_key="run")
    c.add_argument("--run", required=True)
    command(runs, "list", h_run_list, "every run, newest first", render_key="run-list")
    c = command(runs, "config", h_run_config, "show or change a run's settings: concurrency cap, autopilot, "
                "liveness thresholds, retry policy", render_key="run")
    c.add_argument("--run", required=True)
    c.add_argument("--concurrency", type=int, help="autopilot's cap on tasks in flight (default 5)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting, e.g. stall_seconds=300, max_attempts=3, autopilot=true (repeatable)")

    tasks = group(sub, "task", "add tasks to a run")
    c = command(tasks, "add", h_task_add, "add a task (ready at once if it has no dependencies)",
                render_key="task")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True, help="task id")
    c.add_argument("--title", required=True)
    c.add_argument("--summary")
    c.add_argument("--default-to", metavar="AGENT", help="worker that dispatch uses when --to is not given")
    c.add_argument("--acceptance-json", metavar="JSON", help="acceptance criteria as JSON")
    c.add_argument("--spec-file", metavar="PATH", help="a spec document included in the brief")
    c.add_argument("--path", action="append", default=[], metavar="P",
                   help="a file or directory this task writes (repeatable); overlapping tasks are serialized")
    c.add_argument("--required-check", action="append", default=[], metavar="NAME",
                   help="a check that must pass before the task is done (repeatable)")
    c.add_argument("--check-cmd", action="append", default=[], metavar="NAME=CMD",
                   help="the command that runs a check (repeatable; implies --required-check NAME)")
    c.add_argument("--priority", type=int, default=0, help="higher dispatches first (default 0)")

    deps = group(sub, "dep", "task dependencies")
    c = command(deps, "add", h_dep_add, "TASK waits for DEPENDS_ON (cycles are refused)", render_key="dep")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--depends-on", required=True, metavar="TASK")

    c = command(sub, "ready", h_ready, "tasks ready to dispatch")
    c.add_argument("--run", required=True)

    c = command(sub, "dispatch", h_dispatch, "hand a ready task to a worker: a new attempt and inbox thread "
                "(and in code mode a git worktree and branch)")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--execution-mode", choices=["analysis", "code"], help="required: analysis (thread only) "
                   "or code (own branch and worktree)")
    c.add_argument("--to", metavar="AGENT", help="worker (default: the task's --default-to)")
    c.add_argument("--repo-path", metavar="PATH", help="repository for code mode (default: current directory)")
    c.add_argument("--base-ref", metavar="REF", help="base commit (default: HEAD, if the repository is clean)")
    c.add_argument("--workspace-root", metavar="PATH", help="where worktrees go (default: REPO/.orch/worktrees)")
    add_body(c, "instruction for the worker")
    add_launch_flags(c)

    c = command(sub, "brief", h_brief, "render the worker brief for an attempt")
    c.add_argument("--dispatch-json", metavar="FILE", help="saved output of `orch --json dispatch`")
    c.add_argument("--run")
    c.add_argument("--task")
    c.add_argument("--attempt", type=int, help="attempt number (default: the latest)")

    c = command(sub, "reconcile", h_reconcile, "fold worker thread state into task state")
    c.add_argument("--run", required=True)

    c = command(sub, "wait", h_wait, "block until matching run events arrive (a timeout exits 10)")
    c.add_argument("--run", required=True)
    c.add_argument("--for", dest="for_types", default=WAIT_TYPES, metavar="TYPES",
                   help=f"event types, comma separated (default {WAIT_TYPES})")
    c.add_argument("--after-event", type=int, help="event cursor (default: now)")
    c.add_argument("--timeout-seconds", type=float, default=0, help="0 waits forever")

    c = command(sub, "blocked", h_blocked, "blocked tasks and their questions, oldest first")
    c.add_argument("--run", required=True)

    c = command(sub, "attention", h_attention, "what waits on the leader (questions, screens waiting for input, "
                "escalations), ranked: critical path first, then most work unblocked, then longest wait")
    c.add_argument("--run", required=True)

    c = command(sub, "answer", h_answer, "answer a blocked task's question (the task stays blocked until its "
                "worker resumes with `inbox update --status in_progress`)")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--summary")
    add_body(c, "answer")
    c.add_argument("--payload-json", metavar="JSON", help="a structured answer")

    c = command(sub, "retry", h_retry, "a fresh attempt (and worktree) for a failed task", render_key="dispatch")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--to", metavar="AGENT", help="worker (default: the previous attempt's)")
    add_body(c, "new instruction (default: the old one plus what went wrong)")

    c = command(sub, "reassign", h_reassign, "cancel the current attempt and dispatch to another worker",
                render_key="dispatch")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--to", required=True, metavar="AGENT")
    add_body(c, "instruction for the new worker")

    c = command(sub, "cancel", h_cancel, "cancel one task, or the whole run")
    c.add_argument("--run", required=True)
    c.add_argument("--task")
    c.add_argument("--reason")

    c = command(sub, "cleanup", h_cleanup, "remove finished attempts' worktrees (branches are kept)")
    c.add_argument("--run")
    c.add_argument("--task")
    c.add_argument("--attempt", type=int)
    c.add_argument("--all-completed", action="store_true", help="every finished attempt (in --run, or all runs)")
    c.add_argument("--force", action="store_true", help="also remove worktrees with uncommitted changes")

    c = command(sub, "status", h_status, "the run: reconciles, then every task with its latest attempt, "
                "message and question")
    c.add_argument("--run", required=True)
    c.add_argument("--all", action="store_true", help="list every task (default: up to 50 that need a look)")

    c = command(sub, "console", h_console, "the live TUI: run board, task DAG, blocked questions, attempt logs")
    c.add_argument("--run", help="run to open (default: the most recently active)")
    c.add_argument("--theme", help="orch-dark or orch-light (default: config file, $ORCH_THEME, orch-dark)")

    verify = group(sub, "verify", "verification gates")
    c = command(verify, "status", h_verify_status, "a task's gate: required checks and their results",
                render_key="verify")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c = command(verify, "record", h_verify_record, "record a check's result for the latest attempt",
                render_key="verify")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--check", required=True, metavar="NAME")
    c.add_argument("--status", required=True, choices=["passed", "failed"])
    c.add_argument("--summary")
    c.add_argument("--output-file", metavar="PATH", help="the check's output")

    c = command(verify, "run", h_verify_run, "run the task's check commands in its worktree and record them",
                render_key="verify")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--timeout-seconds", type=float, default=600, help="per check (default 600)")

    c = command(sub, "plan", h_plan, "waves, critical path, concurrency cap and overlapping paths (a dry run)")
    c.add_argument("--run", required=True)

    imports = group(sub, "import", "import a plan from a file (re-importing the same file changes nothing)")
    c = command(imports, "manifest", h_import_manifest, "a task-orchestrator manifest (phases, dependsOn, files)",
                render_key="import")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--run", required=True, help="run to import into (created if missing)")
    c = command(imports, "gh-issues", h_import_gh, "the JSON of `gh issue list --json number,title,body,labels`",
                render_key="import")
    c.add_argument("file", metavar="FILE")
    c.add_argument("--run", required=True, help="run to import into (created if missing)")

    c = command(sub, "report", h_report, "the wave report: run header, a table per wave, questions, follow-ups")
    c.add_argument("--run", required=True)
    c.add_argument("--format", choices=["md", "json", "html"], default="md")
    c.add_argument("--out", metavar="FILE", help="write to FILE instead of printing")
    add_runtime_commands(sub)
    add_land_commands(sub)
    add_approval_commands(sub)
    add_agent_commands(sub)
    add_hold_commands(sub)
    return p


def _renderers() -> dict:
    from .render_orch import RENDERERS

    return RENDERERS


def _gate(args: argparse.Namespace, ctx: Context) -> None:
    """With a worker token in the environment (a launched agent), orch only reads."""
    import os

    token = os.environ.get("ORCH_TOKEN")
    if not token:
        return
    from orch_console.store import tokens

    from .common import READ_COMMANDS

    name = getattr(args, "command_name", "")
    tokens.gate_orch(ctx.store, token=token, command=name, read_only=name in READ_COMMANDS and name != "watch")


def main(argv: list[str] | None = None) -> int:
    return main_for("orch", build, argv, _renderers, _gate)


if __name__ == "__main__":
    raise SystemExit(main())
