"""Drop-in for the original CLIs (issue 13, part 1): each documented behaviour of orch-contract.md
that had no test, through the installed executables as subprocesses, against real SQLite files
and real git repositories. One test per behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_flow import INBOX, ORCH, Cli, Flow, copy_db, execute, git, head, migrate, query

BIN = Path(sys.executable).parent
WORKER_BRIEF = str(BIN / "orch-worker-brief") if (BIN / "orch-worker-brief").exists() else "orch-worker-brief"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run r1 with tasks A, B and C, ready, default worker w1; made once, copied per test."""
    base = tmp_path_factory.mktemp("contract_template")
    f = Flow(Cli(str(base / "coord.db"), base))
    f.init()
    for t in "ABC":
        f.task(t)
    return f.cli.db


@pytest.fixture
def flow(cli: Cli, template: str) -> Flow:
    copy_db(template, cli.db)
    migrate(cli.db)
    return Flow(cli)


def envelope(p: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1, p.stdout
    return json.loads(lines[0])


# -- inbox init -----------------------------------------------------------------------------------
def test_inbox_init_returns_db_path_and_initialized(cli: Cli) -> None:
    d = cli.ok("inbox", "init")
    assert d["status"] == "initialized"
    assert d["db_path"] == str(Path(cli.db).resolve())
    assert Path(d["db_path"]).is_file()


def test_inbox_init_on_an_existing_database_is_the_same_and_loses_nothing(flow: Flow, cli: Cli) -> None:
    tid = flow.start("A")
    before = {t: query(cli.db, f"SELECT count(*) FROM {t}")[0][0] for t in ("runs", "tasks", "threads", "messages")}
    first = cli.ok("inbox", "init")
    again = cli.ok("inbox", "init")
    assert first == again and again["status"] == "initialized" and again["db_path"] == str(Path(cli.db).resolve())
    after = {t: query(cli.db, f"SELECT count(*) FROM {t}")[0][0] for t in ("runs", "tasks", "threads", "messages")}
    assert after == before
    assert flow.show(tid)["thread"]["status"] == "claimed"


# -- claim and renew return the message they record ----------------------------------------------
def test_claim_returns_the_event_message_it_records_on_the_thread(flow: Flow, cli: Cli) -> None:
    tid = flow.dispatch("A")["attempt"]["thread_id"]
    c = flow.claim(tid, "w1", "--lease-seconds", "120")
    m = c["message"]
    assert (m["kind"], m["summary"], m["from_agent"], m["to_agent"]) == ("event", "thread claimed", "w1", "leader")
    assert m["payload"] == {"lease_seconds": 120}
    on_thread = [x for x in flow.show(tid)["messages"] if x["kind"] == "event"]
    assert [x["message_id"] for x in on_thread] == [m["message_id"]]


def test_renew_returns_the_event_message_it_records_on_the_thread(flow: Flow, cli: Cli) -> None:
    tid = flow.start("A")
    r = cli.ok("inbox", "renew", "--agent", "w1", "--thread", tid, "--lease-seconds", "600")
    m = r["message"]
    assert (m["kind"], m["summary"], m["payload"]) == ("event", "lease renewed", {"lease_seconds": 600})
    assert flow.show(tid)["messages"][-1]["message_id"] == m["message_id"]
    assert r["thread"]["status"] == "claimed"  # the status is unchanged


def test_claim_with_non_positive_lease_takes_the_default_900_seconds(flow: Flow, cli: Cli) -> None:
    from orch_console.store.validate import parse_ts

    tid = flow.dispatch("A")["attempt"]["thread_id"]
    c = flow.claim(tid, "w1", "--lease-seconds", "0")
    # measured from the claim's own timestamp, so a slow start of the process does not count
    assert parse_ts(c["lease_expires_at"]) - parse_ts(c["message"]["created_at"]) == pytest.approx(900, abs=0.01)
    assert c["message"]["payload"] == {"lease_seconds": 900}


# -- reconcile: updated_tasks since the previous reconcile ---------------------------------------
def test_reconcile_reports_each_task_status_change_since_the_previous_reconcile(flow: Flow, cli: Cli) -> None:
    first = cli.ok("orch", "reconcile", "--run", "r1")["updated_tasks"]
    assert {u["task_id"]: (u["from"], u["to"]) for u in first} == {t: (None, "ready") for t in "ABC"}
    assert cli.ok("orch", "reconcile", "--run", "r1")["updated_tasks"] == []
    ta = flow.start("A")
    # the fold is eager: the claim moved the task in the worker's own transaction, before any reconcile
    assert query(cli.db, "SELECT status FROM tasks WHERE run_id='r1' AND task_id='A'")[0][0] == "running"
    d = cli.ok("orch", "reconcile", "--run", "r1")
    assert d["updated_tasks"] == [{"task_id": "A", "from": "ready", "to": "running"}]
    assert d["run"]["run_id"] == "r1" and d["run"]["status"] == "active"
    flow.update(ta, "blocked", "which port?")
    tb = flow.start("B")
    flow.done(tb)
    d = cli.ok("orch", "reconcile", "--run", "r1")
    assert sorted((u["task_id"], u["from"], u["to"]) for u in d["updated_tasks"]) == \
        [("A", "running", "blocked"), ("B", "ready", "done")]
    assert d["run"]["status"] == "blocked"
    assert cli.ok("orch", "reconcile", "--run", "r1")["updated_tasks"] == []


def test_status_and_wait_do_not_consume_what_reconcile_reports(flow: Flow, cli: Cli) -> None:
    cli.ok("orch", "reconcile", "--run", "r1")
    flow.start("A")
    flow.status()
    cli.ok("orch", "wait", "--run", "r1", "--for", "task_running", "--after-event", "0", "--timeout-seconds", "5")
    assert cli.ok("orch", "reconcile", "--run", "r1")["updated_tasks"] == [
        {"task_id": "A", "from": "ready", "to": "running"}]


def test_concurrent_reconciles_report_each_change_exactly_once(flow: Flow, cli: Cli) -> None:
    cli.ok("orch", "reconcile", "--run", "r1")
    for t in "ABC":
        flow.start(t)
    procs = [subprocess.Popen([ORCH, "--db", cli.db, "--json", "reconcile", "--run", "r1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    reported: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
        reported += [u["task_id"] for u in json.loads(out)["data"]["updated_tasks"]]
    assert sorted(reported) == ["A", "B", "C"]


def test_reconcile_of_unknown_run_is_not_found(flow: Flow, cli: Cli) -> None:
    cli.err("orch", "reconcile", "--run", "nope", code="not_found", exit_code=40)


# -- reply leaves the thread's status; the worker resumes ----------------------------------------
def test_inbox_reply_leaves_a_blocked_thread_blocked_until_the_worker_resumes(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "sqlite or postgres?")
    r = cli.ok("inbox", "reply", "--from", "leader", "--to", "w1", "--thread", ta, "--summary", "sqlite")
    assert r["message"]["kind"] == "answer" and r["thread"]["status"] == "blocked"
    st = flow.task_status("A")
    assert st["status"] == "blocked" and st["latest_attempt"]["status"] == "blocked"
    assert query(cli.db, "SELECT count(*) FROM events WHERE event_type='task_answered' AND task_id='A'")[0][0] == 1
    got = cli.ok("inbox", "wait-reply", "--agent", "w1", "--thread", ta, "--timeout-seconds", "5")
    assert got["message"]["message_id"] == r["message"]["message_id"]
    u = flow.update(ta, "in_progress", "resuming with sqlite")
    assert u["thread"]["status"] == "in_progress"
    st = flow.task_status("A")
    assert st["status"] == "running" and st["latest_attempt"]["status"] == "in_progress"


@pytest.mark.parametrize("status", ["claimed", "in_progress"])
def test_inbox_reply_leaves_a_working_thread_as_it_was(flow: Flow, cli: Cli, status: str) -> None:
    ta = flow.start("A")
    if status == "in_progress":
        flow.update(ta, "in_progress", "busy")
    for kind in ("answer", "control"):
        r = cli.ok("inbox", "reply", "--from", "leader", "--thread", ta, "--summary", f"a {kind}", "--kind", kind)
        assert (r["message"]["kind"], r["thread"]["status"]) == (kind, status)
    assert flow.task_status("A")["status"] == "running"


def test_an_answered_question_leaves_the_attention_queue(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "which port?")
    assert [i["task_id"] for i in cli.ok("orch", "attention", "--run", "r1")["items"]] == ["A"]
    cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--body", "8080")
    assert cli.ok("orch", "attention", "--run", "r1")["items"] == []  # the worker's turn, not the leader's
    assert flow.task_status("A")["status"] == "blocked"


def test_orch_answer_of_an_answered_question_is_invalid_state(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "which port?")
    cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--body", "8080")
    cli.err("orch", "answer", "--run", "r1", "--task", "A", "--body", "9090", code="invalid_state", exit_code=30)
    flow.update(ta, "in_progress", "resuming")
    flow.update(ta, "blocked", "and the host?")  # a new question can be answered again
    d = cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--body", "localhost")
    assert d["message"]["body"] == "localhost"
    assert cli.ok("orch", "blocked", "--run", "r1")["tasks"][0]["question"]["summary"] == "and the host?"


# -- wait-reply ---------------------------------------------------------------------------------
def test_wait_reply_after_a_message_that_does_not_exist_is_not_found(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    cli.err("inbox", "wait-reply", "--thread", ta, "--after-message", "999999", "--timeout-seconds", "1",
            code="not_found", exit_code=40)


def test_wait_reply_after_a_message_of_another_thread_is_not_found(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    tb = flow.start("B")
    other = flow.show(tb)["messages"][-1]["message_id"]
    cli.err("inbox", "wait-reply", "--thread", ta, "--after-message", str(other), "--timeout-seconds", "1",
            code="not_found", exit_code=40)


def test_wait_reply_after_event_returns_the_first_reply_after_that_event(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    cli.ok("inbox", "reply", "--from", "leader", "--thread", ta, "--summary", "first", "--kind", "control")
    cursor = query(cli.db, "SELECT max(event_id) FROM events")[0][0]
    cli.ok("inbox", "reply", "--from", "leader", "--thread", ta, "--summary", "second", "--kind", "control")
    d = cli.ok("inbox", "wait-reply", "--thread", ta, "--after-event", str(cursor), "--timeout-seconds", "5")
    assert d["woke"] is True and d["message"]["summary"] == "second" and d["next_event_id"] > cursor


def test_wait_reply_kinds_filter_skips_other_kinds(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    cli.ok("inbox", "reply", "--from", "leader", "--thread", ta, "--summary", "steer", "--kind", "control")
    cli.ok("inbox", "reply", "--from", "leader", "--thread", ta, "--summary", "the answer")
    d = cli.ok("inbox", "wait-reply", "--thread", ta, "--kinds", "answer", "--after-message", "0",
               "--timeout-seconds", "5")
    assert (d["message"]["kind"], d["message"]["summary"]) == ("answer", "the answer")
    p = cli.inbox("wait-reply", "--thread", ta, "--kinds", "result", "--after-message", "0", "--timeout-seconds", "0.3")
    assert p.returncode == 10 and envelope(p)["error"]["code"] == "no_matching_work"


# -- dispatch in code mode ------------------------------------------------------------------------
def test_code_dispatch_without_base_ref_records_head_and_its_commit(flow: Flow, cli: Cli, repo: Path) -> None:
    d = flow.code("A", repo)
    a = d["attempt"]
    assert a["base_ref"] == "HEAD" and a["base_commit"] == head(repo)
    payload = d["message"]["payload"]  # the inbox task payload carries the workspace too
    assert (payload["base_ref"], payload["base_commit"], payload["execution_mode"]) == ("HEAD", head(repo), "code")
    assert (payload["branch_name"], payload["worktree_path"], payload["workspace_status"]) == \
        (a["branch_name"], a["worktree_path"], "created")
    assert flow.task_status("A")["latest_attempt"]["base_commit"] == head(repo)
    assert query(cli.db, "SELECT base_ref FROM attempts WHERE thread_id=?", (a["thread_id"],))[0][0] == "HEAD"


def test_code_dispatch_with_base_ref_records_that_ref(flow: Flow, repo: Path) -> None:
    a = flow.code("A", repo, "--base-ref", "main")["attempt"]
    assert (a["base_ref"], a["base_commit"]) == ("main", head(repo))


def test_relative_workspace_root_resolves_against_repo_path_not_cwd(flow: Flow, cli: Cli, repo: Path,
                                                                     tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    d = Cli(cli.db, elsewhere).ok("orch", "dispatch", "--run", "r1", "--task", "A", "--execution-mode", "code",
                                  "--repo-path", str(repo), "--workspace-root", "wt-root")
    wt = Path(d["attempt"]["worktree_path"])
    assert wt == repo / "wt-root" / "r1" / "A" / "a1" and (wt / "README.md").is_file()
    assert not (elsewhere / "wt-root").exists()
    assert git(repo, "status", "--porcelain") == ""  # a root inside the repository does not dirty it
    # and the next attempt can still be made from a clean checkout
    assert flow.code("B", repo, "--workspace-root", "wt-root")["attempt"]["base_ref"] == "HEAD"


def test_retry_of_a_head_based_attempt_starts_from_the_same_commit(flow: Flow, cli: Cli, repo: Path) -> None:
    a1 = flow.code("A", repo)["attempt"]
    flow.claim(a1["thread_id"])
    flow.fail(a1["thread_id"])
    (repo / "new.txt").write_text("moved on\n")
    git(repo, "add", "new.txt")
    git(repo, "commit", "-q", "-m", "moved on")
    (repo / "README.md").write_text("dirty now\n")  # HEAD moved and the checkout is dirty
    a2 = cli.ok("orch", "retry", "--run", "r1", "--task", "A", "--body", "again, differently")["attempt"]
    assert a2["base_commit"] == a1["base_commit"] != head(repo)


def test_code_dispatch_default_workspace_root_is_repo_orch_worktrees(flow: Flow, cli: Cli, repo: Path) -> None:
    a = Cli(cli.db, repo).ok("orch", "dispatch", "--run", "r1", "--task", "A", "--execution-mode", "code")["attempt"]
    assert Path(a["worktree_path"]) == repo / ".orch" / "worktrees" / "r1" / "A" / "a1"


def test_analysis_dispatch_has_no_worktree_and_starts_no_worker(flow: Flow, cli: Cli) -> None:
    d = flow.dispatch("A")
    a = d["attempt"]
    assert (a["execution_mode"], a["worktree_path"], a["branch_name"], a["workspace_status"]) == \
        ("analysis", "", "", "")
    assert d["message"]["payload"]["execution_mode"] == "analysis"
    assert d["task"]["status"] == "dispatched" and d["thread"]["status"] == "pending"  # handoff, not execution


# -- orch-worker-brief ------------------------------------------------------------------------------
def test_orch_worker_brief_prints_the_brief_of_a_saved_dispatch(flow: Flow, cli: Cli, tmp_path: Path) -> None:
    p = cli.orch("dispatch", "--run", "r1", "--task", "A", "--execution-mode", "analysis", "--body", "Read the logs")
    saved = tmp_path / "dispatch.json"
    saved.write_text(p.stdout)
    tid = json.loads(p.stdout)["data"]["attempt"]["thread_id"]
    out = tmp_path / "worker-brief.txt"
    with out.open("w") as f:
        b = subprocess.run([WORKER_BRIEF, "--dispatch-json", str(saved), "--db", cli.db], stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert b.returncode == 0, b.stderr
    text = out.read_text()
    assert text == cli.ok("orch", "brief", "--dispatch-json", str(saved))["brief"]  # the same job as orch brief
    # the template of orch-contract.md section 5, line by line
    assert text.startswith("Use the inbox CLI") and f"act as w1 on SQLite DB {Path(cli.db).resolve()}." in text
    for line in ["You are assigned one existing attempt:", "- run_id: r1", "- task_id: A", "- attempt_no: 1",
                 "- assigned_to: w1", f"- thread_id: {tid}", "- execution_mode: analysis", "- task_title: title A",
                 "- base_ref: -", "- worktree_path: -", "Required workflow:",
                 "1. Fetch or inspect the assigned thread and claim exactly the listed thread_id.",
                 "2. Inspect the thread with show before making assumptions about the task body or payload.",
                 "3. Send one in_progress update when real work starts.",
                 "4. If blocked, send one precise blocked question with update --status blocked and then use "
                 "wait-reply.",
                 "5. Finish with done on success or fail on failure.",
                 "6. Stop after reporting the handled thread_id and a concise outcome summary.", "Rules:",
                 "- Do not claim any other thread.", "- Keep all coordination in inbox messages, not ordinary chat.",
                 "- Do not change the assigned_to, thread_id, or worktree assignment yourself.",
                 "- If worktree_path exists, perform repository work only inside that path."]:
        assert line in text.splitlines(), line
    assert "Read the logs" in text


def test_orch_worker_brief_json_is_the_orch_brief_envelope(flow: Flow, cli: Cli, tmp_path: Path) -> None:
    saved = tmp_path / "dispatch.json"
    saved.write_text(cli.orch("dispatch", "--run", "r1", "--task", "A", "--execution-mode", "analysis").stdout)
    p = subprocess.run([WORKER_BRIEF, "--db", cli.db, "--json", "--dispatch-json", str(saved)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0
    doc = envelope(p)
    assert doc["ok"] is True and doc["data"]["brief"] == cli.ok("orch", "brief", "--dispatch-json", str(saved))["brief"]


@pytest.mark.parametrize("content,code,exit_code", [
    (None, "invalid_input", 30),                                   # no such file
    ("not json", "invalid_input", 30),
    ('{"ok": false, "error": {"code": "invalid_state", "message": "x"}}', "invalid_input", 30),
    ('{"ok": true, "command": "dispatch", "data": {"task": {"run_id": "r1", "task_id": "ZZ"}, "attempt": '
     '{"attempt_no": 1}}}', "not_found", 40),
])
def test_orch_worker_brief_bad_dispatch_json_is_a_clear_error(flow: Flow, cli: Cli, tmp_path: Path,
                                                              content: str | None, code: str, exit_code: int) -> None:
    saved = tmp_path / "dispatch.json"
    if content is not None:
        saved.write_text(content)
    p = subprocess.run([WORKER_BRIEF, "--dispatch-json", str(saved), "--db", cli.db, "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == exit_code and envelope(p)["error"]["code"] == code
    text = subprocess.run([WORKER_BRIEF, "--dispatch-json", str(saved), "--db", cli.db], capture_output=True,
                          text=True, timeout=60)
    assert text.returncode == exit_code and text.stdout == "" and text.stderr.startswith(f"error ({code}): ")


def test_orch_worker_brief_without_dispatch_json_is_usage_error(cli: Cli) -> None:
    p = subprocess.run([WORKER_BRIEF, "--db", cli.db, "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 30 and envelope(p)["error"]["code"] == "invalid_input"
    assert not Path(cli.db).exists()


def test_orch_worker_brief_is_a_console_script() -> None:
    import tomllib

    scripts = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["orch-worker-brief"] == "orch_console.console.cli.worker_brief:main"
    assert (BIN / "orch-worker-brief").exists()


# -- --db everywhere ------------------------------------------------------------------------------
def test_orch_demo_honours_db(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "demo.db"
    env = {**os.environ, "ORCH_DB": str(tmp_path / "not-this.db")}
    # a demo cut short (exit 30: not every task done) still made its run in --db
    p = subprocess.run([ORCH, "--db", str(db), "--json", "demo", "--headless", "--dir", str(tmp_path / "demo"),
                        "--timeout-seconds", "1"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode in (0, 30), p.stdout + p.stderr
    doc = envelope(p)
    data = doc["data"] if doc["ok"] else doc["error"]["data"]
    assert Path(data["db"]) == db
    assert db.is_file() and not (tmp_path / "demo" / ".agents" / "coord.db").exists()
    assert not (tmp_path / "not-this.db").exists()
    s = subprocess.run([ORCH, "--db", str(db), "--json", "status", "--run", "demo"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert s.returncode == 0 and len(json.loads(s.stdout)["data"]["tasks"]) == 12


def test_orch_demo_into_a_db_that_has_a_demo_run_is_invalid_state(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    Cli(str(db), tmp_path).ok("orch", "run", "init", "--run", "demo", "--goal", "mine")
    p = subprocess.run([ORCH, "--db", str(db), "--json", "demo", "--headless", "--dir", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 30 and envelope(p)["error"]["code"] == "invalid_state"
    assert not (tmp_path / "demo").exists()


def _leaf_commands(exe: str) -> set[str]:
    import argparse

    from orch_console.console.cli import inbox, orch

    def walk(p: argparse.ArgumentParser, pre: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    out += walk(sub, pre + (name,)) or [pre + (name,)]
        return out

    return {" ".join(c) for c in walk((orch if exe == "orch" else inbox).build())}


# Held by their own tests: demo (test_orch_demo_honours_db) and console (the TUI, tests/ui).
NOT_HERE = {"orch demo", "orch console"}


def test_every_command_honours_an_explicit_db(tmp_path: Path) -> None:
    """--db wins over $ORCH_DB and over the default .agents/coord.db, for every command of both
    CLIs and orch-worker-brief: a run's whole life against one explicit file, from a cwd that has
    neither."""
    from cli_flow import _shared

    db = tmp_path / "explicit.db"
    env = {**os.environ, "ORCH_DB": str(tmp_path / "env.db")}
    env.update({k: v for k, v in _shared.git_env().items() if k.startswith("GIT_")})
    work = tmp_path / "cwd"
    work.mkdir()
    repo = _shared.make_repo(tmp_path / "repo")
    ran: set[str] = set()

    def run(exe: str, *argv: str, code: int = 0) -> dict[str, Any]:
        words = [a for a in argv if not a.startswith("-")]
        p = subprocess.run([exe, "--db", str(db), "--json", *argv], capture_output=True, text=True, timeout=60,
                           env=env, cwd=work)
        assert p.returncode == code, (argv, p.stdout, p.stderr)
        grouped = words[0] in ("run", "task", "dep", "verify", "import", "screen")
        ran.add(("orch " if exe == ORCH else "inbox ") + " ".join(words[:2] if grouped else words[:1]))
        return json.loads(p.stdout)["data"] if code == 0 else {}

    def thread(task: str) -> str:
        return query(str(db), "SELECT thread_id FROM attempts WHERE run_id='r9' AND task_id=? ORDER BY attempt_no DESC"
                     " LIMIT 1", (task,))[0][0]

    assert run(INBOX, "init")["db_path"] == str(db)
    run(ORCH, "run", "init", "--run", "r9", "--goal", "g")
    run(ORCH, "run", "show", "--run", "r9")
    run(ORCH, "run", "list")
    run(ORCH, "run", "config", "--run", "r9", "--set", "stall_seconds=900")
    for t, extra in (("T1", []), ("T2", []), ("T3", []), ("T4", ["--required-check", "lint"]),
                     ("T5", ["--check-cmd", "unit=true"])):
        run(ORCH, "task", "add", "--run", "r9", "--task", t, "--title", t, "--default-to", "w1", *extra)
    run(ORCH, "dep", "add", "--run", "r9", "--task", "T2", "--depends-on", "T1")
    run(ORCH, "ready", "--run", "r9")
    run(ORCH, "plan", "--run", "r9")
    # T1: a question, its answer, the worker resumes and finishes
    run(ORCH, "dispatch", "--run", "r9", "--task", "T1", "--execution-mode", "analysis")
    run(ORCH, "brief", "--run", "r9", "--task", "T1")
    t1 = thread("T1")
    run(INBOX, "fetch", "--agent", "w1")
    run(INBOX, "claim", "--agent", "w1", "--thread", t1)
    run(INBOX, "renew", "--agent", "w1", "--thread", t1)
    q = run(INBOX, "update", "--agent", "w1", "--thread", t1, "--status", "blocked", "--summary", "which?")
    run(ORCH, "blocked", "--run", "r9")
    run(ORCH, "attention", "--run", "r9")
    run(ORCH, "answer", "--run", "r9", "--task", "T1", "--body", "this one")
    # an agent's hook (issue 12): a permission request, listed and answered by the leader
    hook = subprocess.run([INBOX, "--db", str(db), "--json", "hook", "--thread", t1, "--agent", "w1", "--source",
                           "claude", "--event", "PostToolUse"], input=json.dumps({"tool_name": "Bash"}),
                          capture_output=True, text=True, timeout=60, env=env, cwd=work)
    assert hook.returncode == 0, hook.stderr
    ran.add("inbox hook")
    run(ORCH, "approvals", "--run", "r9")
    run(ORCH, "approve", "--run", "r9", "--task", "T1", "--decision", "allow", code=40)  # nothing waits
    run(ORCH, "agents")
    run(ORCH, "holds")
    run(ORCH, "release", "--profile", "claude", code=40)  # nothing held
    screen = tmp_path / "screen.txt"
    screen.write_text("> \n")
    run(ORCH, "screen", "classify", "--file", str(screen))
    run(INBOX, "wait-reply", "--agent", "w1", "--thread", t1, "--after-message", str(q["message"]["message_id"]),
        "--timeout-seconds", "5")
    run(INBOX, "reply", "--from", "leader", "--thread", t1, "--summary", "and quickly", "--kind", "control")
    run(INBOX, "update", "--agent", "w1", "--thread", t1, "--status", "in_progress", "--summary", "resuming")
    run(INBOX, "show", "--thread", t1)
    run(INBOX, "done", "--agent", "w1", "--thread", t1, "--summary", "ok")
    run(ORCH, "wait", "--run", "r9", "--for", "task_done", "--after-event", "0", "--timeout-seconds", "5")
    run(ORCH, "reconcile", "--run", "r9")
    # T2: fails, is retried, reassigned, cancelled
    run(ORCH, "dispatch", "--run", "r9", "--task", "T2", "--execution-mode", "analysis")
    run(INBOX, "claim", "--agent", "w1", "--thread", thread("T2"))
    run(INBOX, "fail", "--agent", "w1", "--thread", thread("T2"), "--summary", "broke")
    run(ORCH, "retry", "--run", "r9", "--task", "T2", "--body", "differently")
    run(ORCH, "reassign", "--run", "r9", "--task", "T2", "--to", "w2")
    run(ORCH, "cancel", "--run", "r9", "--task", "T2")
    # T3: code mode, done, its worktree cleaned up
    run(ORCH, "dispatch", "--run", "r9", "--task", "T3", "--execution-mode", "code", "--repo-path", str(repo))
    run(INBOX, "claim", "--agent", "w1", "--thread", thread("T3"))
    run(INBOX, "done", "--agent", "w1", "--thread", thread("T3"), "--summary", "ok")
    run(ORCH, "diff", "--run", "r9", "--task", "T3", "--stat")
    run(ORCH, "land", "--run", "r9", "--task", "T3", "--dry-run")
    run(ORCH, "rework", "--run", "r9", "--task", "T3", "--body", "smaller, please")
    run(INBOX, "claim", "--agent", "w1", "--thread", thread("T3"))
    run(INBOX, "done", "--agent", "w1", "--thread", thread("T3"), "--summary", "smaller")
    run(ORCH, "land", "--run", "r9", "--task", "T3")
    run(ORCH, "cleanup", "--run", "r9", "--all-completed")
    # T4 and T5: the gates
    for t in ("T4", "T5"):
        run(ORCH, "dispatch", "--run", "r9", "--task", t, "--execution-mode", "analysis")
        run(INBOX, "claim", "--agent", "w1", "--thread", thread(t))
        run(INBOX, "done", "--agent", "w1", "--thread", thread(t), "--summary", "ok")
    run(ORCH, "verify", "record", "--run", "r9", "--task", "T4", "--check", "lint", "--status", "passed")
    run(ORCH, "verify", "run", "--run", "r9", "--task", "T5")
    run(ORCH, "verify", "status", "--run", "r9", "--task", "T5")
    run(ORCH, "watch", "--run", "r9", "--once")
    run(ORCH, "status", "--run", "r9")
    run(ORCH, "report", "--run", "r9", "--format", "json")
    # threads outside a run, and the imports
    side = run(INBOX, "send", "--from", "leader", "--to", "w3", "--subject", "side job")["thread"]["thread_id"]
    run(INBOX, "watch", "--agent", "w3", "--after-event", "0", "--timeout-seconds", "5")
    run(INBOX, "list")
    run(INBOX, "cancel", "--thread", side)
    gh = tmp_path / "issues.json"
    gh.write_text(json.dumps([{"number": 1, "title": "an issue", "body": "", "labels": []}]))
    run(ORCH, "import", "gh-issues", str(gh), "--run", "r10")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"project": "p", "phases": [{"name": "one", "tasks": [
        {"id": "m1", "title": "first", "files": ["a"], "dependsOn": []}]}]}))
    run(ORCH, "import", "manifest", str(manifest), "--run", "r11")
    saved = tmp_path / "d.json"
    saved.write_text(json.dumps({"ok": True, "data": {"task": {"run_id": "r9", "task_id": "T1"},
                                                        "attempt": {"attempt_no": 1}}}))
    b = subprocess.run([WORKER_BRIEF, "--db", str(db), "--dispatch-json", str(saved)], capture_output=True, text=True,
                       timeout=60, env=env, cwd=work)
    assert b.returncode == 0 and t1 in b.stdout

    everything = {f"orch {c}" for c in _leaf_commands("orch")} | {f"inbox {c}" for c in _leaf_commands("inbox")}
    assert everything - NOT_HERE - ran == set()  # a new command joins this test
    st = run(ORCH, "status", "--run", "r9")
    assert {t["task_id"]: t["status"] for t in st["tasks"]} == \
        {"T1": "done", "T2": "cancelled", "T3": "done", "T4": "done", "T5": "done"}
    assert {r["run_id"] for r in run(ORCH, "run", "list")["runs"]} == {"r9", "r10", "r11"}
    assert not (tmp_path / "env.db").exists() and not (work / ".agents").exists()


def test_default_db_is_agents_coord_db_in_the_cwd(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ORCH_DB"}
    p = subprocess.run([INBOX, "--json", "init"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert p.returncode == 0 and json.loads(p.stdout)["data"]["db_path"] == str(tmp_path / ".agents" / "coord.db")
    p = subprocess.run([ORCH, "--json", "run", "init", "--run", "r1", "--goal", "g"], capture_output=True, text=True,
                       timeout=60, env=env, cwd=tmp_path)
    assert p.returncode == 0
    assert query(str(tmp_path / ".agents" / "coord.db"), "SELECT run_id FROM runs")[0][0] == "r1"


# -- the envelope and the global flags ---------------------------------------------------------------
@pytest.mark.parametrize("exe,argv,leaf", [
    ("orch", ["run", "init", "--run", "r2", "--goal", "g"], "init"), ("orch", ["run", "show", "--run", "r1"], "show"),
    ("orch", ["task", "add", "--run", "r1", "--task", "Z", "--title", "z"], "add"),
    ("orch", ["dep", "add", "--run", "r1", "--task", "B", "--depends-on", "A"], "add"),
    ("orch", ["verify", "status", "--run", "r1", "--task", "A"], "status"), ("inbox", ["list"], "list"),
])
def test_envelope_command_is_the_leaf_command_name(flow: Flow, cli: Cli, exe: str, argv: list[str], leaf: str) -> None:
    doc = envelope(cli.orch(*argv) if exe == "orch" else cli.inbox(*argv))
    assert doc == {"ok": True, "command": leaf, "data": doc["data"]}


def test_orch_has_no_global_agent(flow: Flow, cli: Cli) -> None:
    p = subprocess.run([ORCH, "--db", cli.db, "--json", "--agent", "w1", "status", "--run", "r1"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 30 and envelope(p)["error"]["code"] == "invalid_input"


def test_inbox_global_agent_is_the_fallback_for_agent(flow: Flow, cli: Cli) -> None:
    tid = flow.dispatch("A")["attempt"]["thread_id"]
    d = cli.ok("inbox", "--agent", "w1", "claim", "--thread", tid)
    assert d["thread"]["lease_owner"] == "w1"
    u = cli.ok("inbox", "--agent", "w1", "update", "--thread", tid, "--status", "in_progress", "--summary", "s")
    assert u["message"]["from_agent"] == "w1"


def test_inbox_global_agent_is_the_fallback_for_reply_from(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    r = cli.ok("inbox", "--agent", "leader", "reply", "--thread", ta, "--summary", "go on", "--kind", "control")
    assert (r["message"]["from_agent"], r["message"]["to_agent"]) == ("leader", "w1")


def test_inbox_watch_starts_from_now_unless_after_event(flow: Flow, cli: Cli) -> None:
    sent = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "earlier work")
    p = cli.inbox("watch", "--agent", "w1", "--timeout-seconds", "0.5")
    assert p.returncode == 10 and envelope(p)["error"]["code"] == "no_matching_work"
    d = cli.ok("inbox", "watch", "--agent", "w1", "--after-event", "0", "--timeout-seconds", "5")
    assert d["woke"] is True and d["thread"]["thread_id"] == sent["thread"]["thread_id"]
    assert d["message"]["summary"] == "earlier work" and d["event"]["event_id"] >= 1


def test_wait_reply_with_timeout_zero_waits_until_the_reply(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "which port?")
    p = subprocess.Popen([INBOX, "--db", cli.db, "--json", "wait-reply", "--agent", "w1", "--thread", ta,
                          "--timeout-seconds", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert p.poll() is None, "wait-reply --timeout-seconds 0 returned before any reply"
        ans = cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--body", "8080")
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert json.loads(out)["data"]["message"]["message_id"] == ans["message"]["message_id"]


def test_text_output_of_blocked_and_answer_says_the_worker_resumes(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "which port?")
    a = cli.orch("answer", "--run", "r1", "--task", "A", "--summary", "8080", json_out=False)
    assert a.returncode == 0 and "until its worker resumes" in a.stdout
    b = cli.orch("blocked", "--run", "r1", json_out=False)
    assert b.returncode == 0 and "answered: 8080" in b.stdout


def test_send_defaults_kind_task_priority_normal_and_summary_from_subject(cli: Cli) -> None:
    cli.ok("inbox", "init")
    d = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "Look")
    assert (d["thread"]["priority"], d["message"]["kind"], d["message"]["summary"]) == ("normal", "task", "Look")


# -- orch wait reconciles while it polls ----------------------------------------------------------------
def test_orch_wait_reconciles_a_thread_that_moved_behind_the_fold(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    cursor = query(cli.db, "SELECT max(event_id) FROM events")[0][0]
    execute(cli.db, "UPDATE threads SET status='done', lease_owner='' WHERE thread_id=?", (ta,))  # no fold
    d = cli.ok("orch", "wait", "--run", "r1", "--for", "task_done", "--after-event", str(cursor),
               "--timeout-seconds", "30")
    assert [e["event_type"] for e in d["events"]] == ["task_done"] and d["event"]["task_id"] == "A"


# -- status, retry, reassign, verify: documented fields not held elsewhere ---------------------------
def test_status_tasks_carry_gate_context(flow: Flow, cli: Cli) -> None:
    flow.task("V", "--required-check", "lint")
    flow.done(flow.start("V"))
    by = {t["task_id"]: t for t in flow.status()["tasks"]}
    assert by["V"]["status"] == "verifying" and by["V"]["gate"]["status"] == "pending"
    assert by["V"]["gate"]["required"] == ["lint"]
    assert cli.ok("orch", "verify", "status", "--run", "r1", "--task", "V")["gate"]["status"] == "pending"


def test_retry_in_code_mode_leaves_the_old_worktree_untouched(flow: Flow, cli: Cli, repo: Path) -> None:
    a1 = flow.code("A", repo)["attempt"]
    flow.claim(a1["thread_id"])
    (Path(a1["worktree_path"]) / "work.txt").write_text("attempt 1\n")
    flow.fail(a1["thread_id"])
    a2 = cli.ok("orch", "retry", "--run", "r1", "--task", "A", "--body", "new plan")["attempt"]
    assert (Path(a1["worktree_path"]) / "work.txt").read_text() == "attempt 1\n"
    assert not (Path(a2["worktree_path"]) / "work.txt").exists()


def test_reassign_of_a_blocked_task_cancels_its_thread(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "stuck")
    d = cli.ok("orch", "reassign", "--run", "r1", "--task", "A", "--to", "w2", "--body", "take over")
    assert d["attempt"]["assigned_to"] == "w2" and d["task"]["status"] == "dispatched"
    assert flow.show(ta)["thread"]["status"] == "cancelled"
    assert cli.ok("orch", "blocked", "--run", "r1")["count"] == 0


def test_terminal_thread_rejects_update_with_invalid_state(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.done(ta)
    cli.err("inbox", "update", "--agent", "w1", "--thread", ta, "--status", "in_progress", "--summary", "late",
            code="invalid_state", exit_code=30)


def test_renew_without_active_lease_is_invalid_state(flow: Flow, cli: Cli) -> None:
    tid = flow.dispatch("A")["attempt"]["thread_id"]
    cli.err("inbox", "renew", "--agent", "w1", "--thread", tid, code="invalid_state", exit_code=30)


# -- the seed's Typical Commands, verbatim ------------------------------------------------------------
# From seeds/000_*.txt (skills/orch/SKILL.md, "Typical Commands"), in order. The test checks this
# copy against the seed file when the file is there.
TYPICAL_COMMANDS = """\
../inbox/assets/inbox --db ./coord.db --json init
./assets/orch --db ./coord.db --json run init --run blog_mvp_001 --goal "Build blog MVP" --summary "Public blog plus admin CRUD"
./assets/orch --db ./coord.db --json task add --run blog_mvp_001 --task T1 --title "Project skeleton" --summary "Initialize app structure and database wiring" --default-to foundation-worker
./assets/orch --db ./coord.db --json task add --run blog_mvp_001 --task T2 --title "Summarize flaky tests" --summary "Read logs and report next steps" --default-to qa-worker --acceptance-json '{"kind":"analysis"}'
./assets/orch --db ./coord.db --json dep add --run blog_mvp_001 --task T2 --depends-on T1
./assets/orch --db ./coord.db --json ready --run blog_mvp_001
./assets/orch --db ./coord.db --json dispatch --run blog_mvp_001 --task T1 --execution-mode code --to foundation-worker --base-ref main --workspace-root .orch/worktrees --body-file tasks/t1.md > /tmp/t1-dispatch.json
./assets/orch-worker-brief --dispatch-json /tmp/t1-dispatch.json --db ./coord.db > /tmp/t1-worker-brief.txt
./assets/orch --db ./coord.db --json dispatch --run blog_mvp_001 --task T2 --execution-mode analysis --to qa-worker --body "Read the failing test logs and summarize the root cause." > /tmp/t2-dispatch.json
./assets/orch-worker-brief --dispatch-json /tmp/t2-dispatch.json --db ./coord.db > /tmp/t2-worker-brief.txt
./assets/orch --db ./coord.db --json status --run blog_mvp_001
./assets/orch --db ./coord.db --json wait --run blog_mvp_001 --for task_blocked,task_verifying,task_done,task_failed --after-event 0 --timeout-seconds 900
./assets/orch --db ./coord.db --json blocked --run blog_mvp_001
./assets/orch --db ./coord.db --json answer --run blog_mvp_001 --task T2 --body "MVP supports draft and published only."
./assets/orch --db ./coord.db --json retry --run blog_mvp_001 --task T7a --to backend-worker --body "Retry after fixing the contract mismatch."
./assets/orch --db ./coord.db --json cleanup --run blog_mvp_001 --all-completed
"""  # noqa: E501 (verbatim)


def test_typical_commands_copy_matches_the_seed() -> None:
    seeds = sorted(Path("/work/shared/seeds").glob("000_*.txt")) if Path("/work/shared/seeds").is_dir() else []
    if not seeds:
        pytest.skip("the seed file is not on this machine")
    text = seeds[0].read_text()
    block = text[text.index("Typical Commands"):text.index("Command Map")]
    seed_lines = [ln.strip() for ln in block.splitlines() if ln.strip().startswith(("./assets", "../inbox"))]
    assert seed_lines == TYPICAL_COMMANDS.splitlines()


def installed(line: str, tmp: Path) -> str:
    """The seed's command with the bundled executables replaced by the installed ones, and /tmp/
    by the test's own directory (a shared machine's /tmp is not the test's to write)."""
    # /tmp/ first: the installed executables may themselves live under /tmp (a fresh clone there)
    line = line.replace("/tmp/", f"{tmp}/")
    line = line.replace("../inbox/assets/inbox ", f"{INBOX} ")
    line = line.replace("./assets/orch-worker-brief ", f"{WORKER_BRIEF} ")
    return line.replace("./assets/orch ", f"{ORCH} ")


def test_typical_commands_of_the_seed_run_verbatim_with_their_documented_results(tmp_path: Path) -> None:
    from cli_flow import _shared

    repo = _shared.make_repo(tmp_path / "project")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (repo / "tasks").mkdir()
    (repo / "tasks" / "t1.md").write_text("Create the app skeleton and the database wiring.\n")
    env = {**os.environ, "ORCH_DB": str(tmp_path / "not-this.db")}
    env.update({k: v for k, v in _shared.git_env().items() if k.startswith("GIT_")})
    lines = TYPICAL_COMMANDS.splitlines()
    db = str(repo / "coord.db")
    worker = Cli(db, repo)

    def sh(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", installed(line, out_dir)], capture_output=True, text=True, cwd=repo,
                              env=env, timeout=120)

    def ok(p: subprocess.CompletedProcess[str]) -> dict[str, Any]:
        assert p.returncode == 0, (p.args, p.stdout, p.stderr)
        doc = envelope(p)
        assert doc["ok"] is True
        return doc["data"]

    it = iter(lines)
    # init, run init, two task adds, dep add
    assert ok(sh(next(it)))["status"] == "initialized"
    run = ok(sh(next(it)))["run"]
    assert (run["run_id"], run["goal"], run["summary"], run["status"]) == \
        ("blog_mvp_001", "Build blog MVP", "Public blog plus admin CRUD", "active")
    t1 = ok(sh(next(it)))["task"]
    assert (t1["task_id"], t1["status"], t1["default_to"]) == ("T1", "ready", "foundation-worker")
    t2 = ok(sh(next(it)))["task"]
    assert (t2["task_id"], t2["default_to"]) == ("T2", "qa-worker")
    ok(sh(next(it)))
    # ready: T1 only (T2 waits for T1)
    assert [t["task_id"] for t in ok(sh(next(it)))["tasks"]] == ["T1"]
    # dispatch T1 in code mode > dispatch.json: an attempt with its worktree under .orch/worktrees
    p = sh(next(it))
    assert p.returncode == 0 and p.stdout == "", p.stderr
    d1 = json.loads((out_dir / "t1-dispatch.json").read_text())["data"]
    a1 = d1["attempt"]
    assert (a1["execution_mode"], a1["assigned_to"], a1["base_ref"], a1["base_commit"]) == \
        ("code", "foundation-worker", "main", head(repo))
    assert Path(a1["worktree_path"]) == repo / ".orch" / "worktrees" / "blog_mvp_001" / "T1" / "a1"
    assert d1["message"]["body"] == "Create the app skeleton and the database wiring.\n"
    # orch-worker-brief > brief.txt
    p = sh(next(it))
    assert p.returncode == 0 and p.stdout == "", p.stderr
    brief1 = (out_dir / "t1-worker-brief.txt").read_text()
    assert f"- thread_id: {a1['thread_id']}" in brief1 and f"- worktree_path: {a1['worktree_path']}" in brief1
    # the T1 worker follows its brief: claim, show, progress, commit in the worktree, done
    th1 = a1["thread_id"]
    worker.ok("inbox", "claim", "--agent", "foundation-worker", "--thread", th1)
    worker.ok("inbox", "show", "--thread", th1)
    worker.ok("inbox", "update", "--agent", "foundation-worker", "--thread", th1, "--status", "in_progress",
              "--summary", "Scaffolding the app")
    wt = Path(a1["worktree_path"])
    (wt / "app.py").write_text("print('blog')\n")
    git(wt, "add", "app.py")
    git(wt, "commit", "-q", "-m", "skeleton")
    worker.ok("inbox", "done", "--agent", "foundation-worker", "--thread", th1, "--summary", "Skeleton in place")
    # dispatch T2 (ready now that T1 is done) in analysis mode, and its brief
    p = sh(next(it))
    assert p.returncode == 0, p.stderr
    d2 = json.loads((out_dir / "t2-dispatch.json").read_text())["data"]
    assert (d2["attempt"]["execution_mode"], d2["attempt"]["assigned_to"], d2["attempt"]["worktree_path"]) == \
        ("analysis", "qa-worker", "")
    assert d2["task"]["status"] == "dispatched"
    assert sh(next(it)).returncode == 0
    assert f"- thread_id: {d2['attempt']['thread_id']}" in (out_dir / "t2-worker-brief.txt").read_text()
    # the T2 worker claims and asks a question
    th2 = d2["attempt"]["thread_id"]
    worker.ok("inbox", "claim", "--agent", "qa-worker", "--thread", th2)
    worker.ok("inbox", "update", "--agent", "qa-worker", "--thread", th2, "--status", "blocked",
              "--summary", "Which post states does the MVP support?")
    # status: reconciles, T1 done, T2 blocked with its question
    st = ok(sh(next(it)))
    by = {t["task_id"]: t for t in st["tasks"]}
    assert st["run"]["status"] == "blocked"
    assert (by["T1"]["status"], by["T2"]["status"]) == ("done", "blocked")
    assert by["T2"]["blocked_question"]["summary"] == "Which post states does the MVP support?"
    assert by["T1"]["latest_message"]["kind"] == "result"
    # wait from event 0: returns at once with what already happened
    w = ok(sh(next(it)))
    assert [(e["event_type"], e["task_id"]) for e in w["events"]] == [("task_done", "T1"), ("task_blocked", "T2")]
    assert w["next_event_id"] == w["events"][-1]["event_id"]
    # blocked: T2 and its question
    b = ok(sh(next(it)))
    assert [(t["task_id"], t["thread_id"], t["question"]["kind"]) for t in b["tasks"]] == [("T2", th2, "question")]
    # answer T2: an answer message into the active attempt thread
    a = ok(sh(next(it)))
    assert (a["message"]["kind"], a["message"]["body"], a["thread"]["thread_id"]) == \
        ("answer", "MVP supports draft and published only.", th2)
    got = worker.ok("inbox", "wait-reply", "--agent", "qa-worker", "--thread", th2, "--timeout-seconds", "10")
    assert got["message"]["message_id"] == a["message"]["message_id"]
    worker.ok("inbox", "update", "--agent", "qa-worker", "--thread", th2, "--status", "in_progress",
              "--summary", "Resuming with draft and published")
    worker.ok("inbox", "done", "--agent", "qa-worker", "--thread", th2, "--summary", "Root cause: a racy fixture")
    # retry of T7a: this run has no such task (the seed's example names another run's task): not_found
    p = sh(next(it))
    assert p.returncode == 40 and envelope(p)["error"]["code"] == "not_found"
    # cleanup --all-completed: T1's worktree goes, its branch stays
    c = ok(sh(next(it)))
    assert [(x["task_id"], x["workspace_status"]) for x in c["cleaned"]] == [("T1", "cleaned")]
    assert not wt.exists() and "orch/blog_mvp_001/T1/a1" in git(repo, "branch", "--list")
    assert next(it, None) is None
    assert not (tmp_path / "not-this.db").exists()
    final = worker.ok("orch", "status", "--run", "blog_mvp_001")
    assert final["run"]["status"] == "done"
