"""Preset loading: every error names file:line and key, exit 2, no traceback."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from labbench.cli import app
from labbench.engine.params import ParamsInvalid
from labbench.engine.presets import load_preset, render_preset, shipped_presets_dir
from labbench.engine.registry import get_exercise

runner = CliRunner()


def write(tmp_path: Path, text: str, name="p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def validate(path: Path):
    res = runner.invoke(app, ["presets", "validate", str(path)])
    return res.exit_code, res.output


def test_syntax_error_names_file_and_line(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\n[params]\nlr = = 0.2\n')
    code, output = validate(p)
    assert code == 2
    assert f"{p}:3" in output and "TOML syntax error" in output
    assert "Traceback" not in output


def test_unknown_key_suggests_the_right_one(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\n\n[params]\nepochs = 10\nlearning_rate = 0.1\nlrr = 0.1\n')
    code, output = validate(p)
    assert code == 2
    assert f"{p}:6: lrr: unknown parameter" in output
    assert 'did you mean "lr"' in output
    assert f"{p}:5: learning_rate" in output


def test_out_of_range_value(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\n[params]\nepochs = 10\nlr = -0.5\n')
    code, output = validate(p)
    assert code == 2
    assert f"{p}:4: lr: must be greater than 0" in output


def test_wrong_type_and_bad_choice(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\n[params]\nepochs = "many"\nmodel = "cnn"\n')
    with pytest.raises(ParamsInvalid) as exc:
        load_preset(p)
    text = str(exc.value)
    assert f"{p}:3: epochs:" in text and "integer" in text
    assert f"{p}:4: model: must be one of" in text and "'cnn'" in text


def test_unknown_exercise(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptrn"\n')
    code, output = validate(p)
    assert code == 2
    assert f"{p}:1: exercise: unknown exercise" in output
    assert 'did you mean "1.1-perceptron"' in output


def test_unknown_top_level_key_and_bad_sweep(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\nlr = 0.1\n[sweep]\nlr = 0.1\nepochs = [10, -1]\n')
    with pytest.raises(ParamsInvalid) as exc:
        load_preset(p)
    text = str(exc.value)
    assert f"{p}:2: lr: unknown top-level key" in text
    assert f"{p}:4: sweep.lr: must be a non-empty list" in text


def test_sweep_values_are_each_validated(tmp_path):
    p = write(tmp_path, 'exercise = "1.1-perceptron"\n[sweep]\nepochs = [10, -1]\n')
    with pytest.raises(ParamsInvalid) as exc:
        load_preset(p)
    assert f"{p}:3: sweep.epochs: -1: must be at least 1" in str(exc.value)


def test_set_overrides_get_the_same_checks(tmp_path):
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "lr=0", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "--set: lr: must be greater than 0" in res.output
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epoch=3", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert 'epoch: unknown parameter (did you mean "epochs"?)' in res.output
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
    assert not (tmp_path / "r").exists()


def test_missing_preset_file(tmp_path):
    code, output = validate(tmp_path / "nope.toml")
    assert code == 2 and "no such preset file" in output


def test_shipped_presets_are_valid():
    files = sorted(shipped_presets_dir().glob("*.toml"))
    assert files, "no shipped presets found"
    res = runner.invoke(app, ["presets", "validate", *map(str, files)])
    assert res.exit_code == 0, res.output


def test_every_exercise_has_a_shipped_preset():
    from labbench.engine.presets import list_presets
    from labbench.engine.registry import all_exercises

    shipped = list_presets()
    missing = [ex for ex in all_exercises() if ex not in shipped]
    assert not missing, f"exercises without a shipped preset: {missing}"


def test_presets_new_round_trips(tmp_path):
    res = runner.invoke(app, ["presets", "new", "1.1-perceptron"])
    assert res.exit_code == 0
    assert "# Learning rate" in res.output  # descriptions as comments
    p = write(tmp_path, res.output)
    preset = load_preset(p)
    ex = get_exercise("1.1-perceptron")
    assert preset.params == ex.default_params()


def test_render_preset_with_values_round_trips(tmp_path):
    ex = get_exercise("1.2-backprop")
    params = ex.Params(lr=0.2, x1=[1, 2, 3], x2=[0, 0, 0], y=[1, 1, 1])
    p = write(tmp_path, render_preset(ex, params, name='a "quoted" name', seed=7, sweep={"steps": [1, 2]}))
    preset = load_preset(p)
    assert preset.params == params and preset.seed == 7 and preset.name == 'a "quoted" name'
    assert preset.sweep == {"steps": [1, 2]}
