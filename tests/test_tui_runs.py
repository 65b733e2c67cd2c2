"""Runs a student can tell apart and reuse: the runs table follows the runs
folder, names runs by what differs, sorts and filters, shows a result of the
run, marks live runs; a run's parameters go back into the form, its log and
stderr can be read, it can be deleted into the trash; compare names curves
the same way, hides what is equal and lines runs up by fraction of training."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from textual import events
from textual.widgets import Input

from labbench.engine.procs import STAGING
from labbench.runs import is_live, load_run
from labbench.tui.names import run_name, shown_metric
from labbench.tui.widgets.live import CurveChart, FigureView, LivePanel, status_text
from labbench.tui.widgets.runs_table import RunsTable

from .test_tui import fake_app, fake_registered, wait_for, write_fake_run  # noqa: F401


def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def plain(renderable) -> str:
    """What a rich renderable shows, as text."""
    from rich.console import Console

    console = Console(width=120, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


def cells(table: RunsTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_runs_table_follows_the_folder_and_names_runs_by_what_differs(tmp_path):
    asyncio.run(_follows(tmp_path))


async def _follows(tmp_path):
    write_fake_run(runs(tmp_path) / "20240501-100000_1.9-fake", lr=0.1, start="2024-05-01T10:00:00")
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_tab("tab-runs")
        table = app.query_one(RunsTable)
        assert [r[4] for r in cells(table)] == ["defaults"]  # lr=0.1 is the fake's default
        # a run started elsewhere (headless, another lab bench) appears without a restart
        write_fake_run(runs(tmp_path) / "20240502-100000_1.9-fake", lr=0.02, epochs=500, done=5,
                       start="2024-05-02T10:00:00")
        await wait_for(pilot, lambda: table.row_count == 2, timeout=5)
        assert [r[4] for r in cells(table)] == ["lr=0.02 epochs=500", "defaults"]  # newest first
        # sort by name, filter by text and by status
        table.focus()
        await pilot.press("o")  # started -> exercise
        await pilot.press("o", "o", "o")  # -> name
        assert table.sort_by == "name"
        assert [r[4] for r in cells(table)] == ["defaults", "lr=0.02 epochs=500"]
        app.query_one("#runs-filter", Input).value = "epochs=500"
        await pilot.pause()
        assert [r[4] for r in cells(table)] == ["lr=0.02 epochs=500"]
        app.query_one("#runs-filter", Input).value = "status:fail"
        await pilot.pause()
        assert table.row_count == 0
        app.query_one("#runs-filter", Input).value = "ex:1.9 status:ok"
        await pilot.pause()
        assert table.row_count == 2


def test_a_preset_name_and_sweep_points_name_runs(tmp_path):
    write_fake_run(runs(tmp_path) / "a", start="2024-05-01T10:00:00")
    summary = json.loads((runs(tmp_path) / "a" / "summary.json").read_text())
    summary["name"] = "report: small lr"
    (runs(tmp_path) / "a" / "summary.json").write_text(json.dumps(summary))
    assert run_name(load_run(runs(tmp_path) / "a")) == "report: small lr"
    point = write_fake_run(runs(tmp_path) / "sweep-x" / "002_lr=0.3,epochs=5", lr=0.3, epochs=5)
    info = load_run(point, sweep="sweep-x")
    assert run_name(info) == "lr=0.3 epochs=5"


def test_the_metric_shown_is_a_result_of_the_run_not_a_reference(tmp_path):
    """An interrupted 1.1 run reported the least-squares optimum (0.4235) at
    its start but never its final MSE: the table shows its last loss."""
    folder = runs(tmp_path) / "20240501-100000_1.1-perceptron"
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text("")
    (folder / "summary.json").write_text(json.dumps({
        "status": "interrupted", "exercise": "1.1-perceptron", "params": {}, "metrics": {"optimum_mse": 0.4235},
        "last_scalars": {"loss/perceptron": 0.9731}, "start": "2024-05-01T10:00:00"}))
    info = load_run(folder)
    assert shown_metric(info) == ("loss/perceptron (last)", 0.9731)
    done = json.loads((folder / "summary.json").read_text())
    done.update(status="ok", metrics={"optimum_mse": 0.4235, "final_mse": 0.4236})
    (folder / "summary.json").write_text(json.dumps(done))
    assert shown_metric(load_run(folder)) == ("final_mse", 0.4236)


def test_live_runs_are_marked_and_a_reused_pid_is_not_taken_for_one(tmp_path):
    live = write_fake_run(runs(tmp_path) / "live", status="running", start="2024-05-01T10:00:00")
    # this test's own process stands for the run's writer: it started before "now"
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 5))
    import socket

    (live / "meta.json").write_text(json.dumps({"pid": os.getpid(), "hostname": socket.gethostname(),
                                                "start": now}))
    assert is_live(live)
    reused = write_fake_run(runs(tmp_path) / "reused", status="running")
    # the same pid, but the run started long before this process did: the pid was reused
    (reused / "meta.json").write_text(json.dumps({"pid": os.getpid(), "hostname": socket.gethostname(),
                                                  "start": "2001-01-01T00:00:00"}))
    assert not is_live(reused)
    asyncio.run(_live_marks(tmp_path))


async def _live_marks(tmp_path):
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        rows = {r[0].info.path.name: r for r in [(row,) for row in app.query_one(RunsTable).all_rows]}
        assert rows["live"][0].live and rows["live"][0].status == "running"
        assert not rows["reused"][0].live and rows["reused"][0].status == "lost"
        table = app.query_one(RunsTable)
        assert str(table.get_row(str(runs(tmp_path) / "live"))[1]) == "●"


def test_run_again_with_changes_log_and_delete(tmp_path):
    asyncio.run(_reuse(tmp_path))


async def _reuse(tmp_path):
    folder = write_fake_run(runs(tmp_path) / "20240501-100000_1.9-fake", lr=0.3, epochs=7, done=7)
    summary = json.loads((folder / "summary.json").read_text())
    summary["seed"] = 4
    (folder / "summary.json").write_text(json.dumps(summary))
    (runs(tmp_path) / STAGING).mkdir(parents=True)
    (runs(tmp_path) / STAGING / f"{folder.name}.stderr").write_text("UserWarning: something the run said\n")
    app = fake_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.action_tab("tab-runs")
        await pilot.pause()
        await pilot.press("e")  # the run's parameters into the form
        await pilot.pause(0.2)
        form = app.form
        assert form.query_one("#p-lr", Input).value == "0.3" and form.query_one("#p-epochs", Input).value == "7"
        assert form.seed() == 4
        app.action_tab("tab-runs")
        await pilot.press("v")  # its log and stderr
        await pilot.pause(0.2)
        text = plain(app.screen.body)
        assert "fake data: 50 points" in text and "UserWarning: something the run said" in text
        assert "status: ok" in text
        await pilot.press("escape")
        await pilot.press("x")  # delete, after a confirmation
        await pilot.pause(0.2)
        await pilot.press("y")
        await pilot.pause(0.3)
        assert not folder.exists()
        assert (runs(tmp_path) / ".trash" / folder.name / "summary.json").exists()
        assert app.query_one(RunsTable).row_count == 0


def test_compare_names_curves_like_the_table_hides_equal_and_uses_fractions(tmp_path):
    asyncio.run(_compare(tmp_path))


async def _compare(tmp_path):
    a = write_fake_run(runs(tmp_path) / "a", lr=0.1, epochs=20, done=20, start="2024-05-01T10:00:00")
    b = write_fake_run(runs(tmp_path) / "b", lr=0.3, epochs=40, done=40, start="2024-05-02T10:00:00")
    for folder, total in ((a, 20), (b, 40)):
        s = json.loads((folder / "summary.json").read_text())
        s["steps_total"] = total
        s["metrics"]["same_everywhere"] = 1.0
        (folder / "summary.json").write_text(json.dumps(s))
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_tab("tab-runs")
        await pilot.pause()
        await pilot.press("space", "down", "space", "c")
        await pilot.pause(0.3)
        screen = app.screen
        assert sorted(screen.cmp.colors()) == ["defaults", "lr=0.3 epochs=40"]
        table = plain(screen.table_renderable)
        assert "same_everywhere" in table
        await pilot.press("d")
        await pilot.pause(0.1)
        table = plain(screen.table_renderable)
        assert "same_everywhere" not in table and "final_loss" in table and "lr" in table
        await pilot.press("f")
        await pilot.pause(0.1)
        overlay = screen.cmp.overlay(screen.curve, fraction=screen.fraction)
        assert {name: (xs[0], xs[-1]) for name, (xs, _) in overlay.items()} == {
            "defaults": (0.05, 1.0), "lr=0.3 epochs=40": (0.025, 1.0)}


def test_command_palette_offers_every_action_and_the_exercises(tmp_path):
    app = fake_app(tmp_path)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for want in ("Run", "Stop", "Compare", "Save preset", "Load run into the form", "Log scale", "Resume",
                         "Tab: Exercise", "Tab: Live", "Tab: Runs", "Exercise 1.9-fake"):
                assert want in titles, want

    asyncio.run(go())


def test_header_epoch_agrees_with_the_diverged_message(tmp_path):
    folder = write_fake_run(runs(tmp_path) / "d", epochs=35, done=18, status="diverged")
    s = json.loads((folder / "summary.json").read_text())
    s.update(diverged_step=19, message="diverged at epoch 19: loss/train non-finite (nan)")
    (folder / "summary.json").write_text(json.dumps(s))
    from labbench.tui.state import RunView

    view = RunView(folder)
    view.poll()
    text = status_text(view).plain
    assert "epoch 19/35" in text and "diverged at epoch 19" in text


def test_a_line_figure_repeating_a_chart_replaces_it_and_charts_label_whole_epochs(tmp_path):
    folder = write_fake_run(runs(tmp_path) / "f", epochs=300, done=300, images=False)
    ys = [1.0 / (1 + 0.1 * 10 * e) for e in range(1, 301)]
    fig = {"t": 1.5, "type": "figure", "name": "loss", "kind": "line", "title": "MSE per epoch",
           "data": {"x": list(range(1, 301)), "series": {"train": ys}, "xlabel": "epoch"}}
    lines = (folder / "events.jsonl").read_text().splitlines(keepends=True)
    (folder / "events.jsonl").write_text("".join(lines[:-1] + [json.dumps(fig) + "\n"] + lines[-1:]))

    async def go():
        app = fake_app(tmp_path, watch=folder)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: len(app.query(FigureView)) == 1, timeout=10)
            await pilot.pause(0.3)
            charts = {c.chart: c.display for c in app.query(CurveChart)}
            assert charts == {"loss": False, "acc": True}  # the loss is drawn once, as the figure
            plot = next(c for c in app.query(CurveChart) if c.chart == "acc").plot
            text = plot.render().plain if hasattr(plot.render(), "plain") else str(plot.render())
            assert "epoch" in text  # the x axis is labelled
            ticks = text.splitlines()[-2].split()
            assert ticks and all(t.isdigit() for t in ticks), ticks  # whole epochs, never 75.8

    asyncio.run(go())


def test_fast_typing_keeps_its_order(tmp_path):
    """Keys that arrive together (a quick typist, a paste over SSH): the
    backspaces act before the digits after them."""

    async def go():
        app = fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            field = app.form.query_one("#p-lr", Input)
            field.focus()
            await pilot.pause()
            burst = [("end", None)] + [("backspace", "\x7f")] * 8 + [(c, c) for c in "0.02"]
            for key, char in burst:  # all queued at once, as a terminal delivers a burst
                app.post_message(events.Key(key, char))
            await pilot.pause(0.3)
            assert field.value == "0.02"
            assert not app.form.errors

    for _ in range(3):
        asyncio.run(go())


def test_presets_list_shows_the_users_presets(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from labbench.cli import app

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "small-lr.toml").write_text('exercise = "1.1-perceptron"\n[params]\nlr = 0.02\n')
    monkeypatch.setenv("LABBENCH_PRESETS", str(mine))
    res = CliRunner().invoke(app, ["presets", "list"])
    assert res.exit_code == 0
    assert "small-lr.toml" in res.output and "(yours)" in res.output
    assert "1.1-perceptron-course.toml" in res.output


def test_watch_waits_for_a_run_that_has_not_started(tmp_path):
    import threading

    from typer.testing import CliRunner

    from labbench.cli import app
    from labbench.tui.cli import wait_for_run

    folder = tmp_path / "later"
    said = []
    threading.Timer(0.5, lambda: (folder.mkdir(), (folder / "events.jsonl").write_text(""))).start()
    assert wait_for_run(folder, 10, say=said.append, poll_s=0.05)
    assert said and "waiting for" in said[0]
    res = CliRunner().invoke(app, ["watch", str(tmp_path / "never"), "--wait", "0.3"])
    assert res.exit_code == 2
    assert "waiting for" in res.output and "not a run folder after 0.3 s" in res.output


def test_form_and_cli_word_a_wrong_type_the_same_way(tmp_path):
    from typer.testing import CliRunner

    from labbench.cli import app as cli

    res = CliRunner().invoke(cli, ["run", "1.1-perceptron", "--set", "epochs=abc", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "epochs: must be an integer, got 'abc'" in res.output

    async def go():
        from .test_tui import real_app, set_field

        app = real_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            set_field(app, "epochs", "abc")
            set_field(app, "lr", "fast")
            await pilot.pause()
            assert app.form.errors["epochs"] == "epochs: must be an integer, got 'abc'"
            assert app.form.errors["lr"] == "lr: must be a number, got 'fast'"
            assert "input should be" not in " ".join(app.form.errors.values())

    asyncio.run(go())


def test_heat_map_titles_wrap_instead_of_being_cut(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("COLORTERM", "truecolor")
    folder = write_fake_run(runs(tmp_path) / "maps", images=False)
    a = np.linspace(-1, 1, 20)
    z = (np.outer(a, a) + a[None, :]).round(4).tolist()
    title = "squared test error of the model (mean per cell)"
    ev = [{"t": 1.5, "type": "figure", "name": f"map/{i}", "kind": "heatmap", "title": f"{title} {i}",
           "data": {"z": z, "x": a.round(3).tolist(), "y": a.round(3).tolist(), "zlabel": "f"}} for i in range(4)]
    lines = (folder / "events.jsonl").read_text().splitlines(keepends=True)
    (folder / "events.jsonl").write_text("".join(lines[:-1] + [json.dumps(e) + "\n" for e in ev] + lines[-1:]))

    async def go(size):
        app = fake_app(tmp_path, watch=folder)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: len(app.query(FigureView)) == 4, timeout=20)
            await pilot.pause(0.3)
            for i, fv in enumerate(app.query(FigureView)):
                text = " ".join(fv.render().plain.split())
                assert f"{title} {i}" in text, (fv.region.width, text[:80])
                assert fv.region.width < len(title)  # narrower than its title: it had to wrap

    asyncio.run(go((120, 40)))
    asyncio.run(go((80, 24)))


def test_fast_typing_across_tab_goes_to_the_next_field(tmp_path):
    """``0.5 Tab 7`` typed in one burst: 0.5 in lr, 7 in the next field (epochs)."""

    async def go():
        app = fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            form = app.form
            lr, epochs = form.query_one("#p-lr", Input), form.query_one("#p-epochs", Input)
            lr.focus()
            await pilot.pause()
            burst = [("end", None)] + [("backspace", "\x7f")] * 5 + [(c, c) for c in "0.5"] + [("tab", "\t")]
            burst += [("end", None)] + [("backspace", "\x7f")] * 4 + [("7", "7")]
            for key, char in burst:
                app.post_message(events.Key(key, char))
            await pilot.pause(0.3)
            assert (lr.value, epochs.value) == ("0.5", "7")
            assert app.focused is epochs

    for _ in range(3):
        asyncio.run(go())


def test_a_chart_updated_before_it_is_composed_is_drawn_later(tmp_path):
    """On a busy machine the next refresh can reach a chart mounted a moment
    before, whose plot does not exist yet: that must not raise (it used to
    stop the refresh timer for good: a live view that froze)."""
    folder = write_fake_run(runs(tmp_path) / "r", images=False)

    async def go():
        from labbench.tui.state import RunView

        app = fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            live = app.query_one(LivePanel)
            view = RunView(folder)
            view.poll()
            live.view = view
            live.update_from({"charts:loss"})
            live.update_from({"charts:loss"})  # no await in between: the chart is not composed yet
            await pilot.pause(0.3)
            assert live.curve_points() == {"loss": 40}

    asyncio.run(go())


def test_a_run_going_on_updates_its_row_in_place(tmp_path):
    """A refresh that changes a row's cells but not the list keeps the cursor
    and the rows where they are (no redraw of the whole table every second)."""
    from labbench.runs import RunInfo
    from labbench.tui.widgets.runs_table import make_row

    async def go():
        app = fake_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            table = app.query_one(RunsTable)
            infos = [RunInfo(path=tmp_path / f"r{i}", exercise="1.9-fake", status="running", params={"lr": 0.1 * i},
                             start=f"2024-05-0{i + 1}T10:00:00") for i in range(3)]
            table.set_rows([make_row(i, True, {"loss/train": 1.0}) for i in infos])
            table.move_cursor(row=2)
            cleared = []
            table.clear = lambda *a, **k: cleared.append(1)  # a full redraw would call this
            table.set_rows([make_row(i, True, {"loss/train": 0.5}) for i in infos])
            await pilot.pause()
            assert not cleared and table.cursor_row == 2
            assert "loss/train (last)=0.5000" in [str(c) for c in table.get_row_at(1)]

    asyncio.run(go())


def test_a_bad_preset_is_reported_as_the_cli_reports_it(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    bad = presets / "bad.toml"
    bad.write_text('exercise = "1.1-perceptron"\n[params]\nepochs = 5\nlr = -1\n')

    async def go():
        from .test_tui import real_app

        app = real_app(tmp_path)
        said = []
        app.notify = lambda message, **kw: said.append(message)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.load_preset_file(bad)
            await pilot.pause()
        assert said and f"{bad}:4: lr: must be greater than 0" in said[-1]

    asyncio.run(go())
