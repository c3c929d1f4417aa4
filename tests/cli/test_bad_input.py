"""Every documented error of orch and inbox, through the real executables: the code, the exit
status, a clear message, no traceback, and the database left exactly as it was.

One prepared database (a run with tasks in every interesting state) is built once per module
through the CLIs and copied into each test, so each test starts from the same rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from cli_flow import (INBOX, ORCH, Cli, Flow, branches, copy_db, db_snapshot, fails_unchanged, git_env, migrate,
                      worktree_paths)

# -- the prepared world -------------------------------------------------------------------------
# r1: A dispatched (analysis) and claimed by w1; B planned (depends on A); C ready;
#     D dispatched, never claimed; E dispatched, claimed by w1 and done.


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bad_input_template")
    cli = Cli(str(base / "coord.db"), base)
    f = Flow(cli)
    f.init()
    for t in "ABCDE":
        f.task(t)
    f.dep("B", "A")
    thread_a = f.start("A")
    thread_d = f.dispatch("D")["attempt"]["thread_id"]
    thread_e = f.start("E")
    f.done(thread_e)
    return {"db": cli.db, "A": thread_a, "D": thread_d, "E": thread_e}


@pytest.fixture
def world(template: dict[str, Any], cli: Cli) -> dict[str, Any]:
    copy_db(template["db"], cli.db)
    migrate(cli.db)  # the schema may have moved on since the template was made
    return template


def fill(args: tuple[str, ...], world: dict[str, Any]) -> list[str]:
    """Substitute {A}, {D}, {E} (thread ids) in argument templates."""
    out = []
    for a in args:
        for key in ("A", "D", "E"):
            a = a.replace("{%s}" % key, world[key])
        out.append(a)
    return out


# -- dependencies -------------------------------------------------------------------------------
def test_dependency_cycle_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    # B already depends on A; A -> B closes the loop.
    err = fails_unchanged(cli, "orch", "dep", "add", "--run", "r1", "--task", "A", "--depends-on", "B",
                          code="invalid_input", exit_code=30)
    assert "cycle" in err["message"]


def test_longer_dependency_cycle_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    cli.ok("orch", "dep", "add", "--run", "r1", "--task", "C", "--depends-on", "B")  # C -> B -> A
    err = fails_unchanged(cli, "orch", "dep", "add", "--run", "r1", "--task", "A", "--depends-on", "C",
                          code="invalid_input", exit_code=30)
    assert "cycle" in err["message"]


def test_self_dependency_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "dep", "add", "--run", "r1", "--task", "C", "--depends-on", "C",
                          code="invalid_input", exit_code=30)
    assert "itself" in err["message"]


# -- unknown run, task, thread ------------------------------------------------------------------
UNKNOWN_RUN = {
    "run show": ("orch", "run", "show", "--run", "nope"),
    "task add": ("orch", "task", "add", "--run", "nope", "--task", "T", "--title", "t"),
    "dep add": ("orch", "dep", "add", "--run", "nope", "--task", "B", "--depends-on", "A"),
    "ready": ("orch", "ready", "--run", "nope"),
    "dispatch": ("orch", "dispatch", "--run", "nope", "--task", "C", "--execution-mode", "analysis"),
    "status": ("orch", "status", "--run", "nope"),
    "reconcile": ("orch", "reconcile", "--run", "nope"),
    "blocked": ("orch", "blocked", "--run", "nope"),
    "wait": ("orch", "wait", "--run", "nope", "--timeout-seconds", "0.2"),
    "cancel": ("orch", "cancel", "--run", "nope"),
    "cleanup": ("orch", "cleanup", "--run", "nope", "--all-completed"),
    "brief": ("orch", "brief", "--run", "nope", "--task", "A"),
}


@pytest.mark.parametrize("args", list(UNKNOWN_RUN.values()), ids=list(UNKNOWN_RUN))
def test_unknown_run_is_not_found(cli: Cli, world: dict[str, Any], args: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, args[0], *args[1:], code="not_found", exit_code=40)
    assert "nope" in err["message"]


UNKNOWN_TASK = {
    "dep add task": ("orch", "dep", "add", "--run", "r1", "--task", "nope", "--depends-on", "A"),
    "dep add depends-on": ("orch", "dep", "add", "--run", "r1", "--task", "C", "--depends-on", "nope"),
    "dispatch": ("orch", "dispatch", "--run", "r1", "--task", "nope", "--execution-mode", "analysis", "--to", "w1"),
    "answer": ("orch", "answer", "--run", "r1", "--task", "nope", "--summary", "yes"),
    "retry": ("orch", "retry", "--run", "r1", "--task", "nope"),
    "reassign": ("orch", "reassign", "--run", "r1", "--task", "nope", "--to", "w2"),
    "cancel": ("orch", "cancel", "--run", "r1", "--task", "nope"),
    "cleanup": ("orch", "cleanup", "--run", "r1", "--task", "nope"),
    "brief": ("orch", "brief", "--run", "r1", "--task", "nope"),
    "verify status": ("orch", "verify", "status", "--run", "r1", "--task", "nope"),
    "verify record": ("orch", "verify", "record", "--run", "r1", "--task", "nope", "--check", "lint",
                      "--status", "passed"),
}


@pytest.mark.parametrize("args", list(UNKNOWN_TASK.values()), ids=list(UNKNOWN_TASK))
def test_unknown_task_is_not_found(cli: Cli, world: dict[str, Any], args: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, args[0], *args[1:], code="not_found", exit_code=40)
    assert "nope" in err["message"]


UNKNOWN_THREAD = {
    "show": ("show", "--thread", "thr_nope"),
    "claim": ("claim", "--agent", "w1", "--thread", "thr_nope"),
    "renew": ("renew", "--agent", "w1", "--thread", "thr_nope"),
    "update": ("update", "--agent", "w1", "--thread", "thr_nope", "--status", "in_progress", "--summary", "s"),
    "reply": ("reply", "--from", "leader", "--thread", "thr_nope", "--summary", "s"),
    "done": ("done", "--agent", "w1", "--thread", "thr_nope", "--summary", "s"),
    "fail": ("fail", "--agent", "w1", "--thread", "thr_nope", "--summary", "s"),
    "cancel": ("cancel", "--thread", "thr_nope"),
    "wait-reply": ("wait-reply", "--thread", "thr_nope", "--timeout-seconds", "0.2"),
}


@pytest.mark.parametrize("args", list(UNKNOWN_THREAD.values()), ids=list(UNKNOWN_THREAD))
def test_unknown_thread_is_not_found(cli: Cli, world: dict[str, Any], args: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, "inbox", *args, code="not_found", exit_code=40)
    assert "thr_nope" in err["message"]


# -- ids with path or shell characters ----------------------------------------------------------
BAD_IDS = ["../x", "a b", "-rf", "x;rm"]
ID_SLOTS = {
    "run id (run init)": ("orch", "run", "init", "--run", "{X}", "--goal", "g"),
    "run id (status)": ("orch", "status", "--run", "{X}"),
    "task id (task add)": ("orch", "task", "add", "--run", "r1", "--task", "{X}", "--title", "t"),
    "task id (code dispatch)": ("orch", "dispatch", "--run", "r1", "--task", "{X}", "--execution-mode", "code",
                                "--to", "w1"),
    "depends-on id": ("orch", "dep", "add", "--run", "r1", "--task", "C", "--depends-on", "{X}"),
    "default-to agent": ("orch", "task", "add", "--run", "r1", "--task", "T9", "--title", "t",
                         "--default-to", "{X}"),
    "dispatch --to agent": ("orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "analysis",
                            "--to", "{X}"),
    "claim agent": ("inbox", "claim", "--agent", "{X}", "--thread", "{D}"),
    "send from agent": ("inbox", "send", "--from", "{X}", "--to", "w1", "--subject", "s"),
    "send to agent": ("inbox", "send", "--from", "leader", "--to", "{X}", "--subject", "s"),
    "thread id (show)": ("inbox", "show", "--thread", "{X}"),
    "thread id (new thread)": ("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s",
                               "--thread", "{X}"),
    "thread id (claim)": ("inbox", "claim", "--agent", "w1", "--thread", "{X}"),
}


def _with_id(args: tuple[str, ...], bad: str, joined: bool) -> list[str]:
    out: list[str] = []
    for a in args:
        if a == "{X}":
            if joined:
                out[-1] = f"{out[-1]}={bad}"  # --task=-rf: the value cannot be mistaken for an option
            else:
                out.append(bad)
        else:
            out.append(a)
    return out


PRIMARY_SLOTS = ("run id (run init)", "task id (task add)", "claim agent", "thread id (show)")
ID_CASES = [(slot, bad) for slot in ID_SLOTS for bad in BAD_IDS
            if slot in PRIMARY_SLOTS or bad in ("../x", "-rf")]


@pytest.mark.parametrize("slot,bad", ID_CASES, ids=[f"{s.replace(' ', '_')}-{b}" for s, b in ID_CASES])
def test_id_with_path_or_shell_characters_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path,
                                                           slot: str, bad: str) -> None:
    args = fill(ID_SLOTS[slot], world)
    before_files = sorted(p.name for p in tmp_path.iterdir())
    # --flag=VALUE always; --flag VALUE too for "-rf", which argparse may take for an option.
    for joined in (True, False) if bad.startswith("-") else (True,):
        argv = _with_id(tuple(args), bad, joined)
        err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
        if joined or not bad.startswith("-"):
            assert bad in err["message"], err  # the message names the rejected value
    # Nothing was created beside the database (no ../x directory, no worktree root).
    assert sorted(p.name for p in tmp_path.iterdir()) == before_files
    assert not (tmp_path.parent / "x").exists()


def test_dash_id_without_json_is_exit_30_without_traceback(cli: Cli, world: dict[str, Any]) -> None:
    p = cli.orch("dispatch", "--run", "r1", "--task", "-rf", "--execution-mode", "analysis", json_out=False)
    assert p.returncode == 30
    assert "Traceback" not in p.stderr + p.stdout
    assert "error (invalid_input)" in p.stderr


# -- payloads and bodies ------------------------------------------------------------------------
PAYLOAD_SLOTS = {
    "send": ("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s", "--payload-json", "{J}"),
    "update": ("inbox", "update", "--agent", "w1", "--thread", "{A}", "--status", "blocked", "--summary", "q",
               "--payload-json", "{J}"),
    "reply": ("inbox", "reply", "--from", "leader", "--thread", "{A}", "--summary", "s", "--payload-json", "{J}"),
    "done": ("inbox", "done", "--agent", "w1", "--thread", "{A}", "--summary", "s", "--payload-json", "{J}"),
    "fail": ("inbox", "fail", "--agent", "w1", "--thread", "{A}", "--summary", "s", "--payload-json", "{J}"),
    "answer": ("orch", "answer", "--run", "r1", "--task", "A", "--payload-json", "{J}"),
    "artifact metadata": ("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s",
                          "--artifact", "out.log", "--artifact-metadata-json", "{J}"),
    "acceptance": ("orch", "task", "add", "--run", "r1", "--task", "T9", "--title", "t",
                   "--acceptance-json", "{J}"),
}


JSON_CASES = [(slot, '{"question": ') for slot in PAYLOAD_SLOTS] + [("send", "not json"), ("send", "{'single': 1}")]


@pytest.mark.parametrize("slot,bad_json", JSON_CASES, ids=[f"{s}-{j}" for s, j in JSON_CASES])
def test_invalid_json_argument_is_invalid_input(cli: Cli, world: dict[str, Any], slot: str, bad_json: str) -> None:
    args = PAYLOAD_SLOTS[slot]
    argv = [bad_json if a == "{J}" else a for a in fill(args, world)]
    err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
    assert "JSON" in err["message"]


BODY_SLOTS = {
    "send": ("inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s"),
    "update": ("inbox", "update", "--agent", "w1", "--thread", "{A}", "--status", "in_progress", "--summary", "s"),
    "reply": ("inbox", "reply", "--from", "leader", "--thread", "{A}", "--summary", "s"),
    "done": ("inbox", "done", "--agent", "w1", "--thread", "{A}", "--summary", "s"),
    "dispatch": ("orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "analysis"),
    "answer": ("orch", "answer", "--run", "r1", "--task", "A", "--summary", "s"),
    "reassign": ("orch", "reassign", "--run", "r1", "--task", "A", "--to", "w2"),
}


@pytest.mark.parametrize("which", ["missing file", "directory"])
@pytest.mark.parametrize("args", list(BODY_SLOTS.values()), ids=list(BODY_SLOTS))
def test_unreadable_body_file_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path,
                                               args: tuple[str, ...], which: str) -> None:
    target = tmp_path / "no-such-body.md" if which == "missing file" else tmp_path
    argv = fill(args, world) + ["--body-file", str(target)]
    err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
    assert "--body-file" in err["message"] and str(target) in err["message"]


@pytest.mark.parametrize("args", list(BODY_SLOTS.values()), ids=list(BODY_SLOTS))
def test_body_and_body_file_together_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path,
                                                      args: tuple[str, ...]) -> None:
    f = tmp_path / "body.md"
    f.write_text("from the file\n")
    argv = fill(args, world) + ["--body", "inline", "--body-file", str(f)]
    err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
    assert "mutually exclusive" in err["message"]


@pytest.mark.parametrize("args", list(BODY_SLOTS.values()), ids=list(BODY_SLOTS))
def test_two_mib_body_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path,
                                       args: tuple[str, ...]) -> None:
    f = tmp_path / "huge.md"
    f.write_text("x" * (2 * 1024 * 1024))  # argv cannot carry 2 MiB, so through --body-file
    argv = fill(args, world) + ["--body-file", str(f)]
    err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
    assert "1 MiB" in err["message"]


def test_two_mib_multibyte_body_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path) -> None:
    f = tmp_path / "huge.md"
    f.write_text("é" * (1024 * 1024))  # 1 Mi characters, 2 MiB of UTF-8
    err = fails_unchanged(cli, "inbox", "send", "--from", "leader", "--to", "w1", "--subject", "s",
                          "--body-file", str(f), code="invalid_input", exit_code=30)
    assert "1 MiB" in err["message"]


@pytest.mark.parametrize("flag,args", [
    ("--spec-file", ("orch", "task", "add", "--run", "r1", "--task", "T9", "--title", "t")),
    ("--output-file", ("orch", "verify", "record", "--run", "r1", "--task", "A", "--check", "lint",
                       "--status", "passed")),
    ("--dispatch-json", ("orch", "brief")),
], ids=["spec-file", "output-file", "dispatch-json"])
def test_unreadable_input_file_is_invalid_input(cli: Cli, world: dict[str, Any], tmp_path: Path, flag: str,
                                                args: tuple[str, ...]) -> None:
    missing = tmp_path / "missing.txt"
    err = fails_unchanged(cli, args[0], *args[1:], flag, str(missing), code="invalid_input", exit_code=30)
    assert str(missing) in err["message"]


# -- worktrees: base ref and dirty repository ---------------------------------------------------
def _assert_no_worktree_left(repo: Path, task: str = "C") -> None:
    assert worktree_paths(repo) == [str(repo)]
    assert [b for b in branches(repo) if b.startswith("orch/")] == []
    assert not (repo / ".orch" / "worktrees" / "r1" / task).exists()


def test_code_dispatch_with_unknown_base_ref_is_invalid_input(cli: Cli, world: dict[str, Any], repo: Path) -> None:
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "code",
                          "--repo-path", str(repo), "--base-ref", "no-such-branch",
                          code="invalid_input", exit_code=30)
    assert "no-such-branch" in err["message"]
    _assert_no_worktree_left(repo)


def test_code_dispatch_with_option_like_base_ref_is_invalid_input(cli: Cli, world: dict[str, Any],
                                                                  repo: Path) -> None:
    fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "code",
                    "--repo-path", str(repo), "--base-ref=--orphan", code="invalid_input", exit_code=30)
    _assert_no_worktree_left(repo)


def test_code_dispatch_in_dirty_repo_without_base_ref_is_invalid_state(cli: Cli, world: dict[str, Any],
                                                                       repo: Path) -> None:
    (repo / "README.md").write_text("modified but not committed\n")
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "code",
                          "--repo-path", str(repo), code="invalid_state", exit_code=30)
    assert "uncommitted" in err["message"] and "--base-ref" in err["message"]
    _assert_no_worktree_left(repo)


def test_code_dispatch_outside_a_git_repository_is_invalid_input(cli: Cli, world: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "code",
                          "--repo-path", str(plain), code="invalid_input", exit_code=30)
    assert "git" in err["message"]


def test_code_dispatch_in_repo_without_commits_is_invalid_state(cli: Cli, world: dict[str, Any],
                                                                tmp_path: Path) -> None:
    import subprocess

    empty = tmp_path / "empty-repo"
    subprocess.run(["git", "init", "-q", str(empty)], check=True)
    fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "code",
                    "--repo-path", str(empty), code="invalid_state", exit_code=30)
    assert not (empty / ".orch" / "worktrees" / "r1").exists()


# -- state errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("task,mode", [("B", "analysis"), ("B", "code"), ("A", "analysis"), ("E", "analysis")],
                         ids=["planned", "planned-code-mode", "already-dispatched", "done"])
def test_dispatch_of_task_not_ready_is_invalid_state(cli: Cli, world: dict[str, Any], repo: Path,
                                                     task: str, mode: str) -> None:
    extra = ["--repo-path", str(repo)] if mode == "code" else []
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", task, "--execution-mode", mode,
                          *extra, code="invalid_state", exit_code=30)
    assert task in err["message"]
    _assert_no_worktree_left(repo, task)


def test_dispatch_without_execution_mode_is_rejected(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--to", "w1",
                          code="invalid_input", exit_code=30)
    assert "--execution-mode" in err["message"]


def test_dispatch_with_unknown_execution_mode_is_usage_error(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "dispatch", "--run", "r1", "--task", "C", "--execution-mode", "yolo",
                          code="invalid_input", exit_code=30)
    assert "execution-mode" in err["message"]


LEASED_OPS = {
    "done": ("done", "--summary", "s"),
    "fail": ("fail", "--summary", "s"),
    "update": ("update", "--status", "in_progress", "--summary", "s"),
    "renew": ("renew",),
}


@pytest.mark.parametrize("op", list(LEASED_OPS.values()), ids=list(LEASED_OPS))
def test_leased_operation_by_non_owner_is_lease_conflict(cli: Cli, world: dict[str, Any],
                                                         op: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, "inbox", op[0], "--agent", "w2", "--thread", world["A"], *op[1:],
                          code="lease_conflict", exit_code=20)
    assert "w1" in err["message"]  # says who holds the lease


def test_done_by_non_owner_via_global_agent_is_lease_conflict(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "inbox", "--agent", "w2", "done", "--thread", world["A"], "--summary", "s",
                    code="lease_conflict", exit_code=20)


def test_claim_of_thread_leased_by_another_is_lease_conflict(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "inbox", "claim", "--agent", "w2", "--thread", world["A"],
                          code="lease_conflict", exit_code=20)
    assert "w1" in err["message"]


@pytest.mark.parametrize("op", list(LEASED_OPS.values()), ids=list(LEASED_OPS))
def test_leased_operation_on_never_claimed_thread_is_invalid_state(cli: Cli, world: dict[str, Any],
                                                                   op: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, "inbox", op[0], "--agent", "w1", "--thread", world["D"], *op[1:],
                          code="invalid_state", exit_code=30)
    assert world["D"] in err["message"]


@pytest.mark.parametrize("op", list(LEASED_OPS.values()) + [("claim",)], ids=list(LEASED_OPS) + ["claim"])
def test_operation_on_finished_thread_is_invalid_state(cli: Cli, world: dict[str, Any],
                                                       op: tuple[str, ...]) -> None:
    err = fails_unchanged(cli, "inbox", op[0], "--agent", "w1", "--thread", world["E"], *op[1:],
                          code="invalid_state", exit_code=30)
    assert "done" in err["message"]


def test_reply_and_cancel_on_finished_thread_are_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "inbox", "reply", "--from", "leader", "--thread", world["E"], "--summary", "late",
                    code="invalid_state", exit_code=30)
    fails_unchanged(cli, "inbox", "cancel", "--thread", world["E"], code="invalid_state", exit_code=30)


def test_answer_of_task_not_blocked_is_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "answer", "--run", "r1", "--task", "A", "--summary", "yes",
                          code="invalid_state", exit_code=30)
    assert "not blocked" in err["message"]


def test_answer_without_any_content_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "answer", "--run", "r1", "--task", "A", code="invalid_input", exit_code=30)


def test_retry_of_task_not_failed_is_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "retry", "--run", "r1", "--task", "A", code="invalid_state", exit_code=30)
    # C was never dispatched: there is nothing to retry.
    fails_unchanged(cli, "orch", "retry", "--run", "r1", "--task", "C", code="invalid_state", exit_code=30)


def test_reassign_of_done_task_is_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "reassign", "--run", "r1", "--task", "E", "--to", "w2",
                    code="invalid_state", exit_code=30)


def test_duplicate_run_and_task_are_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "run", "init", "--run", "r1", "--goal", "again", code="invalid_state", exit_code=30)
    fails_unchanged(cli, "orch", "task", "add", "--run", "r1", "--task", "C", "--title", "again",
                    code="invalid_state", exit_code=30)


def test_cancel_of_done_task_is_invalid_state(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "cancel", "--run", "r1", "--task", "E", code="invalid_state", exit_code=30)


def test_verify_record_of_check_that_is_not_required_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "verify", "record", "--run", "r1", "--task", "A", "--check", "lint",
                          "--status", "passed", code="invalid_input", exit_code=30)
    assert "lint" in err["message"]


# -- nothing matching, timeouts -----------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("fetch", "--agent", "nobody"),
    ("fetch", "--agent", "w1", "--status", "failed"),
], ids=["unknown-agent", "status-filter"])
def test_fetch_with_nothing_matching_is_no_matching_work(cli: Cli, world: dict[str, Any],
                                                         args: tuple[str, ...]) -> None:
    fails_unchanged(cli, "inbox", *args, code="no_matching_work", exit_code=10)


def test_fetch_unread_when_everything_is_read_is_no_matching_work(cli: Cli, world: dict[str, Any]) -> None:
    cli.ok("inbox", "show", "--thread", world["E"], "--agent", "w1", "--mark-read")
    fails_unchanged(cli, "inbox", "fetch", "--agent", "w1", "--status", "done", "--unread",
                    code="no_matching_work", exit_code=10)


def test_fetch_with_unknown_status_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "inbox", "fetch", "--agent", "w1", "--status", "sleeping",
                          code="invalid_input", exit_code=30)
    assert "sleeping" in err["message"]


def test_wait_reply_timing_out_is_no_matching_work(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "inbox", "wait-reply", "--thread", world["A"], "--agent", "w1",
                          "--timeout-seconds", "0.4", code="no_matching_work", exit_code=10)
    assert "timed out" in err["message"]


def test_orch_wait_timing_out_is_no_matching_work(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "wait", "--run", "r1", "--for", "task_done", "--timeout-seconds", "0.4",
                          code="no_matching_work", exit_code=10)
    assert "timed out" in err["message"]


def test_inbox_watch_timing_out_is_no_matching_work(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "inbox", "watch", "--agent", "w1", "--timeout-seconds", "0.4",
                    code="no_matching_work", exit_code=10)


def test_negative_timeout_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "wait", "--run", "r1", "--timeout-seconds", "-1", code="invalid_input", exit_code=30)


# -- cleanup selectors --------------------------------------------------------------------------
def test_cleanup_attempt_without_task_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    err = fails_unchanged(cli, "orch", "cleanup", "--run", "r1", "--attempt", "1",
                          code="invalid_input", exit_code=30)
    assert "--task" in err["message"]


def test_cleanup_without_selector_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "cleanup", "--run", "r1", code="invalid_input", exit_code=30)


def test_cleanup_matching_nothing_is_no_matching_work(cli: Cli, world: dict[str, Any]) -> None:
    fails_unchanged(cli, "orch", "cleanup", "--run", "r1", "--task", "E", code="no_matching_work", exit_code=10)
    fails_unchanged(cli, "orch", "cleanup", "--run", "r1", "--all-completed", code="no_matching_work",
                    exit_code=10)


# -- usage errors -------------------------------------------------------------------------------
USAGE = {
    "missing --goal": ("orch", "run", "init", "--run", "r9"),
    "missing --thread": ("inbox", "claim", "--agent", "w1"),
    "missing --summary on done": ("inbox", "done", "--agent", "w1", "--thread", "{A}"),
    "unknown orch command": ("orch", "frobnicate"),
    "unknown inbox command": ("inbox", "frobnicate", "--thread", "{A}"),
    "unknown subcommand": ("orch", "run", "explode", "--run", "r1"),
    "group without subcommand": ("orch", "verify"),
    "unknown flag": ("orch", "status", "--run", "r1", "--colour"),
    "bad choice": ("inbox", "update", "--agent", "w1", "--thread", "{A}", "--status", "finished", "--summary", "s"),
    "bad integer": ("inbox", "claim", "--agent", "w1", "--thread", "{D}", "--lease-seconds", "soon"),
    "bad float": ("orch", "wait", "--run", "r1", "--timeout-seconds", "later"),
    "bad reply kind": ("inbox", "reply", "--from", "leader", "--thread", "{A}", "--summary", "s", "--kind", "task"),
}


@pytest.mark.parametrize("args", list(USAGE.values()), ids=list(USAGE))
def test_usage_error_is_exit_30_with_json_envelope(cli: Cli, world: dict[str, Any], args: tuple[str, ...]) -> None:
    argv = fill(args, world)
    err = fails_unchanged(cli, argv[0], *argv[1:], code="invalid_input", exit_code=30)
    assert err["message"].startswith(argv[0])  # names the program (and command) that rejected it


def test_usage_error_with_json_after_the_command_is_still_an_envelope(cli: Cli, world: dict[str, Any]) -> None:
    p = cli.run(ORCH, "run", "init", "--run", "r9", "--json", json_out=False)
    assert p.returncode == 30
    doc = json.loads(p.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "invalid_input" and "--goal" in doc["error"]["message"]


@pytest.mark.parametrize("args", [("orch", "frobnicate"), ("inbox", "claim", "--agent", "w1"),
                                  ("orch", "status", "--run", "nope")],
                         ids=["unknown-command", "missing-flag", "not-found"])
def test_error_without_json_is_one_readable_line_on_stderr(cli: Cli, world: dict[str, Any],
                                                           args: tuple[str, ...]) -> None:
    p = cli.run(ORCH if args[0] == "orch" else INBOX, *args[1:], json_out=False)
    assert p.returncode in (30, 40)
    assert p.stdout == ""
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("error (") and p.stderr.count("\n") == 1


def test_unopenable_database_is_internal_error_without_traceback(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a sqlite database" * 100)
    c = Cli(str(bad), tmp_path)
    p = c.orch("run", "list")
    assert p.returncode == 50
    assert "Traceback" not in p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "internal_error" and doc["error"]["message"]
    assert bad.read_bytes() == b"this is not a sqlite database" * 100


# -- --help on every command --------------------------------------------------------------------
def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of a parser, groups included (`run`, `run init`, ...)."""
    out = [prefix] if prefix else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _commands(sub, prefix + (name,))
    return out


def _all_commands() -> list[tuple[str, ...]]:
    from orch_console.console.cli import inbox, orch

    return [("orch",) + c for c in _commands(orch.build())] + [("inbox",) + c for c in _commands(inbox.build())]


ALL_COMMANDS = _all_commands()


def test_command_enumeration_covers_both_clis() -> None:
    names = {" ".join(c) for c in ALL_COMMANDS}
    for expected in ("orch run init", "orch dispatch", "orch verify record", "orch cleanup", "inbox claim",
                     "inbox wait-reply", "inbox done", "inbox fail"):
        assert expected in names
    assert sum(1 for c in ALL_COMMANDS if c[0] == "inbox") >= 14


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: "-".join(c))
def test_help_exits_0_and_prints_usage(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command's --help through the CLI entry point (in-process: one per command is many)."""
    from orch_console.console.cli import inbox, orch

    main = orch.main if command[0] == "orch" else inbox.main
    assert main([*command[1:], "--help"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"usage: {' '.join(command)}"), out.out[:200]
    assert "Traceback" not in out.err


@pytest.mark.parametrize("command", [("orch",), ("inbox",), ("orch", "dispatch"), ("inbox", "wait-reply")],
                         ids=lambda c: "-".join(c))
def test_help_of_the_executables_exits_0_without_opening_a_database(tmp_path: Path,
                                                                    command: tuple[str, ...]) -> None:
    c = Cli(str(tmp_path / "never-created.db"), tmp_path)
    p = c.run(ORCH if command[0] == "orch" else INBOX, *command[1:], "--help", json_out=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: {' '.join(command)}"), p.stdout[:200]
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "never-created.db").exists()
    if len(command) == 1:
        assert "exit codes" in p.stdout


# -- bodies from devices and pipes --------------------------------------------------------------
def _limited(mem_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    return apply


def test_endless_body_file_is_invalid_input_not_memory_exhaustion(cli: Cli, world: dict[str, Any]) -> None:
    import subprocess

    before = db_snapshot(cli.db)
    # Address space capped at 1 GiB so the unbounded read cannot take the shared machine down.
    p = subprocess.run([INBOX, "--db", cli.db, "--json", "send", "--from", "leader", "--to", "w1", "--subject", "s",
                        "--body-file", "/dev/zero"], capture_output=True, text=True, timeout=60, cwd=cli.cwd,
                       env=git_env(), preexec_fn=_limited(1024 ** 3))
    assert "Traceback" not in p.stderr
    doc = json.loads(p.stdout)
    assert (p.returncode, doc["error"]["code"]) == (30, "invalid_input"), doc
    assert "1 MiB" in doc["error"]["message"]
    assert db_snapshot(cli.db) == before


def test_two_mib_body_from_a_pipe_is_invalid_input(cli: Cli, world: dict[str, Any]) -> None:
    before = db_snapshot(cli.db)
    p = cli.inbox("send", "--from", "leader", "--to", "w1", "--subject", "s", "--body-file", "/dev/stdin",
                  input="y" * (2 * 1024 * 1024))
    assert p.returncode == 30 and "Traceback" not in p.stderr
    doc = json.loads(p.stdout)
    assert doc["error"]["code"] == "invalid_input" and "1 MiB" in doc["error"]["message"]
    assert db_snapshot(cli.db) == before


@pytest.mark.parametrize("bad", ["a" * 65, "a.lock", "a..b", "é", "x."],
                         ids=["65-chars", "dot-lock", "double-dot", "non-ascii", "trailing-dot"])
def test_task_id_unusable_as_branch_name_is_invalid_input(cli: Cli, world: dict[str, Any], bad: str) -> None:
    err = fails_unchanged(cli, "orch", "task", "add", "--run", "r1", f"--task={bad}", "--title", "t",
                          code="invalid_input", exit_code=30)
    assert bad in err["message"]


def test_longest_valid_id_is_accepted(cli: Cli, world: dict[str, Any]) -> None:
    longest = "T" + "x" * 63
    assert cli.ok("orch", "task", "add", "--run", "r1", "--task", longest, "--title", "t")["task"]["task_id"] == longest
