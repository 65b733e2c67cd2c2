"""The compile switch: the auto rule, the compile time in the log, and the
fallback when compilation fails."""

from __future__ import annotations

import pytest
import torch

from labbench.nn import compile_model, should_compile


@pytest.mark.parametrize("setting, device, expected_s, on", [
    (True, "cpu", None, True), (False, "cuda", 10_000, False), ("auto", "cpu", 10_000, False),
    ("auto", "cuda", 600, True), ("auto", "cuda", 60, False), ("auto", "cuda", None, False),
    ("true", "cpu", None, True), ("false", "cuda", None, False)])
def test_auto_compiles_long_cuda_runs_only(setting, device, expected_s, on):
    assert should_compile(setting, torch.device(device), expected_s) is on


def test_bad_setting_is_refused():
    with pytest.raises(ValueError, match='compile: must be true, false or "auto"'):
        should_compile("maybe", "cpu")


def test_off_returns_the_model_itself():
    m = torch.nn.Linear(3, 2)
    assert compile_model(m, False) is m
    assert compile_model(m, "auto", device="cpu") is m


def test_compiled_forward_reports_its_compile_time():
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 2)
    logs = []
    net = compile_model(m, True, backend="eager", log=lambda text, level="info": logs.append((level, text)))
    x = torch.randn(5, 4)
    assert torch.allclose(net(x), m(x))
    assert net.compiled and net.compile_s is not None and net.compile_s >= 0
    assert logs and logs[0][1].startswith("torch.compile: first call took")
    assert net.module is m and net.weight is m.weight  # everything else is the model's
    net.eval()
    assert not m.training


def test_a_failing_compiler_falls_back_with_one_log_line():
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    m = torch.nn.Linear(4, 2)
    logs = []
    net = compile_model(m, True, backend=broken_backend, log=lambda text, level="info": logs.append((level, text)))
    x = torch.randn(3, 4)
    assert torch.equal(net(x), m(x))
    assert torch.equal(net(x), m(x))
    assert not net.compiled and "no compiler here" in net.error
    assert len(logs) == 1 and logs[0][0] == "warning" and "running without it" in logs[0][1]


def test_a_later_recompile_failure_also_falls_back():
    calls = {"n": 0}

    def fails_on_second_graph(gm, example_inputs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("second graph refused")
        return gm.forward

    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    logs = []
    net = compile_model(m, True, backend=fails_on_second_graph, log=lambda t, level="info": logs.append(t))
    x = torch.randn(2, 4)
    net(x)  # training mode: first graph compiles
    m.eval()
    assert torch.equal(net(x), m(x))  # eval mode needs a new graph; it fails, the plain model answers
    assert not net.compiled and "second graph refused" in net.error and len(logs) == 2
