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


def _target(repo: Any, run_id: str, task_id: str, attempt_no: int, workspace_root: str | None,
            repo_path: str | None = None) -> tuple[Path, str]:
    top = Path(repo.working_tree_dir or repo.working_dir)
    root = check_workspace_root(repo, workspace_root, repo_path) if workspace_root else top / ".orch" / "worktrees"
    return root / run_id / task_id / f"a{attempt_no}", branch_for(run_id, task_id, attempt_no)


def check_workspace_root(repo: Any, workspace_root: str, repo_path: str | None = None) -> Path:
    """--workspace-root, normalised (no `..`): a relative one is relative to the repository it names
    (--repo-path), not the cwd (orch-contract.md). Never the git directory or inside it (issue 15,
    L9); inside the checkout it is kept out of `git status` and `git add -A` by info/exclude."""
    root = Path(workspace_root).expanduser()
    base = Path(repo_path).expanduser().absolute() if repo_path else Path.cwd()
    root = Path(os.path.normpath(root if root.is_absolute() else base / root))
    real = Path(os.path.realpath(root))
    top = Path(os.path.realpath(repo.working_tree_dir or repo.working_dir))
    git_dir = Path(os.path.realpath(repo.common_dir if hasattr(repo, "common_dir") else repo.git_dir))
    if real == git_dir or git_dir in real.parents:
        raise InvalidInput(f"--workspace-root {workspace_root} is inside the git directory {git_dir}")
    if real == top:
        raise InvalidInput(f"--workspace-root {workspace_root} is the checkout {top} itself; use a directory "
                           f"under it (kept out of git) or outside it")
    if top in real.parents and not (real == top / ".orch" or (top / ".orch") in real.parents):
        # Inside the checkout only where nothing is tracked: it is then kept out of git through
        # info/exclude; a tracked directory (src) would have the user's own new files hidden too.
        inner = real.relative_to(top).as_posix()
        if repo.git.ls_files("--", inner).strip():
            raise InvalidInput(f"--workspace-root {workspace_root} is inside the tracked tree ({inner} holds "
                               f"tracked files): worktrees there would be staged by `git add -A`; use a new "
                               f"directory, {top / '.orch'}, or one outside the checkout")
    return root


def _pristine_branch(repo: Any, branch: str) -> bool:
    """The branch was created and never moved: its reflog holds the creation only."""
    import git

    try:
        log = repo.git.reflog("show", "--format=%H", f"refs/heads/{branch}", "--")
    except git.GitCommandError:
        return False
    return len([ln for ln in log.splitlines() if ln.strip()]) == 1


def clear_orphan(repo_path: str | None, *, run_id: str, task_id: str, attempt_no: int,
                 workspace_root: str | None) -> str:
    """Repair what an interrupted dispatch left (issue 15, M5): the worktree and branch of an
    attempt that no attempt row records. The caller holds the dispatch lock and has checked that
    no attempt owns them. Removed only while pristine (clean, the branch never moved): work is
    never deleted; otherwise InvalidState says what to inspect. Returns what was removed."""
    import git

    try:
        repo = _repo(repo_path or "")
    except InvalidInput:
        return ""  # create() reports the bad path
    path, branch = _target(repo, run_id, task_id, attempt_no, workspace_root, repo_path)
    has_branch = branch in [h.name for h in repo.heads]
    if not path.exists() and not has_branch:
        return ""
    hint = (f"an interrupted dispatch left {path if path.exists() else 'branch ' + branch} behind, and it holds "
            f"changes, so orch keeps it: inspect it, then `git worktree remove --force {path}` and "
            f"`git branch -D {branch}`")
    if path.exists():
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif not (path / ".git").is_file() or not has_branch or is_dirty(str(path)) \
                or not _pristine_branch(repo, branch):
            raise InvalidState(f"worktree path {path} already exists and no attempt owns it: {hint}")
        else:
            try:
                if git.Repo(str(path)).active_branch.name != branch:
                    raise InvalidState(f"worktree path {path} already exists on another branch: {hint}")
            except (TypeError, git.InvalidGitRepositoryError, git.NoSuchPathError):
                raise InvalidState(f"worktree path {path} already exists and no attempt owns it: {hint}") from None
            try:
                repo.git.worktree("remove", "--force", str(path))
            except git.GitCommandError as exc:
                raise InvalidState(f"could not remove the leftover worktree {path}: {_git_msg(exc)}") from None
    try:
        repo.git.worktree("prune")
    except git.GitCommandError:
        pass
    if has_branch:
        if not _pristine_branch(repo, branch):
            raise InvalidState(f"branch {branch} already exists and no attempt owns it: {hint}")
        try:
            repo.git.branch("-D", branch)
        except git.GitCommandError as exc:
            raise InvalidState(f"could not remove the leftover branch {branch}: {_git_msg(exc)}") from None
    return f"{path} ({branch})"


def create(repo_path: str | None, *, run_id: str, task_id: str, attempt_no: int,
           base_ref: str | None, workspace_root: str | None, hold_fd: int = -1) -> Workspace:
    """Make the attempt's branch and worktree. Raises before anything is created on bad input.
    hold_fd: the dispatch lock, handed to `git worktree add` so the lock lasts as long as git
    does: a dispatch SIGKILLed while git checks out would otherwise release it with git still
    writing the worktree, and the next dispatch would take that for a leftover."""
    import git

    repo = _repo(repo_path or "")
    top = Path(repo.working_tree_dir or repo.working_dir)
    commit = resolve_base(repo, base_ref)
    path, branch = _target(repo, run_id, task_id, attempt_no, workspace_root, repo_path)
    root = path.parents[2]
    if not workspace_root:
        _exclude(repo, ".orch/")
    elif root.resolve().is_relative_to(top.resolve()) and root.resolve() != top.resolve():
        _exclude(repo, "/" + root.resolve().relative_to(top.resolve()).as_posix() + "/")  # keep `git status` clean
    if path.exists():
        raise InvalidState(f"worktree path {path} already exists")
    if branch in [h.name for h in repo.heads]:
        raise InvalidState(f"branch {branch} already exists; another dispatch made this attempt")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        repo.git.execute([repo.git.GIT_PYTHON_GIT_EXECUTABLE or "git", "worktree", "add", "-b", branch, str(path),
                          commit], pass_fds=(hold_fd,) if hold_fd >= 0 else ())
    except git.GitCommandError as exc:
        raise InvalidState(f"git worktree add failed: {_git_msg(exc)}") from None
    # without --base-ref the base is HEAD (a clean repository's), recorded as such beside its commit
    return Workspace(repo_path=str(top), base_ref=base_ref or "HEAD", base_commit=commit,
                     branch_name=branch, worktree_path=str(path))


def exclude_dir(repo_path: str, directory: str) -> None:
    """Keep a directory inside the checkout (the database's .agents/) out of `git status` and
    `git add -A` (issue 15, L9). Nothing when it is outside the checkout."""
    try:
        repo = _repo(repo_path)
    except InvalidInput:
        return
    top = Path(os.path.realpath(repo.working_tree_dir or repo.working_dir))
    d = Path(os.path.realpath(directory))
    if d != top and top in d.parents:
        _exclude(repo, "/" + d.relative_to(top).as_posix() + "/")


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
