"""1.3-optimizers: the surface, Net3L, the fused fast path against autograd,
and LBFGS beating plain SGD on a short run."""

from __future__ import annotations

import pytest
import torch

from labbench.engine.params import ParamsInvalid, validate_params
from labbench.engine.run import Run
from labbench.exercises import s1_optimizers as ex
from labbench.nn import cpu_threads

from .helpers import run_exercise
from .stopping import after_step, run_stopped


def test_surface_grid_and_model_size():
    x, y, y_clean = ex.dataset_generation(40, 0.0)
    assert x.shape == (1600, 2) and y.shape == (1600, 1)
    assert torch.equal(y, y_clean)
    assert float(x.min()) == -3.0 and float(x.max()) == 3.0
    assert not torch.any((x == 0).all(1))  # no point at the origin (f is singular there)
    assert torch.isfinite(y).all()
    # ij meshgrid: the first 40 points share x = -3
    assert torch.all(x[:40, 0] == -3.0)
    assert sum(p.numel() for p in ex.Net3L(50, 50).parameters()) == 2 * 50 + 50 + 50 * 50 + 50 + 50 + 1


def test_fused_gradients_match_autograd():
    torch.manual_seed(0)
    x, y, _ = ex.dataset_generation(12, 0.3, torch.float64)
    model = ex.Net3L(7, 5).double()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    params = [p.detach() for p in model.parameters()]
    err, grads = ex.net3l_grads(params, x, y)
    assert float(err.square().mean()) == pytest.approx(float(loss.detach()), rel=1e-12)
    for p, g in zip(model.parameters(), grads):
        assert torch.allclose(p.grad, g, atol=1e-12)


@pytest.mark.parametrize("spec", ["sgd lr=0.1 bs=40", "sgd lr=0.1 momentum=0.9 nesterov bs=400",
                                  "sgd lr=0.05 momentum=0.5 bs=100", "adam bs=400",
                                  "adam lr=0.01 eps=1e-6 bs=100", "rmsprop lr=0.001 bs=200", "lbfgs"])
def test_fast_path_equals_the_autograd_loop(spec):
    """Same seed, same batch order: the fast path gives the notebook loop's numbers."""
    x, y, _ = ex.dataset_generation(40, 0.0, torch.float64)
    torch.manual_seed(3)
    init = ex.Net3L(10, 10).double().state_dict()
    s = ex.parse_optimizer(spec)
    with cpu_threads(1):  # as the exercise runs it (tiny ops are slow with more threads on a busy box)
        fast = ex.train_one(s, init, x, y, 6, seed=1, fast=True, run=None, label="a", n1=10, n2=10)
        slow = ex.train_one(s, init, x, y, 6, seed=1, fast=False, run=None, label="b", n1=10, n2=10)
    assert torch.allclose(fast[1], slow[1], rtol=1e-9, atol=1e-12)
    for a, b in zip(fast[0], slow[0]):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_lbfgs_beats_plain_sgd_on_a_short_run(tmp_path):
    result, events = run_exercise("1.3-optimizers", tmp_path, epochs=60,
                                  optimizers=["sgd lr=0.05 bs=1600", "lbfgs bs=1600"])
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    sgd, lbfgs = m["sgd_lr_0.05_bs_1600_train_mse"], m["lbfgs_lr_1_bs_1600_train_mse"]
    assert lbfgs < 0.6 * sgd  # seed 0: 0.019 vs 0.057
    assert m["best_optimizer"].startswith("LBFGS")
    kinds = {(e["type"], e.get("kind")) for e in events}
    assert ("figure", "heatmap") in kinds and ("table", None) in kinds
    losses = [e for e in events if e["type"] == "scalars" and "loss/LBFGS lr 1 bs 1600" in e["values"]]
    assert len(losses) == 60


def test_one_diverging_optimiser_does_not_end_the_comparison(tmp_path):
    result, events = run_exercise("1.3-optimizers", tmp_path, epochs=40, hidden1=10,
                                  optimizers=["sgd lr=50 bs=40", "adam bs=400"])
    assert result.status == "ok"
    table = next(e for e in events if e["type"] == "table" and e["name"] == "results")
    assert table["rows"][0][-1].startswith("diverged")
    assert table["rows"][1][-1] == "ok"


@pytest.mark.parametrize("bad, msg", [
    ("sgdd lr=0.1", "unknown optimiser"),
    ("sgd lr=fast", "lr must be a number"),
    ("sgd speed=2", "unknown setting"),
    ("sgd nesterov", "nesterov needs a momentum"),
])
def test_bad_optimizer_entries_say_what_is_expected(bad, msg):
    with pytest.raises(ParamsInvalid, match=msg):
        validate_params(ex.OptimizersParams, {"optimizers": [bad]})


def test_same_seed_same_numbers():
    def once():
        r = Run(None, device=torch.device("cpu"), seed=5)
        torch.manual_seed(5)
        ex.run(ex.OptimizersParams(epochs=5, hidden1=8, noise_level=0.1, optimizers=["sgd lr=0.1 bs=40"]), r)
        return r.metrics["test_mse"]

    assert once() == once()


def test_stop_during_the_second_optimiser_evaluates_both_and_skips_the_rest(tmp_path):
    result, events = run_stopped("1.3-optimizers", tmp_path, after_step("loss/Adam lr 0.001 bs 400", 7), epochs=30,
                                 hidden1=10, optimizers=["sgd lr=0.05 bs=1600", "adam bs=400", "lbfgs bs=1600"])
    assert result.status == "interrupted"
    table = next(e for e in events if e["type"] == "table" and e["name"] == "results")
    assert [r[0] for r in table["rows"]] == ["SGD lr 0.05 bs 1600", "Adam lr 0.001 bs 400"]
    assert [r[1] for r in table["rows"]] == [30, 7]
    m = result.summary["metrics"]
    assert 0 < m["adam_lr_0.001_bs_400_test_mse"] < 1 and "lbfgs_lr_1_bs_1600_test_mse" not in m
    assert any("lbfgs bs=1600 not run" in e.get("text", "") for e in events)


def test_lbfgs_settings_parse_and_wrong_ones_say_why():
    s = ex.parse_optimizer("lbfgs max_iter=20 history=10")
    assert s.extra == {"max_iter": 20, "history": 10}
    assert s.label(1600) == "LBFGS lr 1 max_iter 20 history 10 bs 1600"
    opt = ex.make_opt(s, [torch.zeros(3, requires_grad=True)], {})
    assert opt.defaults["max_iter"] == 20 and opt.defaults["history_size"] == 10
    assert opt.defaults["line_search_fn"] == "strong_wolfe"
    assert ex.make_opt(ex.parse_optimizer("lbfgs"), [torch.zeros(3, requires_grad=True)], {}).defaults["max_iter"] == 1
    with pytest.raises(ValueError, match="max_iter is a setting of lbfgs only"):
        ex.parse_optimizer("adam max_iter=3")
    with pytest.raises(ValueError, match="history must be a whole number >= 1"):
        ex.parse_optimizer("lbfgs history=0")


def test_the_course_lbfgs_goes_flat_and_two_iterations_do_not(tmp_path):
    """Seed 0, Net3L 50x50: one LBFGS iteration per epoch stops moving (a
    failed line search is repeated for ever); two keep going."""
    result, events = run_exercise("1.3-optimizers", tmp_path, epochs=90,
                                  optimizers=["lbfgs bs=1600", "lbfgs max_iter=2 bs=1600"])
    m = result.summary["metrics"]
    assert 30 <= m["lbfgs_lr_1_bs_1600_flat_from"] <= 65
    assert "lbfgs_lr_1_max_iter_2_bs_1600_flat_from" not in m
    assert m["lbfgs_lr_1_max_iter_2_bs_1600_test_mse"] < 0.7 * m["lbfgs_lr_1_bs_1600_test_mse"]
    table = next(e for e in events if e["type"] == "table" and e["name"] == "results")
    assert table["rows"][0][-1].startswith("flat @") and table["rows"][1][-1] == "ok"


def test_stalled_since_needs_a_long_flat_tail():
    flat = torch.tensor([5.0, 4.0, 3.0] + [2.0] * 30, dtype=torch.float64)
    assert ex.stalled_since(flat) == 4
    assert ex.stalled_since(flat[:20]) is None  # too short to tell
    moving = torch.linspace(3, 2, 60, dtype=torch.float64)
    assert ex.stalled_since(moving) is None
