"""The review view of a task (issue 14): its changed files, then the attempt's unified diff against
the base it started from, coloured, with the land state (conflicts named). From it the leader lands
(`l`) or requests changes (`c`: a reply while the attempt runs, else a new attempt on the land
target whose brief carries the review).

The diff is drawn with Textual's line API (DiffView renders only the rows on screen), so a diff of
tens of thousands of lines scrolls without lag; worker text is never markup and loses control
characters before it is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from orch_console.store.sanitize import clean

if TYPE_CHECKING:
    from collections.abc import Callable

    from orch_console.console.tui.keys import LeaderKeys

    LeaderAction = Callable[[str, Callable[[], str], str | None], None]

STYLES = {
    "add": Style(color="green"),
    "del": Style(color="red"),
    "hunk": Style(color="cyan"),
    "file": Style(color="yellow", bold=True),
    "meta": Style(dim=True),
    "text": Style(),
}


def line_kind(line: str) -> str:
    if line.startswith("diff --git"):
        return "file"
    if line.startswith(("+++", "---", "index ", "new file", "deleted file", "similarity", "rename ", "old mode",
                        "new mode", "Binary files")):
        return "meta"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "text"


# Code inside the hunks is coloured by its language (Pygments, by file name), on a green or red
# tint for added and removed lines; the +/- column keeps the diff colour.
TOKEN_STYLES: list[tuple[str, Style]] = [
    ("Token.Comment", Style(color="bright_black", italic=True)),
    ("Token.Literal.String", Style(color="yellow")),
    ("Token.Literal.Number", Style(color="cyan")),
    ("Token.Keyword", Style(color="magenta", bold=True)),
    ("Token.Name.Builtin", Style(color="cyan")),
    ("Token.Name.Function", Style(color="blue", bold=True)),
    ("Token.Name.Class", Style(color="blue", bold=True)),
    ("Token.Name.Decorator", Style(color="magenta")),
    ("Token.Operator.Word", Style(color="magenta")),
]
TINT = {"add": Style(bgcolor="#14301c"), "del": Style(bgcolor="#3a1519"), "text": Style()}


def _token_style(tok: Any) -> Style:
    name = str(tok)
    for prefix, style in TOKEN_STYLES:
        if name.startswith(prefix):
            return style
    return Style()


def _lexer_for(path: str) -> Any:
    try:
        from pygments.lexers import get_lexer_for_filename
        from pygments.util import ClassNotFound
    except ImportError:
        return None
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def code_segments(line: str, kind: str, lexer: Any) -> list[Segment]:
    """One diff line as segments: the +/-/space column in the diff's colour, the code after it by
    its language, all on the line's tint."""
    tint = TINT.get(kind, Style())
    mark, code = line[:1], line[1:]
    segs = [Segment(mark, STYLES[kind] + tint)]
    if lexer is None or not code:
        return segs + [Segment(code, (STYLES[kind] if kind != "text" else Style()) + tint)]
    for tok, value in lexer.get_tokens(code):
        if value:
            segs.append(Segment(value.replace("\n", ""), _token_style(tok) + tint))
    return segs


class DiffView(ScrollView, can_focus=True):
    """A unified diff, one coloured row per line, rendered only where visible."""

    DEFAULT_CSS = "DiffView { height: 1fr; }"
    BINDINGS = [Binding("j,down", "scroll_down", "Down", show=False),
                Binding("k,up", "scroll_up", "Up", show=False),
                Binding("space,pagedown", "page_down", "Page down", show=False),
                Binding("b,pageup", "page_up", "Page up", show=False)]

    def __init__(self, text: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.lines = [clean(ln.expandtabs(4)) for ln in text.splitlines()]
        self.kinds = [line_kind(ln) for ln in self.lines]
        self.file_rows = [i for i, k in enumerate(self.kinds) if k == "file"]
        self._paths = [ln.rsplit(" b/", 1)[-1] for ln in (self.lines[i] for i in self.file_rows)]
        self._lexers: dict[str, Any] = {}
        self._cache: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self.virtual_size = Size(max((cell_len(ln) for ln in self.lines), default=0) + 1, len(self.lines))

    def action_page_down(self) -> None:  # no animation: a page key answers at once, however long the diff
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.size.width
        key = (i, scroll_x, width)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if i >= len(self.lines):
            strip = Strip.blank(width)
        else:
            kind = self.kinds[i]
            if kind in ("add", "del", "text") and self.lines[i]:
                segs = code_segments(self.lines[i], kind, self._lexer_at(i))
                tint = TINT.get(kind)
            else:
                segs, tint = [Segment(self.lines[i], STYLES[kind])], None
            strip = Strip(segs).crop_extend(scroll_x, scroll_x + width, tint if tint else None)
        self._cache[key] = strip
        return strip

    def _lexer_at(self, row: int) -> Any:
        """The lexer of the file whose section holds this row (found by bisecting the file rows)."""
        import bisect

        k = bisect.bisect_right(self.file_rows, row) - 1
        if k < 0:
            return None
        path = self._paths[k]
        if path not in self._lexers:
            self._lexers[path] = _lexer_for(path)
        return self._lexers[path]

    def show_row(self, row: int) -> None:
        self.scroll_to(y=row, animate=False)


class ReviewScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="review.close"),
        Binding("l", "land", "Land", id="review.land"),
        Binding("c", "request_changes", "Request changes", id="review.request_changes"),
        Binding("n", "next_file", "Next file", id="review.next_file"),
        Binding("p", "prev_file", "Previous file", id="review.prev_file"),
        Binding("tab", "focus_next", "Files / diff", show=False),
    ]
    DEFAULT_CSS = """
    ReviewScreen #review-head { height: auto; padding: 0 1; }
    ReviewScreen #review-files { width: 36; height: 1fr; }
    ReviewScreen #review-body { height: 1fr; }
    """

    def __init__(self, db_path: str, run_id: str, task_id: str, data: dict[str, Any],
                 leader_action: LeaderAction) -> None:
        """leader_action(title, fn, task_id): runs fn (a store call) in a thread worker and reports its
        line (LeaderKeys.leader_action). Not named run_action: that is Textual's Widget.run_action."""
        super().__init__()
        self.db_path, self.run_id, self.task_id, self.data = db_path, run_id, task_id, data
        self.leader_action = leader_action

    def compose(self) -> ComposeResult:
        d = self.data
        head = Text()
        head.append(f"Review {self.task_id}", style="bold")
        head.append(f"  attempt {d['attempt_no']}  {clean(d['branch'])}  "
                    f"{d['base_commit'][:12]}..{d['head_commit'][:12]}"
                    f"  {len(d['files'])} file(s)")
        land = d.get("land") or {}
        if land.get("status") == "conflicts":
            head.append(f"\nconflicts with {clean(d['target'])}: {clean(', '.join(land['conflicts']))}",
                        style="bold red")
        elif land.get("status") == "landed":
            head.append(f"\nlanded into {clean(d['target'])} at {land['landed_commit'][:12]}", style="green")
        elif d.get("task_status") == "done":
            head.append(f"\nmerges cleanly into {clean(d['target'])}" if land.get("status") == "clean"
                        else f"\nlands into {clean(d['target'])}")
        else:
            head.append(f"\ntask is {d.get('task_status')}: `c` sends the review to its worker")
        if land.get("pr_url"):
            head.append(f"\npull request #{land['pr_number']} {clean(land['pr_url'])}")
        if d["uncommitted"]:
            head.append(f"\nuncommitted in the worktree (not shown): {clean(', '.join(d['uncommitted'][:10]))}",
                        style="yellow")
        with Vertical():
            yield Static(head, id="review-head")
            with Horizontal(id="review-body"):
                yield OptionList(*[Option(Text(clean(f)), id=f"f{i}") for i, f in enumerate(d["files"])],
                                 id="review-files")
                yield DiffView(d["diff"], id="review-diff")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(DiffView).focus()

    @property
    def diff_view(self) -> DiffView:
        return self.query_one(DiffView)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        rows = self.diff_view.file_rows
        i = event.option_index
        if 0 <= i < len(rows):
            self.diff_view.show_row(rows[i])

    def _jump(self, step: int) -> None:
        view = self.diff_view
        y = view.scroll_offset.y
        rows = view.file_rows
        if not rows:
            return
        later = [r for r in rows if r > y] if step > 0 else [r for r in rows if r < y]
        target = (later[0] if step > 0 else later[-1]) if later else (rows[0] if step > 0 else rows[-1])
        view.show_row(target)

    def action_next_file(self) -> None:
        self._jump(1)

    def action_prev_file(self) -> None:
        self._jump(-1)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_land(self) -> None:
        db, rid, task = self.db_path, self.run_id, self.task_id
        self.leader_action("land", lambda: land_op(db, rid, task), task)
        self.dismiss(None)

    def action_request_changes(self) -> None:
        from orch_console.console.tui.screens.modals import InstructionForm, InstructionScreen

        db, rid, task = self.db_path, self.run_id, self.task_id

        def done(form: InstructionForm | None) -> None:
            if form is None or not (form.body or "").strip():
                return
            self.leader_action("request changes", lambda: rework_op(db, rid, task, form.body or "", form.to), task)
            if self.is_current:
                self.dismiss(None)

        detail = ("The attempt still runs: the review goes to its worker as a reply."
                  if self.data.get("task_status") in ("dispatched", "running") else
                  "A new attempt starts on the land target's tip; its brief carries this review"
                  + (" and the conflicting files." if (self.data.get("land") or {}).get("conflicts") else "."))
        self.app.push_screen(InstructionScreen(f"Request changes on {task}", detail, ""), done)


# -- the store calls, run in the app's thread workers (each with its own short-lived Store) ------
def load_review(db_path: str, run_id: str, task_id: str) -> dict[str, Any]:
    from orch_console.store import land
    from orch_console.store.db import Store
    from orch_console.store.land_state import summary

    s = Store(db_path)
    try:
        d = land.diff(s, run_id=run_id, task_id=task_id)
        status = d["task_status"]
        if status == "done":
            try:
                land.check(s, run_id=run_id, task_id=task_id)  # conflicts known before landing
            except Exception:  # noqa: BLE001 - the view still shows the diff
                pass
        with s.snapshot() as conn:
            lv = summary(conn, run_id)
        d["target"] = lv["target"]
        d["land"] = lv["tasks"].get(task_id) or {}
        return d
    finally:
        s.close()


def land_op(db_path: str, run_id: str, task_id: str) -> str:
    from orch_console.store import land
    from orch_console.store.db import Store

    s = Store(db_path)
    try:
        out = land.land(s, run_id=run_id, task_id=task_id)
    finally:
        s.close()
    if out.get("noop"):
        return out["message"]
    ld = out["land"]
    return f"landed {task_id} into {ld['target']} at {ld['landed_commit'][:12]}"


def rework_op(db_path: str, run_id: str, task_id: str, body: str, to: str | None) -> str:
    from orch_console.store import land
    from orch_console.store.db import Store

    s = Store(db_path)
    try:
        out = land.rework(s, run_id=run_id, task_id=task_id, to=to, body=body)
    finally:
        s.close()
    if out.get("replied"):
        return f"review sent to {out['attempt']['assigned_to']} ({task_id} still running)"
    return f"{task_id}: attempt {out['attempt']['attempt_no']} dispatched with the review"


def open_review(keys: LeaderKeys) -> None:
    """The `V` key: the selected task's review view (loaded in a thread worker)."""
    task = keys._need_task("review")
    if not task:
        return
    h = keys.host
    db, rid = h.db_path, h.run_id or ""

    def load() -> None:
        from orch_console.console.tui.messages import ActionFinished
        from orch_console.console.tui.reader import error_text

        try:
            data = load_review(db, rid, task)
        except Exception as exc:  # noqa: BLE001
            h.post_message(ActionFinished("review", error_text(exc), False, task))
            return
        h.call_from_thread(h.push_screen, ReviewScreen(db, rid, task, data, keys.leader_action), lambda _: None)

    keys._in_thread(load, "prefill", "load review")
