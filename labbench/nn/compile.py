"""The ``compile`` switch: ``torch.compile`` where it pays, a clean fallback
where it fails.

``compile = true | false | "auto"``; auto compiles on CUDA when the run is
expected to take longer than :data:`AUTO_MIN_S` (compilation costs tens of
seconds; a short run never earns them back) and never on the CPU.

Usage::

    net = compile_model(model, p.compile, device=dev, expected_s=epochs * epoch_s_guess, log=run.text)
    out = net(xb)            # the compiled forward (or the model itself)
    model.state_dict()       # checkpoints keep using the plain module

``torch.compile`` compiles on the first call; that call is timed and its time
reported through ``log`` ("torch.compile: first call took 41.2 s"). When
compilation fails, the error is logged once and the plain model is used from
then on: a run never fails because of the switch.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

#: auto compiles CUDA runs expected to take longer than this (seconds)
AUTO_MIN_S = 180.0


def should_compile(setting: bool | str, device: torch.device | str, expected_s: float | None = None,
                   min_s: float = AUTO_MIN_S) -> bool:
    """The decision behind ``compile``: true/false as given; auto only on CUDA
    and only when the run is expected to take longer than ``min_s``."""
    if isinstance(setting, str):
        s = setting.lower()
        if s in ("true", "on", "yes"):
            return True
        if s in ("false", "off", "no"):
            return False
        if s != "auto":
            raise ValueError(f'compile: must be true, false or "auto", got {setting!r}')
        if torch.device(device).type != "cuda":
            return False
        return expected_s is not None and expected_s > min_s
    return bool(setting)


class Compiled:
    """A compiled model's forward with a fallback: call it like the model;
    every other attribute (``train``, ``parameters``, ...) is the model's."""

    def __init__(self, model: torch.nn.Module, compiled: Callable, log: Callable[[str, str], Any] | None = None):
        self.module = model
        self._fn = compiled
        self._log = log  # log(text, level), e.g. run.text
        self.compiled = True
        self.compile_s: float | None = None  # the first call's time (compilation plus one step)
        self.error: str = ""

    def __call__(self, *args, **kwargs):
        if not self.compiled:
            return self.module(*args, **kwargs)
        first = self.compile_s is None
        t0 = time.perf_counter()
        try:
            out = self._fn(*args, **kwargs)
        except Exception as exc:  # compiling (or recompiling, e.g. for eval) failed: the plain model from now on
            out = self.module(*args, **kwargs)  # an error of the model itself surfaces here, as it would uncompiled
            self.compiled, self.error = False, _reason(exc)
            self._say(f"torch.compile failed ({self.error}); running without it", "warning")
            return out
        if first:
            if _device_of(self.module).type == "cuda":
                torch.cuda.synchronize()
            self.compile_s = time.perf_counter() - t0
            self._say(f"torch.compile: first call took {self.compile_s:.1f} s (compilation)")
        return out

    def _say(self, text: str, level: str = "info") -> None:
        if self._log is not None:
            self._log(text, level)

    def __getattr__(self, name):
        return getattr(self.__dict__["module"], name)


def _reason(exc: BaseException) -> str:
    """"BackendCompilerFailed (RuntimeError: boom)": the error and, when it
    wraps one (dynamo does), the cause."""
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if inner is not None and inner is not exc:
        text = next((line.strip() for line in str(inner).splitlines() if line.strip()), "")
        return f"{type(exc).__name__} ({type(inner).__name__}: {text[:200]})"
    return f"{type(exc).__name__}: {first[:200]}"


def _device_of(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def compile_model(model: torch.nn.Module, setting: bool | str = "auto", *, device: torch.device | str | None = None,
                  expected_s: float | None = None, log: Callable[[str, str], Any] | None = None,
                  min_s: float = AUTO_MIN_S, **compile_kw) -> Callable:
    """``model`` itself when the switch is off, else a :class:`Compiled` wrapper
    around ``torch.compile(model, **compile_kw)``. ``log(text, level)`` (e.g.
    ``run.text``) gets the decision, the compile time or the fallback."""
    device = torch.device(device) if device is not None else _device_of(model)
    if not should_compile(setting, device, expected_s, min_s):
        if setting == "auto" and log is not None and device.type == "cuda":
            log("torch.compile: off (auto: the run is expected to be short)", "info")
        return model
    try:
        fn = torch.compile(model, **compile_kw)
    except Exception as exc:  # e.g. an unsupported Python or platform
        if log is not None:
            log(f"torch.compile unavailable ({type(exc).__name__}: {exc}); running without it", "warning")
        return model
    return Compiled(model, fn, log)
