"""Session 4.1 - a restricted Boltzmann machine on MNIST.

Course notebook: ``session4/rbm.ipynb``. MNIST / 255 (not binarised), all
60,000 training images and the first 100 test images; scikit-learn's
``BernoulliRBM(n_components=10, learning_rate=0.01, n_iter=10,
random_state=0)``, whose ``verbose`` output (the pseudo-likelihood after each
iteration) is the training curve; Gibbs samples started from the test images;
the reconstruction of test images with rows removed; the components as
filters.

Here the same, with a PyTorch RBM beside it (``backend``): ``labbench.nn.rbm``
(CD-k or persistent CD-k, on the GPU when there is one), started from the same
weights as scikit-learn's for the same seed and scored with the same
pseudo-likelihood, so both curves share one chart (``backend = "both"``).

The scikit-learn model is trained by the loop of ``BernoulliRBM.fit`` written
out (its ``_fit`` step on each consecutive batch), one iteration at a time, so
that each iteration reports its pseudo-likelihood, a Stop is honoured between
batches, and a checkpoint holds the weights, the persistent chain and the
random state: the result is ``fit``'s, bit for bit (tested).
"""

from __future__ import annotations

import copy
import time
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator
from threadpoolctl import threadpool_limits

from ..data import mnist
from ..engine import Exercise, Params, Run
from ..nn import cpu_threads
from ..nn.rbm import (RBM, batch_slices, device_generator, filters_as_images, fill_removed, flip_indices,
                      one_thread_if_small, removal_mask)

DESCRIPTION = """
A **restricted Boltzmann machine**: 784 visible units (the pixels, MNIST / 255
used as probabilities) and `n_components` binary hidden units, joined by one
weight matrix and no connections inside a layer. scikit-learn's `BernoulliRBM`
learns it by **persistent contrastive divergence** (PCD-1): the data pull the
weights towards the observed pixels, a chain of Gibbs samples that persists
between batches pushes them away from what the model dreams.

The course (course: n_components 10, learning_rate 0.01, n_iter 10, batch 10,
random_state 0, all 60,000 training images) prints the **pseudo-likelihood**
after each iteration; here it is the curve. It is scikit-learn's
`score_samples` estimate: one pixel of each image flipped, `784 x log
sigmoid(F(flipped) - F(image))` with the free energy F, averaged over the
training set - the same flipped pixels (drawn from the seed) for both
backends and every iteration, so the PyTorch RBM (`backend = "torch"`, CD-k or
PCD-k, GPU) is on the same scale and `backend = "both"` draws the two curves
on one chart. Both start from the same weights for the same seed.

Shown: the pseudo-likelihood per iteration, the hidden units' **filters** (the
components) refreshed every iteration, **Gibbs samples** after `gibbs_steps`
steps from the first test images (course: 50 steps, 100 images), and the
**reconstruction** of test images with rows removed (course: rows 0-12 from the
top of 4 images, 10 Gibbs steps; only the removed rows are replaced by the
sample).

Questions (course): what do n_components, learning_rate and n_iter change?
Why do the samples drift away from the test images they started from as the
Gibbs steps grow? How many rows can be removed before the reconstruction
fails, and does the side matter?
"""


class RbmParams(Params):
    backend: Literal["sklearn", "torch", "both"] = Field(
        "sklearn", description="sklearn: the course's BernoulliRBM (PCD-1, CPU); torch: labbench's RBM (CD-k or "
                               "PCD-k, GPU when there is one); both: the two side by side on one chart")
    n_components: int = Field(10, ge=1, le=4096, description="Hidden units (course: 10)")
    learning_rate: float = Field(0.01, gt=0, le=10, description="Learning rate (course: 0.01)")
    n_iter: int = Field(10, ge=1, le=10_000, description="Iterations over the training set (course: 10)")
    batch_size: int = Field(10, ge=1, le=60_000, description="Mini-batch size (scikit-learn's default: 10)")
    method: Literal["pcd", "cd"] = Field(
        "pcd", description="torch: persistent CD (the chain persists across batches, as scikit-learn's) or CD "
                           "(each batch's chain starts at its data)")
    cd_k: int = Field(1, ge=1, le=1000, description="torch: Gibbs steps per update (scikit-learn: 1)")
    gibbs_steps: int = Field(50, ge=0, le=100_000, description="Gibbs steps for the samples (course: 50)")
    n_test: int = Field(100, ge=1, le=10_000, description="First test images used (course: 100)")
    recon_first: int = Field(0, ge=0, description="First test image to reconstruct (course: 0)")
    recon_images: int = Field(4, ge=1, le=64, description="Test images to reconstruct (course: 4)")
    remove_side: Literal["top", "bottom", "left", "right"] = Field(
        "top", description="Count the removed rows from this edge (left/right: columns)")
    remove_start: int = Field(0, ge=0, le=27, description="First removed row, counted from the side (course: 0)")
    remove_end: int = Field(12, ge=1, le=28, description="Rows up to here are removed (course: 12)")
    recon_steps: int = Field(10, ge=1, le=100_000, description="Gibbs steps of the reconstruction (course: 10)")
    train_limit: Optional[int] = Field(None, ge=1, description="Use only the first N training images")
    checkpoint_every: Optional[int] = Field(
        None, ge=1, description="Checkpoint every N iterations (unset: when 5 minutes have passed); "
                                "always on Stop and at the end")

    @field_validator("cd_k")
    @classmethod
    def _sklearn_is_pcd1(cls, v, info: ValidationInfo):
        if v != 1 and info.data.get("backend") == "sklearn":
            raise ValueError(f"scikit-learn's BernoulliRBM always takes 1 Gibbs step per update; cd_k = {v} needs "
                             'backend = "torch" (or "both")')
        return v

    @field_validator("method")
    @classmethod
    def _sklearn_is_persistent(cls, v, info: ValidationInfo):
        if v != "pcd" and info.data.get("backend") == "sklearn":
            raise ValueError('scikit-learn\'s BernoulliRBM is always persistent CD; method = "cd" needs '
                             'backend = "torch" (or "both")')
        return v

    @field_validator("recon_images")
    @classmethod
    def _within_test_images(cls, v, info: ValidationInfo):
        first, n_test = info.data.get("recon_first"), info.data.get("n_test")
        if isinstance(first, int) and isinstance(n_test, int) and first + v > n_test:
            raise ValueError(f"test images {first}..{first + v - 1} are not among the first n_test = {n_test} "
                             f"(use recon_first + recon_images <= {n_test})")
        return v

    @field_validator("remove_end")
    @classmethod
    def _end_after_start(cls, v, info: ValidationInfo):
        start = info.data.get("remove_start")
        if isinstance(start, int) and v <= start:
            raise ValueError(f"rows start..end are removed: end ({v}) must be greater than start ({start})")
        return v

    @field_validator("checkpoint_every")
    @classmethod
    def _within_run(cls, v, info: ValidationInfo):
        n_iter = info.data.get("n_iter")
        if v is not None and isinstance(n_iter, int) and v > n_iter:
            raise ValueError(f"every {v} iterations is more than the run's {n_iter} (use at most {n_iter}, "
                             "or leave it unset)")
        return v


# ---------------------------------------------------------------- the model
class SklearnRBM:
    """The course's ``BernoulliRBM``, trained one iteration at a time by the
    loop of its own ``fit`` (same initial draw, same ``_fit`` step on the same
    consecutive batches, same random stream), with ``state_dict`` /
    ``load_state_dict`` so that a run folder can checkpoint it."""

    def __init__(self, n_components: int, learning_rate: float, batch_size: int, n_iter: int, seed: int,
                 n_features: int = 784, dtype=np.float32):
        from sklearn.neural_network import BernoulliRBM

        self.rbm = BernoulliRBM(n_components=n_components, learning_rate=learning_rate, batch_size=batch_size,
                                n_iter=n_iter, random_state=seed)
        rng = np.random.RandomState(seed)  # what fit() draws from: the initial weights, then every sample
        # fit() keeps the data's dtype (float32 for the course's X / 255) for the weights too
        self.rbm.components_ = np.asarray(rng.normal(0, 0.01, (n_components, n_features)), order="F", dtype=dtype)
        self.rbm._n_features_out = n_components
        self.rbm.n_features_in_ = n_features
        self.rbm.intercept_hidden_ = np.zeros(n_components, dtype=dtype)
        self.rbm.intercept_visible_ = np.zeros(n_features, dtype=dtype)
        self.rbm.h_samples_ = np.zeros((batch_size, n_components), dtype=dtype)
        self.rbm.random_state_ = rng
        self.dtype = dtype

    @property
    def rng(self) -> np.random.RandomState:
        return self.rbm.random_state_

    def fit_batch(self, x: np.ndarray) -> None:
        self.rbm._fit(x, self.rbm.random_state_)  # the body of fit()'s loop

    def as_torch(self, device=None) -> RBM:
        """A PyTorch RBM with these weights (for the shared pseudo-likelihood)."""
        r = RBM(self.rbm.components_.shape[1], self.rbm.n_components)
        r.load_state_dict({k: v for k, v in self.state_dict().items() if k != "chain"})
        return r.to(device) if device is not None else r

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"weight": torch.from_numpy(np.ascontiguousarray(self.rbm.components_).copy()),
                "visible_bias": torch.from_numpy(self.rbm.intercept_visible_.copy()),
                "hidden_bias": torch.from_numpy(self.rbm.intercept_hidden_.copy()),
                "chain": torch.from_numpy(np.asarray(self.rbm.h_samples_).copy())}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        for k, t in self.state_dict().items():
            if k not in state or tuple(state[k].shape) != tuple(t.shape):
                got = tuple(state[k].shape) if k in state else "nothing"
                raise RuntimeError(f"{k}: expected shape {tuple(t.shape)}, the checkpoint has {got}")
        arr = {k: state[k].numpy().astype(self.dtype) for k in ("weight", "visible_bias", "hidden_bias", "chain")}
        self.rbm.components_ = np.asarray(arr["weight"], order="F")
        self.rbm.intercept_visible_ = arr["visible_bias"]
        self.rbm.intercept_hidden_ = arr["hidden_bias"]
        self.rbm.h_samples_ = arr["chain"]

    def gibbs_sampler(self):
        """``sample(v, steps)`` with ``BernoulliRBM.gibbs`` on a copy (the
        course deep-copies the model before sampling)."""
        model = copy.deepcopy(self.rbm)

        def sample(v: torch.Tensor, steps: int) -> torch.Tensor:
            a = v.detach().cpu().numpy().astype(self.dtype)
            for _ in range(int(steps)):
                a = model.gibbs(a).astype(self.dtype)
            return torch.from_numpy(a).float()

        return sample


def torch_sampler(rbm: RBM, seed: int):
    gen = device_generator(seed, rbm.weight.device)

    def sample(v: torch.Tensor, steps: int) -> torch.Tensor:
        return rbm.gibbs(v.to(rbm.weight.device), steps, gen).cpu()

    return sample


# ------------------------------------------------------------------ the run
def run(p: RbmParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    seed = run.seed  # scikit-learn's random_state (course: 0)
    backends = ["sklearn", "torch"] if p.backend == "both" else [p.backend]

    # --- data: MNIST / 255, flattened; the first n_test test images
    x, _ = mnist.tensors("mnist", "train", limit=p.train_limit)
    x = x.reshape(len(x), -1)
    x_test = mnist.tensors("mnist", "test", limit=p.n_test)[0].reshape(-1, 784)
    run.text(f"MNIST / 255: {len(x)} training images, the first {len(x_test)} test images")
    slices = batch_slices(len(x), p.batch_size)
    flip = flip_indices(len(x), x.shape[1], seed)  # the pixel flipped in each image for the pseudo-likelihood
    x_np = x.numpy()  # scikit-learn trains on the float32 array, as fit() does
    x_dev = x.to(dev) if "torch" in backends else None

    # --- models: the course's BernoulliRBM and/or labbench's RBM, from the same initial weights
    models, generators = {}, {}
    state = {"seconds": {b: 0.0 for b in backends}, "images": {b: 0 for b in backends}, "chain": None}
    if "sklearn" in backends:
        sk = SklearnRBM(p.n_components, p.learning_rate, p.batch_size, p.n_iter, seed, x.shape[1])
        models["sklearn"], generators["sklearn"] = sk, sk.rng
    if "torch" in backends:
        rbm = RBM(x.shape[1], p.n_components).init_like_sklearn(seed).to(dev)
        gen = device_generator(seed, dev)
        models["torch"], generators["torch"] = rbm, gen
        if p.method == "pcd":  # the persistent chain: hidden samples, as long as a batch (scikit-learn's)
            state["chain"] = torch.zeros(min(p.batch_size, len(x)), p.n_components)
    run.text(f"backend {p.backend}: {p.n_components} hidden units, learning rate {p.learning_rate:g}, batch "
             f"{p.batch_size}" + (f"; torch: {p.method.upper()}-{p.cd_k} on {dev}" if "torch" in backends else ""))

    # --- loop: one iteration = one pass over the training set, in order (as fit() does)
    state = run.resumable(models=models, generators=generators, extra=state, every=p.checkpoint_every)
    # small matrices (the course's 10 x 784): one CPU thread, for torch and for NumPy's BLAS alike
    threads = one_thread_if_small(max(p.batch_size, p.n_test), 784, p.n_components)
    with cpu_threads(threads, dev), threadpool_limits(threads):
        for it in run.epochs(p.n_iter, phase="iteration"):
            values = {}
            if "sklearn" in backends:
                t0 = time.perf_counter()
                for sl in run.batches(slices):
                    sk.fit_batch(x_np[sl])
                state["seconds"]["sklearn"] += time.perf_counter() - t0
                state["images"]["sklearn"] += len(x)
                values["pseudo_likelihood/sklearn"] = pseudo_likelihood(sk.as_torch(), x, flip)
            if "torch" in backends:
                chain = state["chain"].to(dev) if state["chain"] is not None else None
                t0 = time.perf_counter()
                for sl in run.batches(slices):
                    new = rbm.cd_step(x_dev[sl], p.learning_rate, k=p.cd_k, chain=chain, generator=gen)
                    chain = new if chain is not None else None
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                state["seconds"]["torch"] += time.perf_counter() - t0
                state["images"]["torch"] += len(x)
                state["chain"] = chain.cpu() if chain is not None else None
                values["pseudo_likelihood/torch"] = pseudo_likelihood(rbm, x_dev, flip)
            run.scalars(it, values, check=list(values))  # a non-finite pseudo-likelihood ends the run as diverged
            for b in backends:
                w = sk.rbm.components_ if b == "sklearn" else rbm.weight
                run.images(f"filters-{b}", filters_as_images(w, n=100), step=it, ncols=10,
                           title=f"{b}: the hidden units' filters after iteration {it} (each scaled to its own range)")

        # --- evaluate: samples from the test images, the reconstruction with rows removed
        mask = removal_mask(p.remove_start, p.remove_end, p.remove_side)
        originals = x_test[p.recon_first:p.recon_first + p.recon_images].reshape(-1, 28, 28)
        metrics: dict = {"iterations_done": run.step or 0}
        for b in backends:
            sampler = sk.gibbs_sampler() if b == "sklearn" else torch_sampler(rbm, seed + 1)
            model = sk.as_torch() if b == "sklearn" else rbm
            samples = sampler(x_test, p.gibbs_steps)
            run.images(f"samples-{b}", samples.reshape(-1, 28, 28), ncols=10,
                       title=f"{b}: Gibbs samples after {p.gibbs_steps} steps from the first {len(x_test)} test images")
            removed, sample, filled = fill_removed(originals, mask, sampler, p.recon_steps)
            show_reconstruction(run, b, originals, removed, filled, p)
            err = ((filled - originals)[:, mask] ** 2).mean().item()
            err0 = ((removed - originals)[:, mask] ** 2).mean().item()
            pl = pseudo_likelihood(model, x_dev if (b == "torch" and x_dev is not None) else x, flip)
            metrics.update({f"pseudo_likelihood_{b}": pl, f"recon_mse_{b}": err, f"train_s_{b}": state["seconds"][b]})
            if state["seconds"][b] > 0:
                metrics[f"images_per_s_{b}"] = state["images"][b] / state["seconds"][b]
            metrics["recon_mse_blank"] = err0
        metrics["pseudo_likelihood"] = metrics[f"pseudo_likelihood_{backends[0]}"]
        run.table("reconstruction", ["backend", "MSE on the removed pixels", "with them left blank"],
                  [[b, metrics[f"recon_mse_{b}"], metrics["recon_mse_blank"]] for b in backends],
                  title=f"rows {p.remove_start}-{p.remove_end - 1} from the {p.remove_side} removed, "
                        f"{p.recon_steps} Gibbs steps")
        run.summary(**metrics)


def pseudo_likelihood(model: RBM, x: torch.Tensor, flip: np.ndarray) -> float:
    """The mean pseudo-likelihood over ``x`` (one shared definition for both backends)."""
    return float(model.pseudo_likelihood(x, flip).mean())


def show_reconstruction(run: Run, backend: str, originals, removed, filled, p: RbmParams) -> None:
    """Each test image, then with its rows removed, then with the removed rows
    filled in from the Gibbs sample, one column per image."""
    sep = torch.full((originals.shape[0], 2, 28), 0.5)
    stacked = torch.cat([originals, sep, removed, sep, filled], dim=1)
    run.images(f"reconstruction-{backend}", stacked, ncols=len(originals),
               title=f"{backend}: test image / rows {p.remove_start}-{p.remove_end - 1} ({p.remove_side}) removed / "
                     f"filled in after {p.recon_steps} Gibbs steps")


EXERCISE = Exercise(
    id="4.1-rbm",
    title="Restricted Boltzmann machine on MNIST",
    session=4,
    description=DESCRIPTION,
    Params=RbmParams,
    run=run,
    data=["mnist"],
    primary_metric="pseudo_likelihood",
)
