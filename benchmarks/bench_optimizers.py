"""Benchmark: the course's five-optimiser comparison (1.3-optimizers), two ways.

1. labbench's exercise (``labbench.exercises.s1_optimizers``), run through a
   real run folder (events written as in ``labbench run``);
2. a faithful notebook-style loop: a shuffled DataLoader over a TensorDataset,
   a closure per step (so LBFGS works), ``.item()`` per epoch, default threads.

Both start from the same initial weights and seed. Prints the wall time per
optimiser both ways, the ratio, and the final train MSE of each (equal up to
batch order: the two loops shuffle with different generators).

    .venv/bin/python benchmarks/bench_optimizers.py              # the full 2500 epochs
    .venv/bin/python benchmarks/bench_optimizers.py --epochs 250 # a shorter run
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
from labbench.exercises import s1_optimizers as ex  # noqa: E402


def notebook_loop(spec: ex.OptSpec, init_state: dict, x, y, epochs: int, n1: int, n2: int):
    """The course notebook's training loop, as written there."""
    model = ex.Net3L(n1, n2)
    model.load_state_dict(init_state)
    if spec.name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov)
    elif spec.name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    elif spec.name == "lbfgs":
        opt = torch.optim.LBFGS(model.parameters(), lr=spec.lr, max_iter=1, line_search_fn="strong_wolfe")
    else:
        raise SystemExit(f"the notebook loop here knows sgd, adam and lbfgs, not {spec.name}")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=spec.bs or len(x),
                                         shuffle=True)
    loss_fn = torch.nn.MSELoss()
    losses = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            def closure():
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                return loss

            loss = opt.step(closure)
        losses.append(loss.item())
    wall = time.perf_counter() - t0
    with torch.no_grad():
        train_mse = float(loss_fn(model(x), y))
    return wall, train_mse


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2500, help="epochs per optimiser (course: 2500)")
    ap.add_argument("--hidden", type=int, default=50, help="Net3L size n1 = n2 (course: 50)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-notebook", action="store_true", help="only time labbench")
    ap.add_argument("--notebook-threads", type=int, default=None,
                    help="torch threads for the notebook loop (default: torch's default)")
    args = ap.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"course comparison: Net3L {args.hidden}x{args.hidden}, 1600 points, {args.epochs} epochs, "
          f"5 optimisers\n")
    specs = [ex.parse_optimizer(t) for t in ex.COURSE_OPTIMIZERS]
    # the first torch.optim optimiser of a process imports torch._dynamo (1-2 s);
    # pay that once here so neither side is charged for it
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    # --- labbench: the exercise itself, with a run folder
    torch.manual_seed(args.seed)
    params = ex.OptimizersParams(epochs=args.epochs, hidden1=args.hidden)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp) / "run", device=torch.device("cpu"), seed=args.seed)
        t0 = time.perf_counter()
        ex.run(params, run)
        lab_total = time.perf_counter() - t0
        run.close()
    lab = {s.key(1600): (run.metrics[f"{s.key(1600)}_wall_s"], run.metrics[f"{s.key(1600)}_train_mse"])
           for s in specs}

    # --- the notebook loop, same data and initial weights
    nb = {}
    if not args.skip_notebook:
        if args.notebook_threads:
            torch.set_num_threads(args.notebook_threads)
        torch.manual_seed(args.seed)
        x, y, _ = ex.dataset_generation(40, 0.0)
        init = ex.Net3L(args.hidden, args.hidden).state_dict()
        t0 = time.perf_counter()
        for s in specs:
            torch.manual_seed(args.seed)
            nb[s.key(1600)] = notebook_loop(s, init, x, y, args.epochs, args.hidden, args.hidden)
            print(f"  notebook loop: {s.label(1600):<40} {nb[s.key(1600)][0]:8.2f} s", flush=True)
        nb_total = time.perf_counter() - t0

    print(f"\n{'optimiser':<40} {'labbench s':>10} {'notebook s':>10} {'speed-up':>9}   "
          f"{'train MSE lab':>13} {'train MSE nb':>12}")
    for s in specs:
        k = s.key(1600)
        lw, lm = lab[k]
        if nb:
            nw, nm = nb[k]
            print(f"{s.label(1600):<40} {lw:10.2f} {nw:10.2f} {nw / lw:8.1f}x   {lm:13.5f} {nm:12.5f}")
        else:
            print(f"{s.label(1600):<40} {lw:10.2f} {'-':>10} {'-':>9}   {lm:13.5f}")
    print(f"\nlabbench total (whole exercise, events and figures included): {lab_total:.2f} s")
    if nb:
        print(f"notebook total: {nb_total:.2f} s")
        print(f"ratio notebook / labbench: {nb_total / lab_total:.1f}x  (target >= 5x, stretch 10x)")


if __name__ == "__main__":
    main()
