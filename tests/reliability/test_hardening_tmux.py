"""Issue 15, tmux: no string orch hands to tmux is format-expanded or parsed as an option (H1, M4,
L1), session names are unique across runs and targets exact (M2, L3). Real tmux on a private
server per database, killed in teardown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import Store, dispatch, runs
from orch_console.store.errors import InvalidInput
from tests.conftest import make_repo


def wait_for(cond, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Site:
    """A database and a repository under a directory whose name tmux would like to expand."""

    def __init__(self, base: Path, profiles: str) -> None:
        self.base = base
        self.repo = make_repo(base / "repo")
        (base / "agents").mkdir(parents=True, exist_ok=True)
        (base / "agents" / "orch.toml").write_text(profiles)
        self.store = Store(str(base / "agents" / "coord.db"))

    def close(self) -> None:
        for a in self.store.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(self.store.path, dict(a), grace=0.3)
        launcher.kill_server(self.store.path)
        self.store.close()


@pytest.fixture
def sites() -> Iterator[list[Site]]:
    made: list[Site] = []
    yield made
    for s in made:
        s.close()


def _site(sites: list[Site], base: Path, profiles: str) -> Site:
    s = Site(base, profiles)
    sites.append(s)
    return s


PROBE = """
[agents.probe]
command = "{{ pwd; git branch --show-current; }} > {out}; echo started; sleep 30"
runtime = "tmux"
"""


@pytest.mark.parametrize("dirname", ["C#Tools", "a#{b}c", "p#S#D##x", "pct%Y%%d"])
def test_h1_tmux_agent_starts_in_its_worktree_whatever_the_path(tmp_path: Path, sites: list[Site],
                                                                dirname: str) -> None:
    out = tmp_path / "seen.txt"
    s = _site(sites, tmp_path / dirname, PROBE.format(out=out))
    runs.run_init(s.store, run_id="r", goal="g")
    runs.task_add(s.store, run_id="r", task_id="T1", title="t", default_to="probe")
    d = dispatch.dispatch(s.store, run_id="r", task_id="T1", execution_mode="code", repo_path=str(s.repo))
    res = launcher.launch(s.store, run_id="r", task_id="T1", profile="probe")
    wt = d["attempt"]["worktree_path"]
    assert res["cwd"] == wt
    seen = wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2 and out.read_text())
    pwd, branch = seen.splitlines()[:2]
    assert Path(pwd).resolve() == Path(wt).resolve()
    assert branch == "orch/r/T1/a1"
    # the pipe-pane log lands in the attempt's own log file, not somewhere tmux rewrote
    log = Path(res["attempt"]["log_path"])
    assert wait_for(lambda: log.exists() and "started" in log.read_text())


def test_h1_hash_paren_in_path_runs_nothing(tmp_path: Path, sites: list[Site]) -> None:
    pwn = tmp_path / "pwn_orch"
    s = _site(sites, tmp_path / f"proj#(touch {pwn})", PROBE.format(out=tmp_path / "seen.txt"))
    runs.run_init(s.store, run_id="r", goal="g")
    runs.task_add(s.store, run_id="r", task_id="T1", title="t", default_to="probe")
    dispatch.dispatch(s.store, run_id="r", task_id="T1", execution_mode="code", repo_path=str(s.repo))
    res = launcher.launch(s.store, run_id="r", task_id="T1", profile="probe")
    log = Path(res["attempt"]["log_path"])
    wait_for(lambda: log.exists() and "started" in log.read_text())
    time.sleep(0.3)
    assert not pwn.exists()


SLEEPER = """
[agents.sleeper]
command = "echo up; exec sleep 60"
runtime = "tmux"
"""


def test_m2_session_names_are_unique_across_runs() -> None:
    names = {launcher.session_name("a-b", "T1", 1), launcher.session_name("a", "b-T1", 1),
             launcher.session_name("a.b", "T1", 1), launcher.session_name("a_b", "T1", 1),
             launcher.session_name("r", "T1", 11), launcher.session_name("r", "T1", 1)}
    assert len(names) == 6
    assert launcher.session_name("a-b", "T1", 1) == launcher.session_name("a-b", "T1", 1)


def test_m2_colliding_ids_get_two_live_sessions_and_the_watcher_kills_neither(tmp_path: Path,
                                                                              sites: list[Site]) -> None:
    s = _site(sites, tmp_path / "tm", SLEEPER)
    for run_id, task_id in (("a-b", "T1"), ("a", "b-T1")):
        runs.run_init(s.store, run_id=run_id, goal="g")
        runs.task_add(s.store, run_id=run_id, task_id=task_id, title="t", default_to="sleeper")
        dispatch.dispatch(s.store, run_id=run_id, task_id=task_id, execution_mode="analysis")
        launcher.launch(s.store, run_id=run_id, task_id=task_id, profile="sleeper")
    refs = [r[0] for r in s.store.all("SELECT runtime_ref FROM attempts ORDER BY run_id")]
    assert len(set(refs)) == 2
    w = Watcher(s.store.path)
    try:
        w.tick(force_liveness=True)
    finally:
        w.close()
    panes = launcher.tmux_panes(s.store.path)
    assert all(r in panes and not panes[r]["dead"] for r in refs)
    assert {r[0] for r in s.store.all("SELECT status FROM attempts")} == {"pending"}


def test_l3_targets_are_exact_not_prefixes(tmp_path: Path, sites: list[Site]) -> None:
    s = _site(sites, tmp_path / "l3", SLEEPER)
    runs.run_init(s.store, run_id="r", goal="g")
    runs.task_add(s.store, run_id="r", task_id="T1", title="t", default_to="sleeper")
    dispatch.dispatch(s.store, run_id="r", task_id="T1", execution_mode="analysis")
    res = launcher.launch(s.store, run_id="r", task_id="T1", profile="sleeper")
    ref = res["attempt"]["runtime_ref"]
    prefix = ref[:-3]
    assert launcher.stop(s.store.path, {"runtime": "tmux", "runtime_ref": prefix}) is False
    assert ref in launcher.tmux_panes(s.store.path)
    assert launcher.capture(s.store.path, {"runtime": "tmux", "runtime_ref": prefix}) == ""
    assert launcher.attach_argv(s.store.path, res["attempt"])[-1] == f"={ref}:"


READER = r"""
[agents.reader]
command = "while IFS= read -r l; do printf 'GOT[%s]\\n' \"$l\" >> {out}; done"
runtime = "tmux"
"""


def test_m4_keys_starting_with_dash_are_typed_literally(tmp_path: Path, sites: list[Site]) -> None:
    got = tmp_path / "got.txt"
    s = _site(sites, tmp_path / "sk", READER.format(out=got))
    runs.run_init(s.store, run_id="r", goal="g")
    runs.task_add(s.store, run_id="r", task_id="T1", title="t", default_to="reader")
    dispatch.dispatch(s.store, run_id="r", task_id="T1", execution_mode="analysis")
    launcher.launch(s.store, run_id="r", task_id="T1", profile="reader")
    time.sleep(0.5)
    sent = ["-R", "-l", "-1", "--force", "--", "-y", "y"]
    for text in sent:
        launcher.send_keys(s.store, run_id="r", task_id="T1", text=text)
        time.sleep(0.1)
    lines = wait_for(lambda: got.exists() and len(got.read_text().splitlines()) >= len(sent)
                     and got.read_text().splitlines())
    assert lines == [f"GOT[{t}]" for t in sent]


@pytest.mark.parametrize("text", ["y\ntouch X", "y\r", "a\x1b[201~b", "\x03", "x\x00"])
def test_l1_send_keys_refuses_newlines_and_control_characters(tmp_path: Path, sites: list[Site],
                                                              text: str) -> None:
    s = _site(sites, tmp_path / "l1", SLEEPER)
    runs.run_init(s.store, run_id="r", goal="g")
    runs.task_add(s.store, run_id="r", task_id="T1", title="t", default_to="sleeper")
    dispatch.dispatch(s.store, run_id="r", task_id="T1", execution_mode="analysis")
    launcher.launch(s.store, run_id="r", task_id="T1", profile="sleeper")
    before = s.store.scalar("SELECT count(*) FROM events")
    with pytest.raises(InvalidInput):
        launcher.send_keys(s.store, run_id="r", task_id="T1", text=text)
    assert s.store.scalar("SELECT count(*) FROM events") == before
