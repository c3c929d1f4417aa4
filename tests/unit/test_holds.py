"""Profile holds: a usage limit or an outage holds a profile until its reset time, a default pause,
or the leader's release; each hold and release is an event."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from orch_console.store import Store
from orch_console.store.errors import InvalidInput, NotFound
from orch_console.store.holds import active, hold, release, remaining, reset_after

NOW = datetime(2026, 12, 2, 10, 0, 0).timestamp()


@pytest.mark.parametrize(("line", "minutes"), [
    ("You've hit your usage limit. Resets in 2h 5m", 125),
    ("Claude usage limit reached. Try again in 37 minutes", 37),
    ("5-hour limit reached ∙ resets 3pm", 300),
    ("Usage limit reached; resets at 9:30", 23 * 60 + 30),  # past today: tomorrow's
    ("retry in 45s", 0.75),
])
def test_reset_times_read_from_the_screen(line: str, minutes: float) -> None:
    got = reset_after(line, NOW)
    assert got is not None and round((got - NOW) / 60, 2) == minutes


@pytest.mark.parametrize("line", ["Rate limit exceeded", "resets soon", "resets at 99:99", ""])
def test_no_reset_time_when_the_screen_names_none(line: str) -> None:
    assert reset_after(line, NOW) is None


def test_hold_once_then_release(store: Store) -> None:
    now = time.time()
    h = hold(store, profile="claude", kind="usage_limit", reason="usage limit reached",
             line="Resets in 1h", run_id="r", task_id="t", attempt_no=1, now=now)
    assert h is not None and h["kind"] == "usage_limit"
    assert 3590 < (remaining(active(store)["claude"]) or 0) <= 3600
    # the same screen seen again on the next pass changes nothing and says nothing
    assert hold(store, profile="claude", kind="usage_limit", reason="again", now=now + 5) is None
    assert store.scalar("SELECT count(*) FROM events WHERE event_type='profile_held'") == 1
    out = release(store, profile="claude", by="leader")
    assert out["released"]["kind"] == "usage_limit" and active(store) == {}
    assert store.scalar("SELECT count(*) FROM events WHERE event_type='profile_released'") == 1
    with pytest.raises(NotFound):
        release(store, profile="claude", by="leader")


def test_a_login_problem_holds_until_released_and_a_past_hold_is_not_in_force(store: Store) -> None:
    now = time.time()
    hold(store, profile="codex", kind="auth", reason="Not logged in", now=now)
    assert remaining(active(store)["codex"]) is None
    hold(store, profile="gemini", kind="network", reason="ENOTFOUND", now=now - 3600)  # 5 min default, long past
    assert "gemini" not in active(store)
    with pytest.raises(InvalidInput):
        hold(store, profile="x", kind="boredom", reason="?")


def test_a_released_sighting_does_not_hold_again_but_a_new_attempt_does(tmp_path) -> None:
    """The leader releases a profile while the stuck attempt's pane still shows the limit: the
    watcher's next look at that same screen holds nothing; another attempt meeting it does."""
    from orch_console.store import Store, holds

    with Store(str(tmp_path / "c.db")) as store:
        kw = dict(profile="codex", kind="usage_limit", reason="429", run_id="r1", task_id="t1")
        assert holds.hold(store, attempt_no=1, **kw) is not None
        holds.release(store, profile="codex", by="leader")
        assert holds.hold(store, attempt_no=1, **kw) is None
        assert holds.active(store) == {}
        assert holds.hold(store, attempt_no=2, **kw) is not None
        assert list(holds.active(store)) == ["codex"]
