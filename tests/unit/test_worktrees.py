"""Worktree per code attempt, with real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orch_console.store import InvalidInput, InvalidState, NoMatchingWork, Store
from orch_console.store import dispatch, inbox, runs


def branches(repo: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "branch", "--format=%(refname:short)"], capture_output=True,
                         text=True, check=True).stdout
    return sorted(out.split())


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def run(store: Store) -> Store:
    runs.run_init(store, run_id="r", goal="g")
    runs.task_add(store, run_id="r", task_id="A", title="t", default_to="w")
    return store


def code_dispatch(store: Store, repo: Path, **kw: object) -> dict:
    return dispatch.dispatch(store, run_id="r", task_id="A", execution_mode="code", repo_path=str(repo), **kw)


def test_code_dispatch_makes_branch_and_worktree_at_head(run: Store, repo: Path) -> None:
    a = code_dispatch(run, repo)["attempt"]
    wt = Path(a["worktree_path"])
    assert wt == repo / ".orch" / "worktrees" / "r" / "A" / "a1"
    assert (wt / "README.md").exists()
    assert a["branch_name"] == "orch/r/A/a1" and "orch/r/A/a1" in branches(repo)
    assert a["base_commit"] == head(repo) and a["workspace_status"] == "created"
    # the default worktree root does not make the main checkout dirty
    assert subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                          text=True).stdout == ""


def test_analysis_dispatch_has_empty_worktree_fields(run: Store) -> None:
    a = dispatch.dispatch(run, run_id="r", task_id="A", execution_mode="analysis")["attempt"]
    assert (a["worktree_path"], a["branch_name"], a["base_commit"], a["workspace_status"]) == ("", "", "", "")


def test_dirty_repository_without_base_ref_is_refused_and_leaves_nothing(run: Store, repo: Path) -> None:
    (repo / "README.md").write_text("changed\n")
    with pytest.raises(InvalidState, match="uncommitted"):
        code_dispatch(run, repo)
    assert branches(repo) == ["main"]
    assert not (repo / ".orch" / "worktrees" / "r").exists()
    assert run.scalar("SELECT count(*) FROM attempts") == 0
    assert run.scalar("SELECT status FROM tasks") == "ready"
    # an explicit base ref is allowed on a dirty repository
    assert code_dispatch(run, repo, base_ref="main")["attempt"]["base_commit"] == head(repo)


def test_unknown_base_ref_is_invalid_input(run: Store, repo: Path) -> None:
    with pytest.raises(InvalidInput, match="does not name a commit"):
        code_dispatch(run, repo, base_ref="no-such-branch")
    assert branches(repo) == ["main"]


def test_worktree_is_discarded_when_the_dispatch_transaction_fails(run: Store, repo: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "set_task_status", lambda *a, **k: False)
    with pytest.raises(InvalidState):
        code_dispatch(run, repo)
    assert branches(repo) == ["main"]
    assert not (repo / ".orch" / "worktrees" / "r" / "A" / "a1").exists()
    assert run.scalar("SELECT count(*) FROM attempts") == 0


def test_retry_gets_a_fresh_worktree_and_keeps_the_old_one(run: Store, repo: Path) -> None:
    a1 = code_dispatch(run, repo)["attempt"]
    inbox.claim(run, agent="w", thread_id=a1["thread_id"])
    (Path(a1["worktree_path"]) / "work.txt").write_text("half done")
    inbox.finish(run, agent="w", thread_id=a1["thread_id"], outcome="failed", summary="gave up")
    a2 = dispatch.retry(run, run_id="r", task_id="A")["attempt"]
    assert a2["worktree_path"].endswith("/a2") and a2["branch_name"] == "orch/r/A/a2"
    assert not (Path(a2["worktree_path"]) / "work.txt").exists()
    assert (Path(a1["worktree_path"]) / "work.txt").exists()


def test_cleanup_removes_directory_keeps_branch_and_skips_live_or_dirty(run: Store, repo: Path) -> None:
    a1 = code_dispatch(run, repo)["attempt"]
    out = dispatch.cleanup(run, run_id="r", task_id="A")
    assert out["cleaned"] == [] and "live" in out["skipped"][0]["reason"]
    inbox.claim(run, agent="w", thread_id=a1["thread_id"])
    inbox.finish(run, agent="w", thread_id=a1["thread_id"], outcome="failed", summary="x")
    (Path(a1["worktree_path"]) / "scratch.txt").write_text("unsaved")
    out = dispatch.cleanup(run, run_id="r", all_completed=True)
    assert out["cleaned"] == [] and "uncommitted" in out["skipped"][0]["reason"]
    out = dispatch.cleanup(run, run_id="r", all_completed=True, force=True)
    assert [c["attempt_no"] for c in out["cleaned"]] == [1]
    assert not Path(a1["worktree_path"]).exists()
    assert "orch/r/A/a1" in branches(repo)
    assert run.scalar("SELECT workspace_status FROM attempts") == "cleaned"
    with pytest.raises(NoMatchingWork):
        dispatch.cleanup(run, run_id="r", all_completed=True)


def test_cleanup_argument_rules(run: Store) -> None:
    with pytest.raises(InvalidInput):
        dispatch.cleanup(run, run_id="r", attempt_no=1)
    with pytest.raises(InvalidInput):
        dispatch.cleanup(run, run_id="r")
