"""The console's blocked pane lists a permission request waiting on the leader and answers it in
place: the agent's hook (a real `inbox hook` process, fed the JSON Claude Code sends) prints the
decision."""

from __future__ import annotations

import json
import subprocess

from orch_console.console.tui.app import OrchConsole
from tests.conftest import INBOX, git_env
from tests.ui.conftest import wait_until


async def test_a_permission_request_is_answered_from_the_console(cli) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "ship it")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "do t1", "--default-to", "w1")
    thread = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "analysis")["attempt"][
        "thread_id"]
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", thread)
    app = OrchConsole(cli.db, "r1", engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: app.board.run_id == "r1", what="run opened")
        hook = subprocess.Popen([INBOX, "--db", cli.db, "hook", "--thread", thread, "--agent", "w1", "--source",
                                 "claude", "--event", "PermissionRequest", "--wait-seconds", "60"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=git_env())
        hook.stdin.write(json.dumps({"hook_event_name": "PermissionRequest", "tool_name": "Bash",
                                     "tool_input": {"command": "rm -rf build"}}))
        hook.stdin.close()
        try:
            await wait_until(pilot, lambda: any(b.get("kind") == "approval" for b in app.board.blocked),
                             what="the permission request in the blocked pane")
            item = next(b for b in app.board.blocked if b.get("kind") == "approval")
            assert "rm -rf build" in item["text"]
            await pilot.press("a")
            await pilot.pause()
            assert app.focused is not None and app.focused.id == "answer-input"
            await pilot.press(*"deny: keep build")
            await pilot.press("enter")
            hook.wait(timeout=30)
            out = hook.stdout.read()
        finally:
            if hook.poll() is None:
                hook.kill()
        assert json.loads(out)["hookSpecificOutput"]["decision"] == {"behavior": "deny", "message": "keep build"}
        await wait_until(pilot, lambda: not app.board.blocked, what="the blocked list to empty")
