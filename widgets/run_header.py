"""The run header: goal, status, counts per status, wave progress and the autopilot flag."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from orch_console.store.models import Header
from orch_console.store.states import STATUS_ORDER

from .text import STATUS_GLYPH, cell, component_style

SHOWN = (("queued", "planned"), ("ready", "ready"), ("dispatched", "dispatched"), ("running", "running"),
         ("blocked", "blocked"), ("verifying", "verifying"), ("done", "done"), ("failed", "failed"),
         ("cancelled", "cancelled"))


class RunHeader(Static):
    COMPONENT_CLASSES = {f"status--{s}" for s in STATUS_ORDER} | {"header--autopilot-on", "header--autopilot-off",
                                                                         "header--attention"}

    def _st(self, name: str) -> Style:
        return component_style(self, name)

    def show(self, h: Header) -> None:
        self.header = h
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {h.run_id} ", style="bold reverse")
        shade = h.status if h.status in ("blocked", "done", "failed") else "running"
        t.append(f" {h.status} ", style=self._st(f"status--{shade}"))
        t.append(" ")
        # One segment, before the goal: a long goal is clipped, never the autopilot state.
        t.append(" ▶ AUTOPILOT ON " if h.autopilot else " autopilot off ",
                 style=self._st("header--autopilot-on" if h.autopilot else "header--autopilot-off"))
        t.append("  ")
        t.append_text(cell(h.goal, 90))
        t.append("\n ")
        for label, status in SHOWN:
            n = h.counts.get(status, 0)
            if n or status in ("planned", "ready", "running", "blocked", "done", "failed"):
                t.append(f"{STATUS_GLYPH[status]} {label} {n}  ", style=self._st(f"status--{status}"))
        if h.attention:
            t.append(f"⚠ attention {h.attention}  ", style=self._st("header--attention"))
        for profile, kind, _until in h.held[:3]:  # no new work starts with these (palette: agents: release)
            t.append(f"‖ {profile} held: {kind}  ", style=self._st("header--attention"))
        if len(h.held) > 3:
            t.append(f"‖ {len(h.held) - 3} more held  ", style=self._st("header--attention"))
        t.append(f"  total {h.total}\n ")
        waves = h.waves
        shown = waves if len(waves) <= 12 else waves[:11]
        for w, done, total in shown:
            filled = int(round(6 * done / total)) if total else 0
            t.append(f"W{w} ")  # wave 0 = no dependencies, as in `orch plan`
            t.append("█" * filled, style=self._st("status--done"))
            t.append("░" * (6 - filled), style=self._st("status--planned"))
            t.append(f" {done}/{total}  ")
        if len(waves) > len(shown):
            rest = waves[len(shown):]
            t.append(f"… {len(rest)} more waves ({sum(d for _, d, _ in rest)}/{sum(n for _, _, n in rest)})")
        self.update(t)

    def restyle(self) -> None:
        if getattr(self, "header", None) is not None:
            self.show(self.header)
