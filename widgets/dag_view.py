"""The task DAG: waves as columns, edges drawn with box characters in the gutters (edges that skip
waves run along the blank line under their target's row), nodes coloured by status, the critical
path starred, and the selected task's upstream and downstream highlighted.

Pure drawing over a `DagLayout`; arrow keys move the selection and post `DagView.Selected`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.message import Message
from textual.widgets import Static

from orch_console.store.models import DagLayout
from orch_console.store.states import STATUS_ORDER

from .text import STATUS_GLYPH, component_style

CW = 18   # node column width
G = 7     # gutter width between columns
U, D, L, R = 1, 2, 4, 8
BOX = {L | R: "─", U | D: "│", R | D: "┌", L | D: "┐", U | R: "└", U | L: "┘", L | R | D: "┬",
       L | R | U: "┴", U | D | R: "├", U | D | L: "┤", U | D | L | R: "┼", R: "╶", L: "╴", U: "╵", D: "╷"}


class DagCanvas(Static):
    """The drawing itself (a Static inside the scrolling pane)."""


class DagView(ScrollableContainer, can_focus=True):
    COMPONENT_CLASSES = ({f"status--{s}" for s in STATUS_ORDER}
                         | {"dag--edge", "dag--critical", "dag--related", "dag--selected", "dag--legend"})
    BINDINGS = [
        Binding("up", "move(0, -1)", "Previous task in wave", show=False, id="dag.up"),
        Binding("down", "move(0, 1)", "Next task in wave", show=False, id="dag.down"),
        Binding("left", "move(-1, 0)", "Previous wave", show=False, id="dag.left"),
        Binding("right", "move(1, 0)", "Next wave", show=False, id="dag.right"),
    ]

    @dataclass
    class Selected(Message):
        task_id: str

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.layout_data: DagLayout | None = None
        self.focus_task: str | None = None
        self.unblocks = 0

    def compose(self) -> ComposeResult:
        yield Static(id="dag-legend")
        yield DagCanvas(id="dag-canvas")

    def show(self, layout: DagLayout, focus: str | None, unblocks: int) -> None:
        self.layout_data = layout
        self.focus_task = focus if focus in layout.nodes else None
        self.unblocks = unblocks
        self.redraw()

    def set_focus_task(self, task_id: str | None, unblocks: int | None = None) -> None:
        if self.layout_data is None or task_id not in self.layout_data.nodes:
            return
        self.focus_task = task_id
        if unblocks is not None:
            self.unblocks = unblocks
        self.redraw()

    def _st(self, name: str) -> Style:
        return component_style(self, name)

    def redraw(self) -> None:
        lay = self.layout_data
        if lay is None or not self.is_mounted:
            return
        self.query_one("#dag-legend", Static).update(self._legend(lay))
        canvas, pos = self._draw(lay)
        self.query_one("#dag-canvas", DagCanvas).update(canvas)
        if self.focus_task in pos:
            x, y = pos[self.focus_task]
            self.call_after_refresh(self.scroll_to_region, Region(x, y + 1, CW, 1), animate=False)

    def _legend(self, lay: DagLayout) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        for s in ("done", "running", "blocked", "failed", "ready", "planned"):
            t.append(f"{STATUS_GLYPH[s]} {s}  ", style=self._st(f"status--{s}"))
        t.append("★ critical path  ", style=self._st("dag--critical"))
        if lay.partial:
            t.append(f"(neighbourhood of the selected task: {len(lay.nodes)} of {lay.total} tasks)  ")
        n = lay.nodes.get(self.focus_task or "")
        if n is not None:
            t.append("\n")
            t.append(f" {n.task_id} ", style=self._st("dag--selected"))
            t.append(f"  wave {n.wave}  waits on: {', '.join(n.deps) or 'nothing'}  ·  "
                     f"unblocks {self.unblocks}", style=self._st("dag--related"))
        return t

    def _draw(self, lay: DagLayout) -> tuple[Text, dict[str, tuple[int, int]]]:
        height = max((len(c) for c in lay.columns), default=0) * 2
        width = len(lay.columns) * (CW + G)
        dirs = [[0] * width for _ in range(height)]
        estyle: list[list[int]] = [[0] * width for _ in range(height)]   # 0 edge, 1 critical, 2 related
        arrows: set[tuple[int, int]] = set()
        col_of = {t: lay.nodes[t].wave - lay.first_wave for t in lay.nodes}
        up = lay.upstream(self.focus_task) if self.focus_task else set()
        down = lay.downstream(self.focus_task) if self.focus_task else set()
        related = up | down | ({self.focus_task} if self.focus_task else set())
        crit = lay.critical

        def mark(x: int, y: int, d: int, level: int) -> None:
            if 0 <= y < height and 0 <= x < width:
                dirs[y][x] |= d
                estyle[y][x] = max(estyle[y][x], level)

        def hline(x0: int, x1: int, y: int, level: int) -> None:
            for x in range(min(x0, x1), max(x0, x1) + 1):
                mark(x, y, (L if x > min(x0, x1) else 0) | (R if x < max(x0, x1) else 0), level)

        def vline(x: int, y0: int, y1: int, level: int) -> None:
            for y in range(min(y0, y1), max(y0, y1) + 1):
                mark(x, y, (U if y > min(y0, y1) else 0) | (D if y < max(y0, y1) else 0), level)

        lane_of: dict[str, int] = {}
        for dep, task in lay.edges:
            if dep not in col_of or task not in col_of:
                continue
            ci, cj = col_of[dep], col_of[task]
            ya, yb = lay.nodes[dep].row * 2, lay.nodes[task].row * 2
            level = 2 if (dep in related and task in related and self.focus_task in (dep, task)
                          or (dep in up and task in up | {self.focus_task})
                          or (task in down and dep in down | {self.focus_task})) else \
                (1 if dep in crit and task in crit else 0)
            gx = ci * (CW + G) + CW            # first gutter column after the source
            lane = lane_of.setdefault(dep, 1 + len(lane_of) % (G - 3))
            if cj == ci + 1:
                x = gx + lane
                hline(gx, x, ya, level)
                vline(x, ya, yb, level)
                hline(x, gx + G - 1, yb, level)
            else:
                # Skip waves along the blank line under the target row, then drop into the target.
                chan = yb + 1 if yb + 1 < height else yb - 1
                tx = cj * (CW + G) - G          # gutter before the target column
                x = gx + lane
                hline(gx, x, ya, level)
                vline(x, ya, chan, level)
                hline(x, tx + lane, chan, level)
                vline(tx + lane, chan, yb, level)
                hline(tx + lane, tx + G - 1, yb, level)
            arrows.add((cj * (CW + G) - 1, yb))
        pos: dict[str, tuple[int, int]] = {}
        labels: dict[tuple[int, int], tuple[str, Style]] = {}
        for ci, col in enumerate(lay.columns):
            for t in col:
                n = lay.nodes[t]
                x, y = ci * (CW + G), n.row * 2
                pos[t] = (x, y)
                star = "★" if t in crit else " "
                label = f"{star}{STATUS_GLYPH.get(n.status, '?')} {t}"
                label = label if len(label) <= CW - 1 else label[: CW - 2] + "…"
                st = self._st(f"status--{n.status}")
                if t == self.focus_task:
                    st = st + self._st("dag--selected")
                elif t in related:
                    st = st + Style(bold=True, underline=True)
                labels[(x, y)] = (label.ljust(CW - 1), st)
        styles = [self._st("dag--edge"), self._st("dag--critical"), self._st("dag--related")]
        out = Text(no_wrap=True)
        for y in range(height):
            x = 0
            while x < width:
                if (x, y) in labels:
                    text, st = labels[(x, y)]
                    out.append(text, style=st)
                    x += len(text)
                    continue
                d = dirs[y][x]
                if (x, y) in arrows and d:
                    out.append("▶", style=styles[estyle[y][x]])
                elif d:
                    out.append(BOX.get(d, "┼"), style=styles[estyle[y][x]])
                else:
                    out.append(" ")
                x += 1
            if y < height - 1:
                out.append("\n")
        return out, pos

    def action_move(self, dx: int, dy: int) -> None:
        lay = self.layout_data
        if lay is None or not lay.columns:
            return
        cur = lay.nodes.get(self.focus_task or "")
        if cur is None:
            t = next((c[0] for c in lay.columns if c), None)
        else:
            ci = cur.wave - lay.first_wave
            if dy:
                col = lay.columns[ci]
                t = col[max(0, min(len(col) - 1, cur.row + dy))]
            else:
                cj = ci + dx
                while 0 <= cj < len(lay.columns) and not lay.columns[cj]:
                    cj += dx
                if not 0 <= cj < len(lay.columns):
                    return
                col = lay.columns[cj]
                t = col[min(cur.row, len(col) - 1)]
        if t and t != self.focus_task:
            self.focus_task = t
            self.post_message(self.Selected(t))
            self.redraw()
