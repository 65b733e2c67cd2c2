"""A Bernoulli restricted Boltzmann machine in PyTorch, trained by contrastive
divergence (CD-k) or persistent contrastive divergence (PCD-k).

Energy, with visible units v in [0, 1] (MNIST / 255 is used as it is, as the
course does) and binary hidden units h::

    E(v, h) = - v . b_v - h . b_h - h W v        W: (n_hidden, n_visible)
    F(v)    = - v . b_v - sum_j softplus((W v + b_h)_j)       (free energy)

The layout and the update rule are scikit-learn's ``BernoulliRBM``: ``weight``
is its ``components_`` (one filter per row), ``hidden_bias`` its
``intercept_hidden_``, ``visible_bias`` its ``intercept_visible_``; PCD-1 with
a chain of hidden samples as long as the batch is exactly its ``_fit`` step.
:meth:`RBM.init_like_sklearn` draws the same starting weights for the same
seed, so the two can be compared on one chart.

The pseudo-likelihood is scikit-learn's ``score_samples`` estimate: for each
example one visible unit ``i`` is flipped (``v_i -> 1 - v_i``) and

    PL(v) = n_visible * log sigmoid(F(v_flipped) - F(v)),

averaged over the examples. The flipped units are drawn by
:func:`flip_indices` exactly as scikit-learn draws them (a fresh
``RandomState(seed)``), so for the same weights, data and seed the number
equals ``BernoulliRBM.score_samples(X).mean()``. The free-energy difference is
computed directly (one column of W per example), not as a difference of two
large free energies, so it stays accurate in float32.

The deep Boltzmann machine (4.1-dbm) pre-trains its layers with this class.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Side = Literal["top", "bottom", "left", "right"]


class RBM(torch.nn.Module):
    """Bernoulli-Bernoulli RBM; parameters are updated in place by
    :meth:`cd_step` (no autograd)."""

    def __init__(self, n_visible: int, n_hidden: int):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got {n_visible} and {n_hidden}")
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.weight = torch.nn.Parameter(torch.zeros(n_hidden, n_visible), requires_grad=False)
        self.visible_bias = torch.nn.Parameter(torch.zeros(n_visible), requires_grad=False)
        self.hidden_bias = torch.nn.Parameter(torch.zeros(n_hidden), requires_grad=False)

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    # ------------------------------------------------------------ set-up
    @torch.no_grad()
    def init_like_sklearn(self, seed: int, std: float = 0.01) -> "RBM":
        """Weights ~ N(0, std) drawn by ``numpy.random.RandomState(seed)`` as
        scikit-learn's ``BernoulliRBM`` draws them; zero biases."""
        w = np.random.RandomState(int(seed)).normal(0, std, (self.n_hidden, self.n_visible))
        self.weight.copy_(torch.from_numpy(w))
        self.visible_bias.zero_()
        self.hidden_bias.zero_()
        return self

    # ------------------------------------------------------ conditionals
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """P(h = 1 | v), shape (N, n_hidden)."""
        return torch.sigmoid(torch.addmm(self.hidden_bias, v, self.weight.t()))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """P(v = 1 | h), shape (N, n_visible)."""
        return torch.sigmoid(torch.addmm(self.visible_bias, h, self.weight))

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return bernoulli(self.hidden_probs(v), generator)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return bernoulli(self.visible_probs(h), generator)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, steps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """``steps`` Gibbs steps v -> h -> v from ``v``; returns the sampled
        (binary) visible units, as ``BernoulliRBM.gibbs`` does."""
        for _ in range(int(steps)):
            v = self.sample_visible(self.sample_hidden(v, generator), generator)
        return v

    # ------------------------------------------------- energies, scores
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per example, shape (N,)."""
        return -(v @ self.visible_bias) - F.softplus(torch.addmm(self.hidden_bias, v, self.weight.t())).sum(1)

    @torch.no_grad()
    def pseudo_likelihood(self, v: torch.Tensor, flip: torch.Tensor | np.ndarray, chunk: int = 8192) -> torch.Tensor:
        """Per-example pseudo-likelihood with unit ``flip[n]`` of example ``n``
        flipped: ``n_visible * log sigmoid(F(v') - F(v))`` (scikit-learn's
        ``score_samples``). Shape (N,)."""
        flip = torch.as_tensor(np.asarray(flip) if not isinstance(flip, torch.Tensor) else flip,
                               dtype=torch.long, device=v.device)
        if flip.shape != (v.shape[0],):
            raise ValueError(f"one flipped unit per example: flip has shape {tuple(flip.shape)}, v {tuple(v.shape)}")
        out = []
        for s in range(0, v.shape[0], chunk):
            vb, ib = v[s:s + chunk], flip[s:s + chunk]
            rows = torch.arange(len(vb), device=v.device)
            delta = 1 - 2 * vb[rows, ib]                                  # v'_i - v_i
            act = torch.addmm(self.hidden_bias, vb, self.weight.t())      # (n, H)
            act_flipped = act + delta[:, None] * self.weight[:, ib].t()   # one column of W per example
            # F(v') - F(v) = -delta b_i - sum_j [softplus(act'_j) - softplus(act_j)]
            dfe = -delta * self.visible_bias[ib] - (F.softplus(act_flipped) - F.softplus(act)).sum(1)
            out.append(self.n_visible * F.logsigmoid(dfe))
        return torch.cat(out) if out else v.new_zeros(0)

    # ------------------------------------------------------------ learning
    def cd_step(self, v_pos: torch.Tensor, lr: float, *, k: int = 1, chain: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """One (P)CD-k update on the batch ``v_pos``; returns the hidden samples
        the negative phase ended on (the next persistent chain).

        ``chain`` None: CD-k, the negative chain starts at h ~ P(h | v_pos).
        ``chain`` given (PCD-k): it starts at those hidden samples, which
        persist from batch to batch. The statistics are the hidden
        probabilities (data and model side) and sampled visible units; the
        gradient is the batch mean (data) minus the chain mean (model), times
        ``lr``: for PCD-1 with a chain as long as the batch, scikit-learn's
        rule. The parameters do not require gradients, so no autograd graph is
        built (the loop is kept lean: at batch size 10 the per-call overhead
        is most of the time)."""
        w, bh, bv = self.weight, self.hidden_bias, self.visible_bias
        wt = w.t()
        h_pos = torch.sigmoid(torch.addmm(bh, v_pos, wt))
        h = chain if chain is not None else bernoulli(h_pos, generator)
        v_neg = bernoulli(torch.sigmoid(torch.addmm(bv, h, w)), generator)
        h_neg = torch.sigmoid(torch.addmm(bh, v_neg, wt))
        for _ in range(int(k) - 1):
            v_neg = bernoulli(torch.sigmoid(torch.addmm(bv, bernoulli(h_neg, generator), w)), generator)
            h_neg = torch.sigmoid(torch.addmm(bh, v_neg, wt))
        a, b = float(lr) / v_pos.shape[0], float(lr) / v_neg.shape[0]
        w.addmm_(h_pos.t(), v_pos, alpha=a).addmm_(h_neg.t(), v_neg, alpha=-b)
        bh.add_(h_pos.sum(0), alpha=a).add_(h_neg.sum(0), alpha=-b)
        bv.add_(v_pos.sum(0), alpha=a).add_(v_neg.sum(0), alpha=-b)
        return bernoulli(h_neg, generator)

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error of v against P(v | P(h | v)) (the mean-field
        reconstruction), a 0-d tensor."""
        return ((self.visible_probs(self.hidden_probs(v)) - v) ** 2).mean()


# -------------------------------------------------------------- helpers
def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """0/1 samples with P(1) = p, as ``uniform < p`` (what scikit-learn does;
    on the CPU several times faster than ``torch.bernoulli``)."""
    return torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)


def flip_indices(n: int, n_visible: int, seed: int) -> np.ndarray:
    """The unit flipped in each of ``n`` examples for the pseudo-likelihood,
    drawn as ``BernoulliRBM.score_samples`` draws them."""
    return np.random.RandomState(int(seed)).randint(0, int(n_visible), int(n))


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches in order, the last one shorter (scikit-learn's
    ``BernoulliRBM.fit`` neither shuffles nor drops)."""
    bs = max(1, int(batch_size))
    return [slice(s, min(s + bs, n)) for s in range(0, n, bs)]


def device_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A seeded generator on ``device`` (sampling on the GPU needs a CUDA generator)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def removal_mask(start: int, end: int, side: Side = "top", shape: Sequence[int] = (28, 28)) -> torch.Tensor:
    """A boolean (H, W) mask of the rows ``start``..``end`` - 1 counted from
    ``side``: from the top (the course's ``X[:, start:end] = 0``), from the
    bottom, or the columns counted from the left or the right edge."""
    h, w = int(shape[0]), int(shape[1])
    size = h if side in ("top", "bottom") else w
    if side not in ("top", "bottom", "left", "right"):
        raise ValueError(f'side must be "top", "bottom", "left" or "right", got {side!r}')
    if not 0 <= start < end <= size:
        raise ValueError(f"rows to remove: need 0 <= start < end <= {size}, got start {start}, end {end}")
    mask = torch.zeros(h, w, dtype=torch.bool)
    if side == "top":
        mask[start:end, :] = True
    elif side == "bottom":
        mask[h - end:h - start, :] = True
    elif side == "left":
        mask[:, start:end] = True
    else:
        mask[:, w - end:w - start] = True
    return mask


def fill_removed(images: torch.Tensor, mask: torch.Tensor, sampler, steps: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's reconstruction of unseen images: zero the masked pixels,
    run ``steps`` Gibbs steps from there (``sampler(v_flat, steps)``), and put
    the sample back in the masked pixels only.

    ``images``: (N, H, W). Returns ``(removed, sample, filled)``, each (N, H, W):
    the input with the pixels removed, the Gibbs sample, and the input with
    only its removed pixels taken from the sample."""
    n, h, w = images.shape
    mask = mask.to(images.device)
    removed = images.masked_fill(mask, 0.0)
    sample = sampler(removed.reshape(n, h * w), steps).reshape(n, h, w).to(images.dtype)
    filled = torch.where(mask, sample, removed)
    return removed, sample, filled


def one_thread_if_small(rows: int, n_in: int, n_out: int) -> int | None:
    """1 when one matrix product of a step (``rows`` x ``n_in`` x ``n_out``
    multiply-adds) is below 2^26 (about 67 million; every RBM and DBM of
    session 4 on the CPU, the course's 784-512-1024 DBM included), for
    :func:`labbench.nn.cpu_threads` and NumPy's BLAS; None (all threads)
    otherwise. Measured on a busy 2-core machine, a PCD-1 step of a 784-128
    RBM on a batch of 100 took 17 ms on one thread and 260-320 ms on two (the
    threads wait for each other's cores); on an idle machine a second thread
    would save at most half."""
    return 1 if rows * n_in * n_out < 2 ** 26 else None


def filters_as_images(weight, n: int = 100, shape: Sequence[int] = (28, 28)) -> torch.Tensor:
    """The first ``n`` rows of ``weight`` (one filter per row: an RBM's
    ``weight``, scikit-learn's ``components_``, or ``W2 @ W1`` for a DBM's
    second layer) as (n, H, W) images in [0, 1], each scaled to its own
    minimum..maximum as ``plt.imshow`` shows it in the course's notebooks
    (:func:`labbench.nn.features.unit_images` keeps 0 at mid grey instead,
    which leaves little contrast when a filter is lopsided: the course's
    10-unit RBM ends with weights from about -0.7 to +0.2)."""
    w = torch.as_tensor(np.asarray(weight) if not isinstance(weight, torch.Tensor) else weight)
    w = w.detach().float().cpu()[:n]
    lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
    return ((w - lo) / (hi - lo).clamp_min(1e-12)).reshape(-1, *shape)
