"""The console's themes: Theme objects built from the TOML files beside this module, plus the
stylesheets that use their variables. Adding a theme is adding a .toml file here."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from textual.theme import Theme

HERE = Path(__file__).resolve().parent
DEFAULT_THEME = "orch-dark"
STYLESHEETS = [HERE / "console.tcss"]


@lru_cache(maxsize=1)
def load_themes() -> dict[str, Theme]:
    themes: dict[str, Theme] = {}
    for f in sorted(HERE.glob("*.toml")):
        data = tomllib.loads(f.read_text())
        variables = dict(data.pop("variables", {}))
        theme = Theme(variables=variables, **data)
        themes[theme.name] = theme
    return themes


def theme_names() -> list[str]:
    return list(load_themes())


def variable_defaults() -> dict[str, str]:
    """Our custom variables taken from the default theme, so a built-in Textual theme still has
    every `$status-*` the stylesheets refer to."""
    return dict(load_themes()[DEFAULT_THEME].variables)
