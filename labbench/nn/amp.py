"""Mixed precision in one place: which autocast dtype, and a GradScaler only
where one is needed (fp16).

``precision(p.precision, run.device)`` turns the ``precision`` parameter
(``auto | fp32 | bf16 | fp16``) into a :class:`Precision`:

- ``auto``: bf16 autocast on a CUDA GPU with native bf16 (Ampere and newer),
  fp16 autocast with a GradScaler on older GPUs, fp32 on the CPU;
- ``bf16``: bf16 autocast on any device (on a GPU without native bf16 it
  falls back to fp16 with a scaler, and says so in ``note``);
- ``fp16``: fp16 autocast with an enabled GradScaler (CUDA, and the CPU where
  this torch supports it: the tests use that to exercise the scaler path);
- ``fp32``: no autocast.

The loop then reads::

    with prec.autocast():
        loss = loss_fn(model(xb), yb)
    opt.zero_grad(set_to_none=True)
    prec.minimize(loss, opt)          # scaled backward, step, scaler update

With two optimisers (a GAN) use ``prec.backward(loss)`` and ``prec.step(opt)``
for each, then ``prec.update()`` once per iteration.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device | str) -> bool:
    """True when ``device`` computes in bf16 natively (a CUDA GPU of compute
    capability 8.0 or newer; the CPU always counts: autocast emulates it)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev.type == "cpu"
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch: no including_emulation argument
        return torch.cuda.get_device_capability(dev)[0] >= 8


@dataclass
class Precision:
    """The precision a run uses on its device (see :func:`precision`)."""

    name: str  # what was chosen: "fp32", "bf16" or "fp16"
    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype; None: no autocast
    scaler: "torch.amp.GradScaler | None" = None  # an enabled GradScaler for fp16, else None
    asked: str = "auto"  # the parameter's value
    note: str = ""  # why the choice differs from what was asked, if it does

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        """A fresh autocast context for one forward pass (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled first when a GradScaler is in use."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with a scaler, skipped when the gradients overflowed."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def update(self) -> None:
        """Adjust the loss scale; once per iteration, after every optimiser stepped."""
        if self.scaler is not None:
            self.scaler.update()

    def minimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """backward, step and update for the usual one-optimiser loop
        (``optimizer.zero_grad`` stays in the loop, where a student expects it)."""
        self.backward(loss)
        self.step(optimizer)
        self.update()

    def describe(self) -> str:
        """For the run log: "bf16 autocast on cuda", "fp16 autocast + GradScaler on cpu", "fp32"."""
        if self.dtype is None:
            text = "fp32"
        else:
            text = f"{self.name} autocast" + (" + GradScaler" if self.scaler is not None else "")
        text += f" on {self.device.type}"
        return text + (f" ({self.note})" if self.note else "")


class PrecisionUnavailable(ValueError):
    """The asked-for precision cannot run on this device with this torch."""


def resolve_precision(setting: str, device: torch.device | str) -> tuple[str, str]:
    """``(chosen, note)`` for a ``precision`` setting on ``device``; no tensors made."""
    setting = (setting or "auto").lower()
    if setting not in PRECISIONS:
        raise ValueError(f'precision: must be one of {", ".join(PRECISIONS)}, got {setting!r}')
    dev = torch.device(device)
    if setting == "fp32":
        return "fp32", ""
    if dev.type == "cuda":
        bf16 = native_bf16(dev)
        if setting == "auto":
            return ("bf16", "") if bf16 else ("fp16", "this GPU has no native bf16")
        if setting == "bf16" and not bf16:
            return "fp16", "bf16 asked for, but this GPU has no native bf16: fp16 with a GradScaler instead"
        return setting, ""
    if setting == "auto":
        return "fp32", ""  # autocast on the CPU is an opt-in: it is slower on CPUs without bf16 units
    return setting, ""


def precision(setting: str = "auto", device: torch.device | str = "cpu") -> Precision:
    """The :class:`Precision` for the ``precision`` parameter on ``device``:
    the autocast dtype and, only for fp16, an enabled ``torch.amp.GradScaler``."""
    dev = torch.device(device)
    name, note = resolve_precision(setting, dev)
    scaler = None
    if name == "fp16":
        try:
            scaler = torch.amp.GradScaler(dev.type, enabled=True)
        except (AttributeError, TypeError, RuntimeError) as exc:
            raise PrecisionUnavailable(f"precision fp16 needs a GradScaler on {dev.type}, which this torch "
                                       f"({torch.__version__}) does not have: {exc}") from None
    return Precision(name=name, device=dev, dtype=_DTYPES[name], scaler=scaler, asked=setting, note=note)
