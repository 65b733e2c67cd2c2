"""2.2-ard: on the synthetic set ARD recovers most relevant features and beats OLS."""

import numpy as np
import pytest

from labbench.exercises.s2_ard import synthetic_data

from .helpers import run_exercise


def test_synthetic_data_is_the_classic_example():
    X, y, w, relevant = synthetic_data(seed=0)
    assert X.shape == (100, 100) and y.shape == (100,)
    assert np.count_nonzero(w) == len(relevant) <= 10
    noise = y - X @ w
    assert noise.std() == pytest.approx(1 / np.sqrt(50), rel=0.3)


def test_ard_recovers_relevant_features_and_beats_ols(tmp_path):
    result, events = run_exercise("2.2-ard", tmp_path)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["relevant_recovered"] >= 0.8 * m["n_relevant"]
    assert m["weight_error_ard"] < 0.5 * m["weight_error_ols"]
    kinds = {e["name"]: e["kind"] for e in events if e["type"] == "figure"}
    assert kinds == {"weights": "line", "ard-hist": "hist"}
    lml = [e["values"]["log marginal likelihood"] for e in events if e["type"] == "scalars"]
    assert len(lml) == m["ard_iterations"] and lml[-1] > lml[0]


def test_diabetes_variant_ranks_and_compares(shared_data, tmp_path):
    result, _ = run_exercise("2.2-ard", tmp_path, variant="diabetes", mlp_max_iter=200)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    ranking = [int(i) for i in m["ranking"].split()]
    assert sorted(ranking) == list(range(8))
    assert {1, 5} & set(ranking[:3])  # glucose or BMI among the most relevant
    assert 0.6 <= m["acc_all"] <= 0.9 and 0.6 <= m["acc_selected"] <= 0.9
