"""The simulated worker: a real process that speaks only the inbox protocol, through the `inbox`
CLI, exactly as a launched agent would (DESIGN.md section 6, profile `sim`).

    python -P -m orch_console.console.runtime.sim --db X --thread T --agent A --script "progress*3,block,progress,done"

Steps: `progress` (write a file in the worktree, commit it, report in_progress, heartbeat),
`block` (ask a question, wait for the answer), `sleep` (work quietly, heartbeating), `done`,
`fail`; and misbehaviours on purpose: `hang` (stop heartbeating, sleep forever), `crash` (exit
non-zero without done), `prompt` (print `Continue? [y/n]` and wait on the terminal; `y` goes on).

The script is `--script`, else $ORCH_SIM_SCRIPT, else a line `sim-script: ...` in the task's
instruction, else a seeded random one. `a | b | c` gives attempt 1 script a, attempt 2 script b,
attempts 3 and later script c, so "fails once" is `progress,fail | progress*2,done`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STEPS = ("progress", "block", "sleep", "done", "fail", "hang", "crash", "prompt")
SCRIPT_LINE = re.compile(r"^\s*sim-script:\s*(.+?)\s*$", re.MULTILINE)


def parse_script(text: str, attempt_no: int = 1) -> list[str]:
    """`progress*3,block,done` -> steps; with `|` alternatives chosen by attempt number."""
    alternatives = [a.strip() for a in text.split("|") if a.strip()]
    if not alternatives:
        raise ValueError("empty sim script")
    chosen = alternatives[min(max(attempt_no, 1), len(alternatives)) - 1]
    steps: list[str] = []
    for token in chosen.split(","):
        token = token.strip()
        if not token:
            continue
        name, _, count = token.partition("*")
        name = name.strip()
        if name not in STEPS:
            raise ValueError(f"unknown sim step {name!r}; use {', '.join(STEPS)}")
        n = int(count) if count.strip() else 1
        steps += [name] * n
    return steps


def random_script(seed: int) -> list[str]:
    rng = random.Random(seed)
    steps = ["progress"] * rng.randint(1, 3)
    if rng.random() < 0.3:
        steps += ["block", "progress"]
    return steps + ["done"]


class Worker:
    def __init__(self, db: str, thread: str, agent: str, *, step_seconds: float, lease_seconds: int) -> None:
        self.db = db
        self.thread = thread
        self.agent = agent
        self.step_seconds = step_seconds
        self.lease_seconds = lease_seconds
        self.lease_until = 0.0
        self.inbox = self._inbox_argv()
        self.commits = 0
        self.worktree = ""
        self.paths: list[str] = []
        self.task_id = ""
        self.attempt_no = 1

    @staticmethod
    def _inbox_argv() -> list[str]:
        exe = Path(sys.executable).parent / "inbox"
        return [str(exe)] if exe.exists() else [sys.executable, "-P", "-m", "orch_console.console.cli.inbox"]

    def say(self, text: str) -> None:
        print(f"[sim {self.agent}] {text}", flush=True)

    def call(self, *args: str) -> tuple[int, dict[str, Any]]:
        p = subprocess.run([*self.inbox, "--db", self.db, "--json", *args], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        try:
            doc = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        except ValueError:
            doc = {}
        return p.returncode, doc

    def must(self, *args: str) -> dict[str, Any]:
        rc, doc = self.call(*args)
        if rc != 0:
            err = doc.get("error", {})
            self.say(f"inbox {args[0]} refused ({err.get('code', rc)}): {err.get('message', '')}; stopping")
            # Our thread was cancelled or taken over: nothing more to do, and not a crash.
            raise SystemExit(0)
        return doc.get("data", {})

    # -- protocol ------------------------------------------------------------------------
    def claim(self) -> None:
        self.must("claim", "--agent", self.agent, "--thread", self.thread, "--lease-seconds", str(self.lease_seconds))
        self.lease_until = time.monotonic() + self.lease_seconds
        data = self.must("show", "--thread", self.thread)
        task = next((m for m in data.get("messages", []) if m.get("kind") == "task"), None) or {}
        payload = task.get("payload") or {}
        self.instruction = task.get("body") or ""
        self.worktree = payload.get("worktree_path") or ""
        self.paths = list(payload.get("paths") or [])
        self.task_id = payload.get("task_id") or data.get("thread", {}).get("task_id", "")
        self.attempt_no = int(payload.get("attempt_no") or 1)
        self.say(f"claimed {self.thread} ({self.task_id} attempt {self.attempt_no})")

    def heartbeat(self, force: bool = False) -> None:
        if force or time.monotonic() > self.lease_until - self.lease_seconds / 2:
            self.must("renew", "--agent", self.agent, "--thread", self.thread, "--lease-seconds",
                      str(self.lease_seconds))
            self.lease_until = time.monotonic() + self.lease_seconds

    def work_sleep(self) -> None:
        """Sleep one step, heartbeating as needed."""
        end = time.monotonic() + self.step_seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, max(0.05, self.lease_seconds / 3)))
            self.heartbeat()

    def progress(self, n: int) -> None:
        target = self._target_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a") as f:
            f.write(f"{self.task_id} attempt {self.attempt_no} step {n}\n")
        note = f"step {n}: wrote {target.name}"
        if self.worktree and (Path(self.worktree) / ".git").exists():
            self._git("add", "-A")
            if self._git("commit", "-q", "-m", f"{self.task_id}: step {n} (attempt {self.attempt_no})") == 0:
                self.commits += 1
                note += " and committed"
        self.must("update", "--agent", self.agent, "--thread", self.thread, "--status", "in_progress",
                  "--summary", note)
        self.say(note)
        self.work_sleep()

    def _target_file(self) -> Path:
        root = Path(self.worktree or os.getcwd())
        rel = next((p for p in self.paths if p and not p.startswith("/") and ".." not in p), "")
        if not rel:
            return root / "sim" / f"{self.task_id or 'task'}.txt"
        target = root / rel
        if target.suffix == "" or target.is_dir():
            target = target / f"{self.task_id or 'task'}.txt"
        return target

    def _git(self, *args: str) -> int:
        return subprocess.run(["git", "-c", f"user.name={self.agent}", "-c", f"user.email={self.agent}@orch.invalid",
                               *args], cwd=self.worktree, capture_output=True, stdin=subprocess.DEVNULL).returncode

    def block(self, n: int) -> None:
        question = f"Question {n} from {self.task_id}: which option should I take, A or B?"
        self.must("update", "--agent", self.agent, "--thread", self.thread, "--status", "blocked",
                  "--summary", question, "--body", "Option A keeps the current API; option B renames it.")
        self.say(f"blocked: {question}")
        while True:
            data = self.must("wait-reply", "--agent", self.agent, "--thread", self.thread, "--timeout-seconds", "0")
            m = data.get("message") or {}
            payload = m.get("payload") or {}
            if m.get("kind") == "control" and payload.get("action") == "cancel":
                self.say("cancelled by the leader; stopping")
                raise SystemExit(0)
            if m.get("kind") == "answer":
                self.say(f"answered: {m.get('summary', '')}")
                # a reply leaves the thread blocked: the worker resumes it itself
                self.must("update", "--agent", self.agent, "--thread", self.thread, "--status", "in_progress",
                          "--summary", f"resuming with the answer: {m.get('summary', '')}"[:200])
                self.lease_until = time.monotonic() + self.lease_seconds
                return
            self.say(f"control message while waiting: {m.get('summary', '')}")

    def prompt(self) -> None:
        sys.stdout.write("Continue? [y/n] ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            self.say("no terminal to answer the prompt; waiting forever")
            self.hang()
        if line.strip().lower().startswith("y"):
            self.say("continuing")
            self.heartbeat(force=True)
            return
        self.finish("fail", "the operator declined to continue")

    def hang(self) -> None:
        self.say("hanging (no more heartbeats)")
        while True:
            time.sleep(3600)

    def finish(self, outcome: str, summary: str) -> None:
        payload = json.dumps({"commits": self.commits, "worktree": self.worktree})
        self.must(outcome, "--agent", self.agent, "--thread", self.thread, "--summary", summary,
                  "--payload-json", payload)
        self.say(f"{outcome}: {summary}")
        raise SystemExit(0)

    def run(self, steps: list[str]) -> None:
        n = 0
        for step in steps:
            if step == "progress":
                n += 1
                self.progress(n)
            elif step == "block":
                self.block(n)
            elif step == "sleep":
                self.work_sleep()
            elif step == "prompt":
                self.prompt()
            elif step == "hang":
                self.hang()
            elif step == "crash":
                self.say("crashing (exit 3, no report)")
                sys.stdout.flush()
                os._exit(3)
            elif step == "fail":
                self.finish("fail", f"simulated failure after {n} step(s)")
            elif step == "done":
                self.finish("done", f"finished {self.task_id} in {n} step(s), {self.commits} commit(s)")
        self.finish("done", f"finished {self.task_id} in {n} step(s), {self.commits} commit(s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -P -m orch_console.console.runtime.sim",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=os.environ.get("ORCH_DB"), required=not os.environ.get("ORCH_DB"))
    p.add_argument("--thread", default=os.environ.get("ORCH_THREAD"), required=not os.environ.get("ORCH_THREAD"))
    p.add_argument("--agent", default=os.environ.get("ORCH_AGENT") or "sim")
    p.add_argument("--script", default=os.environ.get("ORCH_SIM_SCRIPT"))
    p.add_argument("--seed", type=int, default=int(os.environ.get("ORCH_SIM_SEED", "0") or 0))
    p.add_argument("--step-seconds", type=float, default=float(os.environ.get("ORCH_SIM_STEP_SECONDS", "0.5")))
    p.add_argument("--lease-seconds", type=int, default=int(os.environ.get("ORCH_SIM_LEASE_SECONDS", "60")))
    args = p.parse_args(argv)
    w = Worker(args.db, args.thread, args.agent, step_seconds=args.step_seconds, lease_seconds=args.lease_seconds)
    try:
        w.claim()
        text = args.script
        if not text:
            m = SCRIPT_LINE.search(w.instruction)
            text = m.group(1) if m else ""
        try:
            steps = parse_script(text, w.attempt_no) if text else \
                random_script(args.seed or sum(map(ord, args.thread)))
        except ValueError as exc:
            w.finish("fail", f"bad sim script: {exc}")
            return 0
        w.say("script: " + ",".join(steps))
        w.run(steps)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
