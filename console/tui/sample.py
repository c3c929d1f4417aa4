"""A realistic run for the console's screenshots, snapshot tests and manual checks, built only
through store functions (the same calls the CLIs make), plus an optional pass that pins every
timestamp so rendered screens are byte-for-byte repeatable.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from orch_console.store import dispatch, holds, inbox, runs, runtime
from orch_console.store.db import Store
from orch_console.store.validate import now_ts

RUN = "web-auth"
NASTY = ("renders literally: [/bold] [link=x]click[/link] \x1b]8;;http://x\x07osc-link\x1b]8;;\x07 "
         "\x1b[5mblink\x1b[0m \x07bell [b]not bold[/b]")

# task id, title, default worker, dependencies
PLAN: list[tuple[str, str, str, list[str]]] = [
    ("schema", "Design the session and token schema", "codex", []),
    ("config", "Load auth settings from env and TOML", "claude", []),
    ("ci", "Add a CI job for the auth package", "codex", []),
    ("lint", "Enable strict lint rules on auth/", "gemini", []),
    ("fixtures", "Seed test users and fixtures", "gemini", ["schema"]),
    ("tokens", "Issue and verify signed access tokens", "codex", ["schema"]),
    ("sessions", "Session store with sliding expiry", "claude", ["schema", "config"]),
    ("passwords", "Argon2 password hashing and rehash on login", "gemini", ["config"]),
    ("ratelimit", "Rate-limit login attempts per IP and account", "claude", ["config"]),
    ("login-api", "POST /login and /logout endpoints", "codex", ["tokens", "sessions", "passwords"]),
    ("refresh-api", "Refresh-token rotation endpoint", "claude", ["tokens", "sessions"]),
    ("mfa", "TOTP second factor enrolment", "gemini", ["passwords"]),
    ("audit", "Audit log of auth events", "codex", ["sessions"]),
    ("e2e", "End-to-end login tests", "claude", ["login-api", "refresh-api"]),
    ("docs", "Document the auth flow for integrators", "gemini", ["login-api"]),
    ("threat", "Threat model review", "claude", ["login-api", "mfa"]),
    ("release", "Release notes and version bump", "codex", ["e2e", "docs", "threat"]),
]


def _work(store: Store, task: str, agent: str, steps: list[tuple[str, str, str]]) -> str:
    """Dispatch (analysis mode), claim and play a worker's messages; returns the thread id."""
    d = dispatch.dispatch(store, run_id=RUN, task_id=task, execution_mode="analysis", to=agent)
    thread = d["attempt"]["thread_id"]
    inbox.claim(store, agent=agent, thread_id=thread)
    for kind, summary, body in steps:
        if kind == "progress":
            inbox.update(store, agent=agent, thread_id=thread, status="in_progress", summary=summary, body=body)
        elif kind == "question":
            inbox.update(store, agent=agent, thread_id=thread, status="blocked", summary=summary, body=body)
        elif kind == "answer":
            dispatch.answer(store, run_id=RUN, task_id=task, summary=summary, body=body)
        elif kind in ("done", "failed"):
            inbox.finish(store, agent=agent, thread_id=thread, outcome=kind, summary=summary, body=body)
    return thread


def build_sample_run(db_path: str, *, pin_time: bool = True) -> dict[str, Any]:
    """17 tasks in 5 waves: done, running, blocked (two questions, one with hostile text), failed,
    dispatched, ready and planned tasks, with real threads and messages."""
    store = Store(db_path)
    try:
        runs.run_init(store, run_id=RUN, goal="Ship login, sessions and MFA for the web app",
                      summary="auth rewrite")
        for tid, title, who, _ in PLAN:
            runs.task_add(store, run_id=RUN, task_id=tid, title=title, default_to=who)
        for tid, _, _, deps in PLAN:
            for d in deps:
                runs.dep_add(store, run_id=RUN, task_id=tid, depends_on=d)
        _work(store, "schema", "codex", [("progress", "reading the existing user table", ""),
                                          ("done", "schema merged: sessions, refresh_tokens", "2 tables")])
        _work(store, "config", "claude", [("progress", "parsing settings", ""),
                                           ("done", "settings loader done", "")])
        _work(store, "ci", "codex", [("progress", "workflow drafted", ""),
                                      ("failed", "CI runner image lacks libargon2",
                                       "error: libargon2.so.1: cannot open shared object file")])
        _work(store, "tokens", "codex", [("progress", "signing with Ed25519 keys", ""),
                                          ("question", "Which token lifetime should access tokens use?",
                                           "Options: 5 min (safer) or 15 min (fewer refreshes).\n"
                                           "Reply with a number of minutes.")])
        _work(store, "sessions", "claude", [("progress", "sliding expiry implemented", ""),
                                             ("question", "Store sessions in Redis or in Postgres?",
                                              NASTY + "\n" + "x" * 300)])
        _work(store, "passwords", "gemini", [("progress", "argon2id params chosen", ""),
                                              ("progress", NASTY, NASTY)])
        _work(store, "ratelimit", "claude", [("progress", "token bucket per IP", ""),
                                              ("question", "Is 5 attempts per minute OK?", ""),
                                              ("answer", "Yes, 5 per minute, then exponential backoff", ""),
                                              ("done", "rate limiting merged", "")])
        dispatch.dispatch(store, run_id=RUN, task_id="lint", execution_mode="analysis", to="gemini")
        # the watcher's verdicts on the live attempts, as a leader would see them mid-run
        live = {a["task_id"]: a["thread_id"] for a in runtime.live_attempts(store, RUN)}
        runtime.set_liveness(store, [(live[t], v) for t, v in (
            ("passwords", "alive"), ("lint", "waiting_input"), ("tokens", "blocked"), ("sessions", "blocked"))])
        # the gemini worker stopped at its sign-in screen: the leader is asked, and gemini is held
        login = ("the launch cannot proceed: gemini stopped at a first-run login screen (login: How would you "
                 "like to authenticate for this project? [1. Sign in with Google | 2. Use Gemini API Key | "
                 "3. Vertex AI]); give the profile credentials in its env, or log in once with `gemini`")
        runtime.flag_attention(store, run_id=RUN, task_id="lint", attempt_no=1, kind="waiting_input",
                               reason=f"waiting for input: {login}", event_type="attempt_waiting_input")
        holds.hold(store, profile="gemini", kind="auth", reason=f"lint attempt 1: {login}", run_id=RUN,
                   task_id="lint", attempt_no=1)
    finally:
        store.close()
    if pin_time:
        pin_timestamps(db_path)
    return {"run_id": RUN, "db": db_path}


PINNED_BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z: screens rendered from this run never drift


def pin_timestamps(db_path: str, base: float = PINNED_BASE) -> None:
    """Rewrite every timestamp to base + a small step per row, keeping their order. Test data only."""
    conn = sqlite3.connect(db_path)
    conn.create_function("pin", 1, lambda i: now_ts(base + 7.0 * (i or 0)), deterministic=True)
    try:
        with conn:
            conn.execute("UPDATE runs SET created_at=pin(0), updated_at=pin(100)")
            conn.execute("UPDATE tasks SET created_at=pin(rowid), updated_at=pin(rowid + 40)")
            conn.execute("UPDATE threads SET created_at=pin(rowid + 20), updated_at=pin(rowid + 60),"
                         " lease_expires_at=CASE WHEN lease_expires_at='' THEN '' ELSE pin(100000) END")
            conn.execute("UPDATE messages SET created_at=pin(message_id + 20)")
            conn.execute("UPDATE attempts SET started_at=pin(rowid + 20), last_activity_at=pin(rowid + 70),"
                         " ended_at=CASE WHEN ended_at='' THEN '' ELSE pin(rowid + 80) END")
            conn.execute("UPDATE events SET created_at=pin(event_id)")
            conn.execute("UPDATE attention SET created_at=pin(event_id)")
            conn.execute("UPDATE profile_holds SET created_at=pin(100)")
    finally:
        conn.close()
