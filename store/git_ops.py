"""Git plumbing for landing (issue 14): everything here works on objects and refs, never on a
working tree, except the explicit temporary worktree of `--verify` and the fast-forward of a
clean checkout of the target (land.py decides when).

Plain `git` subprocesses rather than GitPython: landing is a handful of plumbing commands
(merge-tree, commit-tree, update-ref), each cheaper as one exec than through GitPython's object
layer, and the bench compares their cost against a bare `git merge`.
"""

from __future__ import annotations

import os
import subprocess
from typing import NamedTuple

from .errors import InvalidInput, InvalidState

ZERO = "0" * 40
_IDENT_ENV = {"GIT_AUTHOR_NAME": "orch", "GIT_AUTHOR_EMAIL": "orch@localhost",
              "GIT_COMMITTER_NAME": "orch", "GIT_COMMITTER_EMAIL": "orch@localhost"}
_has_ident: dict[str, bool] = {}


class GitError(InvalidState):
    """A git command failed; the message carries git's own last line."""


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    if extra:
        env.update(extra)
    return env


def run(repo: str, *args: str, check: bool = True, input: str | bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, env=_env(env),
                       input=input if not isinstance(input, bytes) else input.decode(), stdin=None if input is not None
                       else subprocess.DEVNULL)
    if check and p.returncode != 0:
        last = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise GitError(f"git {args[0]} failed: {last[-1] if last else f'exit {p.returncode}'}")
    return p


def out(repo: str, *args: str, **kw: object) -> str:
    return run(repo, *args, **kw).stdout.strip()  # type: ignore[arg-type]


def ident_env(repo: str) -> dict[str, str]:
    """Author/committer for commits orch makes: the repository's own identity if it has one,
    else `orch <orch@localhost>` (commit-tree refuses to run without one)."""
    if repo not in _has_ident:
        _has_ident[repo] = run(repo, "var", "GIT_COMMITTER_IDENT", check=False).returncode == 0
    if _has_ident[repo]:
        return {}
    return {k: v for k, v in _IDENT_ENV.items() if k not in os.environ}


def toplevel(path: str) -> str:
    p = run(path, "rev-parse", "--show-toplevel", check=False)
    if p.returncode != 0:
        raise InvalidInput(f"{path} is not inside a git repository")
    return p.stdout.strip()


def common_dir(repo: str) -> str:
    d = out(repo, "rev-parse", "--git-common-dir")
    return d if os.path.isabs(d) else os.path.normpath(os.path.join(repo, d))


def rev(repo: str, ref: str) -> str | None:
    """The commit a ref names, or None."""
    p = run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else None


def branch_heads(repo: str, *patterns: str) -> dict[str, str]:
    """branch name -> commit, for refs/heads/<pattern> (one exec for any number of branches)."""
    text = out(repo, "for-each-ref", "--format=%(objectname) %(refname)", *[f"refs/heads/{p}" for p in patterns])
    heads = {}
    for line in text.splitlines():
        sha, _, ref = line.partition(" ")
        heads[ref[len("refs/heads/"):]] = sha
    return heads


def is_ancestor(repo: str, a: str, b: str) -> bool:
    return run(repo, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0


def check_branch_name(name: str) -> str:
    if not name or name.startswith("-") or subprocess.run(
            ["git", "check-ref-format", "--branch", name], capture_output=True, env=_env()).returncode != 0:
        raise InvalidInput(f"{name!r} is not a valid branch name")
    return name


def create_branch(repo: str, branch: str, commit: str) -> bool:
    """refs/heads/<branch> at commit if it does not exist yet (compare-and-swap on absence).
    True if this call created it."""
    p = run(repo, "update-ref", f"refs/heads/{branch}", commit, ZERO, check=False)
    if p.returncode == 0:
        return True
    if rev(repo, f"refs/heads/{branch}"):
        return False
    raise GitError(f"cannot create branch {branch}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")


def cas_ref(repo: str, branch: str, new: str, old: str) -> bool:
    """Move refs/heads/<branch> from old to new atomically; False if it no longer points at old."""
    p = run(repo, "update-ref", "-m", "orch land", f"refs/heads/{branch}", new, old, check=False)
    return p.returncode == 0


class MergeResult(NamedTuple):
    clean: bool
    tree: str
    conflicts: list[str]
    messages: list[str]


def merge_tree(repo: str, ours: str, theirs: str) -> MergeResult:
    """Three-way merge of two commits in the object store only (`git merge-tree --write-tree`)."""
    p = run(repo, "merge-tree", "--write-tree", "-z", "--name-only", ours, theirs, check=False)
    if p.returncode not in (0, 1):
        last = (p.stderr.strip() or "merge-tree failed").splitlines()[-1]
        raise GitError(f"git merge-tree failed: {last}")
    text = p.stdout
    tree, _, rest = text.partition("\0")
    files: list[str] = []
    messages: list[str] = []
    if p.returncode == 1:
        names, _, info = rest.partition("\0\0")
        files = sorted({f for f in names.split("\0") if f})
        # then the messages, each <count>\0<path>...\0<type>\0<message>\0
        parts = info.split("\0")
        i = 0
        while i < len(parts):
            if not parts[i]:
                i += 1
                continue
            try:
                n = int(parts[i])
            except ValueError:
                break
            if i + n + 2 < len(parts):
                messages.append(parts[i + n + 2].strip())
            i += n + 3
    return MergeResult(p.returncode == 0, tree.strip(), files, messages)


def tree_of(repo: str, commit: str) -> str:
    return out(repo, "rev-parse", f"{commit}^{{tree}}")


def commit_tree(repo: str, tree: str, parents: list[str], message: str,
                env: dict[str, str] | None = None) -> str:
    args = ["commit-tree", tree]
    for p in parents:
        args += ["-p", p]
    return out(repo, *args, input=message, env={**ident_env(repo), **(env or {})})


def commits_between(repo: str, base: str, tip: str) -> list[str]:
    """Non-merge commits reachable from tip and not from base, oldest first."""
    text = out(repo, "rev-list", "--reverse", "--topo-order", f"{base}..{tip}")
    return [c for c in text.split() if c]


def replay(repo: str, onto: str, commits: list[str], index_file: str) -> str:
    """Rebase without a working tree: apply each commit's patch to a private index seeded from
    `onto` and commit it with the original author and message. Raises GitError when a patch
    does not apply (the caller already knows the merge is clean, so that is rare)."""
    tip = onto
    env = {"GIT_INDEX_FILE": index_file}
    try:
        for c in commits:
            parents = out(repo, "rev-list", "--parents", "-n", "1", c).split()[1:]
            if len(parents) != 1:
                raise GitError(f"commit {c[:12]} is a merge; land it with --strategy merge or squash")
            run(repo, "read-tree", tip, env=env)
            patch = run(repo, "diff-tree", "-p", "--binary", "--full-index", parents[0], c).stdout
            if patch.strip():
                p = run(repo, "apply", "--cached", "--3way", "-", input=patch, env=env, check=False)
                if p.returncode != 0:
                    raise GitError(f"commit {c[:12]} does not apply onto the target; use --strategy merge")
            tree = out(repo, "write-tree", env=env)
            meta = out(repo, "log", "-1", "--format=%an%x00%ae%x00%ad%x00%B", "--date=raw", c)
            an, ae, ad, msg = (meta.split("\0", 3) + ["", "", "", ""])[:4]
            tip = commit_tree(repo, tree, [tip], msg or f"replayed {c[:12]}",
                              env={"GIT_AUTHOR_NAME": an, "GIT_AUTHOR_EMAIL": ae, "GIT_AUTHOR_DATE": ad})
    finally:
        try:
            os.unlink(index_file)
        except OSError:
            pass
    return tip


class Checkout(NamedTuple):
    path: str
    head: str      # the commit checked out
    dirty: bool


def revs(repo: str, *refs: str) -> list[str | None]:
    """Several commits (or trees, `X^{tree}`) in one exec; None for a ref that does not resolve."""
    p = run(repo, "rev-parse", *refs, check=False)
    got = p.stdout.split()
    if p.returncode == 0 and len(got) == len(refs):
        return list(got)
    return [rev(repo, r) if not r.endswith("^{tree}") else (
        run(repo, "rev-parse", "--verify", "--quiet", r, check=False).stdout.strip() or None) for r in refs]


def _head_files(repo: str) -> list[tuple[str, str]]:
    """(HEAD file, worktree path) for the main worktree and every linked one, read from disk:
    cheaper than `git worktree list` with hundreds of attempt worktrees."""
    common = common_dir_cached(repo)
    found = [(os.path.join(common, "HEAD"), os.path.dirname(common) if os.path.basename(common) == ".git" else "")]
    wts = os.path.join(common, "worktrees")
    try:
        names = os.listdir(wts)
    except OSError:
        names = []
    for n in names:
        try:
            with open(os.path.join(wts, n, "gitdir")) as f:
                path = os.path.dirname(f.read().strip())
        except OSError:
            continue
        found.append((os.path.join(wts, n, "HEAD"), path))
    return found


_common: dict[str, str] = {}


def common_dir_cached(repo: str) -> str:
    if repo not in _common:
        _common[repo] = common_dir(repo)
    return _common[repo]


def checkouts_of(repo: str, branch: str) -> list[Checkout]:
    """Worktrees (the main one included) that have refs/heads/<branch> checked out."""
    want = f"ref: refs/heads/{branch}"
    found: list[Checkout] = []
    for head_file, path in _head_files(repo):
        try:
            with open(head_file) as f:
                if f.read().strip() != want:
                    continue
        except OSError:
            continue
        if path and os.path.isdir(path):
            dirty = bool(out(path, "status", "--porcelain", "--untracked-files=no"))
            found.append(Checkout(path, "", dirty))
    return found


def dirty_files(worktree: str) -> list[str]:
    """Uncommitted changes (untracked files included, ignored files not) in a worktree."""
    if not os.path.isdir(worktree):
        return []
    text = out(worktree, "status", "--porcelain", "-z")
    return [e[3:] for e in text.split("\0") if len(e) > 3]


class PendingStatus:
    """`git status` of a worktree started in the background: the land runs its own plumbing
    meanwhile and reads the answer before anything is written."""

    def __init__(self, worktree: str) -> None:
        self.proc = None
        if os.path.isdir(worktree):
            self.proc = subprocess.Popen(["git", "-C", worktree, "status", "--porcelain", "-z"], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env())

    _files: list[str] | None = None

    def files(self) -> list[str]:
        if self.proc is None:
            return []
        if self._files is not None:
            return self._files
        so, se = self.proc.communicate()
        if self.proc.returncode != 0:
            raise GitError(f"git status failed: {(se.decode(errors='replace').strip().splitlines() or ['?'])[-1]}")
        self._files = [e[3:] for e in so.decode(errors="replace").split("\0") if len(e) > 3]
        return self._files

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def diff(repo: str, base: str, head: str, mode: str = "patch") -> str:
    args = ["diff", "--no-color", "--no-ext-diff"]
    if mode == "stat":
        args.append("--stat")
    elif mode == "name-only":
        args.append("--name-only")
    return run(repo, *args, base, head).stdout


def log_touching(repo: str, base: str, tip: str, files: list[str], limit: int = 10) -> list[str]:
    if not files:
        return []
    text = out(repo, "log", f"-{limit}", "--format=%h %s", f"{base}..{tip}", "--", *files)
    return [ln for ln in text.splitlines() if ln]
