"""Session 4.1 - a deep Boltzmann machine on MNIST.

Course notebook: ``session4/dbm.ipynb`` loads a pre-trained 784-512-1024
Bernoulli DBM (TensorFlow), shows the first layer's filters W1 and the second
layer's effective filters W1 @ W2, and samples it after Gibbs steps, to be
compared with the RBM's samples of ``rbm.ipynb``.

Here it is trained in PyTorch, in the two phases of Salakhutdinov and Hinton:

1. greedy pre-training: an RBM on the pixels (``labbench.nn.rbm.RBM``, the
   same class as 4.1-rbm's PyTorch backend), then an RBM on the first
   layer's activations; or layer 1 taken from a finished 4.1-rbm run
   (``rbm_run``);
2. joint training of the two-layer DBM: the data side by **mean-field
   inference** (q(h1) q(h2) iterated to a fixed point), the model side by
   **persistent Gibbs chains** (fantasy particles) swept a few times per
   update.

Every phase checkpoints: ``labbench resume`` continues a run stopped in
pre-training or in joint training; the pre-trained RBMs are also saved on
their own (``artifacts/rbm1.pt``, ``rbm2.pt``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Optional

import torch
from pydantic import Field, ValidationInfo, field_validator

from ..data import mnist
from ..engine import Exercise, Params, Run
from ..nn import CheckpointError, LossMeter, cpu_threads, load_weights
from ..nn.rbm import (RBM, batch_slices, bernoulli, device_generator, filters_as_images, flip_indices,
                      one_thread_if_small)

DESCRIPTION = """
A **deep Boltzmann machine** stacks two hidden layers, v - h1 - h2, with
undirected weights W1 (pixels to h1) and W2 (h1 to h2): h1 hears both the
image and h2. Exact inference is intractable, so training has two parts:

1. **greedy pre-training**: an RBM on the pixels, then an RBM on its hidden
   activations (the same RBM code as `4.1-rbm`), which start the DBM's weights;
2. **joint training**: for each batch, **mean-field inference** finds q(h1),
   q(h2) by iterating h1 = sigmoid(W1 v + W2' h2 + b1), h2 = sigmoid(W2 h1 +
   b2) to a fixed point (the data statistics), and **persistent Gibbs chains**
   give the model statistics; the weights move by their difference.

The course's DBM is 784-512-1024 (course); on the CPU the defaults are smaller
(256-256) so an epoch takes seconds.

Shown: the first layer's filters (rows of W1), the second layer's **effective
filters** W1' W2 (what each h2 unit looks for in pixel space: larger, more
digit-like strokes), the persistent chains during training, and **samples**
after `sample_sweeps` Gibbs sweeps of the DBM next to those of the layer-1 RBM
(`sample_from`: each model's persistent chains, as the course samples its
DBM after one step (course), or the same test images or noise for both; more
sweeps show how far each model's chains wander). Curves: the pseudo-likelihood of each RBM during
pre-training, and the DBM's mean-field reconstruction error.

Questions (course): how do the first- and second-layer filters differ? Are
the DBM's samples better than the RBM's, and why?
"""


class DbmParams(Params):
    n_hidden1: Optional[int] = Field(None, ge=1, le=8192,
                                     description="First hidden layer (course: 512; unset: 512 on a GPU, 256 on the CPU)")
    n_hidden2: Optional[int] = Field(None, ge=1, le=8192,
                                     description="Second hidden layer (course: 1024; unset: 1024 on a GPU, 256 on "
                                                 "the CPU)")
    rbm_run: Optional[str] = Field(None, description="A finished 4.1-rbm run folder whose RBM becomes layer 1 "
                                                     "(its pre-training is skipped)")
    pretrain_epochs: int = Field(5, ge=0, le=1000, description="Pre-training epochs of each RBM")
    pretrain_lr: float = Field(0.05, gt=0, le=10, description="Learning rate of the RBMs")
    pretrain_method: Literal["pcd", "cd"] = Field("pcd", description="Pre-training: persistent CD or CD")
    pretrain_k: int = Field(1, ge=1, le=100, description="Gibbs steps per RBM update")
    epochs: int = Field(10, ge=1, le=10_000, description="Joint-training epochs")
    lr: float = Field(0.005, gt=0, le=10, description="Joint-training learning rate")
    momentum: float = Field(0.5, ge=0, lt=1, description="Joint-training momentum")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="L2 penalty on the weights (joint training)")
    batch_size: int = Field(100, ge=1, le=60_000, description="Mini-batch size")
    mf_steps: int = Field(10, ge=1, le=1000, description="Mean-field iterations per batch")
    n_chains: int = Field(100, ge=1, le=10_000, description="Persistent Gibbs chains (fantasy particles)")
    chain_sweeps: int = Field(1, ge=1, le=100, description="Gibbs sweeps of the chains per update")
    sample_sweeps: int = Field(1, ge=0, le=100_000, description="Gibbs sweeps for the final samples (course: 1)")
    n_samples: int = Field(64, ge=1, le=1000, description="Samples shown from each model")
    sample_from: Literal["chains", "test", "noise"] = Field(
        "chains", description="Start the sample chains at the persistent chains of training (the course samples "
                              "its DBM's), the first test images (the RBM notebook's start) or noise with each "
                              "pixel's mean intensity")
    train_limit: Optional[int] = Field(None, ge=1, description="Use only the first N training images")
    test_limit: Optional[int] = Field(2000, ge=1, description="Test images for the curves (first N)")
    checkpoint_every: Optional[int] = Field(
        None, ge=1, description="Checkpoint every N joint epochs (unset: when 5 minutes have passed); "
                                "always on Stop, at the end and after each pre-training epoch")

    @field_validator("rbm_run")
    @classmethod
    def _a_finished_rbm_run(cls, v, info: ValidationInfo):
        if v is None:
            return v
        states = rbm_run_states(v)  # raises ValueError with the reason
        n1 = info.data.get("n_hidden1")
        h = states["weight"].shape[0]
        if n1 is not None and n1 != h:
            raise ValueError(f"{v}: its RBM has {h} hidden units, n_hidden1 is {n1} (leave n_hidden1 unset to "
                             f"take {h})")
        if states["weight"].shape[1] != 784:
            raise ValueError(f"{v}: its RBM has {states['weight'].shape[1]} visible units, not MNIST's 784")
        return v

    @field_validator("checkpoint_every")
    @classmethod
    def _within_run(cls, v, info: ValidationInfo):
        epochs = info.data.get("epochs")
        if v is not None and isinstance(epochs, int) and v > epochs:
            raise ValueError(f"every {v} epochs is more than the run's {epochs} epochs (use at most {epochs}, "
                             "or leave it unset)")
        return v


def rbm_run_states(folder: str) -> dict[str, torch.Tensor]:
    """The RBM weights of a finished 4.1-rbm run (its PyTorch RBM if it has
    one, else its scikit-learn one), or a ValueError saying what is wrong."""
    path = Path(folder)
    if not (path / "artifacts" / "weights.pt").is_file():
        raise ValueError(f"{folder}: not a finished 4.1-rbm run folder (no artifacts/weights.pt)")
    try:
        states = load_weights(path, exercise="4.1-rbm")
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    for name in ("torch", "sklearn"):
        if name in states:
            return {k: states[name][k].float() for k in ("weight", "visible_bias", "hidden_bias")}
    raise ValueError(f"{folder}: its weights hold {sorted(states)}, no RBM")


# ---------------------------------------------------------------- the model
class DBM(torch.nn.Module):
    """Two-hidden-layer Bernoulli DBM: E(v, h1, h2) = -v.b_v - h1.b1 - h2.b2
    - h1 W1 v - h2 W2 h1, with W1 (H1, 784) and W2 (H2, H1)."""

    def __init__(self, n_visible: int, n_hidden1: int, n_hidden2: int):
        super().__init__()
        self.W1 = torch.nn.Parameter(torch.zeros(n_hidden1, n_visible))
        self.W2 = torch.nn.Parameter(torch.zeros(n_hidden2, n_hidden1))
        self.b_v = torch.nn.Parameter(torch.zeros(n_visible))
        self.b1 = torch.nn.Parameter(torch.zeros(n_hidden1))
        self.b2 = torch.nn.Parameter(torch.zeros(n_hidden2))

    @torch.no_grad()
    def from_rbms(self, rbm1: RBM, rbm2: RBM) -> "DBM":
        """Start from the pre-trained RBMs: W1, W2 are theirs; h1's bias is the
        mean of its two roles (rbm1's hidden, rbm2's visible bias)."""
        self.W1.copy_(rbm1.weight)
        self.W2.copy_(rbm2.weight)
        self.b_v.copy_(rbm1.visible_bias)
        self.b1.copy_((rbm1.hidden_bias + rbm2.visible_bias) / 2)
        self.b2.copy_(rbm2.hidden_bias)
        return self

    # conditionals: each layer given its neighbours
    def h1_given(self, v, h2):
        return torch.sigmoid(v @ self.W1.t() + h2 @ self.W2 + self.b1)

    def h2_given(self, h1):
        return torch.sigmoid(h1 @ self.W2.t() + self.b2)

    def v_given(self, h1):
        return torch.sigmoid(h1 @ self.W1 + self.b_v)

    @torch.no_grad()
    def mean_field(self, v: torch.Tensor, steps: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """q(h1), q(h2) for the data ``v``: a bottom-up pass, then ``steps``
        fixed-point updates mu1 = sigmoid(v W1' + mu2 W2 + b1), mu2 =
        sigmoid(mu1 W2' + b2) (v W1' + b1 does not change: computed once)."""
        bottom_up = torch.addmm(self.b1, v, self.W1.t())
        mu1 = torch.sigmoid(bottom_up)
        mu2 = self.h2_given(mu1)
        for _ in range(int(steps)):
            mu1 = torch.sigmoid(torch.addmm(bottom_up, mu2, self.W2))
            mu2 = self.h2_given(mu1)
        return mu1, mu2

    @torch.no_grad()
    def gibbs_sweep(self, v, h1, h2, generator=None):
        """One sweep of the layer-wise Gibbs sampler: h1 given (v, h2), then v
        and h2 given h1 (they do not touch each other). Returns (v, h1, h2,
        P(v | h1))."""
        h1 = bernoulli(self.h1_given(v, h2), generator)
        pv = self.v_given(h1)
        return bernoulli(pv, generator), h1, bernoulli(self.h2_given(h1), generator), pv


def rbm_samples(rbm: RBM, h: torch.Tensor, sweeps: int, generator) -> torch.Tensor:
    """P(v | h) after ``sweeps`` Gibbs steps h -> v -> h of an RBM from the hidden state ``h``."""
    pv = rbm.visible_probs(h)
    for _ in range(int(sweeps)):
        h = rbm.sample_hidden(bernoulli(pv, generator), generator)
        pv = rbm.visible_probs(h)
    return pv


def dbm_samples(dbm: DBM, v, h1, h2, sweeps: int, generator) -> torch.Tensor:
    """P(v | h1) after ``sweeps`` Gibbs sweeps of the DBM from (v, h1, h2)."""
    pv = dbm.v_given(h1)
    for _ in range(int(sweeps)):
        v, h1, h2, pv = dbm.gibbs_sweep(v, h1, h2, generator)
    return pv


# ------------------------------------------------------------------ the run
def run(p: DbmParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    gpu = dev.type == "cuda"

    # --- data: MNIST / 255, flattened (the course's X / 255)
    x = mnist.tensors("mnist", "train", device=dev, limit=p.train_limit)[0].reshape(-1, 784)
    x_test = mnist.tensors("mnist", "test", device=dev, limit=p.test_limit)[0].reshape(-1, 784)
    run.text(f"MNIST / 255: {len(x)} training images, {len(x_test)} test images for the curves, on {dev}")

    # --- models: two RBMs for pre-training, the DBM they start
    loaded = rbm_run_states(p.rbm_run) if p.rbm_run else None
    n1 = p.n_hidden1 or (loaded["weight"].shape[0] if loaded else (512 if gpu else 256))
    n2 = p.n_hidden2 or (1024 if gpu else 256)
    rbm1 = RBM(784, n1).init_like_sklearn(run.seed).to(dev)
    rbm2 = RBM(n1, n2).init_like_sklearn(run.seed + 1).to(dev)
    dbm = DBM(784, n1, n2).to(dev)
    opt = torch.optim.SGD([{"params": [dbm.W1, dbm.W2], "weight_decay": p.weight_decay},
                           {"params": [dbm.b_v, dbm.b1, dbm.b2], "weight_decay": 0.0}], lr=p.lr, momentum=p.momentum)
    gen = device_generator(run.seed, dev)
    state = {"pretrained": [0, 0], "composed": False, "rbm_chains": [None, None], "chains": None,
             "seconds": {"pretrain": 0.0, "joint": 0.0}}
    if loaded is not None:
        rbm1.load_state_dict(loaded)
        state["pretrained"][0] = p.pretrain_epochs
        run.text(f"layer 1: the RBM of {p.rbm_run} ({n1} hidden units); its pre-training is skipped")
    run.text(f"DBM 784-{n1}-{n2}: {784 * n1 + n1 * n2 + 784 + n1 + n2:,} parameters")
    objects = dict(models={"rbm1": rbm1, "rbm2": rbm2, "dbm": dbm}, optimizers={"dbm": opt},
                   generators={"gibbs": gen})
    state = run.resumable(**objects, extra=state, every=p.checkpoint_every)  # restores a resumed run

    with cpu_threads(one_thread_if_small(p.batch_size, n1, max(784, n2)), dev), torch.no_grad():
        # --- phase 1: greedy pre-training, layer by layer, each epoch checkpointed
        pretrain(p, run, 1, rbm1, lambda v: v, x, x_test, state, objects, gen)
        pretrain(p, run, 2, rbm2, rbm1.hidden_probs, x, x_test, state, objects, gen)
        if not state["composed"] and not run.stop_requested():
            dbm.from_rbms(rbm1, rbm2)
            v0 = bernoulli(x[torch.randperm(len(x))[:p.n_chains].to(dev)], gen)  # chains start at data
            h1 = bernoulli(torch.sigmoid(v0 @ dbm.W1.t() + dbm.b1), gen)
            state["chains"] = [v0.cpu(), h1.cpu(), bernoulli(dbm.h2_given(h1), gen).cpu()]
            state["composed"] = True
            run.checkpoint(0, **objects, extra=state, total=p.epochs, phase="joint training")

        if not state["composed"]:  # stopped while pre-training: the checkpoint of its last whole epoch is saved
            done = ", ".join(f"RBM {i + 1}: {e} of {p.pretrain_epochs}" for i, e in enumerate(state["pretrained"]))
            run.text(f"stopped during pre-training ({done} epochs); `labbench resume {run.dir}` continues it",
                     "warning")

        # --- phase 2: joint training - mean field for the data, persistent chains for the model
        if state["composed"]:
            meter = LossMeter()
            for epoch in run.epochs(p.epochs):
                v_n, h1_n, h2_n = (t.to(dev) for t in state["chains"])
                t0 = time.perf_counter()
                for sl in run.batches(batch_slices(len(x), p.batch_size)):
                    v = x[sl]
                    mu1, mu2 = dbm.mean_field(v, p.mf_steps)               # data side: q(h1), q(h2)
                    for _ in range(p.chain_sweeps):                         # model side: the fantasy particles
                        v_n, h1_n, h2_n, _ = dbm.gibbs_sweep(v_n, h1_n, h2_n, gen)
                    n, m = len(v), len(v_n)
                    # ascent on the log-likelihood: <.>_data - <.>_model (SGD minimises, hence the minus)
                    dbm.W1.grad = -(mu1.t() @ v / n - h1_n.t() @ v_n / m)
                    dbm.W2.grad = -(mu2.t() @ mu1 / n - h2_n.t() @ h1_n / m)
                    dbm.b_v.grad = -(v.mean(0) - v_n.mean(0))
                    dbm.b1.grad = -(mu1.mean(0) - h1_n.mean(0))
                    dbm.b2.grad = -(mu2.mean(0) - h2_n.mean(0))
                    opt.step()
                    meter.add(n, recon=((dbm.v_given(mu1) - v) ** 2).mean())
                if gpu:
                    torch.cuda.synchronize(dev)
                state["seconds"]["joint"] += time.perf_counter() - t0
                state["chains"] = [v_n.cpu(), h1_n.cpu(), h2_n.cpu()]
                run.scalars(epoch, {"recon/train": meter.means()["recon"],
                                    "recon/test": reconstruction_error(dbm, x_test, p.mf_steps)},
                            check=["recon/train"])
                run.images("chains", dbm.v_given(h1_n)[:64].reshape(-1, 28, 28), step=epoch, ncols=8,
                           title=f"the persistent chains after epoch {epoch}: P(v | h1)")

        # --- show: the filters of both layers, the DBM's samples next to the layer-1 RBM's
        show(p, run, rbm1, dbm, x_test, state, dev, n1, n2)


def pretrain(p: DbmParams, run: Run, layer: int, rbm: RBM, below, x, x_test, state: dict, objects: dict,
             gen) -> None:
    """Greedy pre-training of one RBM on ``below(x)`` (the pixels, or the
    first layer's activations): the epochs not done yet, each checkpointed."""
    i, phase = layer - 1, f"pre-training RBM {layer}"
    flip = flip_indices(len(x_test), rbm.n_visible, run.seed)
    while state["pretrained"][i] < p.pretrain_epochs and not run.stop_requested():
        epoch = state["pretrained"][i] + 1
        run.progress(epoch - 1, p.pretrain_epochs, phase=phase, check=False)
        chain = state["rbm_chains"][i]
        if chain is None and p.pretrain_method == "pcd":
            chain = torch.zeros(min(p.batch_size, len(x)), rbm.n_hidden)
        chain = chain.to(x.device) if chain is not None else None
        t0 = time.perf_counter()
        for sl in run.batches(batch_slices(len(x), p.batch_size)):
            new = rbm.cd_step(below(x[sl]), p.pretrain_lr, k=p.pretrain_k, chain=chain, generator=gen)
            chain = new if chain is not None else None
        if run.stop_requested():  # a partial epoch is not kept: the checkpoint holds the last whole one
            return
        state["seconds"]["pretrain"] += time.perf_counter() - t0
        state["rbm_chains"][i] = chain.cpu() if chain is not None else None
        state["pretrained"][i] = epoch
        v_test = below(x_test)
        run.scalars(epoch, {f"pl_rbm{layer}": rbm.pseudo_likelihood(v_test, flip).mean(),
                            f"recon_rbm{layer}": rbm.reconstruction_error(v_test)}, check=False)
        run.progress(epoch, p.pretrain_epochs, phase=phase, check=False)
        if epoch == p.pretrain_epochs:
            run.save_weights({f"rbm{layer}": rbm}, name=f"rbm{layer}", epoch=epoch)
        run.checkpoint(0, **objects, extra=state, total=p.epochs, phase=phase)


def reconstruction_error(dbm: DBM, v: torch.Tensor, mf_steps: int) -> torch.Tensor:
    """Mean squared error of v against P(v | q(h1)) after mean-field inference."""
    mu1, _ = dbm.mean_field(v, mf_steps)
    return ((dbm.v_given(mu1) - v) ** 2).mean()


def show(p: DbmParams, run: Run, rbm1: RBM, dbm: DBM, x_test, state: dict, dev, n1: int, n2: int) -> None:
    metrics = {"pretrained_rbm1": state["pretrained"][0], "pretrained_rbm2": state["pretrained"][1],
               "epochs_done": (run.step or 0) if state["composed"] else 0,
               "params": sum(t.numel() for t in dbm.parameters()),
               "pretrain_s": state["seconds"]["pretrain"], "joint_s": state["seconds"]["joint"],
               "pl_rbm1": float(rbm1.pseudo_likelihood(x_test, flip_indices(len(x_test), 784, run.seed)).mean())}
    # the sample chains' start: the persistent chains training ended with (the course samples its DBM's), the
    # first test images (the RBM notebook's start) or noise with each pixel's mean intensity
    n = p.n_samples
    gen_start, gen_rbm, gen_dbm = (device_generator(run.seed + k, dev) for k in (7, 8, 8))
    rbm_chain = state["rbm_chains"][0]
    if p.sample_from == "chains" and rbm_chain is not None:
        h_rbm, rbm_where = rbm_chain[:n].to(dev), "its persistent chains"
    else:
        h_rbm, rbm_where = None, None
    if p.sample_from == "noise":
        mean = x_test.mean(0, keepdim=True).expand(n, -1).contiguous()
        v0, where = bernoulli(mean, gen_start), "noise"
    else:
        v0, where = x_test[:n], f"the first {min(n, len(x_test))} test images"
    if h_rbm is None:
        h_rbm, rbm_where = rbm1.sample_hidden(v0, gen_rbm), rbm_where or where
    rbm_v = rbm_samples(rbm1, h_rbm, p.sample_sweeps, gen_rbm)
    run.images("rbm-samples", rbm_v.reshape(-1, 28, 28), ncols=8,
               title=f"RBM (layer 1, 784-{n1}): P(v | h) after {p.sample_sweeps} Gibbs steps from {rbm_where}")
    if not state["composed"]:  # stopped during pre-training
        run.images("filters-rbm1", filters_as_images(rbm1.weight, n=100), ncols=10,
                   title="RBM 1 (pre-training was stopped): its first 100 filters")
        run.summary(**metrics)
        return
    run.images("filters-W1", filters_as_images(dbm.W1, n=100), ncols=10,
               title="DBM: the first 100 filters of the first layer (rows of W1)")
    run.images("filters-W1W2", filters_as_images(dbm.W2 @ dbm.W1, n=100), ncols=10,
               title="DBM: the first 100 effective filters of the second layer (W1' W2)")
    if p.sample_from == "chains" and state["chains"] is not None:
        v, h1, h2 = (t[:n].to(dev) for t in state["chains"])
        where = "the persistent chains"
    else:
        v, h1 = v0, bernoulli(torch.sigmoid(v0 @ dbm.W1.t() + dbm.b1), gen_dbm)
        h2 = bernoulli(dbm.h2_given(h1), gen_dbm)
    dbm_v = dbm_samples(dbm, v, h1, h2, p.sample_sweeps, gen_dbm)
    run.images("dbm-samples", dbm_v.reshape(-1, 28, 28), ncols=8,
               title=f"DBM (784-{n1}-{n2}): P(v | h1) after {p.sample_sweeps} Gibbs sweeps from {where}")
    mu1, mu2 = dbm.mean_field(x_test, p.mf_steps)
    metrics["recon_test"] = float(((dbm.v_given(mu1) - x_test) ** 2).mean())
    # how far q(h1) is from its fixed point after mf_steps iterations (0 at convergence)
    metrics["mf_residual"] = float((dbm.h1_given(x_test, mu2) - mu1).abs().max())
    run.summary(**metrics)

EXERCISE = Exercise(
    id="4.1-dbm",
    title="Deep Boltzmann machine on MNIST",
    session=4,
    description=DESCRIPTION,
    Params=DbmParams,
    run=run,
    data=["mnist"],
    primary_metric="recon_test",
)
