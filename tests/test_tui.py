"""Pilot tests of the lab bench: form errors, real runs (1.1-perceptron, few
epochs), stop, quit without leftovers, presets, reopening and comparing runs.
Also the fake exercise and fake run folders the snapshot tests use."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field
from textual.widgets import Input, Static

from labbench.engine import Exercise, Params
from labbench.tui.app import LabBench
from labbench.tui.widgets.live import LivePanel
from labbench.tui.widgets.runs_table import RunsTable


# ------------------------------------------------------------------ fakes
class FakeParams(Params):
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Optimiser")
    lr: float = Field(0.1, gt=0, description="Learning rate")
    epochs: int = Field(20, ge=1, description="Epochs")
    shuffle: bool = Field(True, description="Shuffle every epoch")


def _no_run(p, run):  # pragma: no cover - the fake is never run
    raise RuntimeError("fake")


FAKE = Exercise(id="1.9-fake", title="A fixed exercise for screenshots", session=1,
                description="A **fake** exercise: its text and form never change, so screenshots stay stable.",
                Params=FakeParams, run=_no_run, primary_metric="final_loss")


def write_fake_run(folder: Path, *, lr: float = 0.1, epochs: int = 20, done: int = 20, status: str = "ok",
                   images: bool = True, start: str = "2024-05-01T10:00:00") -> Path:
    """A deterministic run folder (no process behind it)."""
    folder.mkdir(parents=True)
    (folder / "artifacts").mkdir()
    ev = [{"t": 0.0, "type": "start", "exercise": "1.9-fake", "title": FAKE.title, "name": "",
           "params": {"optimizer": "sgd", "lr": lr, "epochs": epochs, "shuffle": True}, "seed": 0, "device": "cpu"},
          {"t": 0.0, "type": "text", "text": "fake data: 50 points", "level": "info"}]
    for e in range(1, done + 1):
        loss = 1.0 / (1 + lr * 10 * e)
        ev.append({"t": e * 0.1, "type": "scalars", "step": e,
                   "values": {"loss/train": loss, "loss/val": loss * 1.1, "acc/val": 1 - loss}})
        ev.append({"t": e * 0.1, "type": "progress", "step": e, "total": epochs, "phase": "epoch"})
    if images:
        arr = np.zeros((4, 8, 8), dtype=np.uint8)
        for i in range(4):
            arr[i, 1:7, 2 + i % 3] = 255
        np.save(folder / "artifacts" / "digits-0001.npy", arr)
        ev.append({"t": 1.0, "type": "images", "name": "digits", "title": "predicted/true", "file":
                   "artifacts/digits-0001.npy", "shape": [4, 8, 8], "captions": ["1/1", "2/7", "3/3", "4/4"],
                   "highlight": [1]})
    ev.append({"t": 1.0, "type": "table", "name": "result", "title": "Result", "columns": ["quantity", "value"],
               "rows": [["final loss", 1.0 / (1 + lr * 10 * done)], ["epochs", done]]})
    metrics = {"final_loss": round(1.0 / (1 + lr * 10 * done), 4)}
    summary = {"status": status, "exercise": "1.9-fake", "name": "", "seed": 0, "device": "cpu",
               "params": {"optimizer": "sgd", "lr": lr, "epochs": epochs, "shuffle": True},
               "metrics": metrics if status != "running" else {}, "start": start}
    if status != "running":
        ev.append({"t": 2.0, "type": "end", "status": status, "message": ""})
        summary["wall_time_s"] = 2.0
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ev))
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "meta.json").write_text(json.dumps({"hostname": "elsewhere", "start": start}))
    return folder


@pytest.fixture
def fake_registered(monkeypatch):
    """The fake exercise in the registry too, so its presets load as the CLI loads them."""
    from labbench.engine import registry

    stub = registry.ExerciseStub("tests.test_tui", None, {"id": FAKE.id, "title": FAKE.title, "session": 1},
                                 exercise=FAKE)
    monkeypatch.setattr(registry, "_STUBS", registry.list_exercise_stubs() + [stub])
    return FAKE


def fake_app(tmp_path: Path, **kw) -> LabBench:
    return LabBench(runs_dir=tmp_path / "runs", presets_dir=tmp_path / "presets", exercises={FAKE.id: FAKE},
                    detect_devices=False, shipped_presets=False, **kw)


def real_app(tmp_path: Path, **kw) -> LabBench:
    from labbench.engine.registry import get_exercise

    ex = get_exercise("1.1-perceptron")
    return LabBench(runs_dir=tmp_path / "runs", presets_dir=tmp_path / "presets", exercises={ex.id: ex},
                    detect_devices=False, shipped_presets=False, grace_s=3.0, **kw)


async def wait_for(pilot, cond, timeout=60.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.1)


def set_field(app, name: str, value: str) -> None:
    app.form.query_one(f"#p-{name}", Input).value = value


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").exists() and "zombie" in Path(f"/proc/{pid}/status").read_text()


# ------------------------------------------------------------------ tests
def test_bad_value_flagged_then_run_to_ok(tmp_path):
    asyncio.run(_test_bad_value_flagged_then_run_to_ok(tmp_path))


async def _test_bad_value_flagged_then_run_to_ok(tmp_path):
    app = real_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        set_field(app, "lr", "-1")
        await pilot.pause()
        err = app.form.query_one("#err-lr", Static)
        assert "lr: must be greater than 0" in str(err.render()) and "got -1" in str(err.render())
        assert app.action_run() is None  # refused
        assert not app.manager.procs
        set_field(app, "lr", "0.2")
        set_field(app, "epochs", "6")
        await pilot.pause()
        assert not app.form.errors
        proc = app.action_run()
        assert proc is not None
        await wait_for(pilot, lambda: proc.view.ended)
        await pilot.pause(0.4)
        assert proc.view.status == "ok", proc.view.message
        live = app.query_one(LivePanel)
        assert live.curve_points() == {"loss": 6}
        table = app.query_one(RunsTable)
        info = table.infos[str(proc.folder)]
        assert info.status == "ok" and info.primary_metric()[0] == "final_mse"
        row = table.get_row(str(proc.folder))
        assert "ok" in str(row[2])


async def start_long_run(app, pilot):
    """Start a 1.1 run of a million epochs and wait until it is under way;
    the tree has the focus so the app's keys (s, q) reach the app."""
    await pilot.pause()
    set_field(app, "epochs", "1000000")
    await pilot.pause()
    proc = app.action_run()
    await wait_for(pilot, lambda: (proc.view.step or 0) > 2)
    app.query_one("#tree").focus()
    return proc


def test_stop_a_long_run_ends_interrupted(tmp_path):
    asyncio.run(_test_stop_a_long_run_ends_interrupted(tmp_path))


async def _test_stop_a_long_run_ends_interrupted(tmp_path):
    app = real_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        proc = await start_long_run(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: proc.view.ended and proc.state == "done")
        assert proc.view.status == "interrupted"
        summary = json.loads((proc.folder / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["steps_done"] < 1_000_000
        assert pid_gone(proc.pid)


def test_quit_while_running_leaves_no_process(tmp_path):
    asyncio.run(_test_quit_while_running_leaves_no_process(tmp_path))


async def _test_quit_while_running_leaves_no_process(tmp_path):
    app = real_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        proc = await start_long_run(app, pilot)
        pid = proc.pid
        assert not pid_gone(pid)
        await pilot.press("q")
        await pilot.pause(0.2)
        await pilot.press("y")  # "Stop and quit?"
        await wait_for(pilot, lambda: not app.is_running or proc.state == "done", timeout=20)
    assert proc.state == "done"
    assert pid_gone(pid)
    assert json.loads((proc.folder / "summary.json").read_text())["status"] == "interrupted"


def test_save_preset_and_load_it_back(tmp_path, fake_registered):
    asyncio.run(_test_save_preset_and_load_it_back(tmp_path))


async def _test_save_preset_and_load_it_back(tmp_path):
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        set_field(app, "lr", "0.05")
        set_field(app, "__seed", "3")
        await pilot.pause()
        app.action_save_preset()
        await pilot.pause()
        app.screen.query_one("#name-input", Input).value = "small lr"
        await pilot.press("enter")
        await pilot.pause()
        path = tmp_path / "presets" / "small-lr.toml"
        text = path.read_text()
        assert 'exercise = "1.9-fake"' in text and "lr = 0.05" in text and "seed = 3" in text
        tree = app.query_one("#tree")
        node = tree.find_exercise("1.9-fake")
        assert [c.data.path for c in node.children] == [path]
        app.action_reset_form()
        await pilot.pause()
        assert app.form.query_one("#p-lr", Input).value == "0.1"
        app.load_preset_file(path)
        await pilot.pause()
        assert app.form.query_one("#p-lr", Input).value == "0.05"
        assert app.form.query_one("#p-__seed", Input).value == "3"
        # the same name again is refused with a message, nothing is overwritten
        app.action_save_preset()
        await pilot.pause()
        app.screen.query_one("#name-input", Input).value = "small lr"
        await pilot.press("enter")
        await pilot.pause()
        assert "exists already" in str(app.screen.query_one("#name-error", Static).render())


def test_reopen_a_finished_run_and_compare_two(tmp_path):
    asyncio.run(_test_reopen_a_finished_run_and_compare_two(tmp_path))


async def _test_reopen_a_finished_run_and_compare_two(tmp_path):
    write_fake_run(tmp_path / "runs" / "r1", lr=0.1, start="2024-05-01T10:00:00")
    write_fake_run(tmp_path / "runs" / "r2", lr=0.3, done=12, start="2024-05-01T11:00:00")
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_tab("tab-runs")
        await pilot.pause()
        table = app.query_one(RunsTable)
        assert table.row_count == 2
        await pilot.press("enter")  # the newest: r2
        await pilot.pause(0.3)
        assert app.selected.folder.name == "r2" and app.selected.status == "ok"
        assert app.query_one(LivePanel).curve_points() == {"loss": 24, "acc": 12}
        app.action_tab("tab-runs")
        await pilot.press("space", "down", "space", "c")
        await pilot.pause(0.3)
        from labbench.tui.screens.compare import CompareScreen

        assert isinstance(app.screen, CompareScreen)
        cmp = app.screen.cmp
        assert [r.info.path.name for r in cmp.runs] == ["r2", "r1"]
        assert cmp.differing_params() == ["lr"]
        await pilot.press("d")
        assert app.screen.only_differing


def _add_heatmaps(folder: Path, n: int = 4, size: int = 30) -> None:
    a = np.linspace(-1, 1, size)
    z = (np.outer(a, a) + a[None, :]).round(4).tolist()
    ev = [{"t": 1.5, "type": "figure", "name": "wall", "kind": "bar", "title": "wall time",
           "data": {"labels": ["a", "b"], "values": [1.0, 2.0]}}]
    ev += [{"t": 1.5, "type": "figure", "name": f"map/{i}", "kind": "heatmap", "title": f"surface {i}",
            "data": {"z": z, "x": a.round(3).tolist(), "y": a.round(3).tolist(), "zlabel": "f"}} for i in range(n)]
    lines = (folder / "events.jsonl").read_text().splitlines(keepends=True)
    (folder / "events.jsonl").write_text("".join(lines[:-1] + [json.dumps(e) + "\n" for e in ev] + lines[-1:]))


def test_heat_maps_side_by_side_on_a_wide_panel_one_per_row_at_80x24(tmp_path, monkeypatch):
    from labbench.tui.widgets.live import FigureView

    monkeypatch.setenv("COLORTERM", "truecolor")  # half-block maps need colour
    folder = write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", images=False)
    _add_heatmaps(folder)

    async def go(size):
        app = fake_app(tmp_path, watch=folder)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: len(app.query(FigureView)) == 5, timeout=20)
            await pilot.pause(0.3)
            maps = [fv for fv in app.query(FigureView) if fv.is_heatmap]
            bar = next(fv for fv in app.query(FigureView) if not fv.is_heatmap)
            panel = app.query_one("#live-maps")
            rows = sorted({fv.region.y for fv in maps})
            for fv in maps:  # every map drawn whole: 30 cells a line, 15 lines of half blocks
                lines = fv.render().plain.splitlines()
                assert sum("▀" in line for line in lines) == 15
                assert max(line.count("▀") for line in lines) == 30
                assert fv.region.width <= panel.region.width
            return len(rows), bar.region.width == panel.region.width

    assert asyncio.run(go((120, 40))) == (2, True)  # 4 maps, 2 a row; the bar chart keeps a whole row
    assert asyncio.run(go((80, 24))) == (4, True)  # one a row


def test_runs_refresh_while_a_dialog_is_open(tmp_path):
    asyncio.run(_test_runs_refresh_while_a_dialog_is_open(tmp_path))


async def _test_runs_refresh_while_a_dialog_is_open(tmp_path):
    """A run that ends while help (or any dialog) is on top must not crash the
    app: the timer updates the main screen's widgets, not the dialog's."""
    app = fake_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is not app.screen_stack[0]
        app.refresh_runs()
        app.tick()
        app.query_one(LivePanel)
        await pilot.pause()
