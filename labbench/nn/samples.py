"""Samples that a student watches form: a fixed latent batch decoded every
epoch, a strip of epochs at the end, and a 2-D latent walk.

:class:`SampleEvolution` keeps the latents fixed so the same digits appear
epoch after epoch::

    evo = SampleEvolution("samples", state, ncols=8, keep=8, value_range=(-1, 1))
    for epoch in run.epochs(p.epochs):
        ...
        evo.show(run, epoch, generator(z_fixed))     # the grid of this epoch (an images event with step=epoch)
    evo.strip(run, "samples by epoch")               # one row per few epochs, the same first 8 samples

``state`` is the dict :meth:`Run.resumable` returns (its ``extra``): the kept
rows live there, so a resumed run's strip still starts at epoch 1. The rows
are kept as uint8 (8 MNIST digits are 6 kB an epoch).

:func:`latent_walk` decodes a square grid of 2-D latents placed at Gaussian
quantiles (the picture of a VAE with a 2-D latent space: each digit class
owns a region, and they blend at the borders).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch

from .images import as_images

#: the key under which a SampleEvolution keeps its rows in the resumable state
STATE_KEY = "sample_evolution"


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module):
    """``no_grad`` with the modules in eval mode (batch norm on its running
    statistics, no dropout), each put back in the mode it was in."""
    was = [m.training for m in modules]
    try:
        with torch.no_grad():
            for m in modules:
                m.eval()
            yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)


def to_uint8(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Float images in ``value_range`` as uint8 (clipped), on the CPU."""
    lo, hi = value_range
    x = (images.detach().float().cpu() - lo) / max(hi - lo, 1e-12)
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def pick_rows(epochs: Sequence[int], rows: int) -> list[int]:
    """Up to ``rows`` of ``epochs``, evenly spaced, always the first and the last."""
    epochs = list(epochs)
    if len(epochs) <= rows:
        return epochs
    if rows <= 1:
        return epochs[-1:]
    idx = sorted({round(i * (len(epochs) - 1) / (rows - 1)) for i in range(rows)})
    return [epochs[i] for i in idx]


class SampleEvolution:
    """The samples of one fixed latent batch, shown every epoch and kept (the
    first ``keep`` of them) for a strip of epochs at the end."""

    def __init__(self, name: str, state: dict | None = None, *, ncols: int = 8, keep: int = 8,
                 shape: Sequence[int] | None = None, value_range: tuple[float, float] = (0.0, 1.0),
                 title: str = ""):
        self.name, self.ncols, self.keep = name, int(ncols), int(keep)
        self.shape, self.value_range, self.title = shape, tuple(value_range), title
        self.state = state if state is not None else {}
        self.state.setdefault(STATE_KEY, {"epochs": [], "images": []})

    @property
    def epochs(self) -> list[int]:
        return list(self.state[STATE_KEY]["epochs"])

    def show(self, run, epoch: int, samples: torch.Tensor, *, title: str = "") -> None:
        """Emit this epoch's grid (``step=epoch``, so every epoch's grid stays in
        the run folder) and keep its first ``keep`` samples."""
        images = as_images(samples, self.shape)
        kept = self.state[STATE_KEY]
        if kept["epochs"] and kept["epochs"][-1] >= epoch:  # the same epoch again (a resumption): replace it
            while kept["epochs"] and kept["epochs"][-1] >= epoch:
                kept["epochs"].pop()
                kept["images"].pop()
        kept["epochs"].append(int(epoch))
        kept["images"].append(to_uint8(images[: self.keep], self.value_range))
        run.images(self.name, images, title=title or f"{self.title or self.name} (epoch {epoch})", step=int(epoch),
                   ncols=self.ncols, value_range=self.value_range)

    def strip(self, run, name: str, *, rows: int = 8, title: str = "") -> list[int]:
        """One picture per chosen epoch (up to ``rows``, evenly spaced, first
        and last included): the same ``keep`` samples side by side, captioned
        with the epoch, so a narrow terminal never splits a row. Returns the
        epochs shown."""
        kept = self.state[STATE_KEY]
        if not kept["epochs"]:
            return []
        chosen = pick_rows(kept["epochs"], rows)
        by_epoch = dict(zip(kept["epochs"], kept["images"]))
        k = min(len(by_epoch[e]) for e in chosen)
        strips = torch.stack([side_by_side(by_epoch[e][:k]) for e in chosen])
        run.images(name, strips, captions=[f"epoch {e}" for e in chosen], ncols=1,
                   title=title or f"the same {k} samples at epochs {', '.join(str(e) for e in chosen)}")
        return chosen


def side_by_side(images: torch.Tensor, gap: int = 1, fill: int = 128) -> torch.Tensor:
    """(N, H, W) or (N, C, H, W) uint8 images as one (H, N*W + gaps) or
    (C, H, ...) image with ``gap`` columns of ``fill`` between them."""
    parts = []
    for i, img in enumerate(images):
        if i:
            parts.append(torch.full((*img.shape[:-1], gap), fill, dtype=img.dtype))
        parts.append(img)
    return torch.cat(parts, dim=-1)


def gaussian_grid(steps: int, lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    """``steps`` points of the standard normal at evenly spaced quantiles in [lo, hi]."""
    q = torch.linspace(lo, hi, max(2, int(steps)), dtype=torch.float64)
    return torch.distributions.Normal(0.0, 1.0).icdf(q).float()


@torch.no_grad()
def latent_walk(run, name: str, decode: Callable[[torch.Tensor], torch.Tensor], *, steps: int = 10,
                device: torch.device | str = "cpu", shape: Sequence[int] | None = None, title: str = "",
                value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Decode a ``steps`` x ``steps`` grid of 2-D latents at Gaussian quantiles
    (5% to 95%; rows: z2 from high to low, columns: z1 from low to high) and
    show it as one grid; returns the (steps*steps, 2) latents."""
    axis = gaussian_grid(steps)
    z1 = axis.repeat(len(axis))
    z2 = axis.flip(0).repeat_interleave(len(axis))
    z = torch.stack([z1, z2], dim=1).to(device)
    images = decode(z)
    run.images(name, as_images(images, shape), ncols=len(axis), value_range=value_range,
               title=title or f"{name}: z1 from {float(axis[0]):.2f} to {float(axis[-1]):.2f} left to right, "
                              f"z2 top to bottom (Gaussian quantiles 5%..95%)")
    return z
