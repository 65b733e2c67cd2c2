"""The shared parameters: declared once, listed after the exercise's own, and
combinations refused with the key before a run folder exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from typer.testing import CliRunner

from labbench.cli import app
from labbench.engine.params import ParamsInvalid, describe_fields, validate_params
from labbench.nn import DeepParams, ScheduleParams


class Example(DeepParams, ScheduleParams):
    epochs: int = Field(10, ge=1, description="Epochs")
    lr: float = Field(0.1, gt=0, description="LR")


def errors(**values) -> list[str]:
    with pytest.raises(ParamsInvalid) as info:
        validate_params(Example, values)
    return [str(e) for e in info.value.errors]


def test_own_fields_first_then_the_shared_ones():
    names = [f.name for f in describe_fields(Example)]
    assert names[:2] == ["epochs", "lr"]
    assert names[2:] == ["lr_schedule", "lr_step_size", "lr_gamma", "lr_min", "lr_max", "precision", "compile",
                         "channels_last", "train_limit", "test_limit", "checkpoint_every"]
    assert list(Example().model_dump()) == names
    compile_field = next(f for f in describe_fields(Example) if f.name == "compile")
    assert compile_field.kind == "choice" and compile_field.choices == (True, False, "auto")


def test_rules_across_fields_name_the_key():
    assert errors(checkpoint_every=20) == ["checkpoint_every: every 20 epochs is more than the run's 10 epochs: no "
                                           "checkpoint before the end (use at most 10, or leave it unset)"]
    assert errors(lr_schedule="step", lr_step_size=10)[0].startswith("lr_step_size: a step every 10 epochs never")
    assert errors(lr_max=1.0)[0] == 'lr_max: only the onecycle schedule has a peak LR (lr_schedule is "none")'
    assert errors(lr_schedule="cosine", lr=0.1, lr_min=0.2)[0].startswith("lr_min: the cosine schedule goes down")
    assert errors(compile="maybe")[0].startswith("compile: must be one of")
    assert validate_params(Example, {"compile": "True"}).compile is True  # --set compile=True
    assert validate_params(Example, {"compile": "off"}).compile is False
    assert errors(precision="fp8")[0].startswith("precision: must be one of")
    ok = validate_params(Example, {"epochs": 20, "checkpoint_every": 20, "lr_schedule": "onecycle", "lr_max": 1.0,
                                   "compile": True, "precision": "fp16"})
    assert ok.checkpoint_every == 20 and ok.compile is True


def test_a_bad_combination_is_refused_before_a_run_folder_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["run", "1.3-mnist-cnn", "--set", "epochs=3", "--set", "checkpoint_every=5",
                                   "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert "checkpoint_every: every 5 epochs is more than the run's 3 epochs" in res.output
    assert not (tmp_path / "runs").exists()
    preset = tmp_path / "bad.toml"
    preset.write_text('exercise = "1.3-mnist-cnn"\n[params]\nepochs = 3\ncheckpoint_every = 5\n')
    res = CliRunner().invoke(app, ["presets", "validate", str(preset)])
    assert res.exit_code == 2 and f"{Path('bad.toml').name}:4: checkpoint_every" in res.output
