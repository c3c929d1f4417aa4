"""Read models for the console: a keyset-paged task window, the run header, and incremental change
detection from the event log. Headless (no textual, no rich): the console renders what these return.

A run can hold 50,000 tasks, so nothing here loads every task row for display. Each task keeps its
wave (maintained when a dependency is added), so the task window pages in (wave, rowid) order with
a row-value keyset condition walking the tasks_wave index, never an OFFSET.

The DAG and the attempt log live in `board_dag.py` and `board_log.py`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .db import Store

# Task views offered by the console.
VIEWS = ("all", "attention", "failed")
# What makes a task need the leader: its own state, an open escalation or prompt
# (store.runtime.attention), or what the watcher judged about its worker. The liveness values are
# the ones store/liveness.py's Verdict writes to attempts.liveness (the last three also end the
# attempt, store.runtime.end_attempt).
ATTENTION_STATUSES = ("blocked", "failed")
ATTENTION_LIVENESS = ("waiting_input", "error", "stalled", "crashed", "timed_out")
LIVE_ATTEMPT = ("pending", "claimed", "in_progress", "blocked")
# Events after which store.runtime.attention() can answer differently.
ATTENTION_EVENTS = frozenset({"task_escalated", "attempt_waiting_input", "attempt_input_sent", "attempt_stalled",
                              "attempt_crashed", "attempt_timed_out", "task_dispatched", "task_auto_dispatched",
                              "task_auto_retried", "task_done", "task_cancelled", "task_failed", "task_running",
                              "thread_result", "run_cancelled"})
# Events the leader is called for (a bell and a notification in the console).
ALERT_EVENTS = frozenset({"task_escalated", "attempt_waiting_input"})
STATUS_ORDER = ("planned", "ready", "dispatched", "running", "blocked", "verifying", "done", "failed",
                "cancelled")
# Event types after which the wave layout may be stale (the plan changed).
STRUCTURE_EVENTS = frozenset({"task_added", "dep_added", "task_removed", "dep_removed", "run_created"})

Key = tuple[int, int]  # (wave, tasks.rowid): the keyset paging key
FIRST_KEY: Key = (-1, -1)


@dataclass(frozen=True)
class TaskRow:
    """One line of the task table (raw text: the renderer sanitises it)."""

    key: Key
    task_id: str
    wave: int
    title: str
    owner: str
    status: str
    attempt_no: int
    last_activity: str
    liveness: str
    end_reason: str
    attention: str = ""   # the open store.runtime.attention kind (escalate, waiting_input), if any

    def cells(self) -> tuple[Any, ...]:
        """The values the table compares to decide which cells changed."""
        return (self.wave, self.task_id, self.title, self.owner, self.status, self.attempt_no,
                self.last_activity, self.liveness, self.attention)

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention) or self.status in ATTENTION_STATUSES or (
            self.liveness in ATTENTION_LIVENESS and self.status not in ("done", "cancelled"))


@dataclass(frozen=True)
class TaskFilter:
    view: str = "all"
    text: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[TaskRow]
    has_prev: bool
    has_next: bool
    total: int          # rows matching the filter
    offset: int         # position of rows[0] among them


@dataclass(frozen=True)
class Header:
    run_id: str
    goal: str
    status: str
    counts: dict[str, int]
    waves: list[tuple[int, int, int]]   # (wave, done, total)
    autopilot: bool
    total: int
    attention: int = 0                  # tasks the needs-attention view shows


@dataclass
class Changes:
    """What the events since the last refresh touched."""

    last_event_id: int
    task_ids: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    structure: bool = False
    alerts: list[tuple[str, str, str]] = field(default_factory=list)   # (event type, task, summary)

    @property
    def empty(self) -> bool:
        return not self.types


LIVE_TASK = ("dispatched", "running", "blocked", "verifying")

ROW_TEMPLATE = """
SELECT w.tid, w.wave, t.task_id, t.title, t.status, t.default_to, t.updated_at,
       a.attempt_no, a.assigned_to, a.last_activity_at, a.liveness, a.end_reason
FROM {source} w
JOIN tasks t ON t.rowid = w.tid
LEFT JOIN attempts a ON a.run_id = t.run_id AND a.task_id = t.task_id AND a.attempt_no =
    (SELECT max(b.attempt_no) FROM attempts b WHERE b.run_id = t.run_id AND b.task_id = t.task_id)
WHERE w.run_id = ?
"""
# Tasks keep their wave (store/plan.py raise_wave), so the window pages over the tasks_wave index
# (run_id, wave, rowid) directly: no plan computation before the first paint.
ROW_SQL = ROW_TEMPLATE.format(source="(SELECT rowid AS tid, wave, run_id FROM tasks)")
# Rows for a few named tasks, driven from the tasks primary key.
ROWS_FOR_TEMPLATE = ROW_TEMPLATE.format(
    source="(SELECT x.rowid AS tid, x.wave AS wave, x.run_id AS run_id FROM tasks x WHERE x.run_id = ?"
           " AND x.task_id IN ({marks}))")


def _row(r: sqlite3.Row, attention: dict[str, str] | None = None) -> TaskRow:
    return TaskRow(key=(r["wave"], r["tid"]), task_id=r["task_id"], wave=r["wave"], title=r["title"],
                   owner=r["assigned_to"] or r["default_to"] or "", status=r["status"],
                   attempt_no=r["attempt_no"] or 0,
                   last_activity=r["last_activity_at"] or r["updated_at"] or "",
                   # a finished task has no liveness, whatever its last attempt was judged while it ran
                   liveness=(r["liveness"] or "") if r["status"] in LIVE_TASK else "",
                   end_reason=r["end_reason"] or "",
                   attention=(attention or {}).get(r["task_id"], ""))


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def _filter_sql(f: TaskFilter, attention: dict[str, str] | None = None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if f.view == "failed":
        sql += " AND t.status = 'failed'"
    elif f.view == "attention":
        marks = ",".join("?" * len(ATTENTION_LIVENESS))
        sql += (f" AND (t.status IN ('blocked','failed') OR (a.liveness IN ({marks})"
                " AND t.status NOT IN ('done','cancelled')) OR t.task_id IN (SELECT value FROM json_each(?)))")
        params += [*ATTENTION_LIVENESS, json.dumps(sorted(attention or {}))]
    text = f.text.strip()
    if text:
        pat = _like(text)
        sql += (" AND (t.task_id LIKE ? ESCAPE '\\' OR t.title LIKE ? ESCAPE '\\'"
                " OR coalesce(a.assigned_to, t.default_to) LIKE ? ESCAPE '\\' OR t.status LIKE ? ESCAPE '\\')")
        params += [pat, pat, pat, pat]
    return sql, params


class Board:
    """The console's read model of one run, bound to one reader connection.

    Not thread-safe: the console serialises calls (one lock around its reader Store).
    """

    def __init__(self, store: Store, run_id: str, *, defer_waves: bool = False) -> None:
        self.store = store
        self.run_id = run_id
        self.waves: dict[str, int] = {}
        self.waves_ready = False
        self.attention: dict[str, str] = {}   # task -> open attention kind (store.runtime.attention)
        # Header parts that cost a scan, kept until what they depend on changes.
        self._waves_gen = 0
        self._wave_cache: tuple[Any, list[tuple[int, int, int]]] | None = None
        self._attention_gen = 0
        self._attention_cache: tuple[Any, int] | None = None
        if not defer_waves:
            self.rebuild_waves()

    # -- waves -----------------------------------------------------------------------------
    def rebuild_waves(self, source: Store | None = None) -> None:
        """Re-read every task's stored wave (for the DAG and the header's wave progress), only after
        the plan itself changed. `source`: another connection to read with, so this board's
        connection stays free for the live refresh meanwhile."""
        self.apply_waves(*self.read_waves(source or self.store, self.run_id))

    @staticmethod
    def read_waves(store: Store, run_id: str) -> tuple[dict[str, int], str]:
        with store.snapshot() as conn:
            cur = conn.cursor()
            cur.row_factory = None  # plain tuples: 50k rows, Row objects cost double
            waves = dict(cur.execute("SELECT task_id, wave FROM tasks WHERE run_id=?", (run_id,)).fetchall())
        return waves, ""

    def apply_waves(self, waves: dict[str, int], blob: str = "") -> None:
        self.waves = waves
        self._waves_gen += 1
        self.waves_ready = True

    def quick_first_page(self, limit: int = 200) -> Page | None:
        """The first window before the waves dict is read: waves are stored, so it is the real one."""
        return self.page(TaskFilter(), limit=limit)

    # -- the task window -------------------------------------------------------------------
    def page(self, f: TaskFilter = TaskFilter(), *, after: Key | None = None, before: Key | None = None,
             limit: int = 200) -> Page:
        """`limit` rows after `after` (inclusive of nothing before it), or the last rows before
        `before`; with neither, the first page. Keyset, so page N costs the same as page 1."""
        fsql, fparams = _filter_sql(f, self.attention)
        with self.store.snapshot() as conn:
            if before is not None:
                got = conn.execute(ROW_SQL + fsql + " AND (w.wave, w.tid) < (?, ?) ORDER BY w.wave DESC,"
                                   " w.tid DESC LIMIT ?", [self.run_id, *fparams, *before, limit + 1]).fetchall()
                more_before = len(got) > limit
                rows = [_row(r, self.attention) for r in reversed(got[:limit])]
                more_after = True
            else:
                start = after if after is not None else FIRST_KEY
                got = conn.execute(ROW_SQL + fsql + " AND (w.wave, w.tid) > (?, ?) ORDER BY w.wave, w.tid"
                                   " LIMIT ?", [self.run_id, *fparams, *start, limit + 1]).fetchall()
                more_after = len(got) > limit
                rows = [_row(r, self.attention) for r in got[:limit]]
                more_before = after is not None and after != FIRST_KEY and self._exists_before(
                    conn, fsql, fparams, rows[0].key if rows else start)
            total = self._count(conn, f, fsql, fparams)
            offset = self._count_before(conn, fsql, fparams, rows[0].key) if rows else 0
        if before is not None and not rows:
            more_after = False
        return Page(rows=rows, has_prev=more_before, has_next=more_after, total=total, offset=offset)

    def last_page(self, f: TaskFilter = TaskFilter(), *, limit: int = 200) -> Page:
        return self.page(f, before=(1 << 62, 1 << 62), limit=limit)

    def _exists_before(self, conn: Any, fsql: str, fparams: list[Any], key: Key) -> bool:
        return conn.execute(ROW_SQL + fsql + " AND (w.wave, w.tid) < (?, ?) LIMIT 1",
                            [self.run_id, *fparams, *key]).fetchone() is not None

    def _count(self, conn: Any, f: TaskFilter, fsql: str, fparams: list[Any]) -> int:
        if f == TaskFilter():
            return int(conn.execute("SELECT count(*) FROM tasks WHERE run_id=?", (self.run_id,)).fetchone()[0])
        return int(conn.execute(f"SELECT count(*) FROM ({ROW_SQL}{fsql})", [self.run_id, *fparams]).fetchone()[0])

    def _count_before(self, conn: Any, fsql: str, fparams: list[Any], key: Key) -> int:
        if not fsql:
            return int(conn.execute("SELECT count(*) FROM tasks WHERE run_id=? AND (wave, rowid) < (?, ?)",
                                    (self.run_id, *key)).fetchone()[0])
        return int(conn.execute(f"SELECT count(*) FROM ({ROW_SQL}{fsql} AND (w.wave, w.tid) < (?, ?))",
                                [self.run_id, *fparams, *key]).fetchone()[0])

    def rows_for(self, task_ids: list[str] | set[str]) -> list[TaskRow]:
        """Fresh rows for just these tasks (the incremental refresh)."""
        ids = list(task_ids)
        out: list[TaskRow] = []
        with self.store.snapshot() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                out += [_row(r, self.attention) for r in conn.execute(ROWS_FOR_TEMPLATE.replace("{marks}", marks),
                                                                      [self.run_id, *chunk, self.run_id]).fetchall()]
        return out

    def locate(self, task_id: str, f: TaskFilter = TaskFilter(), *, limit: int = 200) -> Page | None:
        """A page that contains task_id, starting a little above it, or None if it is filtered out."""
        w = self.store.one("SELECT wave, rowid FROM tasks WHERE run_id=? AND task_id=?", (self.run_id, task_id))
        if w is None:
            return None
        fsql, fparams = _filter_sql(f, self.attention)
        with self.store.snapshot() as conn:
            above = conn.execute(ROW_SQL + fsql + " AND (w.wave, w.tid) < (?, ?) ORDER BY w.wave DESC, w.tid DESC"
                                 " LIMIT 1 OFFSET ?", [self.run_id, *fparams, w[0], w[1], min(10, limit // 4)]).fetchone()
        start = (above["wave"], above["tid"]) if above else None
        page = self.page(f, after=start, limit=limit)
        return page if any(r.task_id == task_id for r in page.rows) else None

    # -- attention -------------------------------------------------------------------------
    def refresh_attention(self) -> dict[str, str]:
        """Re-read the open escalations and prompts (store.runtime.attention, a small table)."""
        from .runtime import attention

        found: dict[str, str] = {}
        for a in attention(self.store, self.run_id):
            if found.get(a["task_id"]) != "escalate":   # an escalation outranks a prompt
                found[a["task_id"]] = a["kind"]
        self.attention = found
        self._attention_gen += 1
        return found

    def _attention_count(self, conn: Any, counts: dict[str, int]) -> int:
        """What the needs-attention view holds: blocked and failed tasks, plus other unfinished
        tasks with an open attention row or a live attempt the watcher judged in trouble."""
        key = (self._attention_gen, counts.get("blocked", 0), counts.get("failed", 0))
        if self._attention_cache is not None and self._attention_cache[0] == key:
            return self._attention_cache[1]
        marks = ",".join("?" * len(ATTENTION_LIVENESS))
        live = {r[0] for r in conn.execute(
            f"SELECT task_id FROM attempts WHERE status IN ({','.join('?' * len(LIVE_ATTEMPT))}) AND run_id=?"
            f" AND liveness IN ({marks})", (*LIVE_ATTEMPT, self.run_id, *ATTENTION_LIVENESS))}
        ids = live | set(self.attention)
        extra = 0
        if ids:
            extra = int(conn.execute("SELECT count(*) FROM tasks WHERE run_id=? AND task_id IN (SELECT value FROM"
                                     " json_each(?)) AND status NOT IN ('blocked','failed','done','cancelled')",
                                     (self.run_id, json.dumps(sorted(ids)))).fetchone()[0])
        n = counts.get("blocked", 0) + counts.get("failed", 0) + extra
        self._attention_cache = (key, n)
        return n

    def _wave_progress(self, conn: Any) -> list[tuple[int, int, int]]:
        """(wave, done, total) per wave. The join over every task costs ~7 ms at 10k tasks, so it is
        redone only when the finished set or the waves changed: (count, rowid sum) of the finished
        tasks, read from the (run_id, status) index, tells."""
        sig = (self._waves_gen, *conn.execute("SELECT count(*), total(rowid) FROM tasks WHERE run_id=? AND status IN"
                                              " ('done','cancelled')", (self.run_id,)).fetchone())
        if self._wave_cache is not None and self._wave_cache[0] == sig:
            return self._wave_cache[1]
        waves = [(r[0], r[1] or 0, r[2]) for r in conn.execute(
            "SELECT wave, sum(status IN ('done','cancelled')), count(*) FROM tasks WHERE run_id=?"
            " GROUP BY wave ORDER BY wave", (self.run_id,))]
        self._wave_cache = (sig, waves)
        return waves

    # -- header and changes ----------------------------------------------------------------
    def header(self) -> Header:
        from .records import loads

        with self.store.snapshot() as conn:
            run = conn.execute("SELECT * FROM runs WHERE run_id=?", (self.run_id,)).fetchone()
            counts = {r[0]: r[1] for r in conn.execute(
                "SELECT status, count(*) FROM tasks WHERE run_id=? GROUP BY status", (self.run_id,))}
            waves = self._wave_progress(conn)
            attention = self._attention_count(conn, counts)
        if run is None:
            from .errors import NotFound

            raise NotFound(f"run {self.run_id} not found")
        cfg = loads(run["config_json"], {}) or {}
        return Header(run_id=self.run_id, goal=run["goal"], status=run["status"], counts=counts, waves=waves,
                      autopilot=bool(cfg.get("autopilot")), total=sum(counts.values()),
                      attention=attention)

    def changes_since(self, after_event: int, *, limit: int = 20_000) -> Changes:
        """The events of this run after `after_event`: which tasks they touch and whether the plan
        changed. One indexed range read (events_run)."""
        got = self.store.all("SELECT event_id, event_type, task_id, CASE WHEN event_type IN ('task_escalated',"
                             " 'attempt_waiting_input') THEN summary ELSE '' END FROM events WHERE run_id=? AND"
                             " event_id>? ORDER BY event_id LIMIT ?", (self.run_id, after_event, limit))
        ch = Changes(last_event_id=after_event)
        for e in got:
            ch.last_event_id = e[0]
            ch.types.add(e[1])
            if e[2]:
                ch.task_ids.add(e[2])
            if e[1] in ALERT_EVENTS:
                ch.alerts.append((e[1], e[2], e[3]))
        ch.structure = bool(ch.types & STRUCTURE_EVENTS)
        return ch


def last_event_id(store: Store) -> int:
    return int(store.scalar("SELECT coalesce(max(event_id), 0) FROM events") or 0)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    goal: str
    status: str
    total: int
    updated_at: str


def run_summaries(store: Store) -> list[RunSummary]:
    """Every run for the picker, most recently updated first."""
    with store.snapshot() as conn:
        totals = {r[0]: r[1] for r in conn.execute("SELECT run_id, count(*) FROM tasks GROUP BY run_id")}
        runs = conn.execute("SELECT run_id, goal, status, updated_at FROM runs ORDER BY updated_at DESC").fetchall()
    return [RunSummary(r[0], r[1], r[2], totals.get(r[0], 0), r[3]) for r in runs]
