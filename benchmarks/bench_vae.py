"""Benchmark: one epoch of the course's VAE (batch 3000, latent 100, middle
128), two ways, in one process.

1. labbench (``4.3-vae``'s ``train_epoch``): MNIST decoded once into one flat
   tensor, index-slice batches, the BCE taken from the decoder's logits (the
   same loss, 4-5x cheaper than sigmoid + BCE on a CPU), the three losses
   summed on the device and read once per epoch (fp32; and bf16 autocast
   where the CPU has bf16 instructions);
2. the course loop: torchvision's ``MNIST`` with ``ToTensor()`` behind a
   shuffled ``DataLoader``, ``view(batch_size, -1)`` per batch, the losses
   accumulated as tensors and read with ``.item()`` (as the notebook does,
   once per epoch; ``--item-per-batch`` reads them every batch).

Both use the same encoder, decoder, loss and Adam settings. The two ways
alternate (``--repeat`` rounds) and the fastest time of each is kept. Prints
the time ratio labbench / course (target 0.4 or better). Needs MNIST in the
data folder (LABBENCH_DATA).

    .venv/bin/python benchmarks/bench_vae.py              # one full epoch (60,000 images)
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_gan import best_of, common_start, cpu_has_bf16, report, torchvision_copy  # noqa: E402
from labbench.exercises.s4_vae import Decoder, Encoder, reparametrize, train_epoch, vae_loss  # noqa: E402
from labbench.nn import LossMeter, make_generator, precision  # noqa: E402

LATENT, MIDDLE, LR, BETAS = 100, 128, 1e-3, (0.5, 0.999)


def nets():
    torch.manual_seed(0)
    q, p = Encoder(784, MIDDLE, LATENT), Decoder(784, MIDDLE, LATENT)
    return q, p, torch.optim.Adam(list(p.parameters()) + list(q.parameters()), lr=LR, betas=BETAS)


def labbench_epoch(x: torch.Tensor, batch_size: int, prec_name: str = "fp32") -> tuple[float, float]:
    q, p, opt = nets()
    prec, meter = precision(prec_name, "cpu"), LossMeter()
    train_epoch(q, p, opt, x[:batch_size], batch_size, prec, meter, generator=make_generator(1))  # warm-up
    meter.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    train_epoch(q, p, opt, x, batch_size, prec, meter, generator=make_generator(0))
    meter.means()
    return time.perf_counter() - t0, time.process_time() - c0


def course_epoch(root: Path, n: int, batch_size: int, item_per_batch: bool) -> tuple[float, float]:
    """The notebook's loop (its BCELoss(size_average=False) is a summed BCE)."""
    import torchvision

    ds = torchvision.datasets.MNIST(str(root), train=True, transform=torchvision.transforms.ToTensor(),
                                    download=False)
    ds = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)
    q, p, optim = nets()

    def step(batch):
        batch = batch.view(batch.size(0), -1)
        z_mu, z_var = q(batch)
        batch_recon = p(reparametrize(z_mu, z_var))
        total_loss, recon_loss, kl_loss = vae_loss(batch, batch_recon, z_mu, z_var)
        total_loss.backward()
        optim.step()
        optim.zero_grad()
        return total_loss / len(batch), recon_loss / len(batch), kl_loss / len(batch)

    step(next(iter(loader))[0])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    sums = [0, 0, 0]
    for batch, _ in loader:
        losses = step(batch)
        if item_per_batch:
            losses = [v.item() for v in losses]
        sums = [a + b for a, b in zip(sums, losses)]
    [float(v.detach()) if torch.is_tensor(v) else v for v in sums]
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=60_000)
    ap.add_argument("--batch-size", type=int, default=3000)
    ap.add_argument("--item-per-batch", action="store_true", help="the course loop reads its losses every batch")
    args, x = common_start(ap, argv, repeat=3)
    x = x.flatten(1).contiguous()
    n = len(x)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    print(f"one epoch of the course's VAE over {n} MNIST images, batch {args.batch_size}, Adam; "
          f"best of {args.repeat}\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_copy(Path(tmp))
        ways = {"labbench fp32 (one tensor, index batches, BCE from logits)":
                lambda: labbench_epoch(x, args.batch_size)}
        if args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16()):
            ways["labbench bf16 autocast (precision = bf16)"] = lambda: labbench_epoch(x, args.batch_size, "bf16")
        ways.update({"course loop (torchvision MNIST + ToTensor + DataLoader)":
                lambda: course_epoch(root, n, args.batch_size, args.item_per_batch)})
        best = best_of(ways, args.repeat)
    report(best, n)


if __name__ == "__main__":
    main()
