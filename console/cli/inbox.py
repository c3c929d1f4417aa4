"""`inbox`: the worker-side CLI. Workers claim, report progress, ask, and finish through it."""

from __future__ import annotations

import argparse
from typing import Any

from orch_console.store.errors import InvalidInput

from .common import (EXIT_HELP, Context, Parser, add_artifacts, add_body, add_globals, artifacts_of, body_of,
                     command, csv_list, main_for, top_commands)

def _agent(args: argparse.Namespace, flag: str = "--agent") -> str:
    agent = getattr(args, "agent", None)
    if not agent:
        raise InvalidInput(f"{flag} is required (on the command or as the global inbox --agent)")
    return agent


def _from(args: argparse.Namespace) -> str:
    return getattr(args, "from_agent", None) or _agent(args, "--from")


def h_init(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from pathlib import Path

    from orch_console.store.schema import SCHEMA_VERSION

    store = ctx.store  # opening creates or migrates the schema; an existing database keeps its rows
    path = str(Path(store.path).resolve())
    return {"db_path": path, "status": "initialized", "db": path, "schema_version": SCHEMA_VERSION,
            "journal_mode": store.scalar("PRAGMA journal_mode")}


def h_send(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.send(ctx.store, from_agent=_from(args), to_agent=args.to, subject=args.subject,
                      summary=args.summary, body=body_of(args), run_id=args.run, task_id=args.task,
                      thread_id=args.thread, kind=args.kind, priority=args.priority,
                      payload_json=args.payload_json, artifacts=artifacts_of(args))


def h_fetch(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.fetch(ctx.store, agent=_agent(args), statuses=csv_list(args.status), limit=args.limit,
                       unread=args.unread)


def h_claim(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.claim(ctx.store, agent=_agent(args), thread_id=args.thread, lease_seconds=args.lease_seconds)


def h_renew(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.renew(ctx.store, agent=_agent(args), thread_id=args.thread, lease_seconds=args.lease_seconds)


def h_update(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.update(ctx.store, agent=_agent(args), thread_id=args.thread, status=args.status,
                        summary=args.summary, body=body_of(args), payload_json=args.payload_json,
                        artifacts=artifacts_of(args))


def h_reply(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.reply(ctx.store, from_agent=_from(args), to_agent=args.to, thread_id=args.thread,
                       summary=args.summary, body=body_of(args), payload_json=args.payload_json,
                       kind=args.kind, artifacts=artifacts_of(args))


def _finish(outcome: str):
    def handler(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        from orch_console.store import inbox

        return inbox.finish(ctx.store, agent=_agent(args), thread_id=args.thread, outcome=outcome,
                            summary=args.summary, body=body_of(args), payload_json=args.payload_json,
                            artifacts=artifacts_of(args))
    return handler


def h_cancel(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.cancel(ctx.store, agent=getattr(args, "agent", None), thread_id=args.thread,
                        reason=args.reason, artifacts=artifacts_of(args))


def h_list(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.list_threads(ctx.store, run_id=args.run, statuses=csv_list(args.status),
                              agent=getattr(args, "agent", None), limit=args.limit)


def h_show(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import inbox

    return inbox.show(ctx.store, thread_id=args.thread, agent=getattr(args, "agent", None),
                      mark_read=args.mark_read)


def h_watch(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import waits

    return waits.watch(ctx.store, agent=_agent(args), statuses=csv_list(args.status),
                       after_event=args.after_event, timeout_seconds=args.timeout_seconds)


def h_wait_reply(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import waits

    return waits.wait_reply(ctx.store, thread_id=args.thread, agent=getattr(args, "agent", None),
                            after_message=args.after_message, after_event=args.after_event,
                            kinds=csv_list(args.kinds), timeout_seconds=args.timeout_seconds)


def _gate(args: argparse.Namespace, ctx: Context) -> None:
    """Worker tokens (store/tokens.py): with ORCH_TOKEN, act only on that attempt's thread as its
    agent; without one, no worker write on a launched attempt's thread."""
    import os

    from orch_console.store import tokens

    name = getattr(args, "command_name", "")
    if name == "init":
        return
    token = os.environ.get(tokens.ENV) or None
    thread = getattr(args, "thread", None)
    if not token and not (thread and name in tokens.WORKER_WRITES):
        return  # nothing to check: no token, and no worker write on a thread
    kind = getattr(args, "kind", None)
    if name == "reply" and not kind:
        kind = "answer"
    ident = tokens.gate_inbox(ctx.store, token=token, command=name, thread_id=thread,
                              agents=[getattr(args, "agent", None) or "", getattr(args, "from_agent", None) or ""],
                              kind=kind)
    if ident is not None and not getattr(args, "agent", None):
        args.agent = ident["agent"]  # the token says who: --agent may be left out


def h_hook(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    """An agent's hook (Claude Code, Codex): its JSON on stdin, recorded for the attempt. Never
    blocks the agent (every failure is a line on stderr and exit 0) except for PermissionRequest,
    which waits for the leader's answer and prints the agent's decision JSON on stdout."""
    import sys

    from orch_console.console.runtime import hooks

    raw = ""
    try:
        if not sys.stdin.isatty():
            raw = sys.stdin.read(4 * 1024 * 1024)
        out = hooks.handle_hook(ctx.store, thread_id=args.thread, agent=getattr(args, "agent", None) or "",
                                source=args.source, event=args.event, raw=raw, wait_seconds=args.wait_seconds,
                                inbox_path=sys.argv[0])
    except Exception as exc:  # a hook must never stop the agent: report, print no decision
        sys.stderr.write(f"inbox hook: {type(exc).__name__}: {getattr(exc, 'message', exc)}\n")
        return {"recorded": False, "error": str(getattr(exc, "message", exc))}
    return {"recorded": True, "output": out}


def build() -> Parser:
    p = Parser(prog="inbox", description="inbox: the worker side of Orch Console. Claim a thread, report "
               "progress, ask blocked questions, wait for answers, and finish, all through one SQLite file.",
               epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_globals(p, top=True, agent=True)
    sub = top_commands(p)

    command(sub, "init", h_init, "create or migrate the database", agent=True)

    c = command(sub, "send", h_send, "start a thread (or add a message to one with --thread)", agent=True)
    c.add_argument("--from", dest="from_agent", metavar="AGENT", help="sender (default: --agent)")
    c.add_argument("--to", required=True, metavar="AGENT", help="recipient; the thread is assigned to it")
    c.add_argument("--subject", help="thread subject (required for a new thread)")
    c.add_argument("--summary", help="one-line summary (default: the subject)")
    add_body(c)
    c.add_argument("--run", help="run id the thread belongs to")
    c.add_argument("--task", help="task id the thread belongs to")
    c.add_argument("--thread", help="existing thread id to add to, or the id for a new thread")
    c.add_argument("--kind", default="task", help="message kind: task, progress, question, answer, result, "
                   "control, event (default task)")
    c.add_argument("--priority", default="normal", help="low, normal, high or urgent (default normal)")
    c.add_argument("--payload-json", metavar="JSON", help="structured payload")
    add_artifacts(c)

    c = command(sub, "fetch", h_fetch, "list threads assigned to an agent, newest first (discovery only)",
                agent=True)
    c.add_argument("--status", metavar="S1,S2", help="thread statuses to include, comma separated")
    c.add_argument("--limit", type=int, help="at most this many (default 50)")
    c.add_argument("--unread", action="store_true", help="only threads with messages past the read cursor")

    c = command(sub, "claim", h_claim, "take ownership of a thread with a lease", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--lease-seconds", type=int, help="lease length (default 900)")

    c = command(sub, "renew", h_renew, "extend your lease (the heartbeat)", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--lease-seconds", type=int, help="lease length (default 900)")

    c = command(sub, "update", h_update, "report progress (in_progress) or ask a question (blocked)", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--status", required=True, choices=["in_progress", "blocked"])
    c.add_argument("--summary", required=True)
    add_body(c)
    c.add_argument("--payload-json", metavar="JSON")
    add_artifacts(c)

    c = command(sub, "reply", h_reply, "answer or steer a worker on its thread (the thread keeps its status: "
                "a blocked worker resumes with update --status in_progress)", agent=True)
    c.add_argument("--from", dest="from_agent", metavar="AGENT", help="sender (default: --agent)")
    c.add_argument("--to", metavar="AGENT", help="recipient (default: the thread's assignee)")
    c.add_argument("--thread", required=True)
    c.add_argument("--summary")
    add_body(c)
    c.add_argument("--payload-json", metavar="JSON")
    c.add_argument("--kind", default="answer", choices=["answer", "control"])
    add_artifacts(c)

    for name, outcome, text in (("done", "done", "finish the thread successfully (releases the lease)"),
                                ("fail", "failed", "finish the thread as failed (releases the lease)")):
        c = command(sub, name, _finish(outcome), text, render_key="finish", agent=True)
        c.add_argument("--thread", required=True)
        c.add_argument("--summary", required=True)
        add_body(c)
        c.add_argument("--payload-json", metavar="JSON")
        add_artifacts(c)

    c = command(sub, "cancel", h_cancel, "cancel a thread", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--reason")
    add_artifacts(c)

    c = command(sub, "list", h_list, "list threads", agent=True)
    c.add_argument("--run")
    c.add_argument("--status", metavar="S1,S2")
    c.add_argument("--limit", type=int, help="at most this many (default 1000)")

    c = command(sub, "show", h_show, "show a thread and its messages", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--mark-read", action="store_true", help="advance --agent's read cursor to the last message")

    c = command(sub, "watch", h_watch, "block until something happens on your threads", agent=True)
    c.add_argument("--status", metavar="S1,S2", help="only threads in these statuses")
    c.add_argument("--after-event", type=int, help="event cursor (default: now)")
    c.add_argument("--timeout-seconds", type=float, default=0, help="0 waits forever; a timeout exits 10")

    c = command(sub, "hook", h_hook, "record an agent hook (its JSON on stdin); PermissionRequest waits for the "
                "leader's answer and prints the agent's decision JSON", agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--event", default="", help="hook event name (default: hook_event_name from stdin)")
    c.add_argument("--source", default="", choices=["", "claude", "codex"], help="which agent runs the hook")
    c.add_argument("--wait-seconds", type=float, default=540.0,
                   help="PermissionRequest: how long to wait for the leader (then the agent asks on its screen)")
    c.add_argument("--mark", default="", help=argparse.SUPPRESS)

    c = command(sub, "wait-reply", h_wait_reply, "block until an answer, control or result arrives on a thread",
                agent=True)
    c.add_argument("--thread", required=True)
    c.add_argument("--after-message", type=int, help="message cursor (default: your read cursor)")
    c.add_argument("--after-event", type=int, help="event cursor")
    c.add_argument("--kinds", metavar="K1,K2", help="message kinds (default answer,control,result)")
    c.add_argument("--timeout-seconds", type=float, default=0, help="0 waits forever; a timeout exits 10")
    return p


def _renderers() -> dict:
    from .render_inbox import RENDERERS

    return RENDERERS


def main(argv: list[str] | None = None) -> int:
    return main_for("inbox", build, argv, _renderers, _gate)


if __name__ == "__main__":
    raise SystemExit(main())
