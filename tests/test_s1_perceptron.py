"""1.1-perceptron against EXERCISES.md: the least-squares optimum, divergence, seeds."""

import math

import numpy as np
import pytest

from labbench.exercises.s1_perceptron import dataset_generation, least_squares

from .helpers import run_exercise
from .stopping import after_step, run_stopped


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


def test_stop_after_epoch_5_still_evaluates_and_ends_interrupted(tmp_path):
    result, events = run_stopped("1.1-perceptron", tmp_path, after_step("loss/perceptron", 5), lr=0.02, epochs=400)
    assert result.status == "interrupted"
    m = result.summary["metrics"]
    losses = [e for e in events if e["type"] == "scalars" and "loss/perceptron" in e["values"]]
    assert len(losses) == 5
    # the model it has is evaluated: its MSE is the loss after the 5th update, above the optimum
    assert m["final_mse"] < losses[0]["values"]["loss/perceptron"] and m["final_mse"] > 0.4235
    assert {"w", "b", "start_w", "flat_factor_per_epoch"} <= set(m)
    names = {e["name"] for e in events if e["type"] in ("figure", "table")}
    assert {"fit", "result"} <= names
    assert any("stopped after epoch 5 of 400" in e.get("text", "") for e in events)


def test_both_models_stop_during_the_first_and_skip_the_second(tmp_path):
    result, events = run_stopped("1.1-perceptron", tmp_path, after_step("loss/perceptron", 3), model="both")
    assert result.status == "interrupted"
    keys = {k for e in events if e["type"] == "scalars" for k in e["values"]}
    assert keys == {"loss/perceptron"}
    assert "perceptron_final_mse" in result.summary["metrics"]
    assert "two-layer_final_mse" not in result.summary["metrics"]


def test_two_layer_loss_is_drawn_on_a_log_axis(tmp_path):
    result, events = run_exercise("1.1-perceptron", tmp_path, model="two-layer", epochs=30)
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "loss-two-layer")
    assert fig["data"]["logy"] is True and "log" in fig["title"]
    assert len(fig["data"]["series"]["two-layer"]) == 30


def test_the_start_decides_how_soon_lr_002_gets_there(tmp_path):
    """Full-batch gradient descent, lr 0.02: from the seed-0 start the flat
    direction needs 348 epochs; from w 1.3, b 0 (mostly along the steep
    direction) 33. The flat direction shrinks by 1 - 0.02 * 0.408 per epoch."""
    slow, _ = run_exercise("1.1-perceptron", tmp_path, lr=0.02, epochs=400)
    fast, _ = run_exercise("1.1-perceptron", tmp_path, lr=0.02, epochs=60, init_w=1.3)
    a, b = slow.summary["metrics"], fast.summary["metrics"]
    assert a["epoch_at_optimum"] == 348 and b["epoch_at_optimum"] == 33
    assert b["start_w"] == 1.3 and b["start_b"] == 0.0
    assert abs(b["start_offset_flat"]) < 0.1 * abs(a["start_offset_flat"])
    assert a["flat_factor_per_epoch"] == pytest.approx(1 - 0.02 * a["hessian_eig_min"])
    x, _ = dataset_generation(50, use_pi=True)
    A = np.c_[x.numpy(), np.ones(50)]
    assert np.linalg.eigvalsh(2 * A.T @ A / 50) == pytest.approx([a["hessian_eig_min"], a["hessian_eig_max"]])
