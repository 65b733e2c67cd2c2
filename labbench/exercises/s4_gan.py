"""Session 4.2 - generative adversarial networks on MNIST: the course's fully
connected GAN and its DCGAN.

Course notebook (session4/gan.ipynb): MNIST through torchvision's
``ToTensor`` (pixels in [0, 1]), latent 10, batch 512, 50 epochs, Adam lr 1e-3
with betas (0.5, 0.999) for both players; per batch one discriminator step on
``0.5 [BCE(D(x), 1) + BCE(D(G(z)), 0)]`` with the fake batch detached, then
one generator step on ``BCE(D(G(z)), 1)`` through the updated discriminator;
the losses per epoch on a log scale, an 8x8 grid from the prior and a latent
interpolation at the end. The DCGAN section swaps in transposed-convolution
and convolution nets with batch norm.

How it is made fast: the images are one tensor on the device, batches are
index slices, the losses and D outputs are summed on the device and read once
per epoch, and the generator step does not compute the discriminator's weight
gradients (the course computes and then discards them).
"""

from __future__ import annotations

import math
import time
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..data import mnist
from ..engine import Exercise, Run
from ..nn import (DeepParams, LossMeter, batch_indices, compile_model, count_parameters, interpolation_strip,
                  make_generator, precision)
from ..nn.quality import sample_quality
from ..nn.samples import SampleEvolution, eval_mode

DESCRIPTION = """
A **GAN** is two networks in a game. The generator G turns a random latent
vector z (10 numbers from N(0, 1)) into an image; the discriminator D says how
likely an image is to be real. Per batch, D takes a step on loss_D, then
G one on loss_G (through the updated D):

    loss_D = 0.5 BCE(D(x), 1)
           + 0.5 BCE(D(G(z)), 0)
    loss_G = BCE(D(G(z)), 1)

G is rewarded when D takes its images for real.

* **fc** (course): G 10-256-512-1024-784 with LeakyReLU 0.2 and tanh out
  (1,463,312 weights); D 784-1024-512-256-1 with LeakyReLU 0.2, dropout 0.3
  and a sigmoid (1,460,225 weights).
* **dcgan** (course): G is four transposed convolutions 10 -> 320 -> 160 ->
  10 -> 1 channels (1 -> 5 -> 7 -> 14 -> 28 pixels) with batch norm and ReLU;
  D mirrors it with convolutions, batch norm and LeakyReLU 0.2, then
  Linear(10, 1) and a sigmoid.

Course settings: latent 10, batch 512, 50 epochs, Adam lr 1e-3 and betas
(0.5, 0.999) for both nets (a beta1 of 0.5 lets each player react faster to
the other). Here D and G have their own learning rates, and D can take
several steps (each on a new batch) per G step.

**Data range.** G ends in tanh, so its images lie in [-1, 1]. The course
feeds real images in [0, 1]: then the real background sits at 0, the middle
of tanh's range, and any negative pixel gives a fake away. Here the data is
scaled to [-1, 1] by default (background at -1, where tanh saturates);
`data_range = "[0, 1]"` trains the course's way.

**Reading the curves.** The losses do not go down and stay down: they
oscillate as each player catches up with the other, and that is healthy.
D(x) and D(G(z)) (the mean outputs on real and fake images per epoch) show
the balance: D(x) near 1 and D(G(z)) near 0 means D is winning; both near
0.5 means D cannot tell. Only a non-finite loss stops a run as diverged.
The losses are also drawn on a log scale, as the course does.

**Is it any good?** The losses cannot say whether G draws all ten digits or
only a few (mode collapse). The run ends with a **sample-quality score**:
10,000 samples go through a small MNIST classifier, trained once and cached;
the Frechet distance between its features of the samples and of the real
test images (lower is better), next to the floor (real training images
against real test images), the class histogram of the samples and its
entropy (3.32 bits when all ten digits are equally common).

Shown: an 8x8 grid of samples from one fixed latent batch every epoch (the
same digits take shape), the same 6 samples at a few epochs in one strip at
the end, a latent interpolation, the class histogram.

Questions: what do D(x) and D(G(z)) do when D learns much faster than G
(raise `lr_d`, or `d_steps`)? Which architecture gives sharper digits for
the same epochs? Does the class histogram show missing digits?
"""


class GanParams(DeepParams):
    arch: Literal["fc", "dcgan"] = Field("fc", description="fc: the course's fully connected GAN; dcgan: its "
                                                           "convolutional one")
    latent_dim: int = Field(10, ge=1, le=512, description="Latent dimension")
    epochs: int = Field(50, ge=1, le=10_000, description="Epochs")
    batch_size: int = Field(512, ge=2, le=60_000, description="Mini-batch size")
    lr_d: float = Field(1e-3, gt=0, le=1, description="Learning rate of the discriminator (Adam)")
    lr_g: float = Field(1e-3, gt=0, le=1, description="Learning rate of the generator (Adam)")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 of both nets (course: 0.5)")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam beta2 of both nets")
    d_steps: int = Field(1, ge=1, le=20, description="Discriminator steps per generator step (each on a new batch)")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout in the fc discriminator")
    data_range: Literal["[-1, 1]", "[0, 1]"] = Field(
        "[-1, 1]", description="Pixel range of the real images ([-1, 1] matches G's tanh; [0, 1] as the course)")
    interp_steps: int = Field(8, ge=5, le=10, description="Images in the latent interpolation")
    quality_samples: int = Field(10_000, ge=0, le=60_000,
                                 description="Samples scored at the end by the MNIST classifier (0: no score)")
    # precision, compile, channels_last, train_limit, test_limit, checkpoint_every: DeepParams


# ------------------------------------------------------------------- models
class Generator(torch.nn.Module):
    """The course's fully connected generator: z -> (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self, latent_dim: int = 10):
        super().__init__()
        self.latent_dim = latent_dim
        self.fc1 = torch.nn.Linear(latent_dim, 256)
        self.fc2 = torch.nn.Linear(256, 512)
        self.fc3 = torch.nn.Linear(512, 1024)
        self.fc4 = torch.nn.Linear(1024, 28 * 28)

    def forward(self, z):
        z = z.flatten(1)
        h = F.leaky_relu(self.fc1(z), 0.2)
        h = F.leaky_relu(self.fc2(h), 0.2)
        h = F.leaky_relu(self.fc3(h), 0.2)
        return torch.tanh(self.fc4(h)).view(-1, 1, 28, 28)


class Discriminator(torch.nn.Module):
    """The course's fully connected discriminator: image -> (N, 1) probability of "real"."""

    def __init__(self, dropout: float = 0.3):
        super().__init__()
        self.fc1 = torch.nn.Linear(28 * 28, 1024)
        self.fc2 = torch.nn.Linear(1024, 512)
        self.fc3 = torch.nn.Linear(512, 256)
        self.fc4 = torch.nn.Linear(256, 1)
        self.drop = torch.nn.Dropout(dropout)

    def forward(self, x):
        h = x.flatten(1)
        h = self.drop(F.leaky_relu(self.fc1(h), 0.2))
        h = self.drop(F.leaky_relu(self.fc2(h), 0.2))
        h = self.drop(F.leaky_relu(self.fc3(h), 0.2))
        return torch.sigmoid(self.fc4(h))


class ConvGenerator(torch.nn.Module):
    """The course's DCGAN generator: (N, latent) or (N, latent, 1, 1) -> (N, 1, 28, 28)."""

    def __init__(self, latent_dim: int = 10):
        super().__init__()
        d = self.latent_dim = latent_dim
        self.net = torch.nn.Sequential(
            torch.nn.ConvTranspose2d(d, d * 32, 5, 1, 0), torch.nn.BatchNorm2d(d * 32), torch.nn.ReLU(),       # 1 -> 5
            torch.nn.ConvTranspose2d(d * 32, d * 16, 5, 1, 1), torch.nn.BatchNorm2d(d * 16), torch.nn.ReLU(),  # -> 7
            torch.nn.ConvTranspose2d(d * 16, d, 4, 2, 1), torch.nn.BatchNorm2d(d), torch.nn.ReLU(),            # -> 14
            torch.nn.ConvTranspose2d(d, 1, 4, 2, 1), torch.nn.Tanh())                                          # -> 28

    def forward(self, z):
        return self.net(z.reshape(len(z), self.latent_dim, 1, 1))


class ConvDiscriminator(torch.nn.Module):
    """The course's DCGAN discriminator: (N, 1, 28, 28) -> (N, 1)."""

    def __init__(self, latent_dim: int = 10):
        super().__init__()
        d = latent_dim
        act = (lambda: torch.nn.LeakyReLU(0.2))
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, d, 4, 2, 1), torch.nn.BatchNorm2d(d), act(),                  # 28 -> 14
            torch.nn.Conv2d(d, d * 16, 4, 2, 1), torch.nn.BatchNorm2d(d * 16), act(),        # -> 7
            torch.nn.Conv2d(d * 16, d * 32, 5, 1, 1), torch.nn.BatchNorm2d(d * 32), act(),   # -> 5
            torch.nn.Conv2d(d * 32, d, 5, 1, 0), torch.nn.BatchNorm2d(d), act(),             # -> 1
            torch.nn.Flatten(), torch.nn.Linear(d, 1), torch.nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


def build(p: GanParams) -> tuple[torch.nn.Module, torch.nn.Module]:
    if p.arch == "dcgan":
        return ConvGenerator(p.latent_dim), ConvDiscriminator(p.latent_dim)
    return Generator(p.latent_dim), Discriminator(p.dropout)


# ----------------------------------------------------------------- the steps
def bce(pred: torch.Tensor, target: float) -> torch.Tensor:
    """BCE of probabilities against a constant label, in fp32 (outside autocast)."""
    pred = pred.float().reshape(-1)
    return F.binary_cross_entropy(pred, torch.full_like(pred, target))


def discriminator_step(D, opt_d, real, fake, prec, d_fwd=None):
    """One D step on a real and a fake batch (the fake detached: G is not
    touched). Returns (loss_D, D(x), D(G(z))) as detached tensors."""
    d = d_fwd or D
    with prec.autocast():
        d_real = d(real)
        d_fake = d(fake.detach())
    loss = 0.5 * (bce(d_real, 1.0) + bce(d_fake, 0.0))
    opt_d.zero_grad(set_to_none=True)
    prec.backward(loss)
    prec.step(opt_d)
    return loss.detach(), d_real.detach().float(), d_fake.detach().float()


def generator_step(D, opt_g, fake, prec, d_fwd=None):
    """One G step: ``BCE(D(G(z)), 1)`` through the (updated) discriminator,
    whose weights get no gradient (only G's optimiser steps). Returns loss_G."""
    d = d_fwd or D
    D.requires_grad_(False)
    try:
        with prec.autocast():
            d_fake = d(fake)
        loss = bce(d_fake, 1.0)
        opt_g.zero_grad(set_to_none=True)
        prec.backward(loss)
    finally:
        D.requires_grad_(True)
    prec.step(opt_g)
    return loss.detach()


def train_epoch(G, D, opt_g, opt_d, x, batch_size: int, latent_dim: int, prec, meter, *, generator=None,
                d_steps: int = 1, done: int = 0, run=None, g_fwd=None, d_fwd=None) -> tuple[int, bool]:
    """One pass over ``x`` in shuffled batches, as the course loop does it:
    per batch a fake batch from fresh z, one D step, and (every ``d_steps``
    D steps) one G step on the same fake batch through the updated D.
    Losses and mean D outputs go to ``meter`` (no device sync). ``done``
    counts the D steps so far. Returns the new count, and False when a Stop
    cut the epoch short."""
    g = g_fwd or G
    batches = batch_indices(len(x), batch_size, generator=generator, device=x.device)
    seen = 0
    for idx in (run.batches(batches) if run is not None else batches):
        real = x[idx]
        z = torch.randn(len(idx), latent_dim, device=x.device)
        with prec.autocast():
            fake = g(z)
        loss_d, d_real, d_fake = discriminator_step(D, opt_d, real, fake, prec, d_fwd)
        meter.add(len(idx), D=loss_d, real=d_real.mean(), fake=d_fake.mean())
        done += 1
        if done % d_steps == 0:
            meter.add(len(idx), G=generator_step(D, opt_g, fake, prec, d_fwd))
        prec.update()
        seen += 1
    return done, seen == len(batches)


#: the series watched for divergence. The BCE losses oscillate by design and
#: are bounded (torch clamps log at -100), so only a non-finite value stops a run.
WATCHED = ["loss/D", "loss/G"]


def run(p: GanParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)
    conv = p.arch == "dcgan"
    fmt = torch.channels_last if conv and p.channels_last else torch.contiguous_format

    # --- data: one tensor on the device, scaled to the chosen range
    x, _ = mnist.tensors("mnist", "train", device=dev, limit=p.train_limit)
    lo = -1.0 if p.data_range == "[-1, 1]" else 0.0
    if lo < 0:
        x = x.mul_(2).sub_(1)
    x = x.contiguous(memory_format=fmt)
    run.text(f"MNIST: {len(x)} training images on {dev}, pixels in {p.data_range}"
             + ("" if lo < 0 else " (as the course: G's tanh can go below the real images' 0)"))

    # --- models
    G, D = build(p)
    G, D = G.to(dev, memory_format=fmt), D.to(dev, memory_format=fmt)
    n_g, n_d = count_parameters(G), count_parameters(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=p.lr_g, betas=(p.beta1, p.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=p.lr_d, betas=(p.beta1, p.beta2))
    batches_per_epoch = math.ceil(len(x) / p.batch_size)
    # a GPU does about 25,000 images/s through the fc GAN's three passes; compile pays only on long runs
    expected = p.epochs * len(x) / 25_000
    g_fwd = compile_model(G, p.compile, device=dev, expected_s=expected, log=run.text)
    d_fwd = compile_model(D, p.compile, device=dev, expected_s=expected, log=run.text)
    run.text(f"{p.arch} GAN: generator {n_g:,} parameters, discriminator {n_d:,}; Adam lr D {p.lr_d:g}, "
             f"G {p.lr_g:g}, betas ({p.beta1:g}, {p.beta2:g}); {p.d_steps} D step(s) per G step; "
             f"{batches_per_epoch} batches of {p.batch_size} per epoch; {prec.describe()}")

    # fixed latents: the same 64 samples every epoch, and the interpolation's ends
    fixed = make_generator(run.seed + 1)
    z_fixed = torch.randn(64, p.latent_dim, generator=fixed).to(dev)
    z_ends = torch.randn(2, p.latent_dim, generator=fixed).to(dev)
    shown = (lo, 1.0)

    def generate(z):
        with eval_mode(G), prec.autocast():
            return G(z).float()

    # --- loop (resumable)
    gen = make_generator(run.seed)
    state = run.resumable(models={"G": G, "D": D}, optimizers={"G": opt_g, "D": opt_d}, scaler=prec.scaler,
                          generators={"shuffle": gen}, every=p.checkpoint_every,
                          extra={"train_s": 0.0, "d_batches": 0, "history": {k: [] for k in
                                                                              ("epoch", "D", "G", "real", "fake")}})
    evo = SampleEvolution("samples", state, ncols=8, keep=6, value_range=shown, title="64 samples of fixed z")
    meter = LossMeter()
    G.train()
    D.train()
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        state["d_batches"], whole = train_epoch(G, D, opt_g, opt_d, x, p.batch_size, p.latent_dim, prec, meter,
                                                generator=gen, d_steps=p.d_steps, done=state["d_batches"],
                                                run=run, g_fwd=g_fwd, d_fwd=d_fwd)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        m = meter.means()
        h = state["history"]
        h["epoch"].append(epoch)
        for k in ("D", "G", "real", "fake"):
            h[k].append(m.get(k, float("nan")))
        values = {"loss/D": m["D"], "D output/D(x)": m["real"], "D output/D(G(z))": m["fake"]}
        if "G" in m:
            values["loss/G"] = m["G"]
        run.scalars(epoch, values, check=WATCHED)
        run.figure("losses (log scale)", "line", x=h["epoch"], series={"D": h["D"], "G": h["G"]}, logy=True,
                   xlabel="epoch", ylabel="BCE", title="D and G loss per epoch (log scale)")
        if whole:  # a Stop in the middle: the checkpoint is the last whole epoch's, so are the kept samples
            evo.show(run, epoch, generate(z_fixed))

    # --- results: the strip of epochs, an interpolation, the quality score
    evo.strip(run, "samples by epoch")
    interpolation_strip(run, "interpolation", generate, z_ends[0], z_ends[1], steps=p.interp_steps,
                        value_range=shown, title="G((1-λ) z0 + λ z1) between two fixed latents")
    h = state["history"]
    metrics = {"params_G": n_g, "params_D": n_d, "epochs_done": run.step or 0, "train_s": state["train_s"]}
    if h["epoch"]:
        metrics.update(loss_D=h["D"][-1], loss_G=h["G"][-1], D_x=h["real"][-1], D_G_z=h["fake"][-1])
    if state["train_s"] > 0:
        metrics["images_per_s"] = len(h["epoch"]) * len(x) / state["train_s"]
    metrics.update(sample_quality(run, lambda k: generate(torch.randn(k, p.latent_dim, device=dev)),
                                  p.quality_samples, value_range=(-1.0, 1.0) if lo < 0 else (0.0, 1.0),
                                  train=not run.stopped_early))
    run.summary(**metrics)


EXERCISE = Exercise(
    id="4.2-gan",
    title="GAN and DCGAN on MNIST",
    session=4,
    description=DESCRIPTION,
    Params=GanParams,
    run=run,
    data=["mnist"],
    primary_metric="fd",
)
