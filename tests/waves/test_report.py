"""The wave report in md, json and html holds every task, attempt and answer."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orch_console.store import Store
from orch_console.store import dispatch, inbox, report, runs
from tests.conftest import ORCH


def finish(store: Store, task: str, agent: str, outcome: str = "done", payload: str | None = None,
           block: tuple[str, str] | None = None) -> None:
    a = dispatch.latest_attempt(store.conn, "r", task)
    inbox.claim(store, agent=agent, thread_id=a["thread_id"])
    if block:
        inbox.update(store, agent=agent, thread_id=a["thread_id"], status="blocked", summary=block[0])
        dispatch.answer(store, run_id="r", task_id=task, body=block[1])
    inbox.finish(store, agent=agent, thread_id=a["thread_id"], outcome=outcome, summary=f"{task} {outcome}",
                 payload_json=payload)


@pytest.fixture
def finished_run(store: Store) -> Store:
    runs.run_init(store, run_id="r", goal="Ship | the [bold]blog[/bold]")
    for t in ("A", "B", "C", "D"):
        runs.task_add(store, run_id="r", task_id=t, title=f"task {t} \x1b[5mblink", default_to=f"w{t}")
    runs.dep_add(store, run_id="r", task_id="B", depends_on="A")
    runs.dep_add(store, run_id="r", task_id="C", depends_on="A")
    runs.dep_add(store, run_id="r", task_id="D", depends_on="B")
    dispatch.dispatch(store, run_id="r", task_id="A", execution_mode="analysis")
    finish(store, "A", "wA", block=("Which auth?", "Email | password"),
           payload='{"pr_url": "https://example.com/pr/7", "ci_url": "https://ci.example.com/7"}')
    dispatch.dispatch(store, run_id="r", task_id="B", execution_mode="analysis")
    finish(store, "B", "wB", outcome="failed")
    dispatch.retry(store, run_id="r", task_id="B", body="try again, smaller")
    finish(store, "B", "wB")
    dispatch.dispatch(store, run_id="r", task_id="C", execution_mode="analysis")
    dispatch.cancel(store, run_id="r", task_id="C", reason="not needed")
    dispatch.dispatch(store, run_id="r", task_id="D", execution_mode="analysis")
    finish(store, "D", "wD")
    return store


def test_json_report_has_every_task_attempt_and_answer(finished_run: Store) -> None:
    data = json.loads(report.render(finished_run, run_id="r", fmt="json"))
    tasks = {t["task_id"]: t for w in data["waves"] for t in w["tasks"]}
    assert set(tasks) == {"A", "B", "C", "D"}
    assert [(a["attempt_no"], a["end_reason"]) for a in tasks["B"]["attempts"]] == [(1, "failed"), (2, "succeeded")]
    assert tasks["A"]["links"] == {"pr": "https://example.com/pr/7", "ci": "https://ci.example.com/7"}
    assert [(q["task_id"], q["question"], q["answer"]) for q in data["questions"]] == [("A", "Which auth?", "Email | password")]
    assert [(f["task_id"], f["reason"]) for f in data["follow_ups"]] == [("C", "cancelled")]
    assert data["run"]["counts"]["completed"] == 3 and data["run"]["counts"]["cancelled"] == 1
    assert data["run"]["status"] == "done" and data["critical_path"] == ["A", "B", "D"]


def test_markdown_report_is_github_tables(finished_run: Store) -> None:
    md = report.render(finished_run, run_id="r", fmt="md")
    assert "\x1b" not in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| task")]
    wave_rows = [r for r in rows if r.split("|")[1].strip().rstrip(" ★") in {"A", "B", "C", "D"}]
    assert len(wave_rows) == 4 + 1 + 1  # four task rows, the question row, the follow-up row
    b = next(r for r in rows if r.startswith("| B"))
    assert "a1 failed, a2 succeeded" in b
    # a pipe in worker text is escaped, so every table row keeps its column count
    for r in rows:
        cells = [c for c in r.replace("\\|", "").split("|")][1:-1]
        assert len(cells) in (10, 6, 5), r
    assert "Email \\| password" in md and "https://example.com/pr/7" in md


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.tags: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self._in_td = tag == "td" or self._in_td

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_td = False

    def handle_data(self, data: str) -> None:
        if self._in_td and data.strip():
            self.cells.append(data.strip())


def test_html_report_is_self_contained_with_the_dag(finished_run: Store) -> None:
    html = report.render(finished_run, run_id="r", fmt="html")
    p = Collect()
    p.feed(html)
    assert "svg" in p.tags and p.tags.count("rect") == 4 and p.tags.count("line") == 3
    assert {"A", "B", "C", "D"} <= set(p.cells)
    assert "Email | password" in p.cells and "a1 failed, a2 succeeded" in p.cells
    assert "<script" not in html and "http-equiv" not in html and "src=" not in html
    assert "[bold]blog[/bold]" in html and "\x1b" not in html


def test_report_cli_writes_the_file(finished_run: Store, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "wave.md"
    p = subprocess.run([ORCH, "--db", finished_run.path, "--json", "report", "--run", "r", "--format", "md",
                        "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["data"]["out"] == str(out.resolve())
    assert out.read_text().startswith("# Wave report: r")


def test_report_counts_each_waves_time_waiting_on_the_leader(cli) -> None:  # type: ignore[no-untyped-def]
    """Each wave says how long its tasks waited on the leader: from each question to its answer
    (an open one counts until now), in the JSON, the Markdown and the HTML."""
    import time

    cli.ok("orch", "run", "init", "--run", "lw", "--goal", "g")
    for t in ("A", "B"):
        cli.ok("orch", "task", "add", "--run", "lw", "--task", t, "--title", t, "--default-to", "w")
    cli.ok("orch", "dep", "add", "--run", "lw", "--task", "B", "--depends-on", "A")
    th = cli.ok("orch", "dispatch", "--run", "lw", "--task", "A", "--execution-mode", "analysis")["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w", "--thread", th)
    cli.ok("inbox", "update", "--agent", "w", "--thread", th, "--status", "blocked", "--summary", "which?")
    time.sleep(2.1)
    cli.ok("orch", "answer", "--run", "lw", "--task", "A", "--body", "this")
    cli.ok("inbox", "update", "--agent", "w", "--thread", th, "--status", "blocked", "--summary", "and now?")
    data = json.loads(cli.ok("orch", "report", "--run", "lw", "--format", "json")["report"])
    w0, w1 = data["waves"]
    assert (w0["leader_wait"]["questions"], w0["leader_wait"]["unanswered"]) == (2, 1)
    assert w0["leader_wait"]["longest_seconds"] >= 2.0 and w0["leader_wait"]["total_seconds"] >= 2.0
    assert w1["leader_wait"] == {"questions": 0, "unanswered": 0, "total_seconds": 0.0, "longest_seconds": 0.0}
    md = cli.ok("orch", "report", "--run", "lw", "--format", "md")["report"]
    assert "over 2 question(s), longest" in md and "1 unanswered" in md
    assert "Waited on the leader: no questions." in md
    html = cli.ok("orch", "report", "--run", "lw", "--format", "html")["report"]
    assert "Waited on the leader:" in html and "1 unanswered" in html
