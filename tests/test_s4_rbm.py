"""4.1-rbm and labbench.nn.rbm: the PyTorch RBM's free energy and
pseudo-likelihood against NumPy and scikit-learn on fixed weights, the
scikit-learn loop against BernoulliRBM.fit bit for bit, CD-1 learning on real
MNIST, the removed-rows reconstruction, and a stopped run resumed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from labbench.engine.events import iter_events
from labbench.engine.presets import preset_for_exercise
from labbench.engine.runner import execute, resume
from labbench.exercises.s4_rbm import RbmParams, SklearnRBM
from labbench.nn import cpu_threads, load_weights
from labbench.nn.rbm import (RBM, batch_slices, device_generator, fill_removed, filters_as_images, flip_indices,
                             removal_mask)

from .helpers import run_exercise


# ------------------------------------------------------------- NumPy reference
def np_free_energy(w, bv, bh, v):
    """F(v) = -v.b_v - sum_j log(1 + exp((W v + b_h)_j)), written out."""
    return -v @ bv - np.log1p(np.exp(v @ w.T + bh)).sum(1)


def np_pseudo_likelihood(w, bv, bh, v, idx):
    """D log sigmoid(F(v with unit idx[n] flipped) - F(v)), per example."""
    flipped = v.copy()
    rows = np.arange(len(v))
    flipped[rows, idx] = 1 - flipped[rows, idx]
    diff = np_free_energy(w, bv, bh, flipped) - np_free_energy(w, bv, bh, v)
    return v.shape[1] * np.log(1 / (1 + np.exp(-diff)))


def fixed_rbm(n_visible=20, n_hidden=7, seed=3):
    rng = np.random.RandomState(seed)
    w, bv, bh = rng.normal(0, 0.5, (n_hidden, n_visible)), rng.normal(0, 0.3, n_visible), rng.normal(0, 0.3, n_hidden)
    rbm = RBM(n_visible, n_hidden).double()
    rbm.load_state_dict({"weight": torch.from_numpy(w), "visible_bias": torch.from_numpy(bv),
                         "hidden_bias": torch.from_numpy(bh)})
    v = rng.rand(50, n_visible)          # grey values, as MNIST / 255
    v[:25] = (v[:25] > 0.5)               # and binary ones
    return rbm, w, bv, bh, v


def test_free_energy_and_pseudo_likelihood_equal_numpy_on_fixed_weights():
    rbm, w, bv, bh, v = fixed_rbm()
    fe = rbm.free_energy(torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(fe, np_free_energy(w, bv, bh, v), rtol=1e-12)
    idx = flip_indices(len(v), v.shape[1], seed=0)
    pl = rbm.pseudo_likelihood(torch.from_numpy(v), idx).numpy()
    np.testing.assert_allclose(pl, np_pseudo_likelihood(w, bv, bh, v, idx), rtol=1e-10)
    # every flipped unit counts: flipping another unit changes the value
    assert not np.allclose(pl, rbm.pseudo_likelihood(torch.from_numpy(v), (idx + 1) % 20).numpy())
    # in float32 (as the exercise computes it) the direct difference stays within 1e-4
    pl32 = rbm.float().pseudo_likelihood(torch.from_numpy(v).float(), idx).numpy()
    np.testing.assert_allclose(pl32, pl, rtol=0, atol=1e-4)


def test_pseudo_likelihood_of_a_blank_rbm_is_d_log_half():
    # zero weights and biases: F(v') = F(v) for any flip, so PL = 784 log(1/2) = -543.43 for any image
    rbm = RBM(784, 10)
    v = torch.rand(30, 784, generator=torch.Generator().manual_seed(1))
    pl = rbm.pseudo_likelihood(v, flip_indices(30, 784, 0))
    assert torch.allclose(pl, torch.full((30,), 784 * math.log(0.5)), atol=1e-3)
    assert 784 * math.log(0.5) == pytest.approx(-543.43, abs=0.01)


def test_pseudo_likelihood_equals_sklearn_score_samples():
    from sklearn.neural_network import BernoulliRBM

    rbm, w, bv, bh, v = fixed_rbm(n_visible=30, n_hidden=5, seed=4)
    ref = BernoulliRBM(n_components=5, random_state=7)
    ref.components_, ref.intercept_visible_, ref.intercept_hidden_ = w, bv, bh
    ref.n_features_in_ = 30
    mine = rbm.pseudo_likelihood(torch.from_numpy(v), flip_indices(len(v), 30, seed=7)).numpy()
    np.testing.assert_allclose(mine, ref.score_samples(v), rtol=1e-10)


@pytest.fixture
def mnist_x(shared_data):
    from labbench.data import mnist

    return mnist.tensors("mnist", "train", limit=1000)[0].reshape(-1, 784)


def test_the_sklearn_loop_is_fit_bit_for_bit(mnist_x):
    from sklearn.neural_network import BernoulliRBM

    x = mnist_x[:400].numpy()
    ref = BernoulliRBM(n_components=8, learning_rate=0.05, batch_size=16, n_iter=2, random_state=0).fit(x)
    sk = SklearnRBM(8, 0.05, 16, 2, seed=0)
    for _ in range(2):
        for sl in batch_slices(len(x), 16):  # 25 batches, the last one 16 too; 400 = 25 x 16
            sk.fit_batch(x[sl])
    assert np.array_equal(sk.rbm.components_, ref.components_)
    assert np.array_equal(sk.rbm.intercept_hidden_, ref.intercept_hidden_)
    assert np.array_equal(sk.rbm.intercept_visible_, ref.intercept_visible_)
    assert np.array_equal(sk.rbm.h_samples_, ref.h_samples_)
    # the PyTorch RBM starts from scikit-learn's initial draw
    start = BernoulliRBM(n_components=8, random_state=0, n_iter=0).fit(x).components_
    assert np.array_equal(RBM(784, 8).init_like_sklearn(0).weight.numpy(), start.astype(np.float32))
    # its state round-trips (what a checkpoint holds)
    other = SklearnRBM(8, 0.05, 16, 2, seed=1)
    other.load_state_dict(sk.state_dict())
    assert np.array_equal(other.rbm.components_, ref.components_) and np.array_equal(other.rbm.h_samples_,
                                                                                        ref.h_samples_)
    with pytest.raises(RuntimeError, match="weight: expected shape"):
        SklearnRBM(9, 0.05, 16, 2, seed=0).load_state_dict(sk.state_dict())


def test_cd1_on_1000_mnist_images_raises_the_pseudo_likelihood(mnist_x):
    rbm = RBM(784, 32).init_like_sklearn(0)
    gen = device_generator(0)
    flip = flip_indices(len(mnist_x), 784, 0)
    before = rbm.pseudo_likelihood(mnist_x, flip).mean().item()
    recon_before = rbm.reconstruction_error(mnist_x).item()
    with cpu_threads(1):  # small products: one thread, as the exercises run them
        for _ in range(3):
            for sl in batch_slices(len(mnist_x), 20):
                assert rbm.cd_step(mnist_x[sl], 0.05, generator=gen).shape == (20, 32)
    after = rbm.pseudo_likelihood(mnist_x, flip).mean().item()
    assert before == pytest.approx(784 * math.log(0.5), abs=2)  # weights of 0.01: about a blank RBM's
    assert after > before + 200 and after > -250                   # measured: -544 -> -187
    assert rbm.reconstruction_error(mnist_x).item() < 0.5 * recon_before


def test_pcd_keeps_a_chain_and_k_steps_run():
    rbm = RBM(12, 4).init_like_sklearn(0)
    gen = device_generator(0)
    v = (torch.rand(8, 12, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    chain = torch.zeros(5, 4)
    new = rbm.cd_step(v, 0.1, k=3, chain=chain, generator=gen)
    assert new.shape == (5, 4) and set(new.unique().tolist()) <= {0.0, 1.0}
    assert rbm.gibbs(v, steps=2, generator=gen).shape == (8, 12)


# ---------------------------------------------------- removed-rows reconstruction
def test_removal_mask_counts_rows_from_each_side():
    top = removal_mask(0, 12, "top")
    assert top.sum() == 12 * 28 and top[:12].all() and not top[12:].any()
    bottom = removal_mask(0, 12, "bottom")
    assert bottom[16:].all() and not bottom[:16].any()
    assert removal_mask(3, 5, "bottom").nonzero()[:, 0].unique().tolist() == [23, 24]
    left, right = removal_mask(2, 6, "left"), removal_mask(2, 6, "right")
    assert left[:, 2:6].all() and left.sum() == 4 * 28
    assert right[:, 22:26].all() and right.sum() == 4 * 28
    with pytest.raises(ValueError, match="0 <= start < end <= 28"):
        removal_mask(12, 12)
    with pytest.raises(ValueError, match="side must be"):
        removal_mask(0, 3, "middle")


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_the_reconstruction_changes_only_the_removed_rows(shared_data, side):
    from labbench.data import mnist

    images = mnist.tensors("mnist", "test", limit=4)[0][:, 0]
    mask = removal_mask(0, 12, side)
    rbm = RBM(784, 16).init_like_sklearn(0)
    gen = device_generator(0)
    removed, sample, filled = fill_removed(images, mask, lambda v, k: rbm.gibbs(v, k, gen), steps=10)
    assert torch.equal(filled[:, ~mask], images[:, ~mask])      # the rest of each image is untouched
    assert torch.equal(filled[:, mask], sample[:, mask])        # the removed rows come from the Gibbs sample
    assert torch.count_nonzero(removed[:, mask]) == 0
    assert not torch.equal(filled[:, mask], images[:, mask])    # they were really replaced


def test_filters_are_scaled_each_to_its_own_range():
    w = torch.stack([torch.linspace(-1, 1, 784), torch.linspace(0, 5, 784)])
    imgs = filters_as_images(w)
    assert imgs.shape == (2, 28, 28)
    assert imgs.amin((1, 2)).tolist() == [0.0, 0.0] and imgs.amax((1, 2)).tolist() == [1.0, 1.0]


# ------------------------------------------------------------------- params
def test_params_refuse_what_cannot_run():
    with pytest.raises(ValidationError, match="remove_end"):
        RbmParams(remove_start=5, remove_end=5)
    with pytest.raises(ValidationError, match="cd_k"):
        RbmParams(backend="sklearn", cd_k=3)
    with pytest.raises(ValidationError, match="method"):
        RbmParams(backend="sklearn", method="cd")
    with pytest.raises(ValidationError, match="recon_first \\+ recon_images <= 100"):
        RbmParams(recon_first=98, recon_images=4)
    assert RbmParams(backend="both", cd_k=3, method="cd").cd_k == 3


# ------------------------------------------------------------ the exercise
class StopAtIteration:
    def __init__(self, step):
        self.step, self.requested = step, False

    def __call__(self):
        return self.requested

    def listen(self, ev):
        if ev.get("type") == "progress" and ev.get("step") == self.step:
            self.requested = True


SETS = ["backend='both'", "train_limit=300", "n_iter=3", "n_components=8", "gibbs_steps=5", "n_test=20",
        "recon_first=2"]


def preset():
    p = preset_for_exercise("4.1-rbm", overrides=[s.replace("'", '"') for s in SETS])
    p.device = "cpu"
    return p


def curves(folder):
    out = {}
    for ev in iter_events(folder):
        if ev["type"] == "scalars":
            for k, v in ev["values"].items():
                out.setdefault(k, []).append((ev["step"], v))
    return out


def test_both_backends_on_one_chart_and_a_stopped_run_resumes(shared_data, tmp_path):
    straight = execute(preset(), tmp_path / "straight")
    assert straight.status == "ok", straight.summary.get("message")
    m = straight.summary["metrics"]
    c = curves(tmp_path / "straight")
    assert [s for s, _ in c["pseudo_likelihood/sklearn"]] == [1, 2, 3] == [s for s, _ in c["pseudo_likelihood/torch"]]
    for b in ("sklearn", "torch"):  # from -543 (the initial weights) upwards, on the same scale
        assert -400 < c[f"pseudo_likelihood/{b}"][-1][1] == pytest.approx(m[f"pseudo_likelihood_{b}"], abs=1e-3)
    events = list(iter_events(tmp_path / "straight"))
    images = {e["name"]: e for e in events if e["type"] == "images"}
    assert images["filters-sklearn"]["shape"] == [8, 28, 28] and images["filters-sklearn"]["step"] == 3
    assert images["samples-torch"]["shape"] == [20, 28, 28]
    rec = np.load(tmp_path / "straight" / images["reconstruction-sklearn"]["file"])
    assert rec.shape == (4, 88, 28)                        # image / rows removed / filled in
    original, removed, filled = rec[:, :28], rec[:, 30:58], rec[:, 60:]
    assert (removed[:, :12] == 0).all() and np.array_equal(removed[:, 12:], original[:, 12:])
    assert np.array_equal(filled[:, 12:], original[:, 12:])
    from labbench.data import mnist

    x_test = mnist.tensors("mnist", "test", limit=6)[0][2:6, 0]  # recon_first = 2
    assert np.array_equal(original, (x_test.numpy() * 255 + 0.5).astype(np.uint8))

    stop = StopAtIteration(2)
    part = execute(preset(), tmp_path / "resumed", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted" and part.summary["metrics"]["iterations_done"] == 2
    done = resume(tmp_path / "resumed", preset=preset())
    assert done.status == "ok"
    wa, wb = load_weights(tmp_path / "straight"), load_weights(tmp_path / "resumed")
    for b in ("sklearn", "torch"):
        for k in wa[b]:
            assert torch.allclose(wa[b][k].double(), wb[b][k].double(), rtol=0, atol=1e-6), (b, k)
    cr = curves(tmp_path / "resumed")
    for key in ("pseudo_likelihood/sklearn", "pseudo_likelihood/torch"):
        assert [s for s, _ in cr[key]] == [1, 2, 3]
        assert np.allclose([v for _, v in cr[key]], [v for _, v in c[key]], rtol=0, atol=1e-4)


def test_missing_mnist_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path / "nothing"))
    result, _ = run_exercise("4.1-rbm", tmp_path / "runs", n_iter=1)
    assert result.status == "failed" and "labbench data fetch mnist" in result.summary["message"]
