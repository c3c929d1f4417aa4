"""Planning, imports and verification checks (issue 5), on real databases and repositories."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from orch_console.store import InvalidInput, Store
from orch_console.store import dispatch, imports, inbox, plan, runs, views
from orch_console.store.checks import verify_run
from tests.conftest import db_snapshot


def test_waves_critical_path_and_overlaps(store: Store) -> None:
    runs.run_init(store, run_id="r", goal="g")
    for t, paths in (("A", ["src/api"]), ("B", ["src/api/users.py"]), ("C", ["docs"]), ("D", ["src/*.py"]),
                     ("E", [])):
        runs.task_add(store, run_id="r", task_id=t, title=t, paths=paths)
    runs.dep_add(store, run_id="r", task_id="B", depends_on="A")
    runs.dep_add(store, run_id="r", task_id="D", depends_on="B")
    runs.dep_add(store, run_id="r", task_id="E", depends_on="C")
    p = views.plan(store, run_id="r")
    assert [[t["task_id"] for t in w["tasks"]] for w in p["waves"]] == [["A", "C"], ["B", "E"], ["D"]]
    assert p["critical_path"] == ["A", "B", "D"] and p["concurrency_cap"] == 5
    overlaps = {tuple(o["tasks"]): o for o in p["overlaps"]}
    # src/*.py owns src/, so it overlaps src/api and src/api/users.py
    assert set(overlaps) == {("A", "B"), ("A", "D"), ("B", "D")}
    assert all(o["ordered_by_dependency"] for o in overlaps.values())
    a = next(t for t in p["waves"][0]["tasks"] if t["task_id"] == "A")
    assert a["unblocks"] == 1 and a["critical"]


def test_paths_overlap_rules() -> None:
    assert plan.paths_overlap(["src/api"], ["src/api/x.py"])
    assert plan.paths_overlap(["./src/a.py"], ["src/a.py"])
    assert not plan.paths_overlap(["src/api"], ["src/apix"])
    assert not plan.paths_overlap(["docs/a.md"], ["docs/b.md"])


def test_plan_of_a_random_5000_task_dag_takes_under_a_second() -> None:
    rnd = random.Random(7)
    tasks = [{"task_id": f"T{i}", "title": "t", "status": "planned", "priority": 0, "default_to": "",
              "paths_json": json.dumps([f"src/m{rnd.randint(0, 800)}/f{rnd.randint(0, 3)}.py"])} for i in range(5000)]
    deps = list({(f"T{i}", f"T{rnd.randint(max(0, i - 200), i - 1)}") for i in range(1, 5000) for _ in range(rnd.randint(0, 3))})
    start = time.perf_counter()
    p = plan.plan_from({"run_id": "r", "config_json": ""}, tasks, deps)
    elapsed = time.perf_counter() - start
    assert sum(len(w["tasks"]) for w in p["waves"]) == 5000
    assert elapsed < 1.0, f"planning took {elapsed:.2f}s"


MANIFEST = {
    "project": "demo", "repo": "o/r",
    "phases": [
        {"name": "Phase 1: Critical", "tasks": [
            {"id": "t1", "issue": 1, "title": "Fix X", "files": ["src/foo.js"], "dependsOn": []},
            {"id": "t2", "issue": 2, "title": "Fix Y", "files": ["src/bar.js"], "dependsOn": ["t1"]},
            {"id": "t3", "title": "Docs", "files": ["docs/"], "dependsOn": []}]},
        {"name": "Phase 2", "tasks": [
            {"id": "t4", "title": "Feature", "files": ["src/feature.js"], "dependsOn": []}]},
    ],
}


def deps_of(store: Store, run_id: str = "r") -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in store.all("SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,))}


def test_manifest_import_and_reimport_changes_nothing(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "manifest.json"
    f.write_text(json.dumps(MANIFEST))
    out = imports.import_manifest(store, path=str(f), run_id="r")
    assert out["run_created"] and sorted(out["added_tasks"]) == ["t1", "t2", "t3", "t4"]
    # phase 2 waits for phase 1's sinks (t2 and t3), which cover t1 through t2
    assert deps_of(store) == {("t2", "t1"), ("t4", "t2"), ("t4", "t3")}
    assert json.loads(store.scalar("SELECT paths_json FROM tasks WHERE task_id='t1'")) == ["src/foo.js"]
    assert {t["task_id"] for t in runs.ready(store, run_id="r")["tasks"]} == {"t1", "t3"}
    before = db_snapshot(store.path)
    again = imports.import_manifest(store, path=str(f), run_id="r")
    assert again["changed"] is False and again["added_tasks"] == [] and again["added_dependencies"] == []
    assert db_snapshot(store.path) == before


@pytest.mark.parametrize("doc", [
    {"phases": "nope"},
    {"phases": [{"tasks": [{"id": "a", "title": "A", "dependsOn": ["missing"]}]}]},
    {"phases": [{"tasks": [{"id": "a", "title": "A"}, {"id": "a", "title": "again"}]}]},
    {"phases": [{"tasks": [{"id": "../x", "title": "A"}]}]},
    {"phases": [{"tasks": [{"id": "a", "title": "A", "dependsOn": ["b"]}, {"id": "b", "title": "B", "dependsOn": ["a"]}]}]},
])
def test_malformed_manifest_imports_nothing(store: Store, tmp_path: Path, doc: dict) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    before = db_snapshot(store.path)
    with pytest.raises(InvalidInput):
        imports.import_manifest(store, path=str(f), run_id="r")
    assert db_snapshot(store.path) == before


def test_not_json_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{not json")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        imports.import_manifest(store, path=str(f), run_id="r")
    with pytest.raises(InvalidInput, match="cannot read"):
        imports.import_gh_issues(store, path=str(tmp_path / "missing.json"), run_id="r")


GH = [
    {"number": 10, "title": "Schema", "body": "Files: src/db.py, src/models.py", "labels": [{"name": "P1"}]},
    {"number": 11, "title": "API", "body": "Depends on #10.\nAlso blocked by #99", "labels": []},
    {"number": 12, "title": "UI", "body": "blocked by #11 and #10", "labels": [{"name": "frontend"}]},
]


def test_gh_issues_import_takes_dependencies_from_bodies(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "issues.json"
    f.write_text(json.dumps(GH))
    out = imports.import_gh_issues(store, path=str(f), run_id="r")
    assert sorted(out["added_tasks"]) == ["gh-10", "gh-11", "gh-12"]
    assert deps_of(store) == {("gh-11", "gh-10"), ("gh-12", "gh-11"), ("gh-12", "gh-10")}
    assert out["references_outside_file"] == ["#99"]
    t10 = store.one("SELECT * FROM tasks WHERE task_id='gh-10'")
    assert json.loads(t10["paths_json"]) == ["src/db.py", "src/models.py"] and t10["priority"] == 2
    before = db_snapshot(store.path)
    assert imports.import_gh_issues(store, path=str(f), run_id="r")["changed"] is False
    assert db_snapshot(store.path) == before


def test_verify_run_records_pass_and_fail_with_output(store: Store, repo: Path) -> None:
    runs.run_init(store, run_id="r", goal="g")
    runs.task_add(store, run_id="r", task_id="A", title="t", default_to="w",
                  check_cmds={"lint": "echo lint-ok", "tests": "echo 'FAILED test_thing' >&2; exit 3"})
    a = dispatch.dispatch(store, run_id="r", task_id="A", execution_mode="code", repo_path=str(repo))["attempt"]
    inbox.claim(store, agent="w", thread_id=a["thread_id"])
    inbox.finish(store, agent="w", thread_id=a["thread_id"], outcome="done", summary="ok")
    out = verify_run(store, run_id="r", task_id="A", timeout=30)
    assert out["cwd"] == a["worktree_path"]
    assert {r["name"]: r["status"] for r in out["ran"]} == {"lint": "passed", "tests": "failed"}
    assert store.scalar("SELECT status FROM tasks WHERE task_id='A'") == "failed"
    assert store.scalar("SELECT end_reason FROM attempts") == "check_failed"
    assert "FAILED test_thing" in store.scalar("SELECT output FROM checks WHERE name='tests'")
    retry = dispatch.retry(store, run_id="r", task_id="A")
    assert "FAILED test_thing" in retry["message"]["body"]


def test_verify_run_times_out_a_hanging_check(store: Store, repo: Path) -> None:
    runs.run_init(store, run_id="r", goal="g")
    runs.task_add(store, run_id="r", task_id="A", title="t", default_to="w", check_cmds={"slow": "sleep 30"})
    a = dispatch.dispatch(store, run_id="r", task_id="A", execution_mode="analysis")["attempt"]
    inbox.claim(store, agent="w", thread_id=a["thread_id"])
    inbox.finish(store, agent="w", thread_id=a["thread_id"], outcome="done", summary="ok")
    start = time.monotonic()
    out = verify_run(store, run_id="r", task_id="A", timeout=1)
    assert time.monotonic() - start < 10
    assert out["ran"][0]["status"] == "failed" and "timed out" in out["ran"][0]["output_tail"]


def test_run_config_sets_the_cap_and_refuses_unknown_keys(cli) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    out = cli.ok("orch", "run", "config", "--run", "r", "--concurrency", "2", "--set", "stall_seconds=30")
    assert out["run"]["config"] == {"concurrency": 2, "stall_seconds": 30}
    cli.err("orch", "run", "config", "--run", "r", "--set", "bogus=1", code="invalid_input", exit_code=30)
    cli.err("orch", "run", "config", "--run", "r", "--set", "max_attempts=many", code="invalid_input", exit_code=30)
    cli.err("orch", "run", "config", "--run", "r", "--concurrency", "0", code="invalid_input", exit_code=30)
    assert cli.ok("orch", "plan", "--run", "r")["concurrency_cap"] == 2


def test_stored_waves_follow_every_dependency_added(store: Store) -> None:
    """tasks.wave, kept up by dep add, always equals the Kahn level computed from scratch."""
    rnd = random.Random(3)
    runs.run_init(store, run_id="r", goal="g")
    ids = [f"T{i}" for i in range(60)]
    for t in ids:
        runs.task_add(store, run_id="r", task_id=t, title=t)
    added = 0
    for _ in range(150):
        a, b = rnd.sample(ids, 2)
        try:
            runs.dep_add(store, run_id="r", task_id=a, depends_on=b)
            added += 1
        except InvalidInput:
            continue  # a cycle, refused
        stored = {r[0]: r[1] for r in store.all("SELECT task_id, wave FROM tasks WHERE run_id='r'")}
        deps = [(r[0], r[1]) for r in store.all("SELECT task_id, depends_on FROM deps WHERE run_id='r'")]
        assert stored == plan.topo_order(ids, deps)[1]
    assert added > 50
