"""1.3-mnist-cnn: the Keras CNN's size, and one epoch on 10,000 real MNIST
images reaching the accuracy floor."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from labbench.exercises.s1_mnist_cnn import CourseCNN, MnistCnnParams, optimizer_settings

from .helpers import run_exercise

from .helpers import SHARED_DATA as SHARED


@pytest.fixture
def mnist_data(monkeypatch, tmp_path_factory):
    if not (SHARED / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED / 'mnist'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def test_exactly_34826_parameters():
    model = CourseCNN()
    counts = [p.numel() for p in model.parameters()]
    assert sum(counts) == 34_826
    assert counts[0] + counts[1] == 320 and counts[2] + counts[3] == 18_496 and counts[4] + counts[5] == 16_010
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_each_optimiser_gets_its_own_settings():
    assert optimizer_settings(MnistCnnParams()) == {"lr": 1e-3, "eps": 1e-7}
    s = optimizer_settings(MnistCnnParams(optimizer="adadelta", lr=0.1))
    assert s == {"lr": 0.1, "rho": 0.95, "eps": 1e-7}
    s = optimizer_settings(MnistCnnParams(optimizer="sgd", momentum=0.4))
    assert s["lr"] == 0.01 and s["momentum"] == 0.4


def test_one_epoch_on_10k_images_reaches_95_percent(mnist_data, tmp_path):
    result, events = run_exercise("1.3-mnist-cnn", tmp_path, epochs=1, train_limit=10_000, validation_split=0.1,
                                  batch_size=32, lr=0.002, show_digits=24)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["params"] == 34_826
    assert m["test_acc"] >= 0.95
    assert m["val_acc"] >= 0.93
    cm = next(e for e in events if e["type"] == "figure" and e["name"] == "confusion")
    data = cm["data"]
    assert data["annotate"] is True and len(data["z"]) == 10
    z = np.array(data["z"])
    assert z.sum() == 10_000 and np.trace(z) / z.sum() == pytest.approx(m["test_acc"])
    grid = next(e for e in events if e["type"] == "images" and e["name"] == "test-digits")
    assert len(grid["captions"]) == 24
    wrong = [i for i, c in enumerate(grid["captions"]) if c.split("/")[0] != c.split("/")[1]]
    assert grid["highlight"] == wrong
    assert grid["captions"][0].endswith("/7")  # the first test digit is a 7
    for key in ("loss/train", "loss/val", "acc/train", "acc/val"):
        assert any(e["type"] == "scalars" and key in e["values"] for e in events)


def test_missing_mnist_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path / "nothing"))
    result, _ = run_exercise("1.3-mnist-cnn", tmp_path / "runs", epochs=1)
    assert result.status == "failed" and result.exit_code == 2
    assert "labbench data fetch mnist" in result.summary["message"]
    assert "traceback" not in result.summary
