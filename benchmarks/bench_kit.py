"""Benchmark: the deep-learning kit's augmentation and checkpoint costs, in one process.

1. CIFAR-style augmentation (random crop with 4 pixels of padding, horizontal
   flip, per-channel normalisation) for N images:
   - notebook-style: torchvision's ``RandomCrop(32, padding=4)``,
     ``RandomHorizontalFlip()`` and ``Normalize`` on one image at a time, as a
     Dataset's ``__getitem__`` does behind a DataLoader (here without the
     worker processes, so both ways use the same cores);
   - labbench: ``random_crop_flip`` + ``normalize`` on batches of 512 already
     in memory (on the GPU too, where the data is).
2. What ``run.resumable`` costs per epoch for a ResNet-18-sized state
   (11.7 M parameters and SGD's momentum): the CPU snapshot taken after every
   epoch, and writing ``checkpoint.pt`` (atomically, synced).

    .venv/bin/python benchmarks/bench_kit.py                  # 10,000 images
    .venv/bin/python benchmarks/bench_kit.py --images 50000   # one CIFAR-10 epoch
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

from labbench.engine.run import Run  # noqa: E402
from labbench.nn import normalize, random_crop_flip  # noqa: E402
from labbench.nn.checkpoint import capture  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def notebook_augment(x: torch.Tensor) -> None:
    import torchvision.transforms as T

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.Normalize(MEAN, STD)])
    torch.stack([tf(img) for img in x])


def labbench_augment(x: torch.Tensor, batch: int = 512) -> None:
    gen = torch.Generator().manual_seed(0)
    for start in range(0, len(x), batch):
        normalize(random_crop_flip(x[start:start + batch], padding=4, generator=gen), MEAN, STD)
    if x.is_cuda:
        torch.cuda.synchronize()


def timed(fn, *args, repeats: int = 3) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over ``repeats`` calls.
    CPU time is what a busy shared machine distorts least."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(*args)
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def _capture(epoch, model, opt):
    return capture(epoch, models=model, optimizers=opt)


def checkpoint_costs() -> tuple[float, float, int]:
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()  # momentum buffers exist
    snap_s = timed(_capture, 1, model, opt)[1]  # CPU time
    snap = capture(1, models=model, optimizers=opt)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp))
        t0 = time.perf_counter()
        path = run._write_checkpoint(snap, "bench")
        write_s = time.perf_counter() - t0
        size = path.stat().st_size
        run.close()
    return snap_s, write_s, size


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: a DataLoader worker transforms on one core too)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {args.device}\n")
    x = torch.rand(args.images, 3, 32, 32)
    labbench_augment(x[:512].to(args.device))  # warm-up
    nb_wall, nb_cpu = timed(notebook_augment, x)
    lb_wall, lb_cpu = timed(labbench_augment, x.to(args.device))
    print(f"{'augmentation of ' + str(args.images) + ' 32x32 colour images':<56} {'wall s':>7} {'CPU s':>7}")
    print(f"{'notebook: torchvision transforms, one image at a time':<56} {nb_wall:7.3f} {nb_cpu:7.3f}")
    print(f"{'labbench: random_crop_flip + normalize, batches of 512':<56} {lb_wall:7.3f} {lb_cpu:7.3f}")
    print(f"time ratio labbench / notebook: wall {lb_wall / nb_wall:.2f}, CPU {lb_cpu / nb_cpu:.2f}\n")

    snap_s, write_s, size = checkpoint_costs()
    print("run.resumable with a ResNet-18 state (11.7 M parameters + SGD momentum):")
    print(f"  snapshot after each epoch (copy to the CPU): {snap_s * 1000:7.1f} ms CPU")
    print(f"  writing checkpoint.pt ({size / 2**20:.0f} MiB, synced, renamed): {write_s * 1000:7.1f} ms wall")


if __name__ == "__main__":
    main()
