"""1.1-perceptron against EXERCISES.md: the least-squares optimum, divergence, seeds."""

import math

import pytest

from labbench.exercises.s1_perceptron import dataset_generation, least_squares

from .helpers import run_exercise


def test_least_squares_optimum_matches_reference():
    x, y = dataset_generation(50, use_pi=True)
    w, b, mse = least_squares(x, y)
    assert mse == pytest.approx(0.4235, abs=5e-5)
    assert w == pytest.approx(0.2449, abs=5e-4)
    assert b == pytest.approx(-0.4665, abs=5e-4)
    _, _, mse_nopi = least_squares(*dataset_generation(50, use_pi=False))
    assert mse_nopi == pytest.approx(0.0352, abs=5e-5)


def test_lr_02_converges_to_the_optimum(tmp_path):
    result, events = run_exercise("1.1-perceptron", tmp_path, lr=0.2, epochs=150)
    assert result.status == "ok"
    m = result.summary["metrics"]
    assert m["final_mse"] == pytest.approx(0.4235, abs=1e-3)
    assert m["w"] == pytest.approx(0.2449, abs=2e-2)
    # one loss point per epoch reached the event log
    losses = [e for e in events if e["type"] == "scalars" and "loss/perceptron" in e["values"]]
    assert len(losses) == 150
    assert losses[-1]["values"]["loss/perceptron"] < losses[0]["values"]["loss/perceptron"]


def test_lr_03_diverges_at_course_defaults(tmp_path):
    result, events = run_exercise("1.1-perceptron", tmp_path, lr=0.3)
    assert result.status == "diverged"
    assert result.exit_code == 3
    step = result.summary["diverged_step"]
    assert 1 <= step <= 35
    assert f"epoch {step}" in result.summary["message"]
    assert events[-1] == {**events[-1], "type": "end", "status": "diverged"}


def test_lr_025_is_stable_but_slow(tmp_path):
    result, _ = run_exercise("1.1-perceptron", tmp_path, lr=0.25, epochs=35)
    assert result.status == "ok"
    assert result.summary["metrics"]["final_mse"] > 0.4235


def test_same_seed_same_numbers_other_seed_differs(tmp_path):
    a, _ = run_exercise("1.1-perceptron", tmp_path, seed=3, model="two-layer", epochs=20)
    b, _ = run_exercise("1.1-perceptron", tmp_path, seed=3, model="two-layer", epochs=20)
    c, _ = run_exercise("1.1-perceptron", tmp_path, seed=4, model="two-layer", epochs=20)
    assert a.summary["metrics"] == b.summary["metrics"]
    assert a.summary["metrics"]["final_mse"] != c.summary["metrics"]["final_mse"]


def test_two_layer_net_beats_the_linear_optimum(tmp_path):
    result, _ = run_exercise("1.1-perceptron", tmp_path, model="two-layer", epochs=300)
    assert result.status == "ok"
    assert result.summary["metrics"]["final_mse"] < 0.05 < 0.4235


def test_both_models_overlay_on_one_chart(tmp_path):
    result, events = run_exercise("1.1-perceptron", tmp_path, model="both", epochs=10)
    keys = {k for e in events if e["type"] == "scalars" for k in e["values"]}
    assert keys == {"loss/perceptron", "loss/two-layer"}
    fit = [e for e in events if e["type"] == "figure" and e["name"] == "fit"][-1]
    assert set(fit["data"]["series"]) == {"data", "perceptron", "two-layer"}
    assert len(fit["data"]["x"]) == 50
    assert not any(math.isnan(v) for v in fit["data"]["series"]["two-layer"])
