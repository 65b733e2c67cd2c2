"""Benchmark: one epoch of the course's fully connected GAN (batch 512), two
ways, in one process.

1. labbench (``4.2-gan``'s ``train_epoch``): MNIST decoded once into one
   tensor, index-slice batches, no discriminator weight gradients in the
   generator step, losses and D outputs summed on the device (fp32; and bf16
   autocast where the CPU has bf16 instructions, the ``precision = "bf16"``
   option);
2. the course loop: torchvision's ``MNIST`` with ``ToTensor()`` behind a
   shuffled ``DataLoader``, label tensors made per batch, ``.item()`` on both
   losses every batch.

Both use the same two networks and Adam settings. The two ways alternate
(``--repeat`` rounds) and the fastest time of each is kept, which evens out
a shared machine's noise. Prints the time ratio labbench / course (target
0.4 or better). Needs MNIST in the data folder (LABBENCH_DATA).

    .venv/bin/python benchmarks/bench_gan.py                  # one full epoch (60,000 images)
    .venv/bin/python benchmarks/bench_gan.py --images 10240   # shorter
"""

from __future__ import annotations

import argparse
import gzip
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_mnist_cnn import cpu_has_bf16  # noqa: E402
from labbench.data import DataError, mnist  # noqa: E402
from labbench.exercises.s4_gan import Discriminator, Generator, train_epoch  # noqa: E402
from labbench.nn import LossMeter, make_generator, precision  # noqa: E402

LATENT, LR, BETAS = 10, 1e-3, (0.5, 0.999)


def nets():
    torch.manual_seed(0)
    g, d = Generator(LATENT), Discriminator(0.3)
    return g, d, torch.optim.Adam(g.parameters(), lr=LR, betas=BETAS), torch.optim.Adam(d.parameters(), lr=LR,
                                                                                        betas=BETAS)


def labbench_epoch(x: torch.Tensor, batch_size: int, prec_name: str) -> tuple[float, float]:
    g, d, opt_g, opt_d = nets()
    prec = precision(prec_name, "cpu")
    meter = LossMeter()
    train_epoch(g, d, opt_g, opt_d, x[: 2 * batch_size], batch_size, LATENT, prec, meter,
                generator=make_generator(1))  # warm-up
    meter.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    train_epoch(g, d, opt_g, opt_d, x, batch_size, LATENT, prec, meter, generator=make_generator(0))
    meter.means()  # the one read of the epoch
    return time.perf_counter() - t0, time.process_time() - c0


def course_epoch(root: Path, n: int, batch_size: int) -> tuple[float, float]:
    """The notebook's training loop, line for line (its ToTensor data in [0, 1])."""
    import torchvision

    ds = torchvision.datasets.MNIST(str(root), train=True, transform=torchvision.transforms.ToTensor(),
                                    download=False)
    ds = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    generator, discriminator, gen_optimizer, disc_optimizer = nets()
    device = torch.device("cpu")

    def step(image_batch):
        image_batch = image_batch.to(device)
        label_real = torch.ones(image_batch.size(0), device=device)
        label_fake = torch.zeros(image_batch.size(0), device=device)
        latent = torch.randn(image_batch.size(0), LATENT, device=device)
        fake_image_batch = generator(latent)
        real_pred = discriminator(image_batch).squeeze()
        fake_pred = discriminator(fake_image_batch.detach()).squeeze()
        disc_loss = 0.5 * (F.binary_cross_entropy(real_pred, label_real)
                           + F.binary_cross_entropy(fake_pred, label_fake))
        disc_optimizer.zero_grad()
        disc_loss.backward()
        disc_optimizer.step()
        fake_pred = discriminator(fake_image_batch).squeeze()
        gen_loss = F.binary_cross_entropy(fake_pred, label_real)
        gen_optimizer.zero_grad()
        gen_loss.backward()
        gen_optimizer.step()
        return gen_loss.item(), disc_loss.item()

    for i, (image_batch, _) in enumerate(loader):  # warm-up
        step(image_batch)
        if i == 1:
            break
    t0, c0 = time.perf_counter(), time.process_time()
    gen_loss_avg = disc_loss_avg = 0.0
    for image_batch, _ in loader:
        gl, dl = step(image_batch)
        gen_loss_avg += gl
        disc_loss_avg += dl
    return time.perf_counter() - t0, time.process_time() - c0


def torchvision_copy(tmp: Path) -> Path:
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = mnist.require("mnist") / "mnist"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(src / f"{name}.gz", "rb") as fin, open(raw / name, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return tmp


def common_start(ap: argparse.ArgumentParser, argv, repeat: int) -> tuple[argparse.Namespace, torch.Tensor]:
    """The options both benchmarks share, parsed; the threads set; the MNIST
    training images loaded (``--images`` of them)."""
    ap.add_argument("--repeat", type=int, default=repeat, help="rounds of every way; the fastest of each is kept")
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                    help="also time bf16 autocast (auto: when the CPU has bf16 instructions)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; "
                                                               "1 on a shared machine)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        x, _ = mnist.tensors("mnist", "train", limit=args.images)
    except DataError as exc:
        raise SystemExit(f"error: {exc}")
    return args, x


def best_of(ways: dict, repeat: int) -> dict[str, tuple[float, float]]:
    """Run the ways in turn ``repeat`` times; the best wall and CPU time of each."""
    best = {k: (float("inf"), float("inf")) for k in ways}
    for _ in range(repeat):
        for name, fn in ways.items():
            wall, cpu = fn()
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def report(best: dict[str, tuple[float, float]], n: int) -> None:
    """The table: wall and CPU seconds of each way (best of the rounds), and
    their ratios to the last way (the course loop). On a shared machine the
    CPU-time ratio is the steadier one (run with --threads 1)."""
    wide = max(len(k) for k in best)
    course_wall, course_cpu = best[list(best)[-1]]
    print(f"{'way':<{wide}} {'wall s':>7} {'cpu s':>7} {'images/s':>9} {'ratio':>6} {'cpu ratio':>9}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<{wide}} {wall:7.2f} {cpu:7.2f} {n / wall:9.0f} {wall / course_wall:6.2f} "
              f"{cpu / course_cpu:9.2f}")
    print("\nratio = wall time / the course loop's; cpu ratio = the same in CPU seconds of this process "
          "(target 0.4 or better)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=60_000, help="training images in the epoch (course: 60,000)")
    ap.add_argument("--batch-size", type=int, default=512)
    args, x = common_start(ap, argv, repeat=2)
    x = x.mul(2).sub(1)  # the exercise's default range; the cost is the same in [0, 1]
    n = len(x)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"bf16 instructions: {cpu_has_bf16()}, torch {torch.__version__}")
    print(f"one epoch of the course's fc GAN over {n} MNIST images, batch {args.batch_size}, Adam; "
          f"best of {args.repeat}\n")
    ways = {"labbench fp32 (index batches, no D weight grads in the G step)": lambda: labbench_epoch(
        x, args.batch_size, "fp32")}
    if args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16()):
        ways["labbench bf16 autocast (precision = bf16)"] = lambda: labbench_epoch(x, args.batch_size, "bf16")
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_copy(Path(tmp))
        ways["course loop (torchvision MNIST + ToTensor + DataLoader, .item())"] = lambda: course_epoch(
            root, n, args.batch_size)
        best = best_of(ways, args.repeat)
    report(best, n)


if __name__ == "__main__":
    main()
