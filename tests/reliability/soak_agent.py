"""One process of the kill -9 soak (tests/reliability/test_kill9_soak.py).

    python soak_agent.py DB ACK_FILE ROLE AGENT SEED

ROLE `worker`: claims pending threads assigned to it (or any thread whose lease ran out), moves
them along (update in_progress, renew, update blocked, done, fail) through the real store
functions. ROLE `leader`: dispatches ready tasks, answers blocked ones, retries failed ones,
sometimes reassigns, and keeps the run topped up with new tasks (some with a dependency).

Every store call that returned is acknowledged by one JSON line appended to ACK_FILE (flushed, so
it survives SIGKILL in the page cache); a call interrupted by SIGKILL has no line. An OrchError
with a contract code other than internal_error is a lost race and is expected; anything else is
written to ACK_FILE + ".err" and the test fails on it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from orch_console.store import Store, dispatch, inbox, runs  # noqa: E402
from orch_console.store.errors import OrchError  # noqa: E402

RUN = "soak"
AGENTS = [f"w{i}" for i in range(int(os.environ.get("SOAK_WORKERS", "3")))]
LEASE = int(os.environ.get("SOAK_LEASE_SECONDS", "3"))
LIVE_TASKS = int(os.environ.get("SOAK_LIVE_TASKS", "12"))


class Agent:
    def __init__(self, db: str, ack: str, role: str, name: str, seed: int) -> None:
        self.store = Store(db)
        self.ack_f = open(ack, "a", buffering=1)
        self.err_path = ack + ".err"
        self.role = role
        self.name = name
        self.rng = random.Random(seed)
        self.seq = 0

    def tag(self, op: str) -> str:
        self.seq += 1
        return f"{self.name}:{op}:{os.getpid()}:{self.seq}:{self.rng.getrandbits(32):08x}"

    def ack(self, **doc: object) -> None:
        self.ack_f.write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.ack_f.flush()

    def call(self, fn, *a, **kw):  # type: ignore[no-untyped-def]
        self.ack(op="call", fn=fn.__name__)  # a kill before the matching ack landed inside the call
        try:
            return fn(self.store, *a, **kw)
        except OrchError as exc:
            if exc.code == "internal_error":
                self.error(f"{fn.__name__}: {exc.code}: {exc.message}")
            self.ack(op="refused", code=exc.code)
            return None
        except Exception:  # noqa: BLE001
            self.error(traceback.format_exc())
            return None

    def error(self, text: str) -> None:
        with open(self.err_path, "a") as f:
            f.write(text + "\n")

    # -- worker --------------------------------------------------------------------------
    def worker_step(self) -> bool:
        s = self.store
        mine = s.all("SELECT thread_id, status FROM threads WHERE lease_owner=? AND status IN "
                     "('claimed','in_progress','blocked') AND run_id=?", (self.name, RUN))
        if mine and self.rng.random() < 0.85:
            t = self.rng.choice(mine)
            th, st = t["thread_id"], t["status"]
            if st == "blocked":
                # An answered question: the worker resumes itself (a reply leaves the thread blocked,
                # as the original CLI documents), as a real worker does after its wait-reply.
                answered = s.one("SELECT 1 FROM messages a WHERE a.thread_id=? AND a.kind='answer' AND a.message_id>"
                                 "(SELECT max(message_id) FROM messages q WHERE q.thread_id=? AND q.kind='question')",
                                 (th, th))
                if answered is not None:
                    return self.update(th, "in_progress")
                if self.rng.random() < 0.3:
                    return self.renew(th)
                return False
            if st == "claimed":
                return self.update(th, "in_progress")
            r = self.rng.random()
            if r < 0.25:
                return self.update(th, "in_progress")
            if r < 0.40:
                return self.renew(th)
            if r < 0.55:
                return self.update(th, "blocked")
            if r < 0.85:
                return self.finish(th, "done")
            return self.finish(th, "failed")
        now = inbox.now_ts()
        cands = s.all("SELECT thread_id FROM threads WHERE run_id=? AND ((status='pending' AND assigned_to=?) OR"
                      " (status IN ('claimed','in_progress','blocked') AND lease_owner<>? AND lease_expires_at<?))"
                      " LIMIT 8", (RUN, self.name, self.name, now))
        if not cands:
            return False
        th = self.rng.choice(cands)["thread_id"]
        out = self.call(inbox.claim, agent=self.name, thread_id=th, lease_seconds=LEASE)
        if out is not None:
            self.ack(op="claim", thread=th, agent=self.name, at=out["thread"]["updated_at"],
                     already=out["already_claimed"])
        return out is not None

    def renew(self, th: str) -> bool:
        out = self.call(inbox.renew, agent=self.name, thread_id=th, lease_seconds=LEASE)
        if out is not None:
            self.ack(op="renew", thread=th, agent=self.name, at=out["thread"]["updated_at"])
        return out is not None

    def update(self, th: str, status: str) -> bool:
        summary = self.tag(status)
        out = self.call(inbox.update, agent=self.name, thread_id=th, status=status, summary=summary,
                        body="x" * self.rng.choice((0, 10, 3000)))
        if out is not None:
            self.ack(op="update", thread=th, status=status, message=out["message"]["message_id"], summary=summary)
        return out is not None

    def finish(self, th: str, outcome: str) -> bool:
        summary = self.tag(outcome)
        out = self.call(inbox.finish, agent=self.name, thread_id=th, outcome=outcome, summary=summary,
                        payload_json='{"ok":%s}' % ("true" if outcome == "done" else "false"))
        if out is not None:
            self.ack(op="finish", thread=th, status=outcome, message=out["message"]["message_id"], summary=summary)
        return out is not None

    # -- leader --------------------------------------------------------------------------
    def leader_step(self) -> bool:
        s = self.store
        tasks = s.all("SELECT task_id, status FROM tasks WHERE run_id=?", (RUN,))
        by = {}
        for t in tasks:
            by.setdefault(t["status"], []).append(t["task_id"])
        live = sum(len(by.get(k, [])) for k in ("planned", "ready", "dispatched", "running", "blocked"))
        r = self.rng.random()
        if live < LIVE_TASKS and r < 0.3:
            return self.task_add([t["task_id"] for t in tasks])
        if by.get("ready") and r < 0.55:
            return self.new_attempt("dispatch", self.rng.choice(by["ready"]))
        if by.get("blocked") and r < 0.75:
            return self.answer(self.rng.choice(by["blocked"]))
        if by.get("failed") and r < 0.92:
            return self.new_attempt("retry", self.rng.choice(by["failed"]))
        movable = by.get("running", []) + by.get("dispatched", [])
        if movable and 0.92 <= r < 0.935:
            return self.new_attempt("reassign", self.rng.choice(movable))
        return False

    def task_add(self, existing: list[str]) -> bool:
        task = f"t{self.rng.getrandbits(40):010x}"
        out = self.call(runs.task_add, run_id=RUN, task_id=task, title=self.tag("task"),
                        default_to=self.rng.choice(AGENTS))
        if out is None:
            return False
        self.ack(op="task_add", task=task)
        if existing and self.rng.random() < 0.3:
            on = self.rng.choice(existing)
            if self.call(runs.dep_add, run_id=RUN, task_id=task, depends_on=on) is not None:
                self.ack(op="dep_add", task=task, on=on)
        return True

    def new_attempt(self, action: str, task: str) -> bool:
        to = self.rng.choice(AGENTS)
        if action == "dispatch":
            out = self.call(dispatch.dispatch, run_id=RUN, task_id=task, execution_mode="analysis",
                            to=to if self.rng.random() < 0.5 else None)
        elif action == "retry":
            out = self.call(dispatch.retry, run_id=RUN, task_id=task, to=to if self.rng.random() < 0.5 else None)
        else:
            out = self.call(dispatch.reassign, run_id=RUN, task_id=task, to=to)
        if out is None:
            return False
        a = out["attempt"]
        self.ack(op=action, task=task, attempt_no=a["attempt_no"], thread=a["thread_id"],
                 message=out["message"]["message_id"])
        return True

    def answer(self, task: str) -> bool:
        summary = self.tag("answer")
        out = self.call(dispatch.answer, run_id=RUN, task_id=task, summary=summary)
        if out is None:
            return False
        self.ack(op="answer", task=task, thread=out["thread"]["thread_id"], message=out["message"]["message_id"],
                 summary=summary)
        return True

    def loop(self) -> None:
        step = self.leader_step if self.role == "leader" else self.worker_step
        while True:
            if not step():
                time.sleep(0.005 + self.rng.random() * 0.01)


def main() -> None:
    db, ack, role, name, seed = sys.argv[1:6]
    a = Agent(db, ack, role, name, int(seed))
    a.ack(op="start", pid=os.getpid())
    a.loop()


if __name__ == "__main__":
    main()
