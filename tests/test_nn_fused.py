"""make_optimizer(fused=True): the same updates as torch's ordinary SGD and Adam,
in one kernel where this torch has it, and the ordinary optimiser elsewhere."""

from __future__ import annotations

import pytest
import torch

from labbench.nn import make_optimizer
from labbench.nn import train as train_mod


def _steps(name: str, fused: bool, **kw) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    opt = make_optimizer(name, model.parameters(), fused=fused, **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(16, 7, generator=g)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()], opt


@pytest.mark.parametrize("name,kw", [("adam", {"lr": 0.01}), ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
                                     ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True})])
def test_fused_makes_the_same_updates(name, kw):
    plain, opt_plain = _steps(name, False, **kw)
    fused, opt_fused = _steps(name, True, **kw)
    assert not opt_plain.defaults.get("fused")
    for a, b in zip(plain, fused):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4):  # fused CPU kernels since torch 2.4
        assert opt_fused.defaults["fused"] is True


def test_without_the_kernel_the_ordinary_optimiser():
    class NoFused(torch.optim.SGD):
        def __init__(self, params, fused=None, **kw):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                                   "supported devices")
            super().__init__(params, **kw)

    p = [torch.nn.Parameter(torch.zeros(3))]
    opt = train_mod._maybe_fused(NoFused, p, {"lr": 0.5}, True)
    assert isinstance(opt, NoFused) and opt.defaults["lr"] == 0.5
    assert make_optimizer("rmsprop", p, fused=True).defaults["lr"] == 0.01  # no fused kernel asked of it
