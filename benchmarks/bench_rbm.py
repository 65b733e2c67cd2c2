"""Benchmark: 4.1-rbm's PyTorch RBM against scikit-learn's BernoulliRBM, in one process.

Both train on all 60,000 MNIST images (/ 255) for the same number of
iterations, hidden units and batch size, with the same rule (PCD-1, plain
SGD, consecutive batches) from the same initial weights:

1. notebook: ``BernoulliRBM(...).fit(X)`` as the course calls it (and, with
   ``verbose=True`` as in the course, the pseudo-likelihood after each
   iteration, which scikit-learn computes with ``score_samples``);
2. labbench: ``labbench.nn.rbm.RBM.cd_step`` over index slices of one tensor,
   with the exercise's CPU-thread rule, and the same pseudo-likelihood per
   iteration (``RBM.pseudo_likelihood``).

Prints seconds per iteration and the time ratio labbench / notebook for the
course's size (10 hidden units, batch 10) and a larger RBM (256 hidden units,
batch 100), plus what one iteration would take on a GPU, as a calculation
(no GPU is needed to run this). Needs MNIST in the data folder (LABBENCH_DATA).

    .venv/bin/python benchmarks/bench_rbm.py                   # 2 iterations of each size
    .venv/bin/python benchmarks/bench_rbm.py --n-iter 10 --sizes 10x10   # the course's 10 iterations
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labbench.data import DataError, mnist  # noqa: E402
from labbench.nn import cpu_threads  # noqa: E402
from labbench.nn.rbm import RBM, batch_slices, device_generator, flip_indices, one_thread_if_small  # noqa: E402

#: H100 figures for the calculation: fp32 (no tensor cores) peak, and the time one small CUDA kernel takes
#: from launch to done when the work is tiny (launch and scheduling overhead)
H100_FP32_FLOPS = 67e12
KERNEL_S = 5e-6
KERNELS_PER_BATCH = 16  # cd_step: 3 addmm + 3 sigmoid + 3 rand/lt + 2 addmm_ + 4 sums/adds + the chain's sample


def notebook(x: np.ndarray, n_components: int, batch_size: int, n_iter: int, verbose: bool,
             blas_threads: int | None) -> tuple[float, float]:
    """(wall s, CPU s) of ``BernoulliRBM.fit``; NumPy's BLAS on ``blas_threads`` (None: its default)."""
    from sklearn.neural_network import BernoulliRBM
    from threadpoolctl import threadpool_limits

    rbm = BernoulliRBM(n_components=n_components, learning_rate=0.01, batch_size=batch_size, n_iter=n_iter,
                       random_state=0, verbose=verbose)
    with threadpool_limits(blas_threads), contextlib.redirect_stdout(io.StringIO()):
        t0, c0 = time.perf_counter(), time.process_time()
        rbm.fit(x)
        return time.perf_counter() - t0, time.process_time() - c0


def labbench(x: torch.Tensor, n_components: int, batch_size: int, n_iter: int, score: bool,
             device: torch.device) -> tuple[float, float]:
    """(wall s, CPU s) of the same training with labbench's RBM, as the exercise runs it."""
    xd = x.to(device)
    rbm = RBM(784, n_components).init_like_sklearn(0).to(device)
    gen = device_generator(0, device)
    chain = torch.zeros(batch_size, n_components, device=device)
    slices = batch_slices(len(xd), batch_size)
    flip = flip_indices(len(xd), 784, 0)
    rbm.cd_step(xd[:batch_size], 0.0, chain=chain.clone(), generator=gen)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    with cpu_threads(one_thread_if_small(batch_size, 784, n_components), device):
        for _ in range(n_iter):
            for sl in slices:
                chain = rbm.cd_step(xd[sl], 0.01, chain=chain, generator=gen)
            if score:
                float(rbm.pseudo_likelihood(xd, flip).mean())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def gpu_estimate(n: int, n_components: int, batch_size: int) -> tuple[float, float, float]:
    """(FLOPs, compute-bound s, launch-bound s) of one PCD-1 iteration on an H100, on paper."""
    batches = -(-n // batch_size)
    flops = 10.0 * n * 784 * n_components  # 3 products and 2 rank-B updates of B x 784 x H, 2 FLOPs per MAC
    return flops, flops / (0.3 * H100_FP32_FLOPS), batches * KERNELS_PER_BATCH * KERNEL_S


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-iter", type=int, default=2, help="iterations over the training set (course: 10)")
    ap.add_argument("--sizes", default="10x10,256x100", help="hidden units x batch size, comma-separated")
    ap.add_argument("--images", type=int, default=60_000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    try:
        x = mnist.tensors("mnist", "train", limit=args.images)[0].reshape(-1, 784)
    except DataError as exc:
        raise SystemExit(f"error: {exc}")
    x_np = x.numpy()
    dev = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {dev}")
    print(f"{len(x)} MNIST images, {args.n_iter} iterations, PCD-1, learning rate 0.01\n")
    print("notebook: BernoulliRBM.fit with NumPy's BLAS on its default threads (as the course runs it) and on")
    print("one thread (what labbench uses at these sizes); labbench: RBM.cd_step. Wall and CPU seconds per")
    print("iteration; on a busy machine the CPU seconds of the one-thread runs are the steadier figure.\n")
    for size in args.sizes.split(","):
        h, b = (int(v) for v in size.lower().split("x"))
        k = args.n_iter
        rows = {}
        for score in (False, True):
            tag = "+ pseudo-likelihood" if score else "training only"
            rows[f"notebook, BLAS default threads, {tag}"] = notebook(x_np, h, b, k, score, None)
            rows[f"notebook, BLAS on one thread, {tag}"] = notebook(x_np, h, b, k, score, 1)
            rows[f"labbench, {tag}"] = labbench(x, h, b, k, score, dev)
        print(f"{h} hidden units, batch {b}: seconds per iteration (wall / CPU)")
        for name, (wall, cpu) in rows.items():
            print(f"  {name:52s} {wall / k:8.2f} / {cpu / k:8.2f}")
        for tag in ("training only", "+ pseudo-likelihood"):
            lb = rows[f"labbench, {tag}"]
            nb1 = rows[f"notebook, BLAS on one thread, {tag}"]
            nbd = rows[f"notebook, BLAS default threads, {tag}"]
            print(f"  ratio labbench / notebook, {tag}: {lb[0] / nbd[0]:.2f} (wall, default threads), "
                  f"{lb[0] / nb1[0]:.2f} (wall, one thread), {lb[1] / nb1[1]:.2f} (CPU, one thread)")
        flops, compute_s, launch_s = gpu_estimate(len(x), h, b)
        gpu_s = max(compute_s, launch_s)
        cpu_lb = rows["labbench, training only"][0] / k
        print(f"  H100 (calculation, no GPU measured): {flops / 1e9:.1f} GFLOP per iteration = "
              f"{compute_s * 1e3:.2f} ms at 30% of fp32 peak; {-(-len(x) // b)} batches x {KERNELS_PER_BATCH} kernels x "
              f"{KERNEL_S * 1e6:.0f} us = {launch_s:.2f} s launch-bound -> about {gpu_s:.2f} s per iteration, "
              f"{cpu_lb / gpu_s:.0f}x less than labbench on this CPU\n")

if __name__ == "__main__":
    main()
