"""The lab bench driven as a student drives it: every exercise and every
shipped preset picked from the tree (by keyboard and by mouse), log scale on
live and finished runs, resizes between 80x24 and 160x50 on every tab, and
every screen opened. None of it may raise: Pilot re-raises the app's first
exception when the test leaves ``run_test``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from labbench.engine.presets import list_presets
from labbench.engine.registry import all_exercises
from labbench.tui.app import LabBench
from labbench.tui.widgets.exercise_tree import ExerciseTree
from labbench.tui.widgets.live import CurvePlot, LivePanel

from .test_tui import fake_app, fake_registered, real_app, wait_for, write_fake_run  # noqa: F401


def whole_app(tmp_path: Path) -> LabBench:
    """Every registered exercise and every shipped preset, as `labbench` opens."""
    return LabBench(runs_dir=tmp_path / "runs", presets_dir=tmp_path / "presets", detect_devices=False)


def shipped() -> dict[str, list[Path]]:
    return list_presets()


def tree_nodes(tree: ExerciseTree, kind: str | None = None):
    out = []

    def walk(node):
        for child in node.children:
            if kind is None or (child.data is not None and child.data.kind == kind):
                out.append(child)
            walk(child)

    walk(tree.root)
    return out


@pytest.mark.slow
def test_walk_the_whole_tree_by_keyboard(tmp_path):
    asyncio.run(_walk_keyboard(tmp_path))


async def _walk_keyboard(tmp_path):
    app = whole_app(tmp_path)
    seen_exercises: list[str] = []
    loaded: list[str] = []
    orig = app.load_preset_file

    def spy(path):
        loaded.append(Path(path).name)
        return orig(path)

    app.load_preset_file = spy
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tree = app.query_one(ExerciseTree)
        tree.focus()
        await pilot.press("home")
        # Down through every line; Enter on an exercise opens its presets, Enter on a preset loads it
        for _ in range(400):
            node = tree.cursor_node
            if node is not None and node.data is not None:
                if node.data.kind == "exercise":
                    await pilot.press("enter")
                    if node.children and not node.is_expanded:
                        await pilot.press("enter")  # a second Enter: it was open, the first closed it
                elif node.data.kind == "preset":
                    await pilot.press("enter")
                    tree.focus()  # loading a preset shows the form: back to the tree
                if app.exercise is not None and app.exercise.id not in seen_exercises:
                    seen_exercises.append(app.exercise.id)
            before = tree.cursor_line
            await pilot.press("down")
            if tree.cursor_line == before:
                break
        await pilot.pause(0.3)
        assert seen_exercises == list(all_exercises())
        expected = sorted(p.name for paths in shipped().values() for p in paths)
        assert sorted(loaded) == expected
        # the form on screen is the one of the exercise shown, and only it
        shown = [f for f in app.query("ParamForm") if f.display]
        assert [f.exercise.id for f in shown] == [app.exercise.id]


@pytest.mark.slow
def test_pick_every_exercise_and_preset_by_mouse(tmp_path):
    asyncio.run(_walk_mouse(tmp_path))


async def _walk_mouse(tmp_path):
    app = whole_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tree = app.query_one(ExerciseTree)
        for node in tree_nodes(tree, "exercise"):
            node.expand()
        await pilot.pause()
        exercises, presets = tree_nodes(tree, "exercise"), tree_nodes(tree, "preset")
        assert len(exercises) == len(all_exercises())
        assert len(presets) == sum(len(v) for v in shipped().values())
        # presets first (a click on one loads it and leaves the tree as it is), then the exercises
        # from the bottom up (a click opens or closes an exercise's presets, moving only the lines below)
        for node in presets + exercises[::-1]:
            tree.scroll_to_line(node.line, animate=False)
            await pilot.pause()
            y = node.line - round(tree.scroll_offset.y)
            assert 0 <= y < tree.size.height
            await pilot.click(ExerciseTree, offset=(8, y))
            assert app.exercise.id == node.data.exercise
            if node.data.kind == "preset":
                form = app.form
                assert form is not None and form.display
        await pilot.pause(0.3)


def test_log_scale_on_live_and_finished_runs_survives_redraws(tmp_path):
    asyncio.run(_log_scale(tmp_path))


async def _log_scale(tmp_path):
    write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", images=False)
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.open_run(tmp_path / "runs" / "20240501-100000_1.9-fake")
        await pilot.pause(0.3)
        app.query_one("#tree").focus()
        await pilot.press("l")
        for size in ((80, 24), (160, 50), (120, 40)):  # each redraw builds the plot again
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
        plot = app.query_one(CurvePlot)
        text = plot.render()
        labels = str(text)
        assert plot.logy and "0.1" in labels  # decade ticks in the values' own units
        await pilot.press("l")
        await pilot.pause(0.2)
        assert not app.query_one(CurvePlot).logy


def test_log_scale_while_a_real_run_goes_and_ends(tmp_path):
    asyncio.run(_log_scale_live(tmp_path))


async def _log_scale_live(tmp_path):
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        from .test_tui import set_field

        set_field(app, "epochs", "40")
        set_field(app, "lr", "0.02")
        await pilot.pause()
        proc = app.action_run()
        app.query_one("#tree").focus()
        await pilot.press("l")
        await wait_for(pilot, lambda: (proc.view.step or 0) >= 5)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: proc.view.ended, timeout=60)
        await pilot.pause(0.5)  # the end's redraw, in log scale
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.3)
        assert proc.view.status == "ok", proc.view.message
        assert app.query_one(LivePanel).curve_points() == {"loss": 40}


def test_resize_every_tab_between_80x24_and_160x50(tmp_path):
    asyncio.run(_resize_tabs(tmp_path))


async def _resize_tabs(tmp_path):
    for i, lr in enumerate((0.1, 0.3)):
        write_fake_run(tmp_path / "runs" / f"2024050{i + 1}-100000_1.9-fake", lr=lr, start=f"2024-05-0{i + 1}T10:00")
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.open_run(tmp_path / "runs" / "20240501-100000_1.9-fake")
        await pilot.pause(0.2)
        for tab in ("tab-exercise", "tab-live", "tab-runs"):
            app.action_tab(tab)
            for size in ((80, 24), (160, 50), (81, 25), (120, 40), (80, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause(0.1)
                assert app.query_one("#tabs", TabbedContent).active == tab
        app.action_toggle_tree()
        await pilot.resize_terminal(160, 50)
        await pilot.pause(0.1)
        assert not app.query_one(ExerciseTree).display


def test_every_screen_opens_and_closes(tmp_path, fake_registered):
    asyncio.run(_screens(tmp_path))


async def _screens(tmp_path):
    from labbench.tui.screens.compare import CompareScreen
    from labbench.tui.screens.dialogs import (ConfirmScreen, HelpScreen, LogScreen, NameScreen,
                                              QuitScreen)

    write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", lr=0.1, start="2024-05-01T10:00")
    write_fake_run(tmp_path / "runs" / "20240502-100000_1.9-fake", lr=0.3, start="2024-05-02T10:00")
    app = fake_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        main = app.screen

        async def opened(kind, *keys):
            if keys:
                await pilot.press(*keys)
            await pilot.pause(0.2)
            assert isinstance(app.screen, kind), app.screen
            await pilot.resize_terminal(160, 50)
            await pilot.pause(0.1)
            await pilot.resize_terminal(80, 24)
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert app.screen is main

        app.query_one("#tree").focus()
        await opened(HelpScreen, "question_mark")
        await opened(NameScreen, "ctrl+s")
        app.action_tab("tab-runs")
        await opened(LogScreen, "v")
        await opened(ConfirmScreen, "x")  # delete: asks first
        await pilot.press("space", "down", "space")
        await opened(CompareScreen, "c")
        app.manager.procs.append(_fake_active(tmp_path))
        app.query_one("#tree").focus()
        await opened(QuitScreen, "q")
        app.manager.procs.clear()
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert app.screen is not main  # the command palette
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.screen is main


def _fake_active(tmp_path):
    from labbench.engine.procs import RunProc

    return RunProc(folder=tmp_path / "runs" / "x", preset_file=None, exercise="1.9-fake", state="queued")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_toolbar_fits_and_device_picker_is_labelled(tmp_path, size):
    asyncio.run(_toolbar(tmp_path, size))


async def _toolbar(tmp_path, size):
    app = fake_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen_w = app.screen.size.width
        for bid in ("#btn-run", "#btn-stop", "#btn-reset", "#btn-save"):
            region = app.query_one(bid).region
            assert region.width >= 4 and region.right <= screen_w, (bid, region)
        save = app.query_one("#btn-save")
        assert "Save" in str(save.render())
        assert str(app.query_one("#device-label").render()) == "device"
        app.action_toggle_tree()
        await pilot.pause()
        assert app.query_one("#tabs").region.x == 0  # the tree hidden: the tabs take the whole width


def test_a_broken_exercise_module_is_explained_not_a_crash(tmp_path):
    asyncio.run(_broken(tmp_path))


async def _broken(tmp_path):
    from labbench.engine.registry import ExerciseStub

    from .test_tui import FAKE

    # listed from its source, but its import fails when the form needs its parameters
    broken = ExerciseStub("labbench.exercises.s9_not_there", None, {"id": "1.8-broken", "title": "Broken",
                                                                     "session": 1, "data": []})
    app = LabBench(runs_dir=tmp_path / "runs", presets_dir=tmp_path / "presets", detect_devices=False,
                   exercises={"1.8-broken": broken, FAKE.id: FAKE}, shipped_presets=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert app.exercise.id == "1.8-broken" and app.form is None
        text = str(app.query_one(".form-broken").render())
        assert "cannot be loaded" in text and "s9_not_there" in text
        app.query_one("#tree").focus()
        await pilot.press("r")  # nothing to run: a message, no crash
        await pilot.press("down")
        await pilot.pause(0.3)
        assert app.exercise.id == FAKE.id and app.form is not None


def test_code_blocks_of_a_description_wrap_at_80x24(tmp_path):
    async def go():
        app = whole_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.pick_exercise("1.4-personal-regression")
            await pilot.pause(0.5)
            from textual.widgets._markdown import MarkdownFence

            fences = [f for f in app.query(MarkdownFence) if "T_new" in f.code]
            assert fences
            fence = fences[0]
            label = fence.query_one("Label")
            assert len(fence.code.strip()) > fence.region.width  # longer than the pane...
            assert label.region.width <= fence.region.width and label.region.height >= 2  # ...so it wraps

    asyncio.run(go())
