"""Each orch and inbox command's success path through the real executables, with the JSON data
shape of DESIGN.md section 4 and orch-contract.md section 2, against real SQLite files and real
git repositories."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cli_flow import (INBOX, ORCH, Cli, Flow, branches, copy_db, execute, git, head, migrate, query,
                      worktree_paths)

ATTEMPT_KEYS = {"attempt_no", "thread_id", "assigned_to", "execution_mode", "worktree_path", "branch_name",
                "base_commit", "workspace_status"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run r1 ("ship it") with tasks A, B and C, ready, default worker w1; made once, copied per test."""
    base = tmp_path_factory.mktemp("success_template")
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


def last_event(cli: Cli) -> int:
    return int(query(cli.db, "SELECT coalesce(max(event_id), 0) FROM events")[0][0])


def events(cli: Cli, event_type: str, **where: str) -> list[dict[str, Any]]:
    sql = "SELECT * FROM events WHERE event_type=?" + "".join(f" AND {k}=?" for k in where)
    return [dict(r) for r in query(cli.db, sql + " ORDER BY event_id", (event_type, *where.values()))]


def spawn(cli: Cli, exe: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([exe, "--db", cli.db, "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cli.cwd)


def finish(p: subprocess.Popen[str], timeout: float = 30) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"{p.returncode}\n{out}\n{err}"
    doc = json.loads(out)
    assert doc["ok"] is True
    return doc["data"]


def assert_still_waiting(p: subprocess.Popen[str]) -> None:
    time.sleep(0.4)
    assert p.poll() is None, "the wait returned before anything happened"


# -- runs, tasks, dependencies ------------------------------------------------------------------
def test_inbox_init_creates_a_wal_database(cli: Cli) -> None:
    data = cli.ok("inbox", "init")
    assert Path(data["db"]).resolve() == Path(cli.db).resolve()
    assert data["journal_mode"] == "wal"
    assert isinstance(data["schema_version"], int) and data["schema_version"] >= 1
    assert query(cli.db, "PRAGMA user_version")[0][0] == data["schema_version"]


def test_run_init_show_and_list(flow: Flow, cli: Cli) -> None:
    run = cli.ok("orch", "run", "init", "--run", "r2", "--goal", "second goal", "--summary", "why")["run"]
    assert (run["run_id"], run["goal"], run["summary"], run["status"]) == ("r2", "second goal", "why", "active")
    assert run["created_at"] and run["updated_at"]
    flow.dep("B", "A")
    shown = cli.ok("orch", "run", "show", "--run", "r1")["run"]
    assert shown["run_id"] == "r1" and shown["goal"] == "ship it"
    assert shown["counts"] == {"ready": 2, "planned": 1} and shown["total_tasks"] == 3
    listed = cli.ok("orch", "run", "list")["runs"]
    assert [r["run_id"] for r in listed] == ["r2", "r1"]  # newest first
    assert listed[1]["counts"] == {"ready": 2, "planned": 1}
    assert listed[0]["counts"] == {}


def test_task_add_records_paths_checks_commands_and_priority(flow: Flow, cli: Cli) -> None:
    t = cli.ok("orch", "task", "add", "--run", "r1", "--task", "api", "--title", "Build the API",
               "--summary", "CRUD routes", "--default-to", "backend", "--path", "src/api/", "--path", "docs",
               "--required-check", "lint", "--check-cmd", "unit=pytest -q", "--priority", "5",
               "--acceptance-json", '{"must": ["routes"]}')["task"]
    assert (t["run_id"], t["task_id"], t["title"], t["summary"], t["default_to"]) == \
        ("r1", "api", "Build the API", "CRUD routes", "backend")
    assert t["status"] == "ready"  # no dependencies: ready at once
    assert t["paths"] == ["src/api", "docs"]
    assert t["required_checks"] == ["lint", "unit"]  # --check-cmd implies --required-check
    assert t["check_cmds"] == {"unit": "pytest -q"}
    assert t["priority"] == 5
    assert t["acceptance"] == {"must": ["routes"]}
    assert len(events(cli, "task_added", task_id="api")) == 1
    assert len(events(cli, "task_ready", task_id="api")) == 1


def test_task_add_with_spec_file_puts_the_spec_in_the_brief(flow: Flow, cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.md"
    spec.write_text("The spec says: use SQLite.\n")
    flow.task("S", "--spec-file", str(spec))
    flow.dispatch("S")
    assert "The spec says: use SQLite." in cli.ok("orch", "brief", "--run", "r1", "--task", "S")["brief"]


def test_dep_add_makes_the_dependant_planned_and_ready_lists_only_ready_tasks(flow: Flow, cli: Cli) -> None:
    flow.task("P", "--priority", "9")
    d = flow.dep("B", "A")
    assert d["dependency"] == {"run_id": "r1", "task_id": "B", "depends_on": "A"}
    assert d["created"] is True and d["task"]["status"] == "planned"
    again = flow.dep("B", "A")
    assert again["created"] is False
    ready = cli.ok("orch", "ready", "--run", "r1")
    assert [t["task_id"] for t in ready["tasks"]] == ["P", "A", "C"]  # higher priority first, then oldest
    assert ready["count"] == 3
    assert len(events(cli, "dep_added")) == 1


def test_dependant_becomes_ready_when_its_dependency_is_done(flow: Flow, cli: Cli) -> None:
    flow.dep("B", "A")
    flow.done(flow.start("A"))
    assert flow.task_status("B")["status"] == "ready"
    assert "B" in [t["task_id"] for t in cli.ok("orch", "ready", "--run", "r1")["tasks"]]
    assert events(cli, "task_ready", task_id="B")[-1]["payload_json"] == '{"unblocked_by":"A"}'


# -- dispatch -----------------------------------------------------------------------------------
def test_dispatch_in_analysis_mode_returns_attempt_thread_and_message(flow: Flow, cli: Cli) -> None:
    d = flow.dispatch("A", "--body", "Look into the schema")
    assert set(d) >= {"task", "attempt", "thread", "message"}
    assert "previous_attempt" not in d
    assert d["task"]["status"] == "dispatched"
    a = d["attempt"]
    assert set(a) >= ATTEMPT_KEYS
    assert (a["attempt_no"], a["assigned_to"], a["execution_mode"]) == (1, "w1", "analysis")
    for k in ("worktree_path", "branch_name", "base_commit", "workspace_status"):
        assert a[k] == "", k  # analysis mode makes no worktree
    t = d["thread"]
    assert t["thread_id"] == a["thread_id"] and t["thread_id"].startswith("thr_")
    assert (t["status"], t["assigned_to"], t["run_id"], t["task_id"]) == ("pending", "w1", "r1", "A")
    m = d["message"]
    assert (m["kind"], m["to_agent"], m["body"]) == ("task", "w1", "Look into the schema")
    assert m["payload"]["execution_mode"] == "analysis" and m["payload"]["attempt_no"] == 1
    assert len(events(cli, "task_dispatched", task_id="A")) == 1


def test_dispatch_to_overrides_default_to(flow: Flow) -> None:
    assert flow.dispatch("A", "--to", "w7")["attempt"]["assigned_to"] == "w7"


def test_dispatch_in_code_mode_makes_branch_and_worktree_at_head(flow: Flow, cli: Cli, repo: Path) -> None:
    base = head(repo)
    a = flow.code("A", repo)["attempt"]
    assert a["execution_mode"] == "code"
    assert a["branch_name"] == "orch/r1/A/a1"
    assert a["base_commit"] == base
    assert a["workspace_status"] == "created"
    wt = Path(a["worktree_path"])
    assert wt == repo / ".orch" / "worktrees" / "r1" / "A" / "a1"
    assert (wt / "README.md").read_text() == "scratch repo\n"
    assert head(wt) == base
    assert "orch/r1/A/a1" in branches(repo)
    assert str(wt) in worktree_paths(repo)
    assert git(repo, "status", "--porcelain") == ""  # the worktree root does not dirty the checkout


def test_second_code_dispatch_in_same_repo_needs_no_base_ref(flow: Flow, repo: Path) -> None:
    flow.code("A", repo)
    b = flow.code("B", repo)["attempt"]  # .orch/ must not make the repository look dirty
    assert b["branch_name"] == "orch/r1/B/a1" and Path(b["worktree_path"]).is_dir()


def test_code_dispatch_uses_current_directory_and_workspace_root(flow: Flow, cli: Cli, repo: Path,
                                                                 tmp_path: Path) -> None:
    in_repo = Cli(cli.db, repo)
    root = tmp_path / "wts"
    a = in_repo.ok("orch", "dispatch", "--run", "r1", "--task", "A", "--execution-mode", "code",
                   "--workspace-root", str(root))["attempt"]
    assert Path(a["worktree_path"]) == root / "r1" / "A" / "a1" and (root / "r1" / "A" / "a1" / "README.md").exists()


def test_code_dispatch_in_dirty_repo_with_base_ref_uses_that_commit(flow: Flow, repo: Path) -> None:
    first = head(repo)
    (repo / "two.txt").write_text("2\n")
    git(repo, "add", "two.txt")
    git(repo, "commit", "-q", "-m", "two")
    (repo / "README.md").write_text("dirty\n")
    a = flow.code("A", repo, "--base-ref", first)["attempt"]
    assert a["base_commit"] == first
    assert head(Path(a["worktree_path"])) == first
    assert not (Path(a["worktree_path"]) / "two.txt").exists()


# -- the worker side ----------------------------------------------------------------------------
def test_send_starts_a_pending_thread_and_send_to_thread_adds_a_message(flow: Flow, cli: Cli) -> None:
    d = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "Look at logs", "--body", "b",
               "--run", "r1", "--priority", "high", "--payload-json", '{"n": 1}')
    t = d["thread"]
    assert d["created"] is True
    assert (t["status"], t["created_by"], t["assigned_to"], t["priority"], t["subject"], t["run_id"]) == \
        ("pending", "leader", "w1", "high", "Look at logs", "r1")
    assert (d["message"]["kind"], d["message"]["summary"], d["message"]["body"]) == ("task", "Look at logs", "b")
    assert d["message"]["payload"] == {"n": 1}
    more = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--thread", t["thread_id"],
                  "--summary", "also this", "--kind", "control")
    assert more["created"] is False and more["thread"]["thread_id"] == t["thread_id"]
    assert more["message"]["kind"] == "control"
    assert [m["summary"] for m in flow.show(t["thread_id"])["messages"]] == ["Look at logs", "also this"]


def test_send_with_new_thread_id_creates_that_thread(cli: Cli) -> None:
    cli.ok("inbox", "init")
    d = cli.ok("inbox", "--agent", "leader", "send", "--to", "w1", "--subject", "s", "--thread", "my-thread.1")
    assert d["created"] is True and d["thread"]["thread_id"] == "my-thread.1"
    assert d["thread"]["created_by"] == "leader"  # --from falls back to the global --agent


def test_body_file_and_stdin_are_read(cli: Cli, tmp_path: Path) -> None:
    cli.ok("inbox", "init")
    f = tmp_path / "body.md"
    f.write_text("line one\nline two\n")
    d = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s", "--body-file", str(f))
    assert d["message"]["body"] == "line one\nline two\n"
    p = cli.inbox("send", "--from", "leader", "--to", "w1", "--subject", "s", "--body-file", "/dev/stdin",
                  input="from stdin\n")
    assert p.returncode == 0 and json.loads(p.stdout)["data"]["message"]["body"] == "from stdin\n"


def test_fetch_lists_assigned_threads_newest_first_with_status_filter(flow: Flow, cli: Cli) -> None:
    ids = [cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", f"s{i}")["thread"]["thread_id"]
           for i in range(3)]
    cli.ok("inbox", "send", "--from", "leader", "--to", "w2", "--subject", "other")
    flow.claim(ids[0])
    got = cli.ok("inbox", "fetch", "--agent", "w1")
    assert got["count"] == 3 and [t["thread_id"] for t in got["threads"]] == [ids[0], ids[2], ids[1]]
    pending = cli.ok("inbox", "fetch", "--agent", "w1", "--status", "pending")
    assert [t["thread_id"] for t in pending["threads"]] == [ids[2], ids[1]]
    assert cli.ok("inbox", "fetch", "--agent", "w1", "--status", "pending,claimed", "--limit", "1")["count"] == 1


def test_show_mark_read_advances_the_cursor_that_fetch_unread_uses(flow: Flow, cli: Cli) -> None:
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s")["thread"]["thread_id"]
    assert [t["thread_id"] for t in cli.ok("inbox", "fetch", "--agent", "w1", "--unread")["threads"]] == [tid]
    before = flow.show(tid, "--agent", "w1")
    assert before["read_cursor"] == 0
    shown = flow.show(tid, "--agent", "w1", "--mark-read")
    assert shown["read_cursor"] == shown["messages"][-1]["message_id"]
    assert cli.inbox("fetch", "--agent", "w1", "--unread").returncode == 10
    cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--thread", tid, "--summary", "one more")
    assert cli.ok("inbox", "fetch", "--agent", "w1", "--unread")["count"] == 1


def test_claim_takes_a_lease_and_reclaim_by_owner_is_idempotent(flow: Flow, cli: Cli) -> None:
    tid = flow.dispatch("A")["attempt"]["thread_id"]
    c = flow.claim(tid, "w1", "--lease-seconds", "120")
    t = c["thread"]
    assert (t["status"], t["lease_owner"], t["assigned_to"]) == ("claimed", "w1", "w1")
    assert c["already_claimed"] is False and c["lease_expires_at"] == t["lease_expires_at"] != ""
    again = flow.claim(tid, "w1")
    assert again["already_claimed"] is True and again["thread"]["status"] == "claimed"
    assert len(events(cli, "thread_claim", thread_id=tid)) == 1
    assert flow.task_status("A")["status"] == "running"
    assert [m["summary"] for m in flow.show(tid)["messages"] if m["kind"] == "event"] == ["thread claimed"]


def test_renew_extends_the_lease_without_changing_status(flow: Flow, cli: Cli) -> None:
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s")["thread"]["thread_id"]
    c = flow.claim(tid, "w1", "--lease-seconds", "60")
    r = cli.ok("inbox", "renew", "--agent", "w1", "--thread", tid, "--lease-seconds", "3600")
    assert r["thread"]["status"] == "claimed"
    assert r["lease_expires_at"] > c["lease_expires_at"]
    renewed = [m for m in flow.show(tid)["messages"] if m["summary"] == "lease renewed"]
    assert len(renewed) == 1 and renewed[0]["payload"] == {"lease_seconds": 3600}
    assert len(events(cli, "lease_renewed", thread_id=tid)) == 1


def test_update_in_progress_and_blocked_fold_into_the_task(flow: Flow, cli: Cli) -> None:
    tid = flow.start("A")
    u = flow.update(tid, "in_progress", "working", "--body", "details", "--payload-json", '{"pct": 10}')
    assert u["thread"]["status"] == "in_progress"
    assert (u["message"]["kind"], u["message"]["body"], u["message"]["payload"]) == ("progress", "details", {"pct": 10})
    assert flow.task_status("A")["status"] == "running"
    b = flow.update(tid, "blocked", "Which DB?", "--payload-json", '{"question": "sqlite or pg?"}')
    assert b["thread"]["status"] == "blocked"
    assert (b["message"]["kind"], b["message"]["to_agent"]) == ("question", "leader")  # to the creator
    st = flow.task_status("A")
    assert st["status"] == "blocked"
    assert st["blocked_question"]["kind"] == "question" and st["blocked_question"]["summary"] == "Which DB?"
    assert len(events(cli, "task_blocked", task_id="A")) == 1


def test_reply_answers_a_blocked_thread_and_the_worker_resumes_it(flow: Flow, cli: Cli) -> None:
    # the contract (orch-contract.md 3.3): a reply adds a message; the worker resumes with update in_progress
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s")["thread"]["thread_id"]
    flow.claim(tid)
    flow.update(tid, "blocked", "question?")
    r = cli.ok("inbox", "reply", "--from", "leader", "--thread", tid, "--summary", "use sqlite", "--body", "why")
    assert r["thread"]["status"] == "blocked"
    assert (r["message"]["kind"], r["message"]["to_agent"], r["message"]["from_agent"]) == ("answer", "w1", "leader")
    ctl = cli.ok("inbox", "reply", "--from", "leader", "--thread", tid, "--summary", "hurry", "--kind", "control")
    assert ctl["message"]["kind"] == "control" and ctl["thread"]["status"] == "blocked"
    assert flow.update(tid, "in_progress", "resuming")["thread"]["status"] == "in_progress"


@pytest.mark.parametrize("verb,status,task_status", [("done", "done", "done"), ("fail", "failed", "failed")])
def test_done_and_fail_write_a_result_release_the_lease_and_finish_the_task(
        flow: Flow, cli: Cli, verb: str, status: str, task_status: str) -> None:
    tid = flow.start("A")
    d = cli.ok("inbox", verb, "--agent", "w1", "--thread", tid, "--summary", "outcome", "--body", "all of it",
               "--payload-json", '{"tests": 3}')
    t = d["thread"]
    assert (t["status"], t["lease_owner"], t["lease_expires_at"]) == (status, "", "")
    m = d["message"]
    assert (m["kind"], m["to_agent"], m["summary"], m["payload"]) == ("result", "leader", "outcome", {"tests": 3})
    st = flow.task_status("A")
    assert st["status"] == task_status
    assert st["latest_attempt"]["status"] == status
    assert st["latest_attempt"]["end_reason"] == ("succeeded" if verb == "done" else "failed")
    assert (st["latest_message"]["kind"], st["latest_message"]["summary"]) == ("result", "outcome")
    assert len(events(cli, f"task_{task_status}", task_id="A")) == 1


def test_inbox_cancel_cancels_the_thread_with_a_control_message(flow: Flow, cli: Cli) -> None:
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s")["thread"]["thread_id"]
    d = cli.ok("inbox", "cancel", "--agent", "leader", "--thread", tid, "--reason", "not needed")
    assert d["thread"]["status"] == "cancelled"
    assert d["message"]["kind"] == "control" and "not needed" in d["message"]["summary"]
    assert d["message"]["payload"] == {"action": "cancel"}


def test_list_filters_by_run_and_status(flow: Flow, cli: Cli) -> None:
    ta = flow.dispatch("A")["attempt"]["thread_id"]
    tb = flow.start("B")
    loose = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "no run")["thread"]["thread_id"]
    everything = cli.ok("inbox", "list")
    assert everything["count"] == 3
    assert {t["thread_id"] for t in cli.ok("inbox", "list", "--run", "r1")["threads"]} == {ta, tb}
    assert [t["thread_id"] for t in cli.ok("inbox", "list", "--run", "r1", "--status", "claimed")["threads"]] == [tb]
    assert {t["thread_id"] for t in cli.ok("inbox", "list", "--status", "pending")["threads"]} == {ta, loose}


def test_artifacts_on_send_update_and_done_are_returned_by_show(flow: Flow, cli: Cli) -> None:
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s", "--artifact", "spec.md",
                 "--artifact", "data.csv", "--artifact-kind", "input",
                 "--artifact-metadata-json", '{"rows": 3}')["thread"]["thread_id"]
    flow.claim(tid)
    up = flow.update(tid, "in_progress", "halfway", "--artifact", "logs/run.log", "--artifact-kind", "log")
    assert up["message"]["artifacts"] == [{"path": "logs/run.log", "kind": "log", "metadata": {}}]
    flow.done(tid, "--artifact", "out/report.html", "--artifact-kind", "report",
              "--artifact-metadata-json", '{"pages": 2}')
    by_kind = {m["kind"]: m["artifacts"] for m in flow.show(tid)["messages"]}
    assert by_kind["task"] == [{"path": "spec.md", "kind": "input", "metadata": {"rows": 3}},
                               {"path": "data.csv", "kind": "input", "metadata": {"rows": 3}}]
    assert by_kind["progress"] == [{"path": "logs/run.log", "kind": "log", "metadata": {}}]
    assert by_kind["result"] == [{"path": "out/report.html", "kind": "report", "metadata": {"pages": 2}}]


def test_watch_wakes_on_new_work_for_the_agent(flow: Flow, cli: Cli) -> None:
    cursor = last_event(cli)
    p = spawn(cli, INBOX, "watch", "--agent", "w2", "--after-event", str(cursor), "--timeout-seconds", "30")
    cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "not for w2")
    assert_still_waiting(p)
    sent = cli.ok("inbox", "send", "--from", "leader", "--to", "w2", "--subject", "for w2")
    d = finish(p)
    assert d["woke"] is True
    assert d["thread"]["thread_id"] == sent["thread"]["thread_id"] and d["thread"]["assigned_to"] == "w2"
    assert d["message"]["summary"] == "for w2"
    assert d["event"]["thread_id"] == sent["thread"]["thread_id"]
    assert d["next_event_id"] == d["event"]["event_id"] > cursor


def test_wait_reply_wakes_with_the_answer_and_advances_the_read_cursor(flow: Flow, cli: Cli) -> None:
    tid = flow.start("A")
    flow.update(tid, "blocked", "Which port?")
    p = spawn(cli, INBOX, "wait-reply", "--agent", "w1", "--thread", tid, "--timeout-seconds", "30")
    assert_still_waiting(p)
    ans = cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--summary", "8080", "--body", "use 8080")
    d = finish(p)
    assert d["woke"] is True
    assert (d["message"]["kind"], d["message"]["summary"], d["message"]["body"]) == ("answer", "8080", "use 8080")
    assert d["message"]["message_id"] == ans["message"]["message_id"]
    assert d["next_event_id"] >= 1
    assert flow.show(tid, "--agent", "w1")["read_cursor"] == ans["message"]["message_id"]


def test_wait_reply_with_after_message_returns_an_earlier_reply_at_once(flow: Flow, cli: Cli) -> None:
    tid = cli.ok("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s")["thread"]["thread_id"]
    first = cli.ok("inbox", "reply", "--from", "leader", "--thread", tid, "--summary", "first", "--kind", "control")
    cli.ok("inbox", "reply", "--from", "leader", "--thread", tid, "--summary", "second", "--kind", "control")
    d = cli.ok("inbox", "wait-reply", "--thread", tid, "--after-message", str(first["message"]["message_id"]),
               "--timeout-seconds", "5")
    assert d["message"]["summary"] == "second"


# -- the leader side ----------------------------------------------------------------------------
def test_brief_by_task_and_from_saved_dispatch_json_agree(flow: Flow, cli: Cli, tmp_path: Path) -> None:
    flow.task("S", "--path", "src/a", "--required-check", "lint")
    p = cli.orch("dispatch", "--run", "r1", "--task", "S", "--execution-mode", "analysis", "--body", "Do A well")
    assert p.returncode == 0
    saved = tmp_path / "dispatch.json"
    saved.write_text(p.stdout)
    tid = json.loads(p.stdout)["data"]["attempt"]["thread_id"]
    brief = cli.ok("orch", "brief", "--run", "r1", "--task", "S")["brief"]
    for needle in (tid, "run_id: r1", "task_id: S", "attempt_no: 1", "assigned_to: w1",
                   "execution_mode: analysis", "Do A well", "src/a", "lint", str(Path(cli.db).resolve())):
        assert needle in brief, needle
    assert cli.ok("orch", "brief", "--dispatch-json", str(saved))["brief"] == brief


def test_status_reports_each_task_with_latest_attempt_message_and_question(flow: Flow, cli: Cli) -> None:
    flow.dep("C", "B")
    ta = flow.start("A")
    flow.update(ta, "blocked", "Need a decision", "--body", "details")
    s = flow.status()
    assert s["run"]["run_id"] == "r1" and s["run"]["status"] == "blocked"
    by = {t["task_id"]: t for t in s["tasks"]}
    assert set(by) == {"A", "B", "C"}
    for t in s["tasks"]:
        assert {"status", "latest_attempt", "latest_message", "blocked_question"} <= set(t)
    assert by["A"]["status"] == "blocked"
    assert by["A"]["latest_attempt"]["thread_id"] == ta and by["A"]["latest_attempt"]["status"] == "blocked"
    assert (by["A"]["latest_message"]["kind"], by["A"]["latest_message"]["summary"]) == ("question", "Need a decision")
    assert (by["A"]["blocked_question"]["kind"], by["A"]["blocked_question"]["summary"]) == \
        ("question", "Need a decision")
    assert by["B"]["status"] == "ready" and by["B"]["latest_attempt"] is None and by["B"]["blocked_question"] is None
    assert by["C"]["status"] == "planned" and by["C"]["depends_on"] == ["B"]


def test_blocked_lists_questions_with_their_thread(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.start("B")
    flow.update(ta, "blocked", "Which port?", "--payload-json", '{"options": [80, 8080]}')
    d = cli.ok("orch", "blocked", "--run", "r1")
    assert d["count"] == 1
    b = d["tasks"][0]
    assert (b["task_id"], b["thread_id"], b["attempt_no"], b["asked_by"]) == ("A", ta, 1, "w1")
    assert (b["question"]["kind"], b["question"]["summary"]) == ("question", "Which port?")
    assert b["question"]["payload"] == {"options": [80, 8080]}
    assert b["age_seconds"] >= 0


def test_answer_with_body_resumes_the_blocked_task(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "Which port?")
    d = cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--summary", "8080", "--body", "8080, always")
    # the answer goes to the worker; the thread stays blocked until the worker resumes it
    assert d["thread"]["thread_id"] == ta and d["thread"]["status"] == "blocked"
    assert (d["message"]["kind"], d["message"]["to_agent"], d["message"]["body"]) == ("answer", "w1", "8080, always")
    assert d["task"]["status"] == "blocked"
    assert len(events(cli, "task_answered", task_id="A")) == 1
    b = cli.ok("orch", "blocked", "--run", "r1")
    assert (b["count"], b["unanswered"], b["tasks"][0]["answered"]) == (1, 0, True)
    assert b["tasks"][0]["answer"]["message_id"] == d["message"]["message_id"]
    flow.update(ta, "in_progress", "resuming with 8080")
    assert flow.task_status("A")["status"] == "running"
    assert cli.ok("orch", "blocked", "--run", "r1")["count"] == 0


def test_answer_with_only_a_payload_is_accepted(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "Pick one")
    d = cli.ok("orch", "answer", "--run", "r1", "--task", "A", "--payload-json", '{"choice": "b"}')
    assert d["message"]["payload"] == {"choice": "b"} and d["message"]["summary"]
    assert d["task"]["status"] == "blocked"  # until the worker resumes
    got = cli.ok("inbox", "wait-reply", "--thread", ta, "--agent", "w1", "--timeout-seconds", "5")
    assert got["message"]["payload"] == {"choice": "b"}


def test_retry_of_failed_task_gives_attempt_2_with_previous_attempt(flow: Flow, cli: Cli) -> None:
    t1 = flow.start("A")
    flow.fail(t1, summary="tests broke")
    d = cli.ok("orch", "retry", "--run", "r1", "--task", "A")
    assert d["task"]["status"] == "dispatched"
    assert d["attempt"]["attempt_no"] == 2 and d["attempt"]["thread_id"] != t1
    assert d["attempt"]["assigned_to"] == "w1"  # the previous attempt's worker by default
    assert d["previous_attempt"]["attempt_no"] == 1 and d["previous_attempt"]["thread_id"] == t1
    assert d["previous_attempt"]["end_reason"] == "failed"
    assert "tests broke" in d["message"]["body"]  # the new instruction says what went wrong
    assert d["message"]["payload"]["previous_attempt"] == {"attempt_no": 1, "end_reason": "failed"}
    assert "attempt 1 by w1: failed" in cli.ok("orch", "brief", "--run", "r1", "--task", "A")["brief"]


def test_retry_in_code_mode_makes_a_fresh_worktree(flow: Flow, cli: Cli, repo: Path) -> None:
    a1 = flow.code("A", repo)["attempt"]
    flow.claim(a1["thread_id"])
    flow.fail(a1["thread_id"])
    d = cli.ok("orch", "retry", "--run", "r1", "--task", "A", "--to", "w2", "--body", "try differently")
    a2 = d["attempt"]
    assert (a2["attempt_no"], a2["assigned_to"], a2["execution_mode"]) == (2, "w2", "code")
    assert a2["worktree_path"] != a1["worktree_path"] and Path(a2["worktree_path"]).is_dir()
    assert a2["branch_name"] == "orch/r1/A/a2" and a2["base_commit"] == a1["base_commit"]
    assert d["previous_attempt"]["worktree_path"] == a1["worktree_path"]
    assert {"orch/r1/A/a1", "orch/r1/A/a2"} <= set(branches(repo))


def test_reassign_cancels_the_old_thread_and_dispatches_to_the_new_agent(flow: Flow, cli: Cli) -> None:
    t1 = flow.start("A")
    flow.update(t1, "in_progress", "slow going")
    d = cli.ok("orch", "reassign", "--run", "r1", "--task", "A", "--to", "w2", "--body", "take over")
    assert d["task"]["status"] == "dispatched"
    assert (d["attempt"]["attempt_no"], d["attempt"]["assigned_to"]) == (2, "w2")
    assert d["attempt"]["thread_id"] != t1 and d["thread"]["assigned_to"] == "w2"
    assert d["previous_attempt"]["attempt_no"] == 1
    old = flow.show(t1)
    assert old["thread"]["status"] == "cancelled" and old["thread"]["lease_owner"] == ""
    assert old["messages"][-1]["kind"] == "control"
    # The old worker's lease is gone: it cannot finish the cancelled thread.
    assert cli.inbox("done", "--agent", "w1", "--thread", t1, "--summary", "late").returncode == 30
    assert "attempt 1 by w1: reassigned" in cli.ok("orch", "brief", "--run", "r1", "--task", "A")["brief"]
    assert flow.task_status("A")["latest_attempt"]["assigned_to"] == "w2"


def test_reassign_reports_how_the_previous_attempt_ended(flow: Flow, cli: Cli) -> None:
    t1 = flow.start("A")
    d = cli.ok("orch", "reassign", "--run", "r1", "--task", "A", "--to", "w2")
    assert (d["previous_attempt"]["status"], d["previous_attempt"]["end_reason"]) == ("cancelled", "reassigned")
    assert d["previous_attempt"]["thread_id"] == t1


def test_cancel_task_cancels_its_thread_and_leaves_other_tasks(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    d = cli.ok("orch", "cancel", "--run", "r1", "--task", "A", "--reason", "scope cut")
    assert d["cancelled_tasks"] == ["A"] and d["task"]["status"] == "cancelled"
    assert d["run"]["status"] == "active"
    assert flow.show(ta)["thread"]["status"] == "cancelled"
    st = flow.task_status("A")
    assert (st["latest_attempt"]["status"], st["latest_attempt"]["end_reason"]) == ("cancelled", "cancelled")
    assert flow.task_status("B")["status"] == "ready"
    assert len(events(cli, "task_cancelled", task_id="A")) == 1


def test_cancel_run_cancels_every_unfinished_task(flow: Flow, cli: Cli) -> None:
    flow.done(flow.start("A"))
    tb = flow.start("B")
    d = cli.ok("orch", "cancel", "--run", "r1")
    assert sorted(d["cancelled_tasks"]) == ["B", "C"]
    assert d["run"]["status"] == "cancelled"
    assert flow.show(tb)["thread"]["status"] == "cancelled"
    by = {t["task_id"]: t["status"] for t in flow.status()["tasks"]}
    assert by == {"A": "done", "B": "cancelled", "C": "cancelled"}
    assert cli.ok("orch", "run", "show", "--run", "r1")["run"]["status"] == "cancelled"


def test_run_status_follows_its_tasks_failed_then_done(flow: Flow, cli: Cli) -> None:
    cli.ok("orch", "run", "init", "--run", "r2", "--goal", "small")
    two = Flow(cli, "r2")
    two.task("X")
    two.task("Y")
    two.done(two.start("X"))
    two.fail(two.start("Y"))
    assert cli.ok("orch", "run", "show", "--run", "r2")["run"]["status"] == "failed"  # nothing live is left
    cli.ok("orch", "cancel", "--run", "r2", "--task", "Y")
    run = cli.ok("orch", "run", "show", "--run", "r2")["run"]
    assert run["status"] == "done" and run["counts"] == {"done": 1, "cancelled": 1}
    assert len(events(cli, "run_done", run_id="r2")) == 1
    assert cli.ok("orch", "run", "show", "--run", "r1")["run"]["status"] == "active"


def test_worker_waiting_for_a_reply_wakes_when_its_task_is_cancelled(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "blocked", "Should I?")
    p = spawn(cli, INBOX, "wait-reply", "--agent", "w1", "--thread", ta, "--timeout-seconds", "30")
    assert_still_waiting(p)
    cli.ok("orch", "cancel", "--run", "r1", "--task", "A", "--reason", "dropped")
    d = finish(p)
    assert d["message"]["kind"] == "control" and d["message"]["payload"] == {"action": "cancel"}
    assert "dropped" in d["message"]["summary"]


def test_cleanup_removes_the_worktree_directory_and_keeps_the_branch(flow: Flow, cli: Cli, repo: Path) -> None:
    a = flow.code("A", repo)["attempt"]
    flow.claim(a["thread_id"])
    (Path(a["worktree_path"]) / "new.txt").write_text("work\n")
    git(Path(a["worktree_path"]), "add", "new.txt")
    git(Path(a["worktree_path"]), "commit", "-q", "-m", "work")
    flow.done(a["thread_id"])
    d = cli.ok("orch", "cleanup", "--run", "r1", "--task", "A")
    assert d["count"] == 1 and d["skipped"] == []
    c = d["cleaned"][0]
    assert (c["task_id"], c["attempt_no"], c["worktree_path"], c["branch_name"], c["workspace_status"]) == \
        ("A", 1, a["worktree_path"], "orch/r1/A/a1", "cleaned")
    assert not Path(a["worktree_path"]).exists()
    assert a["worktree_path"] not in worktree_paths(repo)
    assert "orch/r1/A/a1" in branches(repo)
    assert "new.txt" in git(repo, "ls-tree", "--name-only", "orch/r1/A/a1")  # the work is kept on the branch
    assert flow.task_status("A")["latest_attempt"]["workspace_status"] == "cleaned"
    assert cli.orch("cleanup", "--run", "r1", "--task", "A").returncode == 10  # nothing left to clean


def test_cleanup_all_completed_skips_live_attempts(flow: Flow, cli: Cli, repo: Path) -> None:
    a = flow.code("A", repo)["attempt"]
    flow.claim(a["thread_id"])
    flow.fail(a["thread_id"])
    a2 = cli.ok("orch", "retry", "--run", "r1", "--task", "A")["attempt"]
    b = flow.code("B", repo)["attempt"]
    d = cli.ok("orch", "cleanup", "--run", "r1", "--all-completed")
    assert [c["worktree_path"] for c in d["cleaned"]] == [a["worktree_path"]]
    assert not Path(a["worktree_path"]).exists()
    assert Path(a2["worktree_path"]).is_dir() and Path(b["worktree_path"]).is_dir()
    live = cli.ok("orch", "cleanup", "--run", "r1", "--task", "B")
    assert live["count"] == 0 and live["skipped"][0]["worktree_path"] == b["worktree_path"]
    assert Path(b["worktree_path"]).is_dir()
    assert {"orch/r1/A/a1", "orch/r1/A/a2", "orch/r1/B/a1"} <= set(branches(repo))


def test_reconcile_repairs_a_task_that_lags_its_thread(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    flow.update(ta, "in_progress", "busy")
    cli.ok("orch", "reconcile", "--run", "r1")  # reports the changes so far (test_contract.py holds them)
    clean = cli.ok("orch", "reconcile", "--run", "r1")
    assert clean["updated_tasks"] == [] and clean["run"]["run_id"] == "r1"
    execute(cli.db, "UPDATE tasks SET status='dispatched' WHERE run_id='r1' AND task_id='A'")  # simulate a lag
    d = cli.ok("orch", "reconcile", "--run", "r1")
    assert d["updated_tasks"] == [{"task_id": "A", "from": "dispatched", "to": "running"}]
    assert d["run"]["status"] == "active"
    assert cli.ok("orch", "reconcile", "--run", "r1")["updated_tasks"] == []
    execute(cli.db, "UPDATE tasks SET status='dispatched' WHERE run_id='r1' AND task_id='A'")
    s = flow.status()  # status reconciles first
    assert s["updated_tasks"] and {t["task_id"]: t["status"] for t in s["tasks"]}["A"] == "running"


def test_orch_wait_wakes_on_task_done(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    cursor = last_event(cli)
    p = spawn(cli, ORCH, "wait", "--run", "r1", "--for", "task_done", "--after-event", str(cursor),
              "--timeout-seconds", "30")
    flow.update(ta, "in_progress", "not done yet")
    assert_still_waiting(p)
    flow.done(ta)
    d = finish(p)
    assert d["woke"] is True
    assert [e["event_type"] for e in d["events"]] == ["task_done"]
    assert d["event"]["task_id"] == "A" and d["next_event_id"] == d["events"][-1]["event_id"] > cursor


# -- verification gates -------------------------------------------------------------------------
def test_task_with_required_check_goes_to_verifying_and_passing_checks_make_it_done(flow: Flow, cli: Cli) -> None:
    flow.task("V", "--required-check", "lint", "--check-cmd", "unit=pytest -q")
    flow.dep("B", "V")
    flow.done(flow.start("V"))
    assert flow.task_status("V")["status"] == "verifying"
    assert flow.task_status("B")["status"] == "planned"  # not released until verified
    v = cli.ok("orch", "verify", "status", "--run", "r1", "--task", "V")
    assert v["task_status"] == "verifying" and v["check_cmds"] == {"unit": "pytest -q"}
    assert v["gate"]["status"] == "pending" and v["gate"]["required"] == ["lint", "unit"]
    assert [c["status"] for c in v["gate"]["checks"]] == ["pending", "pending"]
    r = cli.ok("orch", "verify", "record", "--run", "r1", "--task", "V", "--check", "lint", "--status", "passed",
               "--summary", "clean")
    assert r["task_status"] == "verifying" and r["gate"]["status"] == "pending"
    r = cli.ok("orch", "verify", "record", "--run", "r1", "--task", "V", "--check", "unit", "--status", "passed")
    assert r["task_status"] == "done" and r["gate"]["status"] == "passed"
    assert flow.task_status("B")["status"] == "ready"
    assert len(events(cli, "task_verification_recorded", task_id="V")) == 2
    assert len(events(cli, "task_verifying", task_id="V")) == 1


def test_failed_check_fails_the_task_with_end_reason_check_failed(flow: Flow, cli: Cli, tmp_path: Path) -> None:
    flow.task("V", "--required-check", "lint")
    flow.done(flow.start("V"))
    out = tmp_path / "lint.txt"
    out.write_text("E501 line too long\n")
    r = cli.ok("orch", "verify", "record", "--run", "r1", "--task", "V", "--check", "lint", "--status", "failed",
               "--summary", "2 errors", "--output-file", str(out))
    assert r["task_status"] == "failed" and r["gate"]["status"] == "failed"
    assert r["gate"]["checks"] == [{"name": "lint", "status": "failed", "summary": "2 errors"}]
    st = flow.task_status("V")
    assert st["status"] == "failed" and st["latest_attempt"]["end_reason"] == "check_failed"
    retry = cli.ok("orch", "retry", "--run", "r1", "--task", "V")
    assert "E501 line too long" in retry["message"]["body"]  # the check output reaches the next attempt
    assert retry["previous_attempt"]["end_reason"] == "check_failed"


# -- readable output: worker text is data, never terminal control -------------------------------
HOSTILE = "\x1b[5mblink\x1b[0m [bold]markup[/bold] \x1b]8;;http://x\x07link\x1b]8;;\x07 end"


def test_text_output_strips_escapes_and_prints_markup_literally(flow: Flow, cli: Cli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    ta = flow.start("A")
    flow.update(ta, "blocked", HOSTILE, "--body", "body: " + HOSTILE)
    # Stored as given: the JSON view has every byte.
    q = flow.show(ta)["messages"][-1]
    assert q["summary"] == HOSTILE and q["body"] == "body: " + HOSTILE
    outputs = {
        "orch status": cli.orch("status", "--run", "r1", json_out=False),
        "orch blocked": cli.orch("blocked", "--run", "r1", json_out=False),
        "inbox show": cli.inbox("show", "--thread", ta, json_out=False),
    }
    for name, p in outputs.items():
        assert p.returncode == 0, (name, p.stderr)
        assert "\x1b" not in p.stdout and "\x07" not in p.stdout, name
        assert "\x9b" not in p.stdout and "\x9d" not in p.stdout, name
        assert "[bold]markup[/bold]" in p.stdout, (name, p.stdout)
        assert "blink" in p.stdout and "link" in p.stdout, name
    assert "body: blink" in outputs["inbox show"].stdout
    assert "body: blink" in outputs["orch blocked"].stdout


def test_text_output_of_every_read_command_is_not_json(flow: Flow, cli: Cli) -> None:
    ta = flow.start("A")
    for exe, args in ((ORCH, ("run", "list")), (ORCH, ("run", "show", "--run", "r1")),
                      (ORCH, ("ready", "--run", "r1")), (INBOX, ("list",)),
                      (INBOX, ("fetch", "--agent", "w1"))):
        p = cli.run(exe, *args, json_out=False)
        assert p.returncode == 0 and p.stdout.strip(), args
        assert not p.stdout.lstrip().startswith("{"), args
    assert ta in cli.inbox("list", json_out=False).stdout


def test_verify_status_text_of_task_with_required_checks(flow: Flow, cli: Cli) -> None:
    flow.task("V", "--required-check", "lint")
    p = cli.orch("verify", "status", "--run", "r1", "--task", "V", json_out=False)
    assert p.returncode == 0, p.stderr
    assert "lint" in p.stdout and "pending" in p.stdout


def test_verify_status_text_of_task_without_checks(flow: Flow, cli: Cli) -> None:
    p = cli.orch("verify", "status", "--run", "r1", "--task", "A", json_out=False)
    assert p.returncode == 0, p.stderr
    assert "none" in p.stdout and p.stderr == ""
