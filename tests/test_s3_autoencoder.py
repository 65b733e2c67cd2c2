"""3.2-autoencoder: the model's size by hand, the course's loss scale, one epoch
beating the mean image on real MNIST, the digits refreshed every epoch, and a
stopped run resumed to the same weights."""

from __future__ import annotations

import pytest
import torch

from labbench.engine.events import iter_events, load_artifact
from labbench.engine.presets import load_preset, preset_for_exercise, shipped_presets_dir
from labbench.engine.runner import execute, resume
from labbench.engine.sweep import expand
from labbench.exercises.s3_autoencoder import REPORT, Autoencoder, course_scale

from .helpers import SHARED_DATA, run_exercise
from .test_resume import StopAt, assert_same_run


@pytest.fixture
def mnist_data(monkeypatch, tmp_path_factory):
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED_DATA / 'mnist'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def test_parameter_count_by_hand():
    # encoder 784 x 32 weights + 32 biases, decoder 32 x 784 weights + 784 biases
    assert sum(p.numel() for p in Autoencoder(32).parameters()) == 784 * 32 + 32 + 32 * 784 + 784 == 50_992
    assert sum(p.numel() for p in Autoencoder(64).parameters()) == 784 * 64 + 64 + 64 * 784 + 784 == 101_200
    with torch.no_grad():
        out = Autoencoder(16)(torch.rand(5, 784))
    assert out.shape == (5, 784) and float(out.min()) > 0 and float(out.max()) < 1  # sigmoid output


def test_course_scale_is_batch_size_times_the_per_pixel_mse():
    # the notebook: 10,000 images in 313 batches of 32 (the last one 16): sum(loss_b * n_b) / 313
    losses = torch.rand(313).double() * 0.1
    sizes = torch.tensor([32] * 312 + [16]).double()
    per_pixel = float((losses * sizes).sum() / 10_000)
    course = course_scale(float((losses * sizes).sum()), 313)
    assert course == pytest.approx(per_pixel * 10_000 / 313, rel=1e-12)
    assert course / per_pixel == pytest.approx(32, rel=2e-3)  # 31.95: "about 32x"


def test_one_epoch_beats_the_mean_image_and_reports_both_scales(mnist_data, tmp_path):
    # one epoch on 3,000 images (94 steps; lr 3e-3 to get past the mean-image plateau in so few)
    result, events = run_exercise("3.2-autoencoder", tmp_path, epochs=1, train_limit=3000, test_limit=300,
                                  lr=0.003, show_digits=10)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["params"] == 50_992 and m["epochs_done"] == 1
    assert 0.06 < m["baseline_mse"] < 0.08  # the mean digit misses by about 0.067 per pixel
    assert m["test_mse"] < 0.9 * m["baseline_mse"]  # measured 0.79-0.80 x for seeds 0-2
    # course scale: 3,000 images in ceil(3000 / 32) = 94 batches; 300 test images in 10 batches
    assert m["course_loss"] == pytest.approx(m["train_mse"] * 3000 / 94, rel=1e-5)
    assert m["course_loss"] / m["train_mse"] == pytest.approx(32, rel=5e-3)
    assert m["course_test"] == pytest.approx(m["test_mse"] * 300 / 10, rel=1e-5)
    scalars = [e for e in events if e["type"] == "scalars"]
    assert set(scalars[-1]["values"]) == {"per-pixel MSE/train", "per-pixel MSE/test", "course scale/train",
                                          "course scale/test"}
    grids = [e for e in events if e["type"] == "images" and e["name"] == "reconstructions"]
    assert [g["step"] for g in grids] == [1]
    arr = load_artifact(result.dir, grids[0]["file"])
    assert arr.shape == (10, 28 + 2 + 28, 28)  # each of the 10 digits above its reconstruction
    assert "report" not in m  # d 32 is not in the report's table


def test_stopped_run_resumes_to_the_same_weights(mnist_data, tmp_path):
    sets = ["epochs=3", "train_limit=600", "test_limit=100", "encoding_dim=16", "show_digits=4"]

    def preset():
        p = preset_for_exercise("3.2-autoencoder", overrides=sets)
        p.device = "cpu"
        return p

    straight = execute(preset(), tmp_path / "straight")
    stop = StopAt(step=2)
    part = execute(preset(), tmp_path / "stopped", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted" and part.summary["metrics"]["epochs_done"] == 2
    done = resume(tmp_path / "stopped", preset=preset())
    assert done.status == "ok" and done.summary["metrics"]["epochs_done"] == 3
    assert done.summary["metrics"]["test_mse"] == pytest.approx(straight.summary["metrics"]["test_mse"], rel=1e-6)
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")
    steps = [e["step"] for e in iter_events(tmp_path / "stopped") if e["type"] == "images"
             and e["name"] == "reconstructions"]
    assert steps == [1, 2, 3]


def test_report_table_preset_is_the_reports_grid():
    preset = load_preset(shipped_presets_dir() / "3.2-autoencoder-report-table.toml")
    points = expand(preset)
    grid = {(pt.preset.params.encoding_dim, pt.preset.params.epochs) for pt in points}
    assert grid == {(d, e) for d in (16, 64, 128) for e in (1, 5, 20)}
    assert set(REPORT) <= grid
    assert all(pt.preset.params.train_limit == 10_000 and pt.preset.params.batch_size == 32 for pt in points)
    assert preset.seed == 42 and preset.exercise.primary_metric == "course_loss"
