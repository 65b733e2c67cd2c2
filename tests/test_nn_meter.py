"""The loss meter: weighted means of named losses, summed on the device and
read once (no .item() per batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labbench.nn import LossMeter


def test_weighted_means_of_named_losses_without_item(monkeypatch):
    rng = np.random.default_rng(0)
    sizes = [32, 32, 32, 7]
    d = rng.random(4)
    g = rng.random(4)
    meter = LossMeter()

    def no_item(self):
        raise AssertionError(".item() called while adding")

    monkeypatch.setattr(torch.Tensor, "item", no_item)
    for n, dv, gv in zip(sizes, d, g):
        meter.add(n, D=torch.tensor(dv), G=torch.tensor(gv, dtype=torch.float16), steps=1.0)
    monkeypatch.undo()
    out = meter.means(prefix="loss/")
    assert set(out) == {"loss/D", "loss/G", "loss/steps"}
    assert out["loss/D"] == pytest.approx(np.average(d, weights=sizes), rel=1e-6)
    assert out["loss/G"] == pytest.approx(np.average(g.astype(np.float16), weights=sizes), rel=1e-3)
    assert out["loss/steps"] == 1.0
    assert meter.means() == {}  # reset after reading


def test_means_without_reset_and_a_vector_is_refused():
    meter = LossMeter()
    meter.add(2, loss=torch.tensor(1.0))
    meter.add(6, loss=torch.tensor(3.0))
    assert meter.means(reset=False) == {"loss": 2.5}
    assert "loss" in meter and meter.names == ["loss"]
    with pytest.raises(ValueError, match="single number"):
        meter.add(1, loss=torch.ones(3))
