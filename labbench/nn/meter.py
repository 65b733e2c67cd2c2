"""A loss meter: named losses summed on the device, read once per epoch.

Reading a loss with ``.item()`` after every batch makes the CPU wait for the
GPU each time; the meter keeps running sums as tensors on the device and
reads them all with one transfer when the epoch ends::

    meter = LossMeter()
    for idx in run.batches(batches):
        ...
        meter.add(len(idx), loss=loss, kl=kl, recon=recon)   # batch means, weighted by the batch size
    run.scalars(epoch, meter.means(prefix="loss/"))          # {"loss/loss": ..., "loss/kl": ...}; resets the sums
"""

from __future__ import annotations

import torch


class LossMeter:
    """Running, weighted sums of named values (0-d tensors or numbers)."""

    def __init__(self):
        self._sums: dict[str, torch.Tensor | float] = {}
        self._counts: dict[str, float] = {}

    def add(self, n: int | float = 1, /, **values) -> None:
        """Add batch means weighted by ``n`` (the batch size); no device sync."""
        for name, v in values.items():
            old = self._sums.get(name)
            if isinstance(v, torch.Tensor):
                if v.numel() != 1:
                    raise ValueError(f"LossMeter.add: {name} must be a single number, got shape {tuple(v.shape)}")
                v = v.detach().reshape(())
                if isinstance(old, torch.Tensor):
                    old.add_(v, alpha=n)  # in place: one operation a batch (small models feel each one)
                else:
                    term = v.float() * n
                    self._sums[name] = term if old is None else term + old
            else:
                term = float(v) * n
                self._sums[name] = term if old is None else old + term
            self._counts[name] = self._counts.get(name, 0.0) + float(n)

    def __contains__(self, name: str) -> bool:
        return name in self._sums

    @property
    def names(self) -> list[str]:
        return list(self._sums)

    def means(self, prefix: str = "", reset: bool = True) -> dict[str, float]:
        """Every value's weighted mean as floats, read with one device transfer;
        the sums start again from zero unless ``reset=False``."""
        names = list(self._sums)
        tensors = [self._sums[k] for k in names if isinstance(self._sums[k], torch.Tensor)]
        read: dict[str, float] = {}
        if tensors:
            flat = torch.stack([t.to(tensors[0].device) for t in tensors]).cpu().tolist()
            tnames = [k for k in names if isinstance(self._sums[k], torch.Tensor)]
            read = dict(zip(tnames, flat))
        out = {}
        for k in names:
            total = read[k] if k in read else float(self._sums[k])
            out[prefix + k] = total / self._counts[k] if self._counts[k] else float("nan")
        if reset:
            self.reset()
        return out

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()
