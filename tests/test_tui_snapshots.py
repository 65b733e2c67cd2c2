"""Screenshots of the lab bench at 80x24 and 120x40, from a fixed fake exercise
and deterministic fake run folders (no real training, no timing)."""

from __future__ import annotations

import pytest

from .test_tui import fake_app, write_fake_run

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_main_screen(snap_compare, tmp_path, size):
    assert snap_compare(fake_app(tmp_path), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_live_run(snap_compare, tmp_path, size, monkeypatch):
    from labbench.tui.widgets import live

    monkeypatch.setattr(live, "QUIET_S", 10**6)  # a slow machine must not add "(no news for 6s)" to the picture
    folder = write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", done=8, status="running")
    assert snap_compare(fake_app(tmp_path, watch=folder), terminal_size=size,
                        run_before=lambda pilot: pilot.pause(0.5))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_compare_view(snap_compare, tmp_path, size):
    write_fake_run(tmp_path / "runs" / "a-lr-0.1", lr=0.1, start="2024-05-01T10:00:00")
    write_fake_run(tmp_path / "runs" / "b-lr-0.3", lr=0.3, start="2024-05-01T11:00:00")

    async def marked(pilot):
        pilot.app.action_tab("tab-runs")
        await pilot.pause()
        await pilot.press("space", "down", "space", "c")
        await pilot.pause(0.3)

    assert snap_compare(fake_app(tmp_path), terminal_size=size, run_before=marked)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_help_screen(snap_compare, tmp_path, size):
    assert snap_compare(fake_app(tmp_path), terminal_size=size, press=["question_mark"])
