"""The sample-quality score: the Frechet distance against closed forms, the
class histogram and its entropy, the cached classifier (checksum and torch
version recorded, other data never trusted), and real images scoring far
below an untrained generator's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labbench.engine import Run
from labbench.exercises.s4_gan import Generator
from labbench.nn import quality
from labbench.nn.quality import (Scorer, class_entropy, data_checksum, feature_stats, frechet_distance,
                                 missing_classes, sample_quality)

from .generative import FIRST_SCORE, TINY_SCORER, tiny_scorer, tiny_scorer_folder  # noqa: F401 (fixtures)
from .helpers import SHARED_DATA


# ------------------------------------------------------------ closed forms
def test_frechet_distance_of_one_dimensional_gaussians():
    # N(m1, s1^2) against N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2)
    assert frechet_distance([0.5, -1.0], np.eye(2), [0.5, -1.0], np.eye(2)) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + (4 + 1 + 0) = 10
    assert want == pytest.approx(10.0)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want)


def test_frechet_distance_matches_scipy_sqrtm_on_full_covariances():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    want = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-6)


def test_feature_stats_are_mean_and_sample_covariance():
    f = torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]])
    mu, sigma = feature_stats(f)
    assert mu.tolist() == pytest.approx([3.0, 4.0])
    assert sigma.ravel().tolist() == pytest.approx([4.0, 6.0, 6.0, 12.0])  # ddof 1


def test_class_entropy_and_missing_classes():
    assert class_entropy([100] * 10) == pytest.approx(math.log2(10))
    assert class_entropy([0, 0, 7, 0]) == 0.0 and str(class_entropy([0, 0, 7, 0])) == "0.0"  # not -0.0
    assert class_entropy([1, 1, 0, 0]) == pytest.approx(1.0)
    # a class is missing below a fifth of its fair share (fair here: 100)
    assert missing_classes([100, 100, 19, 21, 0, 160, 100, 100, 100, 300]) == [2, 4]


# ------------------------------------------------------ the cached scorer
def test_the_first_score_trains_the_classifier_and_scores(tiny_scorer_folder):
    # the fixture's first sample_quality call (under no_grad, as in an exercise) had no scorer to load
    texts = FIRST_SCORE["texts"]
    assert texts[0].startswith("training the mnist sample-quality classifier once (1 epoch;")
    assert texts[1].startswith("sample-quality classifier: test accuracy 0.")
    assert "Frechet distance" in texts[-1]
    m = FIRST_SCORE["metrics"]
    assert m["quality_samples"] == 200 and m["fd"] > 10 * m["fd_floor"]  # uniform noise is no digit


def test_the_scorer_is_cached_with_the_data_checksum_and_torch_version(tiny_scorer_folder, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    files = list(tiny_scorer_folder.glob("mnist-scorer-*.pt"))
    assert len(files) == 1
    payload = torch.load(files[0], map_location="cpu", weights_only=True)
    assert payload["data_sha256"] == data_checksum("mnist") and len(payload["data_sha256"]) == 64
    assert payload["torch"] == str(torch.__version__)
    assert payload["settings"] == TINY_SCORER and payload["train_images"] == 3000
    assert payload["test_acc"] > 0.85  # 3,000 images, one epoch: a rough but real digit classifier
    said = []
    again = Scorer.load_or_train("mnist", "cpu", folder=tiny_scorer_folder, log=said.append, train=False,
                                 **TINY_SCORER)
    assert again is not None and not said  # loaded, not trained
    # other settings have no cache: train=False says so with None
    assert Scorer.load_or_train("mnist", "cpu", folder=tiny_scorer_folder, train=False,
                                **{**TINY_SCORER, "seed": 1}) is None


def test_a_cache_made_from_other_data_is_not_used(tiny_scorer_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    src = next(tiny_scorer_folder.glob("mnist-scorer-*.pt"))
    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["data_sha256"] = "0" * 64
    torch.save(payload, tmp_path / src.name)
    said = []
    assert Scorer.load_or_train("mnist", "cpu", folder=tmp_path, log=said.append, train=False,
                                **TINY_SCORER) is None
    assert "made from other data" in said[0]


def test_real_images_score_far_below_an_untrained_generator(tiny_scorer_folder, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    scorer = Scorer.load_or_train("mnist", "cpu", folder=tiny_scorer_folder, train=False, **TINY_SCORER)
    from labbench.data import mnist

    n = 1000
    floor = scorer.floor(n)  # n real training images against the real test images
    torch.manual_seed(0)
    with torch.no_grad():
        untrained = (Generator(10)(torch.randn(n, 10)) + 1) / 2  # tanh output mapped to [0, 1]
    bad = scorer.score(untrained)
    assert bad.floor == pytest.approx(floor)
    assert bad.fd > 20 * floor, (bad.fd, floor)
    # real images: near the floor, every digit present, entropy close to log2(10)
    x_test, _ = mnist.tensors("mnist", "train", limit=20_000)
    real = scorer.score(x_test[-n:])
    assert real.fd < 3 * floor and real.missing == [] and real.entropy_bits > 3.2
    # only ones: nine digits missing, entropy near 0
    x, y = mnist.tensors("mnist", "test")
    ones = scorer.score(x[y == 1][:500])
    assert len(ones.missing) >= 8 and ones.entropy_bits < 0.8


def test_sample_quality_reports_a_bar_chart_and_returns_the_metrics(tiny_scorer):
    events = []
    run = Run(None, listeners=[events.append])
    torch.manual_seed(0)
    g = Generator(10)
    with torch.no_grad():
        metrics = sample_quality(run, lambda k: g(torch.randn(k, 10)), 600, value_range=(-1, 1), chunk=250)
    assert set(metrics) == {"fd", "fd_floor", "quality_samples", "class_entropy_bits", "missing_classes"}
    assert metrics["quality_samples"] == 600 and metrics["fd"] > metrics["fd_floor"] > 0
    bar = next(e for e in events if e["type"] == "figure")
    assert bar["kind"] == "bar" and sum(bar["data"]["values"]) == 600 and len(bar["data"]["labels"]) == 10
    assert any("Frechet distance" in e.get("text", "") for e in events)
    assert sample_quality(run, lambda k: g(torch.randn(k, 10)), 0) == {}


def test_no_scorer_yet_and_no_training_allowed_skips_the_score(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST not in the shared data")
    monkeypatch.setattr(quality, "scorer_folder", lambda: tmp_path)
    events = []
    run = Run(None, listeners=[events.append])
    assert sample_quality(run, torch.zeros(10, 1, 28, 28), 10, train=False) == {}
    assert "not trained yet" in events[-1]["text"]


def test_the_cifar_score_of_one_class_puts_real_images_far_below_noise(tmp_path, shared_data):
    # a stretch: a small CIFAR-10 classifier (trained here on 1,000 images of the subset)
    scorer = Scorer.load_or_train("cifar10", "cpu", folder=tmp_path, epochs=1, train_limit=1000, batch_size=64,
                                  lr=3e-3, seed=0)
    assert scorer.info["train_images"] == 1000 and scorer.info["test_acc"] > 0.2  # chance is 0.1
    ship = 8
    floor = scorer.floor(100, ship)  # 100 training ships against the subset's 106 test ships
    noise = scorer.score(torch.rand(100, 3, 32, 32), ship)
    assert noise.floor == pytest.approx(floor) and noise.fd > 5 * floor
    from labbench.data import cifar
    x, y = cifar.tensors("train")
    real = scorer.score(x[y == ship][-100:], ship)
    assert real.fd < 2 * floor and real.on_class > noise.on_class
    assert set(real.metrics()) == {"fd", "fd_floor", "quality_samples", "on_class"}
