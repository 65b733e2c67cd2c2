"""Shared by the tests of the generative exercises (4.2-4.4): a tiny,
cached sample-quality classifier, and "stopped and resumed equals straight"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from labbench.engine import Run
from labbench.engine.events import iter_events, load_artifact, read_json
from labbench.engine.presets import preset_for_exercise
from labbench.engine.runner import execute, resume
from labbench.nn import load_weights
from labbench.nn import quality

from .helpers import SHARED_DATA

#: a scorer trained in a second or two: enough to tell digits from noise
TINY_SCORER = {"epochs": 1, "train_limit": 3000, "batch_size": 64, "lr": 3e-3, "seed": 0}


def need(*parts: str) -> None:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path}")


#: what the first sample_quality call (which trained the tiny scorer) said
FIRST_SCORE: dict = {}


@pytest.fixture(scope="session")
def tiny_scorer_folder(tmp_path_factory) -> Path:
    """A folder holding the tiny MNIST scorer, trained once per test session
    the way an exercise meets it: by its first ``sample_quality`` call."""
    need("mnist", "train-images-idx3-ubyte.gz")
    folder = tmp_path_factory.mktemp("scorers")
    events: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABBENCH_DATA", str(SHARED_DATA))
        mp.setitem(quality.DEFAULTS, "mnist", dict(TINY_SCORER))
        mp.setattr(quality, "scorer_folder", lambda: folder)
        run = Run(None, listeners=[events.append])
        samples = torch.rand(200, 1, 28, 28)
        FIRST_SCORE.update(metrics=quality.sample_quality(run, lambda k: samples[:k], 200),
                           texts=[e["text"] for e in events if e["type"] == "text"])
    return folder


@pytest.fixture
def tiny_scorer(tiny_scorer_folder, monkeypatch):
    """Exercises score their samples with the tiny scorer (never the full one,
    never written into the shared data folder)."""
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    monkeypatch.setitem(quality.DEFAULTS, "mnist", dict(TINY_SCORER))
    monkeypatch.setattr(quality, "scorer_folder", lambda: tiny_scorer_folder)
    return tiny_scorer_folder


class StopAfterEpoch:
    """A stop flag raised when the progress event of ``step`` arrives."""

    def __init__(self, step: int):
        self.step, self.requested = step, False

    def __call__(self) -> bool:
        return self.requested

    def listen(self, ev: dict) -> None:
        if ev.get("type") == "progress" and ev.get("step") == self.step:
            self.requested = True


def images(folder: Path, name: str) -> list[tuple[dict, np.ndarray]]:
    """Every images event called ``name`` with its array, in order."""
    return [(ev, load_artifact(folder, ev["file"])) for ev in iter_events(folder)
            if ev["type"] == "images" and ev["name"] == name]


def check_resume(ex_id: str, tmp_path: Path, *, epochs: int = 3, stop_at: int = 2, **params) -> dict:
    """Run ``epochs`` straight, and stopped after ``stop_at`` then resumed: the
    weights and every curve must agree. Returns the resumed run's summary."""
    sets = [f"epochs={epochs}"] + [f"{k}={_toml(v)}" for k, v in params.items()]

    def preset():
        p = preset_for_exercise(ex_id, overrides=sets)
        p.device, p.seed = "cpu", 3
        return p

    straight = execute(preset(), tmp_path / "straight")
    assert straight.status == "ok", straight.summary.get("message")
    stop = StopAfterEpoch(stop_at)
    part = execute(preset(), tmp_path / "stopped", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted", part.summary.get("message")
    assert part.summary["metrics"]["epochs_done"] == stop_at
    info = read_json(tmp_path / "stopped" / "artifacts" / "checkpoint.json")
    assert info["epoch"] == stop_at
    done = resume(tmp_path / "stopped", preset=preset())
    assert done.status == "ok", done.summary.get("message")
    assert done.summary["metrics"]["epochs_done"] == epochs
    wa, wb = load_weights(tmp_path / "straight"), load_weights(tmp_path / "stopped")
    assert wa.keys() == wb.keys()
    for model in wa:
        for k in wa[model]:
            assert torch.allclose(wa[model][k].float(), wb[model][k].float(), rtol=0, atol=1e-5), (model, k)
    ca, cb = _curves(tmp_path / "straight"), _curves(tmp_path / "stopped")
    assert ca.keys() == cb.keys()
    for k in ca:
        assert [s for s, _ in cb[k]] == list(range(1, epochs + 1)), k
        assert np.allclose([v for _, v in cb[k]], [v for _, v in ca[k]], rtol=1e-5, atol=1e-6), k
    # the evolution strip of the resumed run still starts at epoch 1
    strip = images(tmp_path / "stopped", "samples by epoch")[-1][0]
    assert strip["captions"][0] == "epoch 1" and strip["captions"][-1] == f"epoch {epochs}"
    return done.summary


def _curves(folder: Path) -> dict:
    out: dict = {}
    for ev in iter_events(folder):
        if ev["type"] == "scalars":
            for k, v in ev["values"].items():
                out.setdefault(k, []).append((ev["step"], v))
    return out


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)
