"""Session 4.3 - a variational autoencoder on MNIST.

Course notebook (session4/vae.ipynb): MNIST through torchvision's
``ToTensor`` (pixels in [0, 1]) flattened to 784; encoder Q: Linear(784, 128)
- ReLU - two heads Linear(128, 100) for the mean and the log-variance;
reparametrisation z = mu + exp(logvar / 2) eps; decoder P: Linear(100, 128) -
ReLU - Linear(128, 784) - sigmoid; Xavier-uniform weights and biases 0.01;
loss = summed BCE / batch + mean KL; Adam lr 1e-3, betas (0.5, 0.999); batch
3000 (it must divide 60,000 there: the notebook reshapes every batch to
exactly ``batch_size`` rows); 50 epochs; the three losses on a log scale, a
4x4 grid during training, an 8x8 grid from the prior and a latent
interpolation at the end.

Here any batch size works (the last batch is shorter), the images are one
tensor on the device, batches are index slices and the three losses are
summed on the device and read once per epoch.
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
                  make_generator, precision, reconstruction_grid, sample_grid)
from ..nn.quality import sample_quality
from ..nn.samples import SampleEvolution, eval_mode, latent_walk

DESCRIPTION = """
A **variational autoencoder** learns an encoder q(z|x) that maps an image to
a Gaussian in a latent space (a mean mu and a log-variance per dimension) and
a decoder p(x|z) that maps a latent point back to an image. Training samples
z = mu + exp(logvar / 2) eps (the reparametrisation trick, so gradients flow
through the sampling) and minimises, per image, the reconstruction term
(BCE of the decoded image against the input, summed over the pixels) plus
the KL divergence of q(z|x) from the prior N(0, I):

    recon = sum over pixels BCE(x_hat, x)
    KL = 0.5 sum(exp(lv) + mu^2 - 1 - lv)
    loss = recon + KL      (lv: logvar)

Course set-up: encoder 784-128-ReLU-(mu, logvar) with 100 latent dimensions
(126,280 weights), decoder 100-128-ReLU-784-sigmoid (114,064 weights),
Xavier-uniform weights and biases 0.01, Adam lr 1e-3 and betas (0.5, 0.999),
batch 3000, 50 epochs. (The notebook's parameter print swaps the two names:
its "encoder" number is the decoder's.)

**Reading the curves.** The reconstruction term falls; the KL term *rises*
early on: at the start the encoder puts every image near the origin (KL near
0, useless codes), and it pays KL to spread the digits apart so they can be
told apart. That rise is healthy, so only the total and the reconstruction
loss are watched for divergence. All losses here are per image (nats); the
notebook prints the sum over an epoch's batches of loss / batch size, which is
the per-image loss x batches / batch size (shown in the summary as
`course_printed_total`).

Shown: a 4x4 grid decoded from one fixed batch of prior samples every epoch
(the same digits take shape), those samples at a few epochs in one strip, an
8x8 grid from the prior, test digits above their reconstructions, a latent
interpolation; with `latent_dim = 2`, a walk over the 2-D latent space and
the test digits' codes coloured by digit. A **sample-quality score** closes
the run: the Frechet distance between a small MNIST classifier's features of
10,000 samples and of the test images (lower is better) next to the floor
(real training images against test images), and the class histogram of the
samples.

Questions: why does the KL term rise while the total falls? What do samples
look like with latent 2 against 100, and what does the 2-D walk show? Why
are VAE samples blurrier than a GAN's?
"""


class VaeParams(DeepParams):
    latent_dim: int = Field(100, ge=1, le=1024, description="Latent dimension (2: also a 2-D latent walk)")
    hidden_dim: int = Field(128, ge=1, le=4096, description="Size of the middle layer (encoder and decoder)")
    epochs: int = Field(50, ge=1, le=10_000, description="Epochs")
    batch_size: int = Field(3000, ge=1, le=60_000, description="Mini-batch size (any; the course needs a divisor "
                                                               "of 60,000)")
    lr: float = Field(1e-3, gt=0, le=1, description="Learning rate (Adam)")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 (course: 0.5)")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam beta2")
    interpolate: Literal["prior", "test digits"] = Field(
        "prior", description="Interpolate between two prior samples (course) or the codes of two test digits")
    interp_steps: int = Field(8, ge=5, le=10, description="Images in the latent interpolation")
    walk_steps: int = Field(10, ge=3, le=20, description="Grid size of the 2-D latent walk (latent_dim 2)")
    quality_samples: int = Field(10_000, ge=0, le=60_000,
                                 description="Samples scored at the end by the MNIST classifier (0: no score)")
    # precision, compile, channels_last, train_limit, test_limit, checkpoint_every: DeepParams


# ------------------------------------------------------------------- model
def init_weights(m: torch.nn.Module) -> None:
    """The course's initialisation: Xavier-uniform weights, biases 0.01."""
    if isinstance(m, torch.nn.Linear):
        torch.nn.init.xavier_uniform_(m.weight)
        torch.nn.init.constant_(m.bias, 0.01)


class Encoder(torch.nn.Module):
    """q(z|x): 784 - hidden (ReLU) - (mu, logvar)."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 128, latent_dim: int = 100):
        super().__init__()
        self.lin_middle = torch.nn.Linear(input_dim, hidden_dim)
        self.lin_mu = torch.nn.Linear(hidden_dim, latent_dim)
        self.lin_var = torch.nn.Linear(hidden_dim, latent_dim)
        self.apply(init_weights)

    def forward(self, x):
        h = F.relu(self.lin_middle(x.flatten(1)))
        return self.lin_mu(h), self.lin_var(h)


class Decoder(torch.nn.Module):
    """p(x|z): latent - hidden (ReLU) - 784 (sigmoid)."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 128, latent_dim: int = 100):
        super().__init__()
        self.lin_latent = torch.nn.Linear(latent_dim, hidden_dim)
        self.lin_middle = torch.nn.Linear(hidden_dim, input_dim)
        self.apply(init_weights)

    def forward(self, z, logits: bool = False):
        out = self.lin_middle(F.relu(self.lin_latent(z)))
        return out if logits else torch.sigmoid(out)


def reparametrize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) eps, eps ~ N(0, I)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(logvar / 2) * eps


def vae_loss(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, logits: bool = False):
    """The course's loss, per image: (total, reconstruction, KL) with
    reconstruction = BCE summed over pixels / batch and KL = the batch mean of
    0.5 sum_j (exp(logvar) + mu^2 - 1 - logvar). In fp32 (outside autocast).

    With ``logits=True`` ``recon`` is the decoder's output before the sigmoid
    and the BCE is taken from it directly (the same value, without the
    sigmoid's rounding; 4-5x faster on a CPU): the training loop does that."""
    x, recon = x.float().flatten(1), recon.float().flatten(1)
    if logits:
        rec = F.binary_cross_entropy_with_logits(recon, x, reduction="sum") / len(x)
    else:
        rec = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
    kl = kl_divergence(mu, logvar)
    return rec + kl, rec, kl


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image, averaged over the batch (fp32)."""
    mu, logvar = mu.float(), logvar.float()
    return torch.mean(0.5 * torch.sum(torch.exp(logvar) + mu ** 2 - 1.0 - logvar, dim=1))


def train_epoch(enc, dec, opt, x, batch_size: int, prec, meter, *, generator=None, run=None, enc_fwd=None,
                dec_fwd=None, loss=None) -> bool:
    """One pass over the images ``x`` in shuffled batches of any size (the
    last one shorter); the three losses go to ``meter`` (no device sync).
    ``loss(x, decoded, mu, logvar)`` gives (total, reconstruction, KL)
    (default: the course's, the BCE taken from the decoder's logits).
    Returns False when a Stop cut the epoch short."""
    e, d = enc_fwd or enc, dec_fwd or dec
    batches = batch_indices(len(x), batch_size, generator=generator, device=x.device)
    seen = 0
    for idx in (run.batches(batches) if run is not None else batches):
        xb = x[idx]
        with prec.autocast():
            mu, logvar = e(xb)
            z = reparametrize(mu, logvar)
            out = d(z, logits=True) if loss is None else d(z)
        total, rec, kl = vae_loss(xb, out, mu, logvar, logits=True) if loss is None else loss(xb, out, mu, logvar)
        opt.zero_grad(set_to_none=True)
        prec.minimize(total, opt)
        meter.add(len(idx), total=total.detach(), recon=rec.detach(), KL=kl.detach())
        seen += 1
    return seen == len(batches)


#: the series watched for divergence: the total and the reconstruction. The KL
#: term rises early by design (the codes spread out), so it is never watched.
WATCHED = ["loss/total", "loss/recon", "loss/test"]


def report_epoch(run: Run, epoch: int, values: dict) -> None:
    """Record an epoch's losses; only :data:`WATCHED` can stop the run as diverged."""
    run.scalars(epoch, values, check=WATCHED)


def loss_metrics(state: dict) -> dict:
    """The summary's losses (the last epoch's), training time and speed from
    the loop's resumable state."""
    last = state.get("last") or {}
    out = {name: last[key] for key, name in (("loss/total", "loss_total"), ("loss/recon", "loss_recon"),
                                             ("loss/KL", "loss_kl"), ("loss/test", "test_loss")) if key in last}
    out["train_s"] = state["train_s"]
    if state["train_s"] > 0:
        out["images_per_s"] = state["images"] / state["train_s"]
    return out


def held_out_loss(enc, dec, x, eps, prec, batch_size: int = 2000) -> float:
    """The per-image loss on ``x`` with fixed noise ``eps`` (a smooth curve)."""
    total = torch.zeros((), device=x.device)
    with eval_mode(enc, dec):
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            with prec.autocast():
                mu, logvar = enc(xb)
                recon = dec(reparametrize(mu.float(), logvar.float(), eps[start:start + batch_size]), logits=True)
            total += vae_loss(xb, recon, mu, logvar, logits=True)[0] * len(xb)
    return float(total) / max(len(x), 1)


def run(p: VaeParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)

    # --- data: flat images in [0, 1]
    x, _ = mnist.tensors("mnist", "train", device=dev, limit=p.train_limit)
    x_test, y_test = mnist.tensors("mnist", "test", device=dev, limit=p.test_limit)
    x, x_test = x.flatten(1).contiguous(), x_test.flatten(1).contiguous()
    batches = math.ceil(len(x) / p.batch_size)
    run.text(f"MNIST: {len(x)} training and {len(x_test)} test images on {dev}; {batches} batches of up to "
             f"{p.batch_size} per epoch")

    # --- model
    enc, dec = Encoder(784, p.hidden_dim, p.latent_dim).to(dev), Decoder(784, p.hidden_dim, p.latent_dim).to(dev)
    n_enc, n_dec = count_parameters(enc), count_parameters(dec)
    opt = torch.optim.Adam(list(dec.parameters()) + list(enc.parameters()), lr=p.lr, betas=(p.beta1, p.beta2))
    expected = p.epochs * len(x) / 200_000  # a GPU does about 200,000 images/s through this small VAE
    enc_fwd = compile_model(enc, p.compile, device=dev, expected_s=expected, log=run.text)
    dec_fwd = compile_model(dec, p.compile, device=dev, expected_s=expected, log=run.text)
    run.text(f"VAE: encoder {n_enc:,} parameters, decoder {n_dec:,}; latent {p.latent_dim}; Adam lr {p.lr:g}, "
             f"betas ({p.beta1:g}, {p.beta2:g}); {prec.describe()}")

    fixed = make_generator(run.seed + 1)
    z_fixed = torch.randn(64, p.latent_dim, generator=fixed).to(dev)  # the first 16: the live grid
    z_ends = torch.randn(2, p.latent_dim, generator=fixed).to(dev)
    eps_test = torch.randn(len(x_test), p.latent_dim, generator=fixed).to(dev)

    def decode(z):
        with eval_mode(dec), prec.autocast():
            return dec(z).float().reshape(-1, 1, 28, 28)

    # --- loop (resumable)
    gen = make_generator(run.seed)
    state = run.resumable(models={"encoder": enc, "decoder": dec}, optimizers=opt, scaler=prec.scaler,
                          generators={"shuffle": gen}, every=p.checkpoint_every,
                          extra={"train_s": 0.0, "images": 0, "last": {}})
    evo = SampleEvolution("samples", state, ncols=4, keep=6, title="16 samples of fixed z from the prior")
    meter = LossMeter()
    enc.train(), dec.train()
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        whole = train_epoch(enc, dec, opt, x, p.batch_size, prec, meter, generator=gen, run=run, enc_fwd=enc_fwd,
                            dec_fwd=dec_fwd)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        state["images"] += len(x)
        values = meter.means(prefix="loss/")
        if len(x_test):
            values["loss/test"] = held_out_loss(enc, dec, x_test, eps_test, prec)
        state["last"] = dict(values)
        report_epoch(run, epoch, values)
        if whole:  # a Stop in the middle: the checkpoint is the last whole epoch's, so are the kept samples
            evo.show(run, epoch, decode(z_fixed[:16]))

    # --- results
    evo.strip(run, "samples by epoch")
    sample_grid(run, "prior samples", decode(z_fixed), ncols=8, title="64 samples decoded from the prior N(0, I)")
    if len(x_test):
        with eval_mode(enc), prec.autocast():
            mu_test = torch.cat([enc(x_test[i:i + 2000])[0].float() for i in range(0, len(x_test), 2000)])
        k = min(8, len(x_test))
        reconstruction_grid(run, "reconstructions", x_test[:k], decode(mu_test[:k]), n=k, shape=(28, 28),
                            title="test digits above their reconstructions (decoded means)")
    z0, z1, what = z_ends[0], z_ends[1], "two fixed prior samples"
    if p.interpolate == "test digits" and len(x_test):
        other = torch.nonzero(y_test != y_test[0]).flatten()
        j = int(other[0]) if len(other) else min(1, len(x_test) - 1)
        z0, z1 = mu_test[0], mu_test[j]
        what = f"the codes of a test {int(y_test[0])} and a test {int(y_test[j])}"
    interpolation_strip(run, "interpolation", decode, z0, z1, steps=p.interp_steps,
                        title=f"decoder((1-λ) z0 + λ z1) between {what}")
    if p.latent_dim == 2:
        latent_walk(run, "latent walk", decode, steps=p.walk_steps, device=dev)
        if len(x_test):
            pts, labels = mu_test.cpu(), y_test.cpu()
            run.figure("test codes", "scatter", title="the test digits' codes (mu) in the 2-D latent space",
                       series={str(d): {"x": pts[labels == d, 0].tolist(), "y": pts[labels == d, 1].tolist()}
                               for d in range(10)}, xlabel="z1", ylabel="z2")

    metrics = {"params_encoder": n_enc, "params_decoder": n_dec, "epochs_done": run.step or 0,
               **loss_metrics(state)}
    if "loss_total" in metrics:
        metrics["course_printed_total"] = metrics["loss_total"] * batches / p.batch_size
    metrics.update(sample_quality(run, lambda k: decode(torch.randn(k, p.latent_dim, device=dev)),
                                  p.quality_samples, train=not run.stopped_early))
    run.summary(**metrics)


EXERCISE = Exercise(
    id="4.3-vae",
    title="A variational autoencoder on MNIST",
    session=4,
    description=DESCRIPTION,
    Params=VaeParams,
    run=run,
    data=["mnist"],
    primary_metric="test_loss",
)
