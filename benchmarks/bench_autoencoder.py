"""Benchmark: the 3.2-autoencoder course run, two ways, in one process.

1. labbench: the exercise itself (``execute`` on the course preset: the chosen
   images as one tensor, index-slice batches, losses summed on the device and
   read once per epoch, one CPU thread for the tiny products), including its
   per-epoch test loss and reconstruction grid;
2. the course notebook's loop: torchvision's ``MNIST`` with ``ToTensor()``
   (from the raw IDX files of the data folder), ``SubsetRandomSampler`` over a
   random 10,000 / 1,000 images, ``DataLoader(batch_size=32, num_workers=0)``,
   ``loss.item() * images.size(0)`` per batch, then the test loss.

Prints the wall time of each (training, and the whole run: data set-up,
training, test loss) with the CPU time it used, and the time ratios labbench /
notebook (target 0.3 or better on the CPU). On a busy machine the CPU-time
ratio is the steadier figure. Needs MNIST in the
data folder (LABBENCH_DATA).

    .venv/bin/python benchmarks/bench_autoencoder.py              # course: 20 epochs
    .venv/bin/python benchmarks/bench_autoencoder.py --epochs 3   # shorter
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
from labbench.engine.presets import preset_for_exercise  # noqa: E402
from labbench.engine.runner import execute  # noqa: E402
from labbench.exercises.s3_autoencoder import Autoencoder  # noqa: E402

RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_root(tmp: Path) -> Path:
    """A folder laid out the way ``torchvision.datasets.MNIST`` reads it
    (``MNIST/raw/`` with the decompressed IDX files)."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = mnist.require("mnist") / "mnist"
    for name in RAW:
        with gzip.open(src / f"{name}.gz", "rb") as fin, open(raw / name, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return tmp


def notebook_run(root: Path, epochs: int, n_train: int, n_test: int, encoding_dim: int, batch_size: int) -> dict:
    """The notebook's cells, as written (CPU), timed."""
    from torchvision import datasets, transforms

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(42)
    transform = transforms.ToTensor()
    train_data = datasets.MNIST(root=str(root), train=True, download=False, transform=transform)
    test_data = datasets.MNIST(root=str(root), train=False, download=False, transform=transform)
    train_indices = torch.randperm(len(train_data))[:n_train]
    test_indices = torch.randperm(len(test_data))[:n_test]
    train_loader = torch.utils.data.DataLoader(train_data, batch_size=batch_size, num_workers=0,
                                               sampler=torch.utils.data.SubsetRandomSampler(train_indices))
    test_loader = torch.utils.data.DataLoader(test_data, batch_size=batch_size, num_workers=0,
                                              sampler=torch.utils.data.SubsetRandomSampler(test_indices))
    model = Autoencoder(encoding_dim)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    t1 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        train_loss = 0.0
        for images, _ in train_loader:
            images = images.view(images.size(0), -1)
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, images)
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * images.size(0)
        train_loss = train_loss / len(train_loader)
    t2 = time.perf_counter()
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for images, _ in test_loader:
            images = images.view(images.size(0), -1)
            test_loss += criterion(model(images), images).item() * images.size(0)
    test_loss = test_loss / len(test_loader)
    t3 = time.perf_counter()
    return {"setup": t1 - t0, "train": t2 - t1, "test": t3 - t2, "total": t3 - t0,
            "cpu": time.process_time() - c0, "course_loss": train_loss,
            "course_test": test_loss}


def labbench_run(epochs: int, n_train: int, n_test: int, encoding_dim: int, batch_size: int) -> dict:
    sets = [f"epochs={epochs}", f"train_limit={n_train}", f"test_limit={n_test}", f"encoding_dim={encoding_dim}",
            f"batch_size={batch_size}"]
    preset = preset_for_exercise("3.2-autoencoder", overrides=sets)
    preset.seed, preset.device = 42, "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = execute(preset, Path(tmp) / "run", device=torch.device("cpu"))
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.status != "ok":
        raise SystemExit(f"error: the labbench run ended {result.status}: {result.summary.get('message')}")
    m = result.summary["metrics"]
    return {"train": m["train_s"], "total": total, "cpu": cpu, "course_loss": m["course_loss"],
            "course_test": m["course_test"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=20, help="epochs (course: 20)")
    ap.add_argument("--train", type=int, default=10_000, help="random training images (course: 10,000)")
    ap.add_argument("--test", type=int, default=1_000, help="random test images (course: 1,000)")
    ap.add_argument("--encoding-dim", type=int, default=32, help="code size d (course: 32)")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size (course: 32)")
    ap.add_argument("--notebook-threads", type=int, default=None,
                    help="torch threads for the notebook loop (default: torch's own choice, as in the notebook; "
                         "1 shows the ratio without thread contention on a busy machine)")
    args = ap.parse_args(argv)
    try:
        mnist.load("mnist", "train")  # decode (and cache) once, outside both timings
        mnist.load("mnist", "test")
    except DataError as exc:
        raise SystemExit(f"error: {exc}")
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimiser imports torch._dynamo: not timed
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    print(f"the course autoencoder 784-{args.encoding_dim}-784: {args.epochs} epochs over {args.train:,} random "
          f"MNIST images, batch {args.batch_size}, Adam, then the test loss on {args.test:,}\n")

    lb = labbench_run(args.epochs, args.train, args.test, args.encoding_dim, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(Path(tmp))
        threads = torch.get_num_threads()
        if args.notebook_threads:
            torch.set_num_threads(args.notebook_threads)
        try:
            nb = notebook_run(root, args.epochs, args.train, args.test, args.encoding_dim, args.batch_size)
        finally:
            torch.set_num_threads(threads)
    if args.notebook_threads:
        print(f"(notebook loop on {args.notebook_threads} torch thread(s))")

    print(f"{'':52s} {'train s':>8s} {'whole run s':>12s} {'CPU s':>7s}")
    for label, r in (("notebook (torchvision MNIST + ToTensor + DataLoader)", nb),
                     ("labbench (the exercise, incl. per-epoch test + grid)", lb)):
        print(f"{label:52s} {r['train']:8.2f} {r['total']:12.2f} {r['cpu']:7.2f}")
    print(f"\ncourse-scale loss after {args.epochs} epochs: notebook {nb['course_loss']:.4f} "
          f"(test {nb['course_test']:.4f}), labbench {lb['course_loss']:.4f} (test {lb['course_test']:.4f})")
    print(f"time ratio labbench / notebook: training {lb['train'] / nb['train']:.3f}, "
          f"whole run {lb['total'] / nb['total']:.3f} (target <= 0.3); CPU time {lb['cpu'] / nb['cpu']:.3f}")


if __name__ == "__main__":
    main()
