"""1.2-backprop against EXERCISES.md: forward values, initial MSE, hand vs autograd."""

import numpy as np
import pytest

from labbench.exercises.s1_backprop import autograd, chain_rule, forward, mse

from .helpers import run_exercise
from .stopping import after_step, run_stopped

THETA = np.array([0.4, 0.2, -1.2, 0.7, -0.7, -0.7, 0.4, -0.5, 2.3])
X1, X2, Y = np.array([1.0, 0.0, -1.0]), np.array([1.0, -2.0, 1.0]), np.array([-1.0, 1.0, 1.0])


def test_forward_pass_matches_reference():
    f = forward(THETA, X1, X2)
    assert f["y_hat"] == pytest.approx([0.9860, 1.9777, 1.8024], abs=1e-4)
    assert mse(f["y_hat"], Y) == pytest.approx(1.8480, abs=1e-4)


def test_hand_gradients_equal_autograd():
    grad, _ = chain_rule(THETA, X1, X2, Y)
    auto = autograd(THETA, X1, X2, Y)
    np.testing.assert_allclose(grad, auto, rtol=1e-12, atol=1e-12)
    # and a perturbed network too, so the check is not tied to one point
    rng = np.random.default_rng(0)
    theta = rng.normal(size=9)
    np.testing.assert_allclose(chain_rule(theta, X1, X2, Y)[0], autograd(theta, X1, X2, Y), atol=1e-12)


def test_run_reports_tables_and_a_smaller_loss_at_lr_02(tmp_path):
    result, events = run_exercise("1.2-backprop", tmp_path, lr=0.2)
    m = result.summary["metrics"]
    assert m["initial_mse"] == pytest.approx(1.8480, abs=1e-4)
    assert m["max_grad_difference"] < 1e-12
    assert m["new_mse"] < m["initial_mse"]
    tables = {e["name"]: e for e in events if e["type"] == "table"}
    assert {"forward", "chain", "gradients", "update", "after"} <= set(tables)
    assert len(tables["gradients"]["rows"]) == 9
    # the update table really applies new = old - lr * grad
    for name, old, grad, new in tables["update"]["rows"]:
        assert new == pytest.approx(old - 0.2 * grad)


def test_mismatched_data_lengths_are_a_clear_error():
    from labbench.engine.params import ParamsInvalid
    from labbench.engine.presets import preset_for_exercise

    with pytest.raises(ParamsInvalid, match="same length"):
        preset_for_exercise("1.2-backprop", overrides=["x1=[1.0, 2.0]"])


def test_stop_during_further_steps_keeps_the_summary(tmp_path):
    result, events = run_stopped("1.2-backprop", tmp_path, after_step("mse", 10), lr=0.2, steps=500)
    assert result.status == "interrupted"
    m = result.summary["metrics"]
    assert m["initial_mse"] == pytest.approx(1.8480, abs=1e-4) and m["final_mse"] < m["new_mse"]
    steps = [e["step"] for e in events if e["type"] == "scalars"]
    assert steps == list(range(0, 11))
