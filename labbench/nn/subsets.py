"""The course's random subsets: ``torch.manual_seed(42)``, then
``torch.randperm(len(train))[:n_train]`` and ``torch.randperm(len(test))[:n_test]``.

The session 3 notebooks train on a random part of MNIST to keep Colab runs
short. :func:`random_subsets` draws the same index sets the notebook draws for
the same seed (one generator, the permutations in the same order), without
touching the global random state; :func:`mnist_subsets` returns those images
as tensors on the device (pixels / 255, as ``ToTensor`` gives them), indexing
the decoded uint8 arrays first so only the chosen images are converted.
"""

from __future__ import annotations

from typing import Sequence

import torch


def random_subsets(totals: Sequence[int], counts: Sequence[int | None], seed: int) -> list[torch.Tensor]:
    """For each ``(total, count)``: the first ``count`` entries (all when
    None or larger than ``total``) of a random permutation of ``range(total)``,
    drawn one after the other from one generator seeded with ``seed``."""
    if len(totals) != len(counts):
        raise ValueError(f"{len(totals)} totals but {len(counts)} counts")
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    out = []
    for total, count in zip(totals, counts):
        perm = torch.randperm(int(total), generator=g)
        out.append(perm if count is None else perm[: int(count)])
    return out


def mnist_subsets(name: str = "mnist", n_train: int | None = None, n_test: int | None = None, *, seed: int = 42,
                  device="cpu", flatten: bool = False):
    """``((x, y), (x_test, y_test))``: the course's random ``n_train`` training
    and ``n_test`` test images of MNIST (or Fashion-MNIST) for ``seed``, as
    float tensors on ``device`` (N, 1, 28, 28), or (N, 784) with ``flatten``,
    pixels / 255, and int64 labels."""
    from ..data import mnist

    xs, ys = mnist.load(name, "train")
    xt, yt = mnist.load(name, "test")
    train_idx, test_idx = random_subsets([len(xs), len(xt)], [n_train, n_test], seed)

    def tensors(images, labels, idx):
        idx = idx.numpy()
        x = torch.from_numpy(images[idx]).to(device).float().div_(255.0)
        x = x.reshape(len(idx), -1) if flatten else x.unsqueeze(1)
        return x, torch.from_numpy(labels[idx].astype("int64")).to(device)

    return tensors(xs, ys, train_idx), tensors(xt, yt, test_idx)
