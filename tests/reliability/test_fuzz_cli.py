"""Fuzzing both CLIs' arguments, ids, bodies and payloads (hypothesis).

For every generated command: the exit status is a documented one (never 50), stdout is exactly
one JSON envelope, and a command that failed left the database exactly as it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orch_console.console.cli import inbox as inbox_cli
from orch_console.console.cli import orch as orch_cli
from orch_console.store import Store, dispatch, inbox, runs
from tests.conftest import db_snapshot

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
DOCUMENTED = {0, 10, 20, 30, 40}

NASTY = ["../x", "a b", "-rf", "x;rm", "", " ", "$(id)", "`id`", "a" * 65, "é", "x\x00y", "--json", "T1/../T2",
         "[bold]", "\x1b[5m", "thr_../../etc", ".hidden", "a..b", "x.lock", "-", "--", "%s%n"]
TEXT = st.one_of(st.text(max_size=60), st.sampled_from(["[/bold]", "[link=x]y", "\x1b]8;;http://x\x07z",
                                                       "\x1b[5mblink", "\ud800", "line\nline", "{}", "null"]))
PAYLOAD = st.one_of(st.sampled_from(['{"a": 1}', "[1,2]", "{bad", "", "null", '"x"', "{" * 2000, "1e999",
                                     '{"q": "\\ud800"}']), st.text(max_size=30))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("fuzz")
    db = str(d / "coord.db")
    s = Store(db)
    runs.run_init(s, run_id="R", goal="fuzz")
    for t in ("T1", "T2", "T3"):
        runs.task_add(s, run_id="R", task_id=t, title=t, default_to="w1")
    runs.dep_add(s, run_id="R", task_id="T3", depends_on="T1")
    th = dispatch.dispatch(s, run_id="R", task_id="T1", execution_mode="analysis")["attempt"]["thread_id"]
    inbox.claim(s, agent="w1", thread_id=th)
    s.close()
    return {"db": db, "thread": th, "dir": d}


def ids(valid: list[str]) -> st.SearchStrategy[str]:
    good = st.sampled_from(valid)
    return st.one_of(good, good, good, good, st.sampled_from(NASTY), st.text(max_size=12))


def commands(thread: str) -> st.SearchStrategy[tuple[str, list[str]]]:
    run, task, agent, th = ids(["R", "nope"]), ids(["T1", "T2", "T3", "T9"]), ids(["w1", "w2", "leader"]), \
        ids([thread, "thr_missing"])
    opt = lambda flag, strat: st.one_of(st.just([]), strat.map(lambda v: [flag, v]))  # noqa: E731
    orch = st.one_of(
        st.tuples(run, st.text(max_size=20)).map(lambda a: ["run", "init", "--run", a[0], "--goal", a[1]]),
        st.tuples(run, task, TEXT, opt("--default-to", agent), opt("--path", TEXT), opt("--priority", st.text(max_size=4)))
        .map(lambda a: ["task", "add", "--run", a[0], "--task", a[1], "--title", a[2], *a[3], *a[4], *a[5]]),
        st.tuples(run, task, task).map(lambda a: ["dep", "add", "--run", a[0], "--task", a[1], "--depends-on", a[2]]),
        st.tuples(run, task, st.sampled_from(["analysis", "bogus", "code"]), opt("--to", agent), opt("--body", TEXT))
        .map(lambda a: ["dispatch", "--run", a[0], "--task", a[1], "--execution-mode", a[2],
                        "--repo-path", "/nonexistent/repo", *a[3], *a[4]]),
        st.tuples(run, task, opt("--body", TEXT), opt("--payload-json", PAYLOAD))
        .map(lambda a: ["answer", "--run", a[0], "--task", a[1], *a[2], *a[3]]),
        st.tuples(run, task, opt("--to", agent), opt("--body", TEXT)).map(lambda a: ["retry", "--run", a[0], "--task", a[1], *a[2], *a[3]]),
        st.tuples(run, task, agent).map(lambda a: ["reassign", "--run", a[0], "--task", a[1], "--to", a[2]]),
        st.tuples(run, opt("--task", task)).map(lambda a: ["cancel", "--run", a[0], *a[1]]),
        st.tuples(run, opt("--task", task), opt("--attempt", st.text(max_size=3))).map(
            lambda a: ["cleanup", "--run", a[0], *a[1], *a[2]]),
        run.map(lambda r: ["status", "--run", r]), run.map(lambda r: ["blocked", "--run", r]),
        run.map(lambda r: ["plan", "--run", r]), run.map(lambda r: ["reconcile", "--run", r]),
        st.tuples(run, st.text(max_size=20)).map(lambda a: ["wait", "--run", a[0], "--for", a[1], "--timeout-seconds", "0.01"]),
        st.tuples(run, st.sampled_from(["md", "json", "html", "pdf"])).map(lambda a: ["report", "--run", a[0], "--format", a[1]]),
        st.tuples(run, task).map(lambda a: ["verify", "status", "--run", a[0], "--task", a[1]]),
        st.lists(st.one_of(st.text(max_size=10), st.sampled_from(["-h", "--help", "run", "task", "--run"])), max_size=4),
    ).map(lambda argv: ("orch", argv))
    inb = st.one_of(
        st.tuples(agent, agent, TEXT, opt("--thread", th), opt("--payload-json", PAYLOAD), opt("--kind", st.text(max_size=8)))
        .map(lambda a: ["send", "--from", a[0], "--to", a[1], "--subject", a[2], *a[3], *a[4], *a[5]]),
        st.tuples(agent, th, opt("--lease-seconds", st.text(max_size=5))).map(lambda a: ["claim", "--agent", a[0], "--thread", a[1], *a[2]]),
        st.tuples(agent, th).map(lambda a: ["renew", "--agent", a[0], "--thread", a[1]]),
        st.tuples(agent, th, st.sampled_from(["in_progress", "blocked", "done", ""]), TEXT, opt("--payload-json", PAYLOAD),
                  opt("--body", TEXT))
        .map(lambda a: ["update", "--agent", a[0], "--thread", a[1], "--status", a[2], "--summary", a[3], *a[4], *a[5]]),
        st.tuples(agent, th, TEXT, opt("--kind", st.text(max_size=8)), opt("--payload-json", PAYLOAD))
        .map(lambda a: ["reply", "--from", a[0], "--thread", a[1], "--summary", a[2], *a[3], *a[4]]),
        st.tuples(st.sampled_from(["done", "fail"]), agent, th, TEXT).map(
            lambda a: [a[0], "--agent", a[1], "--thread", a[2], "--summary", a[3]]),
        st.tuples(agent, th).map(lambda a: ["cancel", "--agent", a[0], "--thread", a[1]]),
        st.tuples(agent, opt("--status", st.text(max_size=12)), opt("--limit", st.text(max_size=3))).map(
            lambda a: ["fetch", "--agent", a[0], *a[1], *a[2]]),
        st.tuples(th, opt("--agent", agent)).map(lambda a: ["show", "--thread", a[0], "--mark-read", *a[1]]),
        st.tuples(th, agent).map(lambda a: ["wait-reply", "--thread", a[0], "--agent", a[1], "--timeout-seconds", "0.01"]),
        st.lists(st.text(max_size=10), max_size=4),
    ).map(lambda argv: ("inbox", argv))
    return st.one_of(orch, inb)


def run_cli(exe: str, argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    main = orch_cli.main if exe == "orch" else inbox_cli.main
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert "Traceback" not in err.getvalue(), err.getvalue()
    return code, out.getvalue()


def test_fuzzed_commands_keep_the_contract(base: dict) -> None:
    cwd = os.getcwd()
    os.chdir(base["dir"])  # nothing a fuzzed command writes lands in the checkout
    seen = {"ok": 0, "failed": 0}
    try:
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(commands(base["thread"]))
        def check(cmd: tuple[str, list[str]]) -> None:
            exe, argv = cmd
            if any("\x00" in a for a in argv):
                return  # the OS cannot pass NUL in argv; covered by the store's own validation
            before = db_snapshot(base["db"])
            code, out = run_cli(exe, ["--db", base["db"], "--json", *argv])
            assert code in DOCUMENTED, (exe, argv, code, out)
            lines = [ln for ln in out.splitlines() if ln.strip()]
            assert len(lines) == 1, (exe, argv, out)
            doc = json.loads(lines[0])
            assert doc["ok"] is (code == 0)
            if code != 0:
                assert doc["error"]["code"] in ("no_matching_work", "lease_conflict", "invalid_input",
                                                "invalid_state", "not_found")
                assert db_snapshot(base["db"]) == before, (exe, argv, doc)
                seen["failed"] += 1
            else:
                seen["ok"] += 1

        check()
    finally:
        os.chdir(cwd)
    assert seen["ok"] > 0 and seen["failed"] > 0
    print(f"fuzz: {seen['ok']} succeeded, {seen['failed']} failed cleanly")


def test_json_envelope_is_one_ascii_line_whatever_the_worker_wrote(tmp_path: Path) -> None:
    """C1 controls (\\x85 is a line break to str.splitlines, \\x9b is CSI to some terminals) and
    U+2028 in stored text are escaped in the envelope."""
    db = str(tmp_path / "c.db")
    code, out = run_cli("orch", ["--db", db, "--json", "run", "init", "--run", "r", "--goal", "a\x85b\x9b[2Jc\u2028d"])
    assert code == 0
    assert out.isascii() and len(out.splitlines()) == 1
    assert json.loads(out)["data"]["run"]["goal"] == "a\x85b\x9b[2Jc\u2028d"
