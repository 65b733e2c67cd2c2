"""Benchmark: the full 72-cell MLP grid of 2.2-mlp-classify, two ways, one process.

1. a plain notebook-style loop: for each solver x activation x hidden cell,
   ``MLPClassifier(...).fit`` one after the other with library defaults
   (BLAS threads as the libraries choose);
2. labbench's exercise (``2.2-mlp-classify``, workers = all cores): process
   workers with BLAS capped at one thread each, cheap cells bundled.

Both use the same stratified split and seed; the script checks that they found
the same validation accuracies, and prints the wall times and the ratio
(labbench / plain; the target is 0.5 or less on 2 cores).

Run:  .venv/bin/python benchmarks/bench_mlp_grid.py [--data ionosphere,pima] [--workers N]
Data: $LABBENCH_DATA, else ../shared/data beside the repository.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if "LABBENCH_DATA" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["LABBENCH_DATA"] = str(REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO))

from labbench.engine import Run  # noqa: E402
from labbench.exercises import s2_mlp_classify as ex  # noqa: E402


def plain_loop(dataset: str, seed: int = 0) -> tuple[float, dict]:
    """What the notebook does: a sequential loop with library defaults."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    p = ex.MLPClassifyParams(dataset=dataset)
    X, y, _ = ex.load_data(dataset)
    X_tr, X_va, _, y_tr, y_va, _ = ex.split_data(X, y, p.test_size, p.val_size, seed)
    scores = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for solver in ex.SOLVERS:
            for activation in ex.ACTIVATIONS:
                for hidden in ex.HIDDEN:
                    model = MLPClassifier(hidden_layer_sizes=hidden, solver=solver, activation=activation,
                                          random_state=seed).fit(X_tr, y_tr)
                    scores[(solver, activation, hidden)] = model.score(X_va, y_va)
    return time.perf_counter() - t0, scores


def labbench_grid(dataset: str, workers: int, seed: int = 0) -> tuple[float, dict, dict]:
    p = ex.MLPClassifyParams(dataset=dataset, workers=workers)
    tables = {}
    run = Run(None, seed=seed, listeners=[lambda e: tables.update({e["name"]: e}) if e["type"] == "table" else None])
    t0 = time.perf_counter()
    ex.run(p, run)
    wall = time.perf_counter() - t0
    grid = tables["grid"]
    col = {c: i for i, c in enumerate(grid["columns"])}
    scores = {(r[col["solver"]], r[col["activation"]], tuple(int(n) for n in r[col["hidden"]].strip("()").split(",")))
              : r[col["val acc"]] for r in grid["rows"]}
    return wall, scores, run.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ionosphere,pima", help="comma-separated: ionosphere, pima")
    ap.add_argument("--workers", type=int, default=0, help="labbench workers (0: all cores)")
    args = ap.parse_args()
    cores = ex.default_workers()
    print(f"machine: {platform.machine()}, {cores} usable CPU cores, Python {platform.python_version()}")
    total_plain = total_lab = 0.0
    for dataset in [d.strip() for d in args.data.split(",") if d.strip()]:
        t_plain, s_plain = plain_loop(dataset)
        t_lab, s_lab, metrics = labbench_grid(dataset, args.workers)
        # the table rounds to 4 decimals; BLAS threading may also move a near-tie
        differ = sum(1 for k in s_plain if abs(s_plain[k] - s_lab.get(k, -1)) > 1e-4)
        total_plain += t_plain
        total_lab += t_lab
        print(f"{dataset:11s} plain loop {t_plain:7.2f} s   labbench {t_lab:7.2f} s   ratio {t_lab / t_plain:.2f}   "
              f"(best val {metrics['best_val_acc']:.3f}, cells with other scores: {differ} of {len(s_plain)})")
    print(f"{'total':11s} plain loop {total_plain:7.2f} s   labbench {total_lab:7.2f} s   "
          f"ratio {total_lab / total_plain:.2f}   (target <= 0.5)")


if __name__ == "__main__":
    main()
