"""Git worktrees per code attempt, through GitPython (DESIGN.md section 5).

GitPython is imported lazily: it costs ~150 ms and only code-mode dispatch and cleanup need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InvalidInput, InvalidState


class Workspace(NamedTuple):
    repo_path: str
    base_ref: str
    base_commit: str
    branch_name: str
    worktree_path: str


def branch_for(run_id: str, task_id: str, attempt_no: int) -> str:
    return f"orch/{run_id}/{task_id}/a{attempt_no}"


def _repo(repo_path: str) -> Any:
    import git

    path = Path(repo_path or os.getcwd()).expanduser()
    if not path.exists():
        raise InvalidInput(f"--repo-path {path} does not exist")
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise InvalidInput(f"{path} is not inside a git repository (use --repo-path)") from None


def resolve_base(repo: Any, base_ref: str | None) -> str:
    import git

    if base_ref:
        if base_ref.startswith("-"):
            raise InvalidInput(f"invalid --base-ref {base_ref!r}")
        try:
            return repo.commit(base_ref).hexsha
        # GitPython's own rev parser raises more than BadName for odd refs: KeyError for
        # HEAD:path, IndexError for HEAD@{1000} (issue 15, L7)
        except (git.BadName, ValueError, git.GitCommandError, KeyError, IndexError, TypeError):
            raise InvalidInput(f"--base-ref {base_ref!r} does not name a commit in {repo.working_dir}") from None
    try:
        head = repo.head.commit.hexsha
    except ValueError:
        raise InvalidState(f"{repo.working_dir} has no commits yet; commit something or pass --base-ref") from None
    if repo.is_dirty(untracked_files=False):
        raise InvalidState(
            f"{repo.working_dir} has uncommitted changes; commit them or pass --base-ref "
            f"to choose the base commit explicitly")
    return head


def create(repo_path: str | None, *, run_id: str, task_id: str, attempt_no: int,
           base_ref: str | None, workspace_root: str | None) -> Workspace:
    """Make the attempt's branch and worktree. Raises before anything is created on bad input."""
    import git

    repo = _repo(repo_path or "")
    top = Path(repo.working_tree_dir or repo.working_dir)
    commit = resolve_base(repo, base_ref)
    root = Path(workspace_root).expanduser() if workspace_root else top / ".orch" / "worktrees"
    if not root.is_absolute():
        root = Path.cwd() / root
    if not workspace_root:
        _exclude(repo, ".orch/")
    path = root / run_id / task_id / f"a{attempt_no}"
    branch = branch_for(run_id, task_id, attempt_no)
    if path.exists():
        raise InvalidState(f"worktree path {path} already exists")
    if branch in [h.name for h in repo.heads]:
        raise InvalidState(f"branch {branch} already exists; another dispatch made this attempt")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        repo.git.worktree("add", "-b", branch, str(path), commit)
    except git.GitCommandError as exc:
        raise InvalidState(f"git worktree add failed: {_git_msg(exc)}") from None
    return Workspace(repo_path=str(top), base_ref=base_ref or "", base_commit=commit,
                     branch_name=branch, worktree_path=str(path))


def discard(ws: Workspace) -> None:
    """Undo create() when the dispatch transaction that needed it did not commit."""
    import git

    try:
        repo = git.Repo(ws.repo_path)
        repo.git.worktree("remove", "--force", ws.worktree_path)
        repo.git.branch("-D", ws.branch_name)
    except (git.GitCommandError, git.NoSuchPathError, git.InvalidGitRepositoryError):
        pass


def is_dirty(worktree_path: str) -> bool:
    import git

    try:
        return git.Repo(worktree_path).is_dirty(untracked_files=True)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        return False


def remove(repo_path: str, worktree_path: str, *, force: bool = False) -> None:
    """git worktree remove + prune; the branch stays."""
    import git

    try:
        repo = git.Repo(repo_path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        raise InvalidState(f"repository {repo_path} is gone; cannot remove {worktree_path}") from None
    if Path(worktree_path).exists():
        args = ["remove"] + (["--force"] if force else []) + [worktree_path]
        try:
            repo.git.worktree(*args)
        except git.GitCommandError as exc:
            raise InvalidState(f"git worktree remove failed: {_git_msg(exc)}") from None
    repo.git.worktree("prune")


def diff_stat(worktree_path: str, base_commit: str) -> str:
    import git

    try:
        repo = git.Repo(worktree_path)
        committed = repo.git.diff("--stat", base_commit, "HEAD")
        working = repo.git.diff("--stat")
        untracked = repo.untracked_files
    except (git.NoSuchPathError, git.InvalidGitRepositoryError, git.GitCommandError):
        return ""
    parts = [p for p in (committed, working) if p]
    if untracked:
        parts.append("untracked: " + ", ".join(untracked[:20]))
    return "\n".join(parts)


def _exclude(repo: Any, pattern: str) -> None:
    """Keep the default worktree root out of `git status` in the main checkout."""
    try:
        info = Path(repo.git_dir) / "info"
        info.mkdir(exist_ok=True)
        exclude = info / "exclude"
        text = exclude.read_text() if exclude.exists() else ""
        if pattern not in text.splitlines():
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + pattern + "\n")
    except OSError:
        pass


def _git_msg(exc: Any) -> str:
    return (getattr(exc, "stderr", "") or str(exc)).strip().replace("\n", " ")[:300]
