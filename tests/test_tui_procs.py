"""Runs started from the lab bench outlive it: left running at quit, found
again by a new lab bench (a liveness record that a reused pid cannot fool),
stopped from there. Sweep presets run as sweeps; interrupted runs resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from labbench.engine.procs import RunManager, process_start_time, record_file, same_process
from labbench.tui.widgets.live import LivePanel
from labbench.tui.widgets.runs_table import RunsTable

from .test_tui import FAKE, FakeParams, fake_app, pid_gone, real_app, start_long_run, wait_for, write_fake_run


def test_the_liveness_record_tells_a_reused_pid_apart():
    me = process_start_time(os.getpid())
    assert me is not None and same_process(os.getpid(), me)
    assert not same_process(os.getpid(), me - 3600)  # the pid, but another process's start time
    assert not same_process(2 ** 22 + 12345, me)  # no such process


@pytest.mark.slow
def test_leave_runs_going_at_quit_then_reopen_follows_and_stops_them(tmp_path):
    asyncio.run(_leave_and_reopen(tmp_path))


async def _leave_and_reopen(tmp_path):
    app = real_app(tmp_path)
    pid = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            proc = await start_long_run(app, pilot)
            pid = proc.pid
            assert os.getsid(pid) == pid  # its own session: the terminal's SIGHUP never reaches it
            assert json.loads(record_file(proc.folder).read_text())["pid"] == pid
            await pilot.press("q")
            await pilot.pause(0.2)
            await pilot.press("l")  # "Leave running"
            await wait_for(pilot, lambda: not app.is_running, timeout=10)
        assert not pid_gone(pid), "the run died with the lab bench"
        again = real_app(tmp_path)
        async with again.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            adopted = [p for p in again.manager.procs if p.state == "running"]
            assert [p.folder for p in adopted] == [proc.folder] and adopted[0].pid == pid
            again.action_tab("tab-runs")
            await wait_for(pilot, lambda: again.query_one(RunsTable).row_count == 1)
            row = again.query_one(RunsTable).all_rows[0]
            assert row.live and row.status == "running"
            step = adopted[0].view.step or 0
            await wait_for(pilot, lambda: (adopted[0].view.step or 0) > step)  # followed live
            await pilot.press("s")
            await wait_for(pilot, lambda: adopted[0].state == "done", timeout=20)
            await wait_for(pilot, lambda: adopted[0].view.ended)
            assert adopted[0].view.status == "interrupted"
        assert pid_gone(pid)
        assert not record_file(proc.folder).exists()
    finally:
        if pid is not None and not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_sweep_preset_runs_as_a_sweep(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "two-lrs.toml").write_text(textwrap.dedent("""\
        exercise = "1.1-perceptron"
        name = "two lrs"
        [params]
        epochs = 3
        [sweep]
        lr = [0.1, 0.2]
        """))
    asyncio.run(_sweep(tmp_path, presets / "two-lrs.toml"))


async def _sweep(tmp_path, preset):
    from labbench.tui.screens.dialogs import ConfirmScreen

    app = real_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.load_preset_file(preset)
        await pilot.pause(0.3)
        assert app.sweep_spec["sweep"] == {"lr": [0.1, 0.2]}
        assert app.form.query_one("#p-epochs").value == "3"
        app.query_one("#tree").focus()
        await pilot.press("r")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmScreen) and "2 runs" in app.screen.question  # the grid first
        await pilot.press("y")
        await wait_for(pilot, lambda: app.manager.procs and app.manager.procs[0].state == "done", timeout=90)
        proc = app.manager.procs[0]
        assert proc.kind == "sweep" and proc.returncode == 0
        assert proc.cmd[2:5] == ["labbench", "sweep", str(proc.preset_file)]
        await wait_for(pilot, lambda: app.following is not None and app.following.done() == 2, timeout=10)
        app.refresh_runs()
        rows = app.query_one(RunsTable).all_rows
        assert sorted(r.name for r in rows) == ["lr=0.1 (two lrs)", "lr=0.2 (two lrs)"]
        assert {r.status for r in rows} == {"ok"}
        sweep_box = app.query_one("#live-sweep")
        assert sweep_box.display
        from .test_tui_runs import plain

        text = plain(app.query_one(LivePanel).sweep_table)
        assert "2/2 done" in text and "final_mse" in text


def fake_labbench(tmp_path: Path) -> Path:
    """A stand-in for `python` that records its command line and, for
    `-m labbench resume FOLDER ...`, appends a resumed run's events."""
    script = tmp_path / "fake-python"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys, time
        from pathlib import Path
        args = sys.argv[1:]
        Path({str(tmp_path / 'argv.json')!r}).write_text(json.dumps(args))
        folder = Path(args[3])
        with open(folder / "events.jsonl", "a") as fh:
            for ev in ({{"t": 0, "type": "start", "exercise": "1.9-fake", "params": {{}}}},
                       {{"t": 1, "type": "scalars", "step": 21, "values": {{"loss/train": 0.05}}}},
                       {{"t": 1, "type": "progress", "step": 21, "total": 21}},
                       {{"t": 2, "type": "end", "status": "ok", "message": ""}}):
                fh.write(json.dumps(ev) + "\\n")
        s = json.loads((folder / "summary.json").read_text())
        s.update(status="ok", metrics={{"final_loss": 0.05}})
        (folder / "summary.json").write_text(json.dumps(s))
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_resume_an_interrupted_run_launches_labbench_resume(tmp_path):
    folder = write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", epochs=20, done=12,
                            status="interrupted")
    asyncio.run(_resume(tmp_path, folder))


async def _resume(tmp_path, folder):
    app = fake_app(tmp_path, python=str(fake_labbench(tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_tab("tab-runs")
        await pilot.pause()
        await pilot.press("R")
        await pilot.pause(0.2)
        from textual.widgets import Input

        app.screen.query_one("#name-input", Input).value = "21"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.manager.procs and app.manager.procs[0].state == "done", timeout=20)
        argv = json.loads((tmp_path / "argv.json").read_text())
        assert argv == ["-m", "labbench", "resume", str(folder), "--epochs", "21"]
        view = app.manager.procs[0].view
        await wait_for(pilot, lambda: view.ended and view.status == "ok")
        assert view.step == 21  # the resumed part was read, after the first "end"
        assert app.query_one(LivePanel).view is view


def test_resume_refuses_a_finished_run(tmp_path):
    write_fake_run(tmp_path / "runs" / "r", status="ok")

    async def go():
        app = fake_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.action_tab("tab-runs")
            await pilot.pause()
            await pilot.press("R")
            await pilot.pause(0.2)
            assert app.screen is app.screen_stack[0] and not app.manager.procs

    asyncio.run(go())


def test_manager_builds_the_command_lines(tmp_path):
    m = RunManager(tmp_path / "runs", python="py")
    m._start = lambda p, device: setattr(p, "cmd", m.command(p, device)) or setattr(p, "state", "running")
    run = m.submit(FAKE, FakeParams(), device="cpu")
    assert run.cmd == ["py", "-m", "labbench", "run", str(run.preset_file), "--out", str(run.folder), "--quiet",
                       "--device", "cpu"]
    sweep = m.submit_sweep(FAKE, FakeParams(), {"lr": [0.1, 0.2]}, name="s")
    assert sweep.cmd[:4] == ["py", "-m", "labbench", "sweep"] and sweep.folder.name.startswith("sweep-")
    assert "[sweep]" in sweep.preset_file.read_text() and "lr = [0.1, 0.2]" in sweep.preset_file.read_text()
    res = m.resume(run.folder, epochs=50)
    assert res.cmd == ["py", "-m", "labbench", "resume", str(run.folder), "--epochs", "50"]
