"""The built wheel is the product: installed into a fresh virtual environment outside the
checkout and used from another directory, it runs the demo and opens the console with both
themes. The editable install CI uses elsewhere cannot see a data file missing from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FIRST_FRAME = r"""
import asyncio, sys
from orch_console.console.tui.app import OrchConsole
from orch_console import themes

async def main(db, theme):
    app = OrchConsole(db_path=db, run_id=None, theme=theme)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == theme, app.theme
        # the first frame is drawn: the screen has a rendered region with text in it
        assert app.screen.size.width == 120
        assert app.query("TaskTable"), "no task table on the first frame"
    print("frame", theme, sorted(themes.load_themes()))

for theme in ("orch-dark", "orch-light"):
    asyncio.run(main(sys.argv[1], theme))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True)
    (whl,) = out.glob("orch_console-*.whl")
    return whl


def test_wheel_holds_one_import_root_and_every_data_file(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"orch_console"}, tops
    for data in ("orch_console/themes/orch-dark.toml", "orch_console/themes/orch-light.toml",
                 "orch_console/themes/console.tcss", "orch_console/console/tui/app.tcss"):
        assert data in names, data


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_and_draws_the_console(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ORCH_DB", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    db = elsewhere / "demo.db"
    demo = subprocess.run([str(venv / "bin" / "orch"), "--db", str(db), "--json", "demo", "--headless",
                           "--dir", str(elsewhere / "demo")], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=600)
    assert demo.returncode == 0, (demo.stdout[-2000:], demo.stderr[-2000:])
    # the package came from the wheel in the fresh venv, not from the checkout
    where = subprocess.run([str(py), "-c", "import orch_console.store as s; print(s.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where, where
    frame = subprocess.run([str(py), "-c", FIRST_FRAME, str(elsewhere / "console.db")], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=300)
    assert frame.returncode == 0, frame.stderr[-3000:]
    assert "frame orch-dark ['orch-dark', 'orch-light']" in frame.stdout
    assert "frame orch-light" in frame.stdout
