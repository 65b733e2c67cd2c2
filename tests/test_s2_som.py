"""2.3-som: the 1x3 SOM's NMI on Iris (report 0.813 unscaled), the classifier's report,
the moons snapshots, and that the chunked training is exactly MiniSom's."""

import numpy as np
import pytest
from minisom import MiniSom
from sklearn.datasets import load_iris

from labbench.engine import Run
from labbench.exercises.s2_som import train_som

from .helpers import run_exercise
from .stopping import run_stopped


@pytest.mark.parametrize("order", ["batch", "random"])
def test_chunked_training_equals_minisom(order):
    X = load_iris().data
    a = MiniSom(3, 3, 4, sigma=1.0, learning_rate=0.3, random_seed=1)
    b = MiniSom(3, 3, 4, sigma=1.0, learning_rate=0.3, random_seed=1)
    (a.train_batch if order == "batch" else a.train_random)(X, 300)
    train_som(b, X, 300, order, Run(None))
    np.testing.assert_allclose(a.get_weights(), b.get_weights())


@pytest.mark.parametrize("seed", [0, 3])
def test_iris_cluster_nmi_matches_report(tmp_path, seed):
    result, events = run_exercise("2.3-som", tmp_path, seed=seed, mode="iris-cluster")
    assert result.status == "ok", result.summary.get("message")
    nmi = result.summary["metrics"]["nmi"]
    assert nmi > 0.6
    assert nmi == pytest.approx(0.813, abs=1e-3)  # report: exactly so for any seed, unscaled
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "clusters")
    assert fig["kind"] == "scatter" and "prototypes" in fig["data"]["series"]


def test_iris_cluster_standardised_is_worse(tmp_path):
    result, _ = run_exercise("2.3-som", tmp_path, mode="iris-cluster", standardize=True)
    assert result.summary["metrics"]["nmi"] == pytest.approx(0.669, abs=1e-3)


def test_classifier_report_covers_all_classes(tmp_path):
    result, events = run_exercise("2.3-som", tmp_path, mode="iris-classify")
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["test_samples"] == 30
    assert m["accuracy"] >= 0.9  # report: 1.00 on 30 samples
    table = next(e for e in events if e["type"] == "table" and e["name"] == "classification-report")
    classes = [r[0] for r in table["rows"]]
    assert {"setosa", "versicolor", "virginica"} <= set(classes)
    assert all(r[4] == 10 for r in table["rows"][:3])  # stratified: 10 of each class


def test_umatrix_and_moons_pictures(tmp_path):
    result, events = run_exercise("2.3-som", tmp_path, mode="iris-umatrix", iterations=300)
    assert result.status == "ok", result.summary.get("message")
    heat = next(e for e in events if e["type"] == "figure" and e["name"] == "u-matrix")
    assert np.array(heat["data"]["z"]).shape == (7, 7) and heat["data"]["marks"]
    result, events = run_exercise("2.3-som", tmp_path, mode="moons", iterations=100, snapshots=[1, 10, 100])
    names = [e["name"] for e in events if e["type"] == "figure"]
    assert names == ["moons-0", "moons-1", "moons-10", "moons-100"]
    last = next(e for e in events if e["type"] == "figure" and e["name"] == "moons-100")
    assert len(last["data"]["lines"]) == 8 and len(last["data"]["series"]["prototypes"]["x"]) == 16


def test_bad_settings_fail_with_a_message(tmp_path):
    result, _ = run_exercise("2.3-som", tmp_path, mode="iris-umatrix", rows=1, iterations=10)
    assert result.status == "failed"
    assert "pca needs" in result.summary["message"]


def test_stop_mid_training_still_scores_the_map(tmp_path):
    when = lambda e: e["type"] == "progress" and e.get("phase") == "iteration" and e["step"] >= 100  # noqa: E731
    result, events = run_stopped("2.3-som", tmp_path, when, mode="iris-cluster")
    assert result.status == "interrupted"
    assert 0 <= result.summary["metrics"]["nmi"] <= 1
    assert any("stopped after iteration" in e.get("text", "") for e in events)
    assert result.summary["steps_done"] < 500
