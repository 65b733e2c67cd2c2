"""Data augmentation on the device, a whole batch at a time.

torchvision's ``RandomCrop(32, padding=4)`` and ``RandomHorizontalFlip()``
work on one PIL image at a time in DataLoader workers. Here the same two
transforms are tensor operations on a batch ``(N, C, H, W)`` that already
sits on the device: one padding, one indexing of the padded batch's windows
for the crops, one select for the flips, and the random draws (one offset pair and one coin per image) from a seeded
generator::

    aug = torch.Generator().manual_seed(run.seed + 1)
    xb = random_crop_flip(x[idx], padding=4, generator=aug)
    xb = normalize(xb, CIFAR_MEAN, CIFAR_STD)

:func:`crop_flip` is the deterministic part (given offsets and flips), which
the tests compare with torchvision's ``pad`` + ``crop`` + ``hflip``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def crop_offsets(n: int, padding: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and left offsets into the padded images, uniform in ``[0, 2 * padding]``
    (torchvision's ``RandomCrop.get_params`` for a crop of the original size)."""
    dev = _draw_device(generator)
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    return oy, ox


def flip_mask(n: int, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Which images to flip: each with probability ``p``."""
    return torch.rand(n, generator=generator, device=_draw_device(generator)) < p


def crop_flip(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flip: torch.Tensor | None = None, *,
              padding: int = 4, fill: float = 0.0) -> torch.Tensor:
    """Pad ``x`` (N, C, H, W) by ``padding`` with ``fill``, cut each image's
    H x W window at (``oy[i]``, ``ox[i]``), and mirror it left-right where
    ``flip[i]``, for the whole batch at once: every window is a view of the
    padded batch (``unfold``), and one indexing picks each image's own."""
    if x.dim() != 4:
        raise ValueError(f"crop_flip: expected images (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    dev = x.device
    oy, ox = oy.to(dev, non_blocking=True).long(), ox.to(dev, non_blocking=True).long()
    padded = F.pad(x, (padding, padding, padding, padding), value=fill) if padding else x
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (N, C, 2p+1, 2p+1, H, W), no copy
    out = windows[torch.arange(n, device=dev), :, oy, ox]  # (N, C, H, W)
    if flip is not None:
        out = torch.where(flip.to(dev, non_blocking=True)[:, None, None, None], out.flip(3), out)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def random_crop_flip(x: torch.Tensor, *, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None,
                     fill: float = 0.0) -> torch.Tensor:
    """``RandomCrop(size, padding=padding)`` then ``RandomHorizontalFlip()`` for
    every image of the batch ``x`` (N, C, H, W), on ``x``'s device; the draws
    come from ``generator`` (a CPU generator gives the same crops on every device)."""
    n = x.shape[0]
    oy, ox = crop_offsets(n, padding, generator)
    mask = flip_mask(n, 0.5, generator) if flip else None
    return crop_flip(x, oy, ox, mask, padding=padding, fill=fill)


def _per_channel(values, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=x.dtype if x.is_floating_point() else torch.float32, device=x.device)
    return t.reshape(1, -1, 1, 1)


def normalize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a batch (N, C, H, W) (torchvision's ``Normalize``)."""
    if x.dim() != 4 or x.shape[1] != len(mean) or len(mean) != len(std):
        raise ValueError(f"normalize: {len(mean)} means and {len(std)} stds for images of shape {tuple(x.shape)}")
    return (x - _per_channel(mean, x)) / _per_channel(std, x)


def denormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """The inverse of :func:`normalize` (for showing images)."""
    return x * _per_channel(std, x) + _per_channel(mean, x)


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of a batch (N, C, H, W), as lists
    (computed in float64, read once)."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    return flat.mean(1).cpu().tolist(), flat.std(1).cpu().tolist()
