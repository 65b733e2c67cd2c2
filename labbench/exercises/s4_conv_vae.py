"""Session 4.4 - a convolutional VAE on one CIFAR-10 class.

Report set-up (the course's VAE notebook, made convolutional for colour
images): CIFAR-10 class "ship" (label 8) scaled to [-1, 1]; encoder
convolutions 64, 128, 256 (kernel 4, stride 2, padding 1: 32 -> 16 -> 8 -> 4
pixels) with batch norm and LeakyReLU, then linear layers to mu and logvar;
decoder linear, then transposed convolutions with batch norm back to 32x32
and tanh; batch 128, latent 100, middle 256, Adam lr 1e-4, 250 epochs.

The images are one tensor on the device, batches are index slices, the
losses are summed on the device and read once per epoch; on a GPU the
convolutions run in bf16 autocast and channels-last layout.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..data import cifar
from ..engine import Exercise, Run
from ..nn import (DeepParams, LossMeter, compile_model, count_parameters, interpolation_strip,
                  make_generator, precision, reconstruction_grid, sample_grid)
from ..nn.quality import sample_quality
from ..nn.samples import SampleEvolution, eval_mode
from .s4_vae import kl_divergence, loss_metrics, report_epoch, reparametrize, train_epoch

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

DESCRIPTION = """
The VAE of 4.3 made **convolutional** for 32x32 colour images, trained on
one CIFAR-10 class (the report's: **ship**) or on all ten. Pixels are scaled
to [-1, 1].

* **encoder**: convolutions 3 -> 64 -> 128 -> 256 channels (kernel 4,
  stride 2: 32 -> 16 -> 8 -> 4 pixels), each with batch norm and
  LeakyReLU 0.2; flatten (4,096 values), Linear(4096, 256), LeakyReLU, then
  Linear(256, 100) for mu and another for logvar (1,760,008 weights);
* **decoder**: Linear(100, 256), LeakyReLU, Linear(256, 4096), reshaped to
  256x4x4; transposed convolutions 256 -> 128 -> 64 -> 3 with batch norm and
  LeakyReLU, then tanh (1,738,051 weights).

Report settings: batch 128, latent 100, middle 256, Adam lr 1e-4, 250 epochs.
The decoder ends in tanh, so the reconstruction term is the squared error
summed over the 3,072 values of an image (a Gaussian likelihood) rather than
the BCE of 4.3; loss = that sum / batch + `kl_weight` x mean KL, per image.
(`middle = 0` drops the middle linear layers.)

**Time.** One ship epoch is 5,000 images; a training step costs about
225 MFLOP an image (forward and backward; calculation), so 250 epochs are
about 280 TFLOP: roughly an hour on a laptop CPU, and on an H100 about a
second of bf16 arithmetic at 30% of its 989 TFLOP/s, in practice bounded by
the 10,000 small steps (calculation, not measured here).

Shown: 8 test images above their reconstructions every epoch (in colour), a
4x4 grid decoded from one fixed batch of prior samples every epoch and a
strip of them by epoch, an 8x8 grid from the prior at the end, a latent
interpolation between two test images, the total, reconstruction and KL
losses (as in 4.3, the KL rising early is healthy; only the total and
reconstruction are watched for divergence).

**Sample quality (a stretch).** With `quality_samples` > 0, a small CIFAR-10
classifier (three conv blocks, trained once and cached in the data folder)
scores the samples: the Frechet distance between its features of the samples
and of the class's test images, next to the floor (as many training images
of the class against the same test images), and the share of samples it
takes for the class (`on_class`). It is trained on first use: minutes on a
CPU, seconds on a GPU.

Questions: why are the samples much blurrier than the reconstructions? What
does a larger `kl_weight` do to the two? Is one class easier than all ten?
"""


class ConvVaeParams(DeepParams):
    cifar_class: Literal["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
                         "all"] = Field("ship", description="The CIFAR-10 class to learn (report: ship), or all")
    latent_dim: int = Field(100, ge=1, le=1024, description="Latent dimension")
    middle: int = Field(256, ge=0, le=8192, description="Middle linear layer between the convolutions and the "
                                                        "latent (0: none)")
    epochs: int = Field(250, ge=1, le=10_000, description="Epochs")
    batch_size: int = Field(128, ge=2, le=50_000, description="Mini-batch size")
    lr: float = Field(1e-4, gt=0, le=1, description="Learning rate (Adam)")
    beta1: float = Field(0.9, ge=0, lt=1, description="Adam beta1")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam beta2")
    kl_weight: float = Field(1.0, ge=0, le=1000, description="Weight of the KL term (1: the plain VAE)")
    show_images: int = Field(8, ge=1, le=16, description="Test images reconstructed every epoch")
    interp_steps: int = Field(8, ge=5, le=10, description="Images in the latent interpolation")
    quality_samples: int = Field(0, ge=0, le=50_000, description="Samples scored at the end by a CIFAR-10 "
                                                                  "classifier (0: no score; a stretch)")
    # precision, compile, channels_last, train_limit, test_limit, checkpoint_every: DeepParams


# ------------------------------------------------------------------- model
def act():
    return torch.nn.LeakyReLU(0.2)


class ConvEncoder(torch.nn.Module):
    """(N, 3, 32, 32) -> (mu, logvar), each (N, latent)."""

    def __init__(self, latent_dim: int = 100, middle: int = 256):
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 4, 2, 1), torch.nn.BatchNorm2d(64), act(),        # 32 -> 16
            torch.nn.Conv2d(64, 128, 4, 2, 1), torch.nn.BatchNorm2d(128), act(),     # -> 8
            torch.nn.Conv2d(128, 256, 4, 2, 1), torch.nn.BatchNorm2d(256), act(),    # -> 4
            torch.nn.Flatten())
        width = middle or 256 * 4 * 4
        self.middle = torch.nn.Sequential(torch.nn.Linear(256 * 4 * 4, middle), act()) if middle else \
            torch.nn.Identity()
        self.mu = torch.nn.Linear(width, latent_dim)
        self.logvar = torch.nn.Linear(width, latent_dim)

    def forward(self, x):
        h = self.middle(self.conv(x))
        return self.mu(h), self.logvar(h)


class ConvDecoder(torch.nn.Module):
    """(N, latent) -> (N, 3, 32, 32) in [-1, 1]."""

    def __init__(self, latent_dim: int = 100, middle: int = 256):
        super().__init__()
        layers = [torch.nn.Linear(latent_dim, middle), act(), torch.nn.Linear(middle, 256 * 4 * 4)] if middle \
            else [torch.nn.Linear(latent_dim, 256 * 4 * 4)]
        self.linear = torch.nn.Sequential(*layers)
        self.deconv = torch.nn.Sequential(
            torch.nn.BatchNorm2d(256), act(),
            torch.nn.ConvTranspose2d(256, 128, 4, 2, 1), torch.nn.BatchNorm2d(128), act(),   # 4 -> 8
            torch.nn.ConvTranspose2d(128, 64, 4, 2, 1), torch.nn.BatchNorm2d(64), act(),     # -> 16
            torch.nn.ConvTranspose2d(64, 3, 4, 2, 1), torch.nn.Tanh())                       # -> 32

    def forward(self, z):
        return self.deconv(self.linear(z).reshape(len(z), 256, 4, 4))


def conv_vae_loss(x, recon, mu, logvar, kl_weight: float = 1.0):
    """(total, reconstruction, KL) per image: squared error summed over the
    3,072 values / batch, and the batch mean of the KL (as in 4.3); in fp32."""
    x, recon = x.float(), recon.float()
    rec = F.mse_loss(recon, x, reduction="sum") / len(x)
    kl = kl_divergence(mu, logvar)
    return rec + kl_weight * kl, rec, kl


def load_class(split: str, cls: str, device, limit: int | None):
    """Images of one class (or all) in [-1, 1], with their labels."""
    images, labels = cifar.load(split)  # uint8 (N, 32, 32, 3): pick the class before making floats
    if cls != "all":
        keep = labels == CLASSES.index(cls)
        images, labels = images[keep], labels[keep]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return x.contiguous(), torch.from_numpy(labels).to(device)


def run(p: ConvVaeParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)
    fmt = torch.channels_last if p.channels_last else torch.contiguous_format

    # --- data
    x, _ = load_class("train", p.cifar_class, dev, p.train_limit)
    x_test, _ = load_class("test", p.cifar_class, dev, p.test_limit)
    if len(x) == 0:
        raise ValueError(f'no training images of class "{p.cifar_class}" in this copy of CIFAR-10')
    x, x_test = x.contiguous(memory_format=fmt), x_test.contiguous(memory_format=fmt)
    run.text(f"CIFAR-10 {p.cifar_class}: {len(x)} training and {len(x_test)} test images on {dev}, pixels in [-1, 1]")

    # --- model
    enc, dec = ConvEncoder(p.latent_dim, p.middle), ConvDecoder(p.latent_dim, p.middle)
    enc, dec = enc.to(dev, memory_format=fmt), dec.to(dev, memory_format=fmt)
    n_enc, n_dec = count_parameters(enc), count_parameters(dec)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=p.lr, betas=(p.beta1, p.beta2))
    expected = p.epochs * len(x) / 20_000  # a GPU does about 20,000 images/s through this VAE
    enc_fwd = compile_model(enc, p.compile, device=dev, expected_s=expected, log=run.text)
    dec_fwd = compile_model(dec, p.compile, device=dev, expected_s=expected, log=run.text)
    run.text(f"conv VAE: encoder {n_enc:,} parameters, decoder {n_dec:,}; latent {p.latent_dim}, middle "
             f"{p.middle}; Adam lr {p.lr:g}; {prec.describe()}")

    fixed = make_generator(run.seed + 1)
    z_fixed = torch.randn(64, p.latent_dim, generator=fixed).to(dev)
    eps_test = torch.randn(len(x_test), p.latent_dim, generator=fixed).to(dev)
    shown = x_test[: p.show_images] if len(x_test) else x[: p.show_images]

    def decode(z):
        with eval_mode(dec), prec.autocast():
            return dec(z).float()

    def encode(xs):
        with eval_mode(enc), prec.autocast():
            return torch.cat([enc(xs[i:i + 500])[0].float() for i in range(0, len(xs), 500)])

    def held_out_loss() -> float:
        total = torch.zeros((), device=dev)
        with eval_mode(enc, dec):
            for start in range(0, len(x_test), 500):
                xb = x_test[start:start + 500]
                with prec.autocast():
                    mu, logvar = enc(xb)
                    recon = dec(reparametrize(mu.float(), logvar.float(), eps_test[start:start + 500]))
                total += conv_vae_loss(xb, recon, mu, logvar, p.kl_weight)[0] * len(xb)
        return float(total) / len(x_test)

    # --- loop (resumable)
    gen = make_generator(run.seed)
    state = run.resumable(models={"encoder": enc, "decoder": dec}, optimizers=opt, scaler=prec.scaler,
                          generators={"shuffle": gen}, every=p.checkpoint_every,
                          extra={"train_s": 0.0, "images": 0, "last": {}})
    evo = SampleEvolution("samples", state, ncols=4, keep=6, value_range=(-1.0, 1.0),
                          title="16 samples of fixed z from the prior")
    meter = LossMeter()
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        whole = train_epoch(enc, dec, opt, x, p.batch_size, prec, meter, generator=gen, run=run, enc_fwd=enc_fwd,
                            dec_fwd=dec_fwd, loss=lambda xb, out, mu, lv: conv_vae_loss(xb, out, mu, lv, p.kl_weight))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        state["images"] += len(x)
        values = meter.means(prefix="loss/")
        if len(x_test):
            values["loss/test"] = held_out_loss()
        state["last"] = dict(values)
        report_epoch(run, epoch, values)
        if whole:  # a Stop in the middle: the checkpoint is the last whole epoch's, so are the kept pictures
            reconstruction_grid(run, "reconstructions", shown, decode(encode(shown)), n=len(shown), step=epoch,
                                value_range=(-1.0, 1.0),
                                title=f"test images above their reconstructions (epoch {epoch})")
            evo.show(run, epoch, decode(z_fixed[:16]))

    # --- results
    evo.strip(run, "samples by epoch")
    sample_grid(run, "prior samples", decode(z_fixed), ncols=8, value_range=(-1.0, 1.0),
                title="64 samples decoded from the prior N(0, I)")
    pair = x_test[:2] if len(x_test) >= 2 else x[:2]
    codes = encode(pair)
    interpolation_strip(run, "interpolation", decode, codes[0], codes[-1], steps=p.interp_steps,
                        value_range=(-1.0, 1.0), title="decoder((1-λ) z0 + λ z1) between the codes of two "
                                                      "test images")
    metrics = {"params_encoder": n_enc, "params_decoder": n_dec, "epochs_done": run.step or 0,
               "train_images": len(x), **loss_metrics(state)}
    target = None if p.cifar_class == "all" else CLASSES.index(p.cifar_class)
    metrics.update(sample_quality(run, lambda k: decode(torch.randn(k, p.latent_dim, device=dev)),
                                  p.quality_samples, dataset="cifar10", value_range=(-1.0, 1.0),
                                  target_class=target, train=not run.stopped_early, name="sample classes"))
    run.summary(**metrics)


EXERCISE = Exercise(
    id="4.4-conv-vae-cifar",
    title="A convolutional VAE on one CIFAR-10 class",
    session=4,
    description=DESCRIPTION,
    Params=ConvVaeParams,
    run=run,
    data=["cifar10"],
    primary_metric="test_loss",
)
