"""`orch attention`: what waits on the leader, ranked by what answering it unblocks (critical path
first, then most unfinished work downstream, then longest wait), each with how long it waited."""

from __future__ import annotations

import time

from tests.conftest import Cli


def ask(cli: Cli, task: str, question: str) -> str:
    d = cli.ok("orch", "dispatch", "--run", "r", "--task", task, "--execution-mode", "analysis", "--to", f"w-{task}")
    thread = d["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", f"w-{task}", "--thread", thread)
    cli.ok("inbox", "update", "--agent", f"w-{task}", "--thread", thread, "--status", "blocked",
           "--summary", question, "--body", "details follow\nline two")
    return thread


def test_attention_ranks_critical_path_then_work_unblocked_then_age(cli: Cli) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    for t in ("Z", "X", "Y", "A", "B", "C", "D"):
        cli.ok("orch", "task", "add", "--run", "r", "--task", t, "--title", f"task {t}")
    for task, dep in (("B", "A"), ("C", "B"), ("D", "C"), ("Y", "X")):
        cli.ok("orch", "dep", "add", "--run", "r", "--task", task, "--depends-on", dep)
    ask(cli, "Z", "Z asks first, unblocks nothing")
    time.sleep(1.1)  # asked_at has second resolution: Z is strictly the oldest
    ask(cli, "X", "X unblocks Y")
    ask(cli, "A", "A heads the critical path A-B-C-D")
    d = cli.ok("orch", "attention", "--run", "r")
    assert [i["task_id"] for i in d["items"]] == ["A", "X", "Z"] and d["count"] == 3
    a, x, z = d["items"]
    assert (a["critical"], a["unblocks"], a["rank"]) == (True, 3, 1)
    assert (x["critical"], x["unblocks"]) == (False, 1)
    assert (z["critical"], z["unblocks"]) == (False, 0)
    assert a["kind"] == "question" and a["text"] == "A heads the critical path A-B-C-D" and a["agent"] == "w-A"
    assert z["waited_seconds"] >= 1.0 and z["waited_seconds"] >= x["waited_seconds"]
    text = cli.orch("attention", "--run", "r", json_out=False)
    assert text.returncode == 0
    lines = [ln for ln in text.stdout.splitlines() if ln.strip()]
    assert lines[1].split()[:3] == ["1", "A", "question"] and "3 *" in lines[1]
    assert "critical path" in lines[-1]


def test_attention_on_a_quiet_run_and_an_unknown_run(cli: Cli) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    assert cli.ok("orch", "attention", "--run", "r") == {"items": [], "count": 0}
    assert cli.orch("attention", "--run", "r", json_out=False).stdout.strip() == "nothing waits on the leader"
    p = cli.orch("attention", "--run", "nope")
    assert p.returncode == 40 and '"not_found"' in p.stdout
    p = cli.orch("attention", "--run", "bad id!")
    assert p.returncode == 30 and '"invalid_input"' in p.stdout
