"""What a layer's units look for: the incoming weights of each unit as an image.

A fully connected layer on flattened images has one weight per pixel and
unit; row ``i`` of its weight matrix, reshaped to the image, shows the pattern
that excites unit ``i`` most. The rows differ a lot in size, so each is scaled
by its own largest magnitude to [-1, 1] (0 stays mid grey): pass
``value_range=(-1, 1)`` to ``run.images``.
"""

from __future__ import annotations

from typing import Sequence

import torch


def unit_images(weight: torch.Tensor, n: int | None = None, shape: Sequence[int] = (28, 28)) -> torch.Tensor:
    """The first ``n`` rows of ``weight`` (units x inputs) as images of
    ``shape``, each divided by its largest absolute value (a row of zeros
    stays zero); float on the CPU."""
    w = weight.detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(f"a weight matrix (units x inputs) is needed, got shape {tuple(w.shape)}")
    need = 1
    for s in shape:
        need *= int(s)
    if w.shape[1] != need:
        raise ValueError(f"{w.shape[1]} inputs per unit cannot be shown as {tuple(shape)} images ({need} pixels)")
    w = w[:n] if n is not None else w
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    return (w / scale).reshape(len(w), *shape)
