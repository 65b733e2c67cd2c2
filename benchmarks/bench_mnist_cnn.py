"""Benchmark: one epoch of the 1.3-mnist-cnn CNN, two ways, in one process.

1. labbench: MNIST decoded once into one tensor, index-slice batches,
   channels-last layout, losses summed on the device (fp32; and bf16
   autocast where the CPU supports it, the ``precision = "bf16"`` option);
2. notebook-style: torchvision's ``MNIST`` dataset with ``ToTensor()`` behind
   a shuffled ``DataLoader``, contiguous fp32, ``loss.item()`` per batch.

Prints images per second and the time ratio labbench / notebook (target 0.5 or
better with the option on). Needs MNIST in the data folder (LABBENCH_DATA).

    .venv/bin/python benchmarks/bench_mnist_cnn.py                 # 54,000 images (one course epoch)
    .venv/bin/python benchmarks/bench_mnist_cnn.py --images 10000  # shorter
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labbench.data import DataError, mnist  # noqa: E402
from labbench.exercises.s1_mnist_cnn import CourseCNN  # noqa: E402
from labbench.nn import classifier_epoch, make_generator  # noqa: E402


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
        return any(f in flags for f in ("avx512_bf16", "amx_bf16"))
    except OSError:
        return False


def labbench_epoch(x, y, batch_size: int, amp: bool) -> float:
    torch.manual_seed(0)
    model = CourseCNN().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    xs = x.contiguous(memory_format=torch.channels_last)
    classifier_epoch(model, opt, xs[:1024], y[:1024], batch_size, generator=make_generator(1), amp=amp)  # warm-up
    t0 = time.perf_counter()
    loss, acc = classifier_epoch(model, opt, xs, y, batch_size, generator=make_generator(0), amp=amp)
    float(loss)
    return time.perf_counter() - t0


def notebook_epoch(root: Path, n: int, batch_size: int) -> float:
    import torchvision

    ds = torchvision.datasets.MNIST(str(root), train=True, transform=torchvision.transforms.ToTensor(),
                                    download=False)
    ds = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True)
    torch.manual_seed(0)
    model = CourseCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss.item()

    for i, (xb, yb) in enumerate(loader):  # warm-up
        step(xb, yb)
        if i == 7:
            break
    t0 = time.perf_counter()
    running = 0.0
    for xb, yb in loader:
        running += step(xb, yb)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=54_000, help="training images in the epoch (course: 54,000)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                    help="also time bf16 autocast (auto: when the CPU has bf16 instructions)")
    ap.add_argument("--skip-notebook", action="store_true")
    args = ap.parse_args(argv)

    try:
        x, y = mnist.tensors("mnist", "train", limit=args.images)
    except DataError as exc:
        raise SystemExit(f"error: {exc}")
    n = len(x)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"bf16 instructions: {cpu_has_bf16()}, torch {torch.__version__}")
    print(f"one epoch of the course CNN over {n} MNIST images, batch {args.batch_size}, Adam\n")

    results = {}
    results["labbench fp32 (channels-last, index batches)"] = labbench_epoch(x, y, args.batch_size, amp=False)
    if args.bf16 == "on" or (args.bf16 == "auto" and cpu_has_bf16()):
        results["labbench bf16 autocast (precision = bf16)"] = labbench_epoch(x, y, args.batch_size, amp=True)
    nb = None
    if not args.skip_notebook:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "MNIST" / "raw"
            raw.mkdir(parents=True)
            src = mnist.require("mnist") / "mnist"
            for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte"):
                with gzip.open(src / f"{name}.gz", "rb") as fin, open(raw / name, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            nb = notebook_epoch(Path(tmp), n, args.batch_size)
        results["notebook (torchvision MNIST + ToTensor + DataLoader)"] = nb

    print(f"{'way':<55} {'seconds':>8} {'images/s':>9} {'time ratio':>11}")
    for name, secs in results.items():
        ratio = f"{secs / nb:10.2f}" if nb else "-"
        print(f"{name:<55} {secs:8.2f} {n / secs:9.0f} {ratio:>11}")
    if nb:
        print("\ntime ratio = labbench / notebook (target 0.5 or better with bf16 on)")


if __name__ == "__main__":
    main()
