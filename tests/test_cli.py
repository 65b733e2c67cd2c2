"""The CLI end to end: list, show, run, run folders, exit codes, sweeps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from labbench.cli import app
from labbench.engine.events import EventTail, iter_events

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def test_list_groups_by_session():
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0
    assert "Session 1" in res.output and "1.1-perceptron" in res.output and "1.2-backprop" in res.output


def test_show_lists_parameters():
    res = runner.invoke(app, ["show", "1.1-perceptron"])
    assert res.exit_code == 0
    for word in ("use_pi", "lr", "epochs", "two-layer", "both", "> 0", "Learning rate"):
        assert word in res.output
    res = runner.invoke(app, ["show", "9.9-nothing"])
    assert res.exit_code == 2 and "unknown exercise" in res.output


def test_run_writes_a_complete_folder(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs=5", "--seed", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"preset.toml", "meta.json", "events.jsonl", "summary.json",
                                               "artifacts"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["steps_done"] == 5 and summary["seed"] == 2
    meta = json.loads((out / "meta.json").read_text())
    for key in ("labbench", "python", "torch", "device", "hostname", "command", "start", "end"):
        assert key in meta
    events = list(iter_events(out))
    assert events[0]["type"] == "start" and events[-1]["type"] == "end"
    # the resolved preset repeats the run exactly
    again = tmp_path / "again"
    res = runner.invoke(app, ["run", str(out / "preset.toml"), "--out", str(again)])
    assert res.exit_code == 0, res.output
    assert json.loads((again / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_out_folder_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "x").write_text("keep me")
    res = runner.invoke(app, ["run", "1.1-perceptron", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not empty" in res.output
    assert (tmp_path / "x").read_text() == "keep me"


def test_default_run_folders_never_clobber(tmp_path):
    runs = tmp_path / "runs"
    for _ in range(2):
        res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs=2", "--runs-dir", str(runs), "-q"])
        assert res.exit_code == 0
    folders = sorted(runs.iterdir())
    assert len(folders) == 2 and all("1.1-perceptron" in f.name for f in folders)


def test_diverged_run_exit_code(tmp_path):
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "lr=0.3", "--out", str(tmp_path / "r")])
    assert res.exit_code == 3
    assert "diverged at epoch" in res.output


def test_unknown_device_is_bad_input(tmp_path):
    res = runner.invoke(app, ["run", "1.1-perceptron", "--device", "tpu", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--device" in res.output


def test_sweep_with_a_diverging_point_finishes_every_point(tmp_path):
    out = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", "1.1-perceptron", "--set", "lr=0.2,0.3,0.02", "--set", "epochs=30",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    index = json.loads((out / "sweep.json").read_text())
    assert [p["status"] for p in index["points"]] == ["ok", "diverged", "ok"]
    for point in index["points"]:
        summary = json.loads((out / point["dir"] / "summary.json").read_text())
        assert summary["params"]["lr"] == point["values"]["lr"]
        assert summary["params"]["epochs"] == 30
    assert "diverged" in res.output and "0.02" in res.output


def test_sweep_preset_file_runs_its_grid(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('exercise = "1.1-perceptron"\n[params]\nepochs = 3\n[sweep]\nlr = [0.1, 0.2]\n'
                 'use_pi = [true, false]\n')
    res = runner.invoke(app, ["sweep", str(p), "--out", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert len(index["points"]) == 4
    assert {(pt["values"]["lr"], pt["values"]["use_pi"]) for pt in index["points"]} == {
        (0.1, True), (0.1, False), (0.2, True), (0.2, False)}


def test_sweep_columns_keep_the_exercises_order_when_a_metric_is_missing_at_first():
    from labbench.cli import sweep_metric_columns

    runs = [{"course_loss": 2.8, "test_mse": 0.06, "params": 7, "status_text": "x"},
            {"course_loss": 0.9, "report": 0.636, "test_mse": 0.03, "params": 7, "flag": True},
            {"new_first": 1.0, "course_loss": 0.2}]
    assert sweep_metric_columns(runs, "course_loss") == ["course_loss", "report", "test_mse", "params", "new_first"]
    assert sweep_metric_columns(runs) == ["course_loss", "report", "test_mse", "params", "new_first"]


def test_event_tail_leaves_a_partial_line_for_later(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "a"}\n{"type": "b"')
    tail = EventTail(path)
    assert [e["type"] for e in tail.read()] == ["a"]
    with open(path, "a") as fh:
        fh.write(', "x": 1}\n')
    assert tail.read() == [{"type": "b", "x": 1}]
    assert tail.read() == []


def test_ctrl_c_leaves_a_complete_interrupted_folder(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "labbench", "run", "1.1-perceptron", "--set", "epochs=1000000",
                             "--out", str(out), "-q"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        tail = EventTail(out / "events.jsonl")
        seen = 0
        while time.monotonic() < deadline and seen < 20:
            seen += sum(1 for e in tail.read() if e["type"] == "progress")
            time.sleep(0.05)
        assert seen >= 20, "the run never got going"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert 0 < summary["steps_done"] < 1_000_000
    meta = json.loads((out / "meta.json").read_text())
    assert "end" in meta
    events = list(iter_events(out))
    assert events[-1]["type"] == "end" and events[-1]["status"] == "interrupted"
    assert (out / "preset.toml").read_text().startswith('exercise = "1.1-perceptron"')


def test_a_single_set_value_replaces_a_sweep_list(tmp_path):
    from labbench.engine.presets import load_preset

    p = tmp_path / "s.toml"
    p.write_text('exercise = "1.1-perceptron"\n[sweep]\nlr = [0.1, 0.2]\nepochs = [3, 4]\n')
    preset = load_preset(p, sweep_overrides=["lr=0.05", "epochs=5,6,7"])
    assert preset.params.lr == 0.05 and "lr" not in preset.sweep
    assert preset.sweep == {"epochs": [5, 6, 7]}


def test_headless_run_draws_its_pictures(tmp_path):
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs=5", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0
    assert "data and fitted curves" in res.output and "┤" in res.output  # the final fit, drawn
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs=5", "--out", str(tmp_path / "b"),
                              "--no-pictures"])
    assert res.exit_code == 0 and "data and fitted curves" not in res.output


def test_missing_data_is_refused_before_any_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path / "empty"))
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["run", "1.3-mnist-cnn", "--runs-dir", str(runs)])
    assert res.exit_code == 2
    assert "labbench data fetch mnist" in res.output and "Traceback" not in res.output
    assert not runs.exists()
    res = runner.invoke(app, ["sweep", "2.2-mlp-classify", "--set", "dataset=ionosphere,pima", "--runs-dir", str(runs)])
    assert res.exit_code == 2 and "ionosphere" in res.output and not runs.exists()
    # an exercise variant that reads no data set still runs
    res = runner.invoke(app, ["run", "2.2-ard", "--runs-dir", str(runs), "-q", "--no-pictures"])
    assert res.exit_code == 0, res.output
