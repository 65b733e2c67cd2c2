"""Image grids for the generative and autoencoder exercises, through ``run.images``.

- :func:`reconstruction_grid`: each input above its reconstruction (the pair
  is one tall picture, so a narrow terminal wraps pairs, never splits them);
- :func:`sample_grid`: generated samples in a grid;
- :func:`interpolation_strip`: decodings of ``(1 - λ) z0 + λ z1`` for λ from
  0 to 1, captioned with λ.

Images may be (N, H, W), (N, C, H, W) or flat (N, D) with ``shape=(H, W)`` or
``(C, H, W)``; floats are shown from ``value_range`` (default: [0, 1], or
[-1, 1] when negative values are present, as ``run.images`` does).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

#: the value of the strip between an input and its reconstruction (mid grey in [0, 1])
SEPARATOR = 0.5


def as_images(x: torch.Tensor, shape: Sequence[int] | None = None) -> torch.Tensor:
    """``x`` as (N, H, W) or (N, C, H, W) float on the CPU; flat rows are
    reshaped to ``shape``."""
    x = x.detach().float().cpu()
    if shape is not None:
        x = x.reshape(x.shape[0], *shape)
    if x.dim() == 2:
        raise ValueError(f"flat images of shape {tuple(x.shape)} need shape=(H, W) or (C, H, W)")
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    return x


def stack_pairs(top: torch.Tensor, bottom: torch.Tensor, gap: int = 2, fill: float = SEPARATOR) -> torch.Tensor:
    """Each ``top[i]`` above ``bottom[i]`` with ``gap`` rows of ``fill`` between."""
    if top.shape != bottom.shape:
        raise ValueError(f"inputs {tuple(top.shape)} and reconstructions {tuple(bottom.shape)} differ in shape")
    h_axis = top.dim() - 2  # (N, H, W) -> 1, (N, C, H, W) -> 2
    sep_shape = list(top.shape)
    sep_shape[h_axis] = gap
    sep = torch.full(sep_shape, float(fill), dtype=top.dtype)
    return torch.cat([top, sep, bottom], dim=h_axis)


def reconstruction_grid(run, name: str, inputs: torch.Tensor, reconstructions: torch.Tensor, *, n: int = 8,
                        shape: Sequence[int] | None = None, title: str = "", step: int | None = None,
                        captions: list[str] | None = None, value_range: tuple[float, float] | None = None) -> None:
    """The first ``n`` inputs, each above its reconstruction."""
    k = min(n, len(inputs))
    top, bottom = as_images(inputs[:k], shape), as_images(reconstructions[:k], shape)
    if value_range is None:
        lo = min(float(top.min()), float(bottom.min())) if k else 0.0
        value_range = (-1.0, 1.0) if lo < -1e-6 else (0.0, 1.0)
    fill = (value_range[0] + value_range[1]) / 2
    run.images(name, stack_pairs(top, bottom, fill=fill), title=title or f"{name}: input above reconstruction",
               captions=captions[:k] if captions else None, step=step, ncols=k, value_range=value_range)


def sample_grid(run, name: str, samples: torch.Tensor, *, ncols: int | None = None, shape: Sequence[int] | None = None,
                title: str = "", step: int | None = None, captions: list[str] | None = None,
                value_range: tuple[float, float] | None = None) -> None:
    """Generated samples in a grid of ``ncols`` columns (default: as many as fit)."""
    run.images(name, as_images(samples, shape), title=title or name, captions=captions, step=step, ncols=ncols,
               value_range=value_range)


def lerp_latents(z0: torch.Tensor, z1: torch.Tensor, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lambdas, z)``: ``steps`` values of λ from 0 to 1 and the latents
    ``(1 - λ) z0 + λ z1`` (z0, z1 of shape (D,) or any latent shape)."""
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} differ in shape")
    lambdas = torch.linspace(0.0, 1.0, max(2, int(steps)), device=z0.device, dtype=z0.dtype)
    lam = lambdas.reshape(-1, *([1] * z0.dim()))
    return lambdas, (1 - lam) * z0.unsqueeze(0) + lam * z1.unsqueeze(0)


@torch.no_grad()
def interpolation_strip(run, name: str, decode: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor,
                        z1: torch.Tensor, *, steps: int = 8, shape: Sequence[int] | None = None, title: str = "",
                        step: int | None = None, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Decode ``steps`` latents on the line from ``z0`` to ``z1`` and show them
    in one row captioned "λ=0.00" ... "λ=1.00"; returns the decoded images."""
    lambdas, z = lerp_latents(z0, z1, steps)
    images = decode(z)
    run.images(name, as_images(images, shape), title=title or f"{name}: (1-λ) z0 + λ z1",
               captions=[f"λ={float(v):.2f}" for v in lambdas], step=step, ncols=len(lambdas),
               value_range=value_range)
    return images
