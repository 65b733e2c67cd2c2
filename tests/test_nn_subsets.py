"""The course's random subsets: the same indices as torch.manual_seed + randperm,
without touching the global random state."""

from __future__ import annotations

import pytest
import torch

from labbench.nn import mnist_subsets, random_subsets

from .helpers import SHARED_DATA


def test_same_indices_as_the_notebook_and_global_state_untouched():
    torch.manual_seed(42)
    want_train = torch.randperm(60_000)[:10_000]
    want_test = torch.randperm(10_000)[:1_000]
    torch.manual_seed(7)
    before = torch.get_rng_state()
    train, test = random_subsets([60_000, 10_000], [10_000, 1_000], seed=42)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(train, want_train) and torch.equal(test, want_test)
    assert train[:3].tolist() == [37542, 43087, 2992]  # torch's permutation for seed 42
    allof, = random_subsets([5], [None], seed=0)
    assert sorted(allof.tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="2 totals but 1 counts"):
        random_subsets([5, 6], [1], seed=0)


def test_mnist_subsets_are_those_images(monkeypatch):
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED_DATA / 'mnist'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    from labbench.data import mnist

    (x, y), (xt, yt) = mnist_subsets("mnist", 50, 20, seed=42, flatten=True)
    assert x.shape == (50, 784) and xt.shape == (20, 784) and y.dtype == torch.int64
    full_x, full_y = mnist.tensors("mnist", "train")
    idx, idx_test = random_subsets([60_000, 10_000], [50, 20], seed=42)
    assert torch.equal(x, full_x[idx].reshape(50, 784)) and torch.equal(y, full_y[idx])
    tx, ty = mnist.tensors("mnist", "test")
    assert torch.equal(xt, tx[idx_test].reshape(20, 784)) and torch.equal(yt, ty[idx_test])
    (x4, _), _ = mnist_subsets("mnist", 3, 1, seed=42)
    assert x4.shape == (3, 1, 28, 28) and 0.0 <= float(x4.min()) and float(x4.max()) <= 1.0

