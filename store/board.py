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
from typing import Any

from .db import Store
from .errors import NotFound
from .models import FIRST_KEY, Changes, Header, Key, Page, RunSummary, TaskFilter, TaskRow
from .records import loads
from .validate import now_ts
from .runtime import attention as open_attention
from .states import (ALERT_EVENTS, ATTENTION_LIVENESS, ATTENTION_TASK, FINISHED_TASK, IN_FLIGHT_TASK, LIVE_ATTEMPT,
                     MessageKind, STRUCTURE_EVENTS, TaskStatus, sql_in)

# What the worker said: the table's Latest column shows the newest of these on the latest attempt.
WORKER_SAID = (MessageKind.PROGRESS, MessageKind.QUESTION, MessageKind.RESULT)
ROW_TEMPLATE = """
SELECT w.tid, w.wave, t.task_id, t.title, t.status, t.default_to, t.updated_at,
       a.attempt_no, a.assigned_to, a.last_activity_at, a.liveness, a.end_reason,
       (SELECT m.summary FROM messages m WHERE m.thread_id = a.thread_id AND m.kind IN {said}
        ORDER BY m.message_id DESC LIMIT 1) AS latest
FROM {source} w
JOIN tasks t ON t.rowid = w.tid
LEFT JOIN attempts a ON a.run_id = t.run_id AND a.task_id = t.task_id AND a.attempt_no =
    (SELECT max(b.attempt_no) FROM attempts b WHERE b.run_id = t.run_id AND b.task_id = t.task_id)
WHERE w.run_id = ?
"""
# Tasks keep their wave (store/waves.py raise_wave), so the window pages over the tasks_wave index
# (run_id, wave, rowid) directly: no plan computation before the first paint.
ROW_SQL = ROW_TEMPLATE.format(source="(SELECT rowid AS tid, wave, run_id FROM tasks)", said=sql_in(WORKER_SAID))
# Rows for a few named tasks, driven from the tasks primary key.
ROWS_FOR_TEMPLATE = ROW_TEMPLATE.format(
    source="(SELECT x.rowid AS tid, x.wave AS wave, x.run_id AS run_id FROM tasks x WHERE x.run_id = ?"
           " AND x.task_id IN ({marks}))", said=sql_in(WORKER_SAID))


def _row(r: sqlite3.Row, attention: dict[str, str] | None = None) -> TaskRow:
    return TaskRow(key=(r["wave"], r["tid"]), task_id=r["task_id"], wave=r["wave"], title=r["title"],
                   owner=r["assigned_to"] or r["default_to"] or "", status=r["status"],
                   attempt_no=r["attempt_no"] or 0,
                   last_activity=r["last_activity_at"] or r["updated_at"] or "",
                   # a finished task has no liveness, whatever its last attempt was judged while it ran
                   liveness=(r["liveness"] or "") if r["status"] in IN_FLIGHT_TASK else "",
                   end_reason=r["end_reason"] or "",
                   attention=(attention or {}).get(r["task_id"], ""), latest=r["latest"] or "")


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def _filter_sql(f: TaskFilter, attention: dict[str, str] | None = None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if f.view == "failed":
        sql += f" AND t.status = '{TaskStatus.FAILED}'"
    elif f.view == "attention":
        marks = ",".join("?" * len(ATTENTION_LIVENESS))
        sql += (f" AND (t.status IN {sql_in(ATTENTION_TASK)} OR (a.liveness IN ({marks})"
                f" AND t.status NOT IN {sql_in(FINISHED_TASK)}) OR t.task_id IN (SELECT value FROM json_each(?)))")
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
                                 " LIMIT 1 OFFSET ?",
                                 [self.run_id, *fparams, w[0], w[1], min(10, limit // 4)]).fetchone()
        start = (above["wave"], above["tid"]) if above else None
        page = self.page(f, after=start, limit=limit)
        return page if any(r.task_id == task_id for r in page.rows) else None

    # -- attention -------------------------------------------------------------------------
    def refresh_attention(self) -> dict[str, str]:
        """Re-read the open escalations and prompts (store.runtime.attention, a small table)."""
        found: dict[str, str] = {}
        for a in open_attention(self.store, self.run_id):
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
                                     f" json_each(?)) AND status NOT IN {sql_in(ATTENTION_TASK + FINISHED_TASK)}",
                                     (self.run_id, json.dumps(sorted(ids)))).fetchone()[0])
        n = counts.get("blocked", 0) + counts.get("failed", 0) + extra
        self._attention_cache = (key, n)
        return n

    def _wave_progress(self, conn: Any) -> list[tuple[int, int, int]]:
        """(wave, done, total) per wave. The join over every task costs ~7 ms at 10k tasks, so it is
        redone only when the finished set or the waves changed: (count, rowid sum) of the finished
        tasks, read from the (run_id, status) index, tells."""
        sig = (self._waves_gen, *conn.execute("SELECT count(*), total(rowid) FROM tasks WHERE run_id=? AND status IN"
                                              f" {sql_in(FINISHED_TASK)}", (self.run_id,)).fetchone())
        if self._wave_cache is not None and self._wave_cache[0] == sig:
            return self._wave_cache[1]
        waves = [(r[0], r[1] or 0, r[2]) for r in conn.execute(
            f"SELECT wave, sum(status IN {sql_in(FINISHED_TASK)}), count(*) FROM tasks WHERE run_id=?"
            " GROUP BY wave ORDER BY wave", (self.run_id,))]
        self._wave_cache = (sig, waves)
        return waves

    # -- liveness verdicts ------------------------------------------------------------------
    def newest_liveness_at(self) -> str:
        """The newest attempts.liveness_at of the run: where liveness_changes_since starts."""
        return str(self.store.scalar("SELECT coalesce(max(liveness_at), '') FROM attempts WHERE run_id=?",
                                     (self.run_id,)))

    def liveness_changes_since(self, seen: str) -> tuple[set[str], str]:
        """Tasks whose live attempt got a liveness verdict after `seen` (the watcher writes those
        without an event), and the new high-water mark. An indexed read of the live attempts only."""
        got = self.store.all(f"SELECT task_id, liveness_at FROM attempts WHERE status IN"
                             f" ({','.join('?' * len(LIVE_ATTEMPT))}) AND run_id=? AND liveness_at>?",
                             (*LIVE_ATTEMPT, self.run_id, seen))
        return {r[0] for r in got}, max((r[1] for r in got), default=seen)

    # -- header and changes ----------------------------------------------------------------
    def header(self) -> Header:
        with self.store.snapshot() as conn:
            run = conn.execute("SELECT * FROM runs WHERE run_id=?", (self.run_id,)).fetchone()
            counts = {r[0]: r[1] for r in conn.execute(
                "SELECT status, count(*) FROM tasks WHERE run_id=? GROUP BY status", (self.run_id,))}
            waves = self._wave_progress(conn)
            attention = self._attention_count(conn, counts)
            held = tuple((r[0], r[1], r[2]) for r in conn.execute(
                "SELECT profile, kind, until_at FROM profile_holds WHERE until_at='' OR until_at>? ORDER BY profile",
                (now_ts(),)))
        if run is None:
            raise NotFound(f"run {self.run_id} not found")
        cfg = loads(run["config_json"], {}) or {}
        return Header(run_id=self.run_id, goal=run["goal"], status=run["status"], counts=counts, waves=waves,
                      autopilot=bool(cfg.get("autopilot")), total=sum(counts.values()),
                      attention=attention, held=held)

    def changes_since(self, after_event: int, *, limit: int = 20_000) -> Changes:
        """The events of this run after `after_event`: which tasks they touch and whether the plan
        changed. One indexed range read (events_run)."""
        alert_sql = sql_in(sorted(ALERT_EVENTS))
        # An alert names the worker: the event's agent, else the thread's (task_blocked is the fold's).
        got = self.store.all(f"SELECT e.event_id, e.event_type, e.task_id, CASE WHEN e.event_type IN {alert_sql}"
                             " THEN e.summary ELSE '' END, CASE WHEN e.event_type IN"
                             f" {alert_sql} THEN coalesce(nullif(e.agent, ''), (SELECT h.assigned_to FROM threads h"
                             " WHERE h.thread_id=e.thread_id), '') ELSE '' END FROM events e WHERE e.run_id=? AND"
                             " e.event_id>? ORDER BY e.event_id LIMIT ?", (self.run_id, after_event, limit))
        ch = Changes(last_event_id=after_event)
        for e in got:
            ch.last_event_id = e[0]
            ch.types.add(e[1])
            if e[2]:
                ch.task_ids.add(e[2])
            if e[1] in ALERT_EVENTS:
                ch.alerts.append((e[1], e[2], e[4], e[3]))
        ch.structure = bool(ch.types & STRUCTURE_EVENTS)
        return ch


def last_event_id(store: Store) -> int:
    return int(store.scalar("SELECT coalesce(max(event_id), 0) FROM events") or 0)


def run_summaries(store: Store) -> list[RunSummary]:
    """Every run for the picker, most recently updated first."""
    with store.snapshot() as conn:
        totals = {r[0]: r[1] for r in conn.execute("SELECT run_id, count(*) FROM tasks GROUP BY run_id")}
        runs = conn.execute("SELECT run_id, goal, status, updated_at FROM runs ORDER BY updated_at DESC").fetchall()
    return [RunSummary(r[0], r[1], r[2], totals.get(r[0], 0), r[3]) for r in runs]
