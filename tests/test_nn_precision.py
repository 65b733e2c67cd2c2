"""The precision helper: which autocast and whether a GradScaler, per device;
the scaler path runs on the CPU with an enabled scaler."""

from __future__ import annotations

import pytest
import torch

from labbench.nn import autocast, classifier_epoch, make_generator, precision
from labbench.nn.amp import resolve_precision


@pytest.mark.parametrize("setting, expected", [("auto", "fp32"), ("fp32", "fp32"), ("bf16", "bf16"), ("fp16", "fp16")])
def test_cpu_choices(setting, expected):
    prec = precision(setting, "cpu")
    assert prec.name == expected
    assert (prec.scaler is not None) == (expected == "fp16")  # a scaler only for fp16
    if prec.scaler is not None:
        assert prec.scaler.is_enabled()
    assert prec.enabled == (expected != "fp32")


@pytest.mark.parametrize("native, setting, expected", [
    (True, "auto", "bf16"), (False, "auto", "fp16"), (True, "bf16", "bf16"), (False, "bf16", "fp16"),
    (True, "fp16", "fp16"), (False, "fp32", "fp32")])
def test_cuda_choices_follow_native_bf16(monkeypatch, native, setting, expected):
    monkeypatch.setattr("labbench.nn.amp.native_bf16", lambda dev: native)
    name, note = resolve_precision(setting, torch.device("cuda"))
    assert name == expected
    assert bool(note) == (setting in ("auto", "bf16") and not native)


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="precision: must be one of auto, fp32, bf16, fp16"):
        precision("fp8", "cpu")


def test_autocast_dtypes_on_the_cpu():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    for setting, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with precision(setting, "cpu").autocast():
            assert lin(x).dtype == dtype


def test_scaler_step_matches_fp32_sgd():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 1)
    ref = torch.nn.Linear(8, 1)
    ref.load_state_dict(lin.state_dict())
    start = lin.weight.detach().clone()
    x, y = 0.1 * torch.randn(64, 8), 0.1 * torch.randn(64, 1)  # gradients below fp16's max at scale 65536
    prec = precision("fp16", "cpu")
    assert prec.scaler.get_scale() == 65536.0
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    with prec.autocast():
        loss = torch.nn.functional.mse_loss(lin(x).float(), y)
    opt.zero_grad()
    prec.minimize(loss, opt)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=1.0)
    torch.nn.functional.mse_loss(ref(x), y).backward()
    ref_opt.step()
    # the gradients were scaled by 65536 and unscaled before the step: same update, to fp16 precision
    step, ref_step = (lin.weight - start).detach(), (ref.weight - start).detach()
    assert step.abs().max() > 5e-3  # it did move
    assert torch.allclose(step, ref_step, rtol=2e-2, atol=1e-4)


def test_scaler_skips_an_overflowing_step_and_halves_the_scale():
    lin = torch.nn.Linear(4, 1)
    before = lin.weight.detach().clone()
    prec = precision("fp16", "cpu")
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    with prec.autocast():
        loss = lin(torch.full((2, 4), 60000.0)).float().sum() * 1e6  # scaled by 65536: inf gradients
    prec.minimize(loss, opt)
    assert torch.equal(lin.weight.detach(), before)  # the step was skipped
    assert prec.scaler.get_scale() == 32768.0  # and the scale halved


def test_classifier_epoch_trains_with_the_fp16_scaler_on_the_cpu():
    torch.manual_seed(0)
    x = torch.randn(512, 10)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    prec = precision("fp16", "cpu")
    gen = make_generator(0)
    losses = [float(classifier_epoch(model, opt, x, y, 64, generator=gen, precision=prec)[0]) for _ in range(8)]
    acc = float(classifier_epoch(model, opt, x, y, 64, generator=gen, precision=prec)[1])
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9


def test_old_autocast_helper_still_works():
    lin = torch.nn.Linear(8, 4)
    with autocast("cpu", True):
        assert lin(torch.randn(2, 8)).dtype == torch.bfloat16
    with autocast("cpu", False):
        assert lin(torch.randn(2, 8)).dtype == torch.float32


def test_describe_says_what_was_chosen():
    assert precision("fp16", "cpu").describe() == "fp16 autocast + GradScaler on cpu"
    assert precision("auto", "cpu").describe() == "fp32 on cpu"
