"""The console's settings: `~/.config/orch-console/config.toml` (or $ORCH_CONSOLE_CONFIG), then
$ORCH_THEME, then command-line flags, later ones winning.

    theme = "orch-light"
    report_dir = "reports"          # where `e` writes the wave report (default: reports/ beside the database)
    repo_path = "."                 # code-mode dispatch default
    [keymap]                        # binding id = keys, as in Textual's App.set_keymap
    "orch.dispatch" = "D"
    [notify]                        # when a worker needs the leader (runtime/notify.py)
    desktop = true                  # notify-send, where installed
    webhook = "https://ntfy.sh/my-topic"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from orch_console.console.runtime.notify import NotifySettings, parse_settings


def config_path() -> Path:
    env = os.environ.get("ORCH_CONSOLE_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "orch-console" / "config.toml"


@dataclass
class ConsoleConfig:
    theme: str = ""
    keymap: dict[str, str] = field(default_factory=dict)
    report_dir: str = ""
    repo_path: str = ""
    workspace_root: str = ""
    notify: NotifySettings = field(default_factory=NotifySettings)
    problems: list[str] = field(default_factory=list)  # shown as notifications, never fatal


def load_config(path: Path | None = None, *, theme: str | None = None) -> ConsoleConfig:
    cfg = ConsoleConfig()
    p = path or config_path()
    if p.is_file():
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            cfg.problems.append(f"ignored {p}: {exc}")
            data = {}
        cfg.theme = str(data.get("theme", "") or "")
        km = data.get("keymap", {})
        if isinstance(km, dict):
            cfg.keymap = {str(k): str(v) for k, v in km.items()}
        for key in ("report_dir", "repo_path", "workspace_root"):
            setattr(cfg, key, str(data.get(key, "") or ""))
        cfg.notify, problems = parse_settings(data.get("notify"))
        cfg.problems.extend(problems)
    cfg.theme = theme or os.environ.get("ORCH_THEME") or cfg.theme
    return cfg
