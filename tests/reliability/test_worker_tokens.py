"""Issue 15, worker tokens: a launched attempt gets ORCH_TOKEN; with it `inbox` acts only on that
attempt's thread as its agent, leader-only commands and kinds refuse it; a launched attempt's
thread takes worker writes only with its token (run setting require_worker_tokens, on by default);
hand-run threads work as before; every refusal is a token_refused event."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.store import Store
from tests.conftest import INBOX, ORCH, Cli, db_snapshot, git_env


def _profiles(cli: Cli, text: str) -> None:
    (Path(cli.db).parent / "orch.toml").write_text(text)


@pytest.fixture
def site(cli: Cli) -> Iterator[Cli]:
    yield cli
    s = Store(cli.db)
    try:
        for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(cli.db, dict(a), grace=0.3)
        launcher.kill_server(cli.db)
    finally:
        s.close()


def _thread(cli: Cli, task: str, run: str = "r") -> str:
    st = cli.ok("orch", "status", "--run", run)
    return [t for t in st["tasks"] if t["task_id"] == task][0]["latest_attempt"]["thread_id"]


def _as_worker(cli: Cli, token: str, exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = git_env() | {"ORCH_TOKEN": token}
    return subprocess.run([exe, "--db", cli.db, "--json", *args], capture_output=True, text=True, timeout=60,
                          cwd=cli.cwd, env=env)


def _refused(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 30, p.stdout + p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "invalid_input", doc
    assert doc["error"]["message"].startswith("refused:"), doc
    return doc["error"]["message"]


def _refusals(cli: Cli) -> int:
    s = Store(cli.db)
    try:
        return int(s.scalar("SELECT count(*) FROM events WHERE event_type='token_refused'"))
    finally:
        s.close()


@pytest.fixture
def launched(site: Cli, tmp_path: Path) -> dict:
    """Two runs; r/T1 launched with a worker that writes its ORCH_TOKEN to a file and sleeps."""
    cli = site
    tokfile = tmp_path / "token.txt"
    _profiles(cli, f'[agents.w]\ncommand = "printf %s \\"$ORCH_TOKEN\\" > {tokfile}; exec sleep 60"\n'
                   f'runtime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "run", "init", "--run", "other", "--goal", "g")
    for run, task in (("r", "T1"), ("r", "T2"), ("other", "O1")):
        cli.ok("orch", "task", "add", "--run", run, "--task", task, "--title", task, "--default-to", "w",
               "--required-check", "tests")
        cli.ok("orch", "dispatch", "--run", run, "--task", task, "--execution-mode", "analysis")
    s = Store(cli.db)
    try:
        launcher.launch(s, run_id="r", task_id="T1", profile="w")
    finally:
        s.close()
    token = ""
    deadline = time.monotonic() + 15
    while not token and time.monotonic() < deadline:
        token = tokfile.read_text() if tokfile.exists() else ""
        time.sleep(0.05)
    assert token.startswith("orcht_")
    s = Store(cli.db)
    try:   # only the hash is stored
        assert s.scalar("SELECT count(*) FROM attempt_tokens") == 1
        assert token not in json.dumps(db_snapshot(cli.db))
    finally:
        s.close()
    return {"cli": cli, "token": token, "t1": _thread(cli, "T1"), "t2": _thread(cli, "T2"),
            "o1": _thread(cli, "O1", "other")}


def test_token_works_on_its_own_thread_as_its_agent(launched: dict) -> None:
    cli, tok, t1 = launched["cli"], launched["token"], launched["t1"]
    for args in (("claim", "--thread", t1), ("update", "--thread", t1, "--status", "in_progress", "--summary", "go"),
                 ("--agent", "w", "renew", "--thread", t1), ("show", "--thread", t1),
                 ("done", "--thread", t1, "--summary", "finished")):
        p = _as_worker(cli, tok, INBOX, *args)
        assert p.returncode == 0, p.stdout + p.stderr
    assert _refusals(cli) == 0


def test_token_cannot_answer_as_the_leader(launched: dict) -> None:
    cli, tok, t1 = launched["cli"], launched["token"], launched["t1"]
    assert _as_worker(cli, tok, INBOX, "claim", "--thread", t1).returncode == 0
    _as_worker(cli, tok, INBOX, "update", "--thread", t1, "--status", "blocked", "--summary", "Q?")
    before = db_snapshot(cli.db)
    _refused(_as_worker(cli, tok, INBOX, "reply", "--from", "leader", "--to", "w", "--thread", t1, "--summary", "yes"))
    _refused(_as_worker(cli, tok, INBOX, "send", "--from", "w", "--to", "w", "--thread", t1, "--kind", "answer",
                        "--summary", "yes"))
    _refused(_as_worker(cli, tok, INBOX, "--agent", "leader", "update", "--thread", t1, "--status", "in_progress",
                        "--summary", "x"))
    _refused(_as_worker(cli, tok, ORCH, "answer", "--run", "r", "--task", "T1", "--body", "yes"))
    after = db_snapshot(cli.db)
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
    assert _refusals(cli) == 4


def test_token_cannot_act_on_another_thread_or_run(launched: dict) -> None:
    cli, tok = launched["cli"], launched["token"]
    before = db_snapshot(cli.db)
    for th in (launched["t2"], launched["o1"]):
        _refused(_as_worker(cli, tok, INBOX, "claim", "--thread", th))
        _refused(_as_worker(cli, tok, INBOX, "--agent", "w", "send", "--to", "w", "--thread", th, "--kind", "progress",
                            "--summary", "planted"))
        _refused(_as_worker(cli, tok, INBOX, "cancel", "--thread", th))
        _refused(_as_worker(cli, tok, INBOX, "show", "--thread", th))
    _refused(_as_worker(cli, tok, INBOX, "send", "--from", "w", "--to", "x", "--subject", "new", "--run", "other"))
    _refused(_as_worker(cli, tok, ORCH, "task", "add", "--run", "other", "--task", "X", "--title", "x"))
    _refused(_as_worker(cli, tok, ORCH, "cancel", "--run", "other"))
    after = db_snapshot(cli.db)
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
    assert _refusals(cli) == 11


def test_token_cannot_record_a_check(launched: dict) -> None:
    cli, tok, t1 = launched["cli"], launched["token"], launched["t1"]
    assert _as_worker(cli, tok, INBOX, "claim", "--thread", t1).returncode == 0
    assert _as_worker(cli, tok, INBOX, "done", "--thread", t1, "--summary", "done").returncode == 0
    st = cli.ok("orch", "status", "--run", "r")
    assert [t["status"] for t in st["tasks"] if t["task_id"] == "T1"] == ["verifying"]
    _refused(_as_worker(cli, tok, ORCH, "verify", "record", "--run", "r", "--task", "T1", "--check", "tests",
                        "--status", "passed"))
    st = cli.ok("orch", "status", "--run", "r")
    assert [t["status"] for t in st["tasks"] if t["task_id"] == "T1"] == ["verifying"]
    # reads stay open to the worker
    assert _as_worker(cli, tok, ORCH, "status", "--run", "r").returncode == 0


def test_launched_thread_refuses_worker_writes_without_its_token(launched: dict) -> None:
    cli, t1 = launched["cli"], launched["t1"]
    before = db_snapshot(cli.db)
    cli.err("inbox", "--agent", "mallory", "claim", "--thread", t1, code="invalid_input", exit_code=30)
    cli.err("inbox", "send", "--from", "mallory", "--to", "w", "--thread", t1, "--kind", "progress", "--summary", "x",
            code="invalid_input", exit_code=30)
    other = Store(cli.db)
    try:
        assert other.scalar("SELECT status FROM threads WHERE thread_id=?", (t1,)) == "pending"
    finally:
        other.close()
    after = db_snapshot(cli.db)
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
    assert _refusals(cli) == 2
    # the leader still answers and steers without a token
    cli.ok("inbox", "reply", "--from", "leader", "--to", "w", "--thread", t1, "--kind", "control", "--summary", "hi")


def test_require_worker_tokens_off_lets_token_less_workers_write(launched: dict) -> None:
    cli, t1 = launched["cli"], launched["t1"]
    cli.ok("orch", "run", "config", "--run", "r", "--set", "require_worker_tokens=false")
    cli.ok("inbox", "--agent", "w", "claim", "--thread", t1)


def test_hand_run_threads_need_no_token(launched: dict) -> None:
    cli, t2 = launched["cli"], launched["t2"]
    cli.ok("inbox", "--agent", "w", "claim", "--thread", t2)
    cli.ok("inbox", "--agent", "w", "done", "--thread", t2, "--summary", "ok")
    assert _refusals(cli) == 0


def test_an_unknown_token_is_refused(launched: dict) -> None:
    cli, t2 = launched["cli"], launched["t2"]
    _refused(_as_worker(cli, "orcht_forged", INBOX, "--agent", "w", "claim", "--thread", t2))
    assert _refusals(cli) == 1


def test_the_sim_worker_finishes_with_its_token(site: Cli) -> None:
    cli = site
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    spec = Path(cli.db).parent / "spec.md"
    spec.write_text("sim-script: progress,done\n")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "S", "--title", "s", "--default-to", "sim",
           "--spec-file", str(spec))
    env = git_env() | {"ORCH_SIM_STEP_SECONDS": "0.05"}
    p = subprocess.run([ORCH, "--db", cli.db, "--json", "dispatch", "--run", "r", "--task", "S", "--execution-mode",
                        "analysis", "--launch", "--profile", "sim"], capture_output=True, text=True, env=env,
                       cwd=cli.cwd, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = [t["status"] for t in cli.ok("orch", "status", "--run", "r")["tasks"]][0]
        if status in ("done", "failed", "verifying"):
            break
        time.sleep(0.2)
    assert status in ("done", "verifying"), status
    assert _refusals(cli) == 0


# -- the watcher never runs a profile changed after the run started without the leader's word ---
def test_watcher_does_not_launch_with_a_profile_changed_after_the_run_started(site: Cli, tmp_path: Path) -> None:
    from orch_console.console.runtime.watcher import Watcher

    cli = site
    pwn = tmp_path / "PWN_via_toml"
    _profiles(cli, '[agents.w]\ncommand = "exec sleep 60"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "run", "config", "--run", "r", "--set", "profile=w", "--set", "retry_backoff_seconds=0")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "analysis", "--launch",
           "--profile", "w")
    t1 = _thread(cli, "T1")
    # the worker rewrites its profile, then fails: the watcher's retry would run the new command
    _profiles(cli, f'[agents.w]\ncommand = "touch {pwn}; exec sleep 60"\nruntime = "process"\n')
    s = Store(cli.db)
    try:
        tok = s.one("SELECT 1 FROM attempt_tokens WHERE thread_id=?", (t1,))
        assert tok is not None
    finally:
        s.close()
    cli.ok("orch", "run", "config", "--run", "r", "--set", "require_worker_tokens=false")
    cli.ok("inbox", "--agent", "w", "claim", "--thread", t1)
    cli.ok("inbox", "--agent", "w", "fail", "--thread", t1, "--summary", "broke")
    w = Watcher(cli.db, "r")
    try:
        for _ in range(3):
            w.tick(force_liveness=True)
    finally:
        w.close()
    time.sleep(0.3)
    assert not pwn.exists()
    s = Store(cli.db)
    try:
        a2 = dict(s.one("SELECT * FROM attempts WHERE task_id='T1' AND attempt_no=2"))
        assert a2["runtime"] == ""                              # retried, not launched
        assert s.scalar("SELECT count(*) FROM events WHERE event_type='profiles_changed'") == 1
    finally:
        s.close()
    # the leader checks the file and confirms it: the launch goes ahead
    cli.ok("orch", "run", "config", "--run", "r", "--set", "profiles_sha=current")
    w = Watcher(cli.db, "r")
    try:
        w.tick(force_liveness=True)
    finally:
        w.close()
    s = Store(cli.db)
    try:
        assert s.scalar("SELECT runtime FROM attempts WHERE task_id='T1' AND attempt_no=2") == "process"
    finally:
        s.close()


# -- fuzz: whatever a token holder runs, it never writes outside its own attempt ----------------------
def test_fuzzed_commands_with_a_worker_token_stay_in_their_attempt(tmp_path: Path) -> None:
    import contextlib
    import io

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from orch_console.console.cli import inbox as inbox_cli
    from orch_console.console.cli import orch as orch_cli
    from orch_console.store import dispatch, runs, tokens
    from orch_console.store import runtime as rt

    db = str(tmp_path / "coord.db")
    s = Store(db)
    runs.run_init(s, run_id="R", goal="g")
    runs.run_init(s, run_id="O", goal="g")
    for run, t in (("R", "T1"), ("R", "T2"), ("O", "O1")):
        runs.task_add(s, run_id=run, task_id=t, title=t, default_to="w1", required_checks=["tests"])
        dispatch.dispatch(s, run_id=run, task_id=t, execution_mode="analysis")
    mine = rt.get_attempt(s, "R", "T1")
    token, h = tokens.new_token()
    rt.record_launch_intent(s, thread_id=mine["thread_id"], runtime="process", runtime_ref="", profile="w1",
                            brief_path="", log_path="", token_hash=h)
    threads = [r[0] for r in s.all("SELECT thread_id FROM threads ORDER BY thread_id")]
    s.close()
    own = mine["thread_id"]

    th = st.sampled_from(threads + ["thr_missing"])
    agent = st.sampled_from(["w1", "w2", "leader", "watcher"])
    kind = st.sampled_from(["progress", "question", "result", "answer", "control", "task", "event"])
    text = st.text(max_size=12)
    inb = st.one_of(
        st.tuples(th).map(lambda a: ["claim", "--thread", a[0]]),
        st.tuples(agent, th).map(lambda a: ["--agent", a[0], "claim", "--thread", a[1]]),
        st.tuples(th, st.sampled_from(["in_progress", "blocked"]), text).map(
            lambda a: ["update", "--thread", a[0], "--status", a[1], "--summary", a[2] or "s"]),
        st.tuples(st.sampled_from(["done", "fail"]), th, text).map(lambda a: [a[0], "--thread", a[1], "--summary", a[2] or "s"]),
        st.tuples(agent, th, kind, text).map(
            lambda a: ["send", "--from", a[0], "--to", "w1", "--thread", a[1], "--kind", a[2], "--summary", a[3] or "s"]),
        st.tuples(agent, text).map(lambda a: ["send", "--from", a[0], "--to", "w1", "--subject", a[1] or "s", "--run", "O"]),
        st.tuples(agent, th, st.sampled_from(["answer", "control"])).map(
            lambda a: ["reply", "--from", a[0], "--to", "w1", "--thread", a[1], "--kind", a[2], "--summary", "x"]),
        st.tuples(th).map(lambda a: ["cancel", "--thread", a[0]]),
        st.tuples(th).map(lambda a: ["show", "--thread", a[0]]),
    ).map(lambda argv: ("inbox", argv))
    orch = st.one_of(
        st.sampled_from([["answer", "--run", "R", "--task", "T1", "--body", "x"], ["cancel", "--run", "O"],
                         ["verify", "record", "--run", "R", "--task", "T1", "--check", "tests", "--status", "passed"],
                         ["task", "add", "--run", "O", "--task", "X", "--title", "x"], ["retry", "--run", "R", "--task", "T2"],
                         ["run", "config", "--run", "R", "--set", "require_worker_tokens=false"],
                         ["status", "--run", "R"]]),
    ).map(lambda argv: ("orch", argv))

    def others() -> list:
        c = Store(db)
        try:
            return [tuple(r) for r in c.all("SELECT m.* FROM messages m WHERE thread_id<>? ORDER BY message_id", (own,))] \
                + [tuple(r) for r in c.all("SELECT * FROM threads WHERE thread_id<>? ORDER BY thread_id", (own,))] \
                + [tuple(r) for r in c.all("SELECT run_id, config_json FROM runs ORDER BY run_id")] \
                + [tuple(r) for r in c.all("SELECT * FROM checks WHERE NOT (run_id='R' AND task_id='T1')"
                                           " ORDER BY run_id, task_id, name")] \
                + [tuple(r) for r in c.all("SELECT run_id, task_id, status FROM tasks WHERE NOT (run_id='R' AND task_id='T1')"
                                             " ORDER BY run_id, task_id")]
        finally:
            c.close()

    baseline = others()
    seen = {"ok": 0, "refused": 0}
    old = os.environ.get("ORCH_TOKEN")
    os.environ["ORCH_TOKEN"] = token
    try:
        @settings(max_examples=int(os.environ.get("TOKEN_FUZZ_EXAMPLES", "300")), deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.one_of(inb, orch))
        def check(cmd: tuple[str, list[str]]) -> None:
            exe, argv = cmd
            out, err = io.StringIO(), io.StringIO()
            main = orch_cli.main if exe == "orch" else inbox_cli.main
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["--db", db, "--json", *argv])
            assert code in (0, 10, 20, 30, 40), (argv, code, out.getvalue())
            assert "Traceback" not in err.getvalue()
            assert len([ln for ln in out.getvalue().splitlines() if ln.strip()]) == 1
            seen["ok" if code == 0 else "refused"] += 1
            assert others() == baseline, (exe, argv, out.getvalue())

        check()
    finally:
        if old is None:
            os.environ.pop("ORCH_TOKEN", None)
        else:
            os.environ["ORCH_TOKEN"] = old
    print(f"token fuzz: {seen['ok']} allowed, {seen['refused']} refused; nothing outside the attempt changed")
    assert seen["refused"] > 0
