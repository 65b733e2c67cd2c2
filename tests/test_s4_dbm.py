"""4.1-dbm: the mean-field fixed point on fixed weights (against a root found
by bisection), the layer-wise Gibbs sweep, the composition from two RBMs, the
second layer's effective filters, starting from a 4.1-rbm run, and runs
stopped in pre-training and in joint training that resume to the same
weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from labbench.engine.events import iter_events
from labbench.engine.presets import preset_for_exercise
from labbench.engine.runner import execute, resume
from labbench.exercises.s4_dbm import DBM, DbmParams
from labbench.nn import load_weights
from labbench.nn.rbm import RBM, device_generator, filters_as_images


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def dbm_with(w1, w2, bv, b1, b2) -> DBM:
    t = {k: torch.as_tensor(np.asarray(a, dtype=np.float64)) for k, a in
         (("W1", w1), ("W2", w2), ("b_v", bv), ("b1", b1), ("b2", b2))}
    d = DBM(t["W1"].shape[1], t["W1"].shape[0], t["W2"].shape[0]).double()
    d.load_state_dict(t)
    return d


def test_mean_field_reaches_the_fixed_point_found_by_bisection():
    # one unit per layer: mu1 = s(w1 v + w2 mu2 + b1), mu2 = s(w2 mu1 + b2); a single root of
    # g(m) = m - s(w1 v + w2 s(w2 m + b2) + b1) in (0, 1), found by bisection
    w1, w2, b1, b2, v = 1.5, -2.0, 0.3, 0.8, 0.7
    def g(m):
        return m - sigmoid(w1 * v + w2 * sigmoid(w2 * m + b2) + b1)
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
    root = (lo + hi) / 2
    d = dbm_with([[w1]], [[w2]], [0.0], [b1], [b2])
    mu1, mu2 = d.mean_field(torch.tensor([[v]], dtype=torch.float64), steps=100)
    assert mu1.item() == pytest.approx(root, abs=1e-12)
    assert mu2.item() == pytest.approx(sigmoid(w2 * root + b2), abs=1e-12)
    # by hand: m = 0.6430 -> mu2 = s(-2 m + 0.8) = s(-0.486) = 0.3808 -> s(1.05 - 0.7616 + 0.3) = s(0.5884) = 0.6430
    assert root == pytest.approx(0.6430, abs=1e-4)


def test_mean_field_fixed_point_on_random_weights():
    rng = np.random.RandomState(0)
    d = dbm_with(rng.normal(0, 0.3, (8, 20)), rng.normal(0, 0.3, (6, 8)), rng.normal(0, 0.1, 20),
                 rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 6))
    v = torch.from_numpy(rng.rand(5, 20))

    def residual(mu1, mu2):
        return max((d.h1_given(v, mu2) - mu1).abs().max().item(), (d.h2_given(mu1) - mu2).abs().max().item())

    assert residual(*d.mean_field(v, steps=0)) > 1e-3        # the bottom-up pass alone is not the fixed point
    assert residual(*d.mean_field(v, steps=60)) < 1e-12      # iterating gets there
    mu1, mu2 = d.mean_field(v, steps=60)
    np.testing.assert_allclose(mu1.numpy(), 1 / (1 + np.exp(-(v.numpy() @ d.W1.detach().numpy().T
                                                              + mu2.numpy() @ d.W2.detach().numpy()
                                                              + d.b1.detach().numpy()))), atol=1e-12)


def test_a_gibbs_sweep_samples_each_layer_from_its_neighbours():
    d = dbm_with(np.full((3, 4), 20.0), np.full((2, 3), -20.0), np.zeros(4), np.zeros(3), np.full(2, 5.0))
    gen = device_generator(0)
    v, h1, h2 = torch.ones(6, 4, dtype=torch.float64), torch.zeros(6, 3, dtype=torch.float64), \
        torch.zeros(6, 2, dtype=torch.float64)
    v2, h1_, h2_, pv = d.gibbs_sweep(v, h1, h2, gen)
    # h1 hears v (+80) and h2 (0): on; then v hears h1 (+60): on; h2 hears h1 (-60 + 5): off
    assert h1_.eq(1).all() and v2.eq(1).all() and h2_.eq(0).all() and pv.min() > 0.999


def test_the_dbm_starts_from_two_rbms():
    r1, r2 = RBM(784, 6).init_like_sklearn(0), RBM(6, 4).init_like_sklearn(1)
    with torch.no_grad():
        r1.hidden_bias.fill_(1.0)
        r2.visible_bias.fill_(3.0)
    d = DBM(784, 6, 4).from_rbms(r1, r2)
    assert torch.equal(d.W1, r1.weight) and torch.equal(d.W2, r2.weight)
    assert torch.allclose(d.b1, torch.full((6,), 2.0))  # the mean of its two roles
    assert sum(t.numel() for t in d.parameters()) == 784 * 6 + 6 * 4 + 784 + 6 + 4


def test_params_check_sizes_against_a_4_1_rbm_run(tmp_path):
    with pytest.raises(ValidationError, match="not a finished 4.1-rbm run folder"):
        DbmParams(rbm_run=str(tmp_path))
    with pytest.raises(ValidationError, match="checkpoint_every"):
        DbmParams(epochs=3, checkpoint_every=4)


# ------------------------------------------------------------ the exercise
TINY = ["train_limit=300", "test_limit=100", "n_hidden1=16", "n_hidden2=8", "pretrain_epochs=2", "epochs=3",
        "batch_size=50", "n_chains=20", "sample_sweeps=5", "n_samples=8", "mf_steps=5"]


def preset(*extra):
    p = preset_for_exercise("4.1-dbm", overrides=TINY + list(extra))
    p.device = "cpu"
    return p


class StopAt:
    """Stop when a progress event of ``phase`` reaches ``step``."""

    def __init__(self, phase, step):
        self.phase, self.step, self.requested = phase, step, False

    def __call__(self):
        return self.requested

    def listen(self, ev):
        if ev.get("type") == "progress" and ev.get("phase") == self.phase and ev.get("step") == self.step:
            self.requested = True


def same_weights(a, b):
    wa, wb = load_weights(a), load_weights(b)
    assert wa.keys() == wb.keys() == {"rbm1", "rbm2", "dbm"}
    for name in wa:
        for k in wa[name]:
            assert torch.allclose(wa[name][k], wb[name][k], rtol=0, atol=1e-6), (name, k)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted tiny run, shared by the tests below."""
    from .helpers import SHARED_DATA

    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED_DATA / 'mnist'}")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABBENCH_DATA", str(SHARED_DATA))
    folder = tmp_path_factory.mktemp("dbm") / "straight"
    try:
        result = execute(preset(), folder)
    finally:
        mp.undo()
    assert result.status == "ok", result.summary.get("message")
    return folder, result


def test_a_dbm_run_shows_both_layers(straight):
    folder, result = straight
    m = result.summary["metrics"]
    assert m["pretrained_rbm1"] == m["pretrained_rbm2"] == 2 and m["epochs_done"] == 3
    assert m["params"] == 784 * 16 + 16 * 8 + 784 + 16 + 8
    assert m["mf_residual"] < 1e-2 and 0 < m["recon_test"] < 0.2
    events = list(iter_events(folder))
    keys = {k for e in events if e["type"] == "scalars" for k in e["values"]}
    assert {"pl_rbm1", "pl_rbm2", "recon_rbm1", "recon/train", "recon/test"} <= keys
    images = {e["name"]: e for e in events if e["type"] == "images"}
    assert images["filters-W1"]["shape"] == [16, 28, 28] and images["filters-W1W2"]["shape"] == [8, 28, 28]
    assert images["dbm-samples"]["shape"] == images["rbm-samples"]["shape"] == [8, 28, 28]
    assert images["chains"]["step"] == 3
    # the second layer's effective filters are the rows of W2 @ W1, each scaled to its range
    dbm = load_weights(folder)["dbm"]
    shown = np.load(folder / images["filters-W1W2"]["file"]).astype(int)
    expected = (filters_as_images(dbm["W2"] @ dbm["W1"]).numpy() * 255 + 0.5).astype(int)
    assert np.abs(shown - expected).max() <= 1
    for layer in (1, 2):  # each pre-trained RBM saved on its own
        assert (folder / "artifacts" / f"rbm{layer}.pt").is_file()


def test_stopped_in_joint_training_resumes_to_the_same_weights(straight, shared_data, tmp_path):
    stop = StopAt("epoch", 2)
    part = execute(preset(), tmp_path / "joint", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted" and part.summary["metrics"]["epochs_done"] == 2
    assert resume(tmp_path / "joint", preset=preset()).status == "ok"
    same_weights(straight[0], tmp_path / "joint")


def test_stopped_in_pre_training_resumes_to_the_same_weights(straight, shared_data, tmp_path):
    stop = StopAt("pre-training RBM 2", 1)
    part = execute(preset(), tmp_path / "pre", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted"
    assert part.summary["metrics"]["pretrained_rbm2"] == 1 and part.summary["metrics"]["epochs_done"] == 0
    texts = [e["text"] for e in iter_events(tmp_path / "pre") if e["type"] == "text"]
    assert any("stopped during pre-training (RBM 1: 2 of 2, RBM 2: 1 of 2 epochs)" in t for t in texts)
    names = {e["name"] for e in iter_events(tmp_path / "pre") if e["type"] == "images"}
    assert {"rbm-samples", "filters-rbm1"} <= names and "dbm-samples" not in names
    assert resume(tmp_path / "pre", preset=preset()).status == "ok"
    same_weights(straight[0], tmp_path / "pre")


def test_layer_1_from_a_finished_4_1_rbm_run(shared_data, tmp_path):
    rbm_preset = preset_for_exercise("4.1-rbm", overrides=['backend="torch"', "n_components=16", "train_limit=200",
                                                           "n_iter=1", "gibbs_steps=2", "n_test=8"])
    rbm_preset.device = "cpu"
    assert execute(rbm_preset, tmp_path / "rbm").status == "ok"
    with pytest.raises(ValidationError, match="its RBM has 16 hidden units, n_hidden1 is 32"):
        DbmParams(n_hidden1=32, rbm_run=str(tmp_path / "rbm"))
    p = preset_for_exercise("4.1-dbm", overrides=[o for o in TINY if not o.startswith("n_hidden1")]
                            + [f'rbm_run="{tmp_path / "rbm"}"'])
    p.device = "cpu"
    result = execute(p, tmp_path / "dbm")
    assert result.status == "ok", result.summary.get("message")
    texts = [e["text"] for e in iter_events(tmp_path / "dbm") if e["type"] == "text"]
    assert any("its pre-training is skipped" in t for t in texts)
    keys = {k for e in iter_events(tmp_path / "dbm") if e["type"] == "scalars" for k in e["values"]}
    assert "pl_rbm1" not in keys and "pl_rbm2" in keys
    given, used = load_weights(tmp_path / "rbm")["torch"], load_weights(tmp_path / "dbm")["rbm1"]
    assert torch.equal(given["weight"], used["weight"])  # layer 1 is the 4.1-rbm run's RBM, untouched
