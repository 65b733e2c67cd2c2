"""In-memory batching: the data is one tensor on the device, batches are index
slices of one permutation per epoch (no DataLoader, no per-batch copies)."""

from __future__ import annotations

import torch


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator for shuffling (on the CPU: permutations are cheap and
    a CPU generator gives the same order on every device)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return g


def batch_indices(n: int, batch_size: int, *, shuffle: bool = True, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu", drop_last: bool = False) -> list[torch.Tensor]:
    """Index tensors (on ``device``) covering ``range(n)`` in batches of ``batch_size``;
    the last one is shorter unless ``drop_last``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device)
    batch_size = max(1, min(int(batch_size), n))
    out = list(order.split(batch_size))
    if drop_last and len(out) > 1 and out[-1].numel() < batch_size:
        out.pop()
    return out
