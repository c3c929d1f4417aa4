"""The key bar at the bottom: the screen's shown key bindings on one line, like Textual's Footer.

Footer is a container of one widget per key and recomposes (unmounts and mounts them all) on every
bindings change, i.e. on every focus change: ~250 ms of the UI thread per Tab press with the
console's twenty-odd keys, and ~100 ms before the first paint. This bar is one widget that renders
one line of text and is merely repainted when the bindings change. A click on a key presses it."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"keybar--key", "keybar--description", "keybar--separator"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .keybar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .keybar--separator { color: $foreground 20%; }
    }
    """

    def __init__(self, *, show_command_palette: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_command_palette = show_command_palette

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def _keys(self) -> tuple[list[tuple[str, str, str, bool]], tuple[str, str, str, bool] | None]:
        """(key, shown key, description, enabled) per action, in binding order; the palette key apart."""
        active = self.screen.active_bindings
        seen: set[str] = set()
        keys = []
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            keys.append((binding.key, self.app.get_key_display(binding), binding.description, enabled))
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            got = active.get(self.app.COMMAND_PALETTE_BINDING)
            if got is not None:
                _node, binding, enabled, _tooltip = got
                palette = (binding.key, self.app.get_key_display(binding), binding.description, enabled)
        return keys, palette

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        desc_style = self.get_component_rich_style("keybar--description")
        dim = Style(dim=True)
        keys, palette = self._keys()

        def item(text: Text, key: str, shown: str, description: str, enabled: bool) -> None:
            meta = Style.from_meta({"key": key})
            k, d = key_style + meta, desc_style + meta
            if not enabled:
                k, d = k + dim, d + dim
            text.append(f" {shown} ", k)
            if description:
                text.append(f"{description} ", d)

        text = Text(no_wrap=True, overflow="crop", end="")
        for k in keys:
            item(text, *k)
        if palette is not None:
            right = Text(end="")
            right.append("▏", self.get_component_rich_style("keybar--separator"))
            item(right, *palette)
            gap = self.size.width - cell_len(text.plain) - cell_len(right.plain)
            if gap > 0:
                text.append(" " * gap)
                text.append_text(right)
        return text

    def on_click(self, event: events.Click) -> None:
        key = event.style.meta.get("key")
        if key:
            event.stop()
            self.app.simulate_key(key)
