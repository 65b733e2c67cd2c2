"""Session 2.2 - MLP classifiers on Ionosphere and Pima Indians Diabetes.

Course notebook: standardise the inputs, split train / validation / test
(stratified), fit scikit-learn's ``MLPClassifier`` for every solver x
activation x hidden-layer combination, report the validation accuracy of each
cell and re-score the best cell on the test set.

Made fast: the cells are independent, so they run in worker processes (one per
CPU core) with BLAS capped at one thread each - for nets this small a
multi-threaded BLAS only adds overhead. Cheap cells are bundled so that no task
sent to a worker is shorter than a few tenths of a second, and a grid that is
cheap as a whole is not farmed out at all.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import warnings
from typing import Literal

from pydantic import Field, field_validator

from ..engine import Exercise, Params, Run

DESCRIPTION = """
A **grid search** over the multi-layer perceptron's design choices on two
classic UCI data sets:

* **Ionosphere** (351 radar returns x 34 features, good/bad) and
* **Pima Indians Diabetes** (768 patients x 8 features, 268 with diabetes).

Inputs are standardised with statistics of the training part only; the split
is stratified (train / validation / test). Every cell of solver {lbfgs, sgd,
adam} x activation {relu, tanh, logistic, identity} x hidden layers {(20,20),
(20,50), (50,50), (50,20), (100,100), (50,100,100)} - 72 in all - is fitted
with scikit-learn's `MLPClassifier` and scored on the validation part; the
best cell is then scored once on the test part.

The report's best cells: Ionosphere Adam/ReLU (100,100), val 0.946, test
0.930 (report); Diabetes SGD/tanh (50,20), val 0.724, test 0.697 (report).
The grid table marks the report's cell next to the best one here, and a second
table refits both with `spread_seeds` seeds (each seed a new split and a new
initialisation): the spread shows how much of a difference is only the seed.
The ranking of near-tied cells depends on the split and the seed.

Questions: does depth or width matter on data this small? Why can an
*identity* activation (a linear model) compete on Diabetes but not on
Ionosphere? Why is the test accuracy usually below the best validation
accuracy (the winner's curse of model selection)?

The cells run in parallel over the CPU cores (`workers`, default all), with
progress per cell. Unconverged fits are counted, not printed.
"""

#: the report's best cell per data set, and its validation and test accuracy
REPORT_BEST = {
    "ionosphere": {"solver": "adam", "activation": "relu", "hidden": (100, 100), "val_acc": 0.946, "test_acc": 0.930},
    "pima": {"solver": "sgd", "activation": "tanh", "hidden": (50, 20), "val_acc": 0.724, "test_acc": 0.697},
}

SOLVERS = ("lbfgs", "sgd", "adam")
ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
HIDDEN = ((20, 20), (20, 50), (50, 50), (50, 20), (100, 100), (50, 100, 100))

Solver = Literal["lbfgs", "sgd", "adam"]
Activation = Literal["relu", "tanh", "logistic", "identity"]

#: seconds per (training sample x weight x iteration) of one MLP fit on one
#: core - rough, used only to bundle cells into tasks and to decide whether
#: farming out is worth it
SECONDS_PER_UNIT = 4e-10
#: no task sent to a worker should be shorter than this (estimated)
MIN_TASK_S = 0.3
#: a grid estimated below this runs in-process even when workers are allowed
MIN_PARALLEL_S = 1.0


class MLPClassifyParams(Params):
    dataset: Literal["ionosphere", "pima"] = Field("ionosphere", description="UCI data set")
    solvers: list[Solver] = Field(list(SOLVERS), min_length=1, description="Solvers in the grid")
    activations: list[Activation] = Field(list(ACTIVATIONS), min_length=1, description="Activations in the grid")
    hidden: list[list[int]] = Field([list(h) for h in HIDDEN], min_length=1,
                                    description="Hidden-layer sizes in the grid, e.g. [[20, 20], [50, 100, 100]]")
    max_iter: int = Field(200, ge=1, le=100_000, description="Maximum iterations (epochs) per fit (sklearn default 200)")
    learning_rate_init: float = Field(0.001, gt=0, le=10, description="Initial learning rate of sgd and adam")
    alpha: float = Field(0.0001, ge=0, description="L2 penalty")
    test_size: float = Field(0.2, gt=0, lt=0.9, description="Fraction held out for the test set")
    val_size: float = Field(0.2, gt=0, lt=0.9, description="Fraction (of all data) used for validation")
    standardize: bool = Field(True, description="Standardise the inputs (statistics of the training part)")
    workers: int = Field(0, ge=0, le=256, description="Worker processes (0: all CPU cores; 1: sequential in-process)")
    spread_seeds: int = Field(5, ge=0, le=100, description="Refit the best cell and the report's cell with this many "
                                                           "seeds (new split and initialisation each) to show the "
                                                           "spread (0: off)")

    @field_validator("hidden")
    @classmethod
    def _hidden_ok(cls, v):
        for layers in v:
            if not layers or any(int(n) < 1 for n in layers):
                raise ValueError(f"each entry must be a non-empty list of positive layer sizes, got {layers}")
        return v


# ------------------------------------------------------------------ data
def load_data(name: str):
    from ..data.uci import load_ionosphere, load_pima

    if name == "ionosphere":
        X, y = load_ionosphere()
        return X, y, ["bad", "good"]
    X, y = load_pima()
    return X, y, ["no diabetes", "diabetes"]


def split_data(X, y, test_size: float, val_size: float, seed: int, standardize: bool = True):
    """Stratified train / validation / test; the scaler sees the training part only."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if test_size + val_size >= 0.9:
        raise ValueError(f"test_size + val_size must leave some training data, got {test_size} + {val_size}")
    X_rest, X_te, y_rest, y_te = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    X_tr, X_va, y_tr, y_va = train_test_split(X_rest, y_rest, test_size=val_size / (1 - test_size),
                                              stratify=y_rest, random_state=seed)
    if standardize:
        scaler = StandardScaler().fit(X_tr)
        X_tr, X_va, X_te = scaler.transform(X_tr), scaler.transform(X_va), scaler.transform(X_te)
    return X_tr, X_va, X_te, y_tr, y_va, y_te


# ----------------------------------------------------------------- model
def make_mlp(solver: str, activation: str, hidden, p: MLPClassifyParams, seed: int):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=tuple(hidden), solver=solver, activation=activation,
                         max_iter=p.max_iter, learning_rate_init=p.learning_rate_init, alpha=p.alpha,
                         random_state=seed)


def fit_cell(cell: dict, data, fit_kw: dict) -> dict:
    """Fit one grid cell and score it; convergence warnings are counted."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X_tr, y_tr, X_va, y_va = data
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=tuple(cell["hidden"]), solver=cell["solver"],
                              activation=cell["activation"], **fit_kw)
        model.fit(X_tr, y_tr)
    n_warn = sum(1 for w in caught if issubclass(w.category, ConvergenceWarning))
    return {**cell, "train_acc": float(model.score(X_tr, y_tr)), "val_acc": float(model.score(X_va, y_va)),
            "n_iter": int(model.n_iter_), "fit_s": time.perf_counter() - t0, "converged": n_warn == 0,
            "warnings": n_warn}


def estimate_seconds(cell: dict, n_samples: int, n_features: int, max_iter: int) -> float:
    sizes = [n_features, *cell["hidden"], 1]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return SECONDS_PER_UNIT * n_samples * weights * max_iter


def bundle(cells: list[dict], estimates: list[float], n_workers: int, min_task_s: float = MIN_TASK_S) -> list[list[dict]]:
    """Tasks for the workers: the most expensive cells first (so the slow ones
    do not finish last), cheap cells bundled until a task is worth sending."""
    order = sorted(range(len(cells)), key=lambda i: -estimates[i])
    total = sum(estimates)
    # keep enough tasks to balance the workers even when everything is cheap
    target = max(min_task_s, min(total / (4 * max(n_workers, 1)), 2.0 * min_task_s))
    tasks, cur, cur_s = [], [], 0.0
    for i in order:
        cur.append(cells[i])
        cur_s += estimates[i]
        if cur_s >= target:
            tasks.append(cur)
            cur, cur_s = [], 0.0
    if cur:
        tasks.append(cur)
    return tasks


# ------------------------------------------------------- process workers
_WORKER: dict = {}


def _worker_init(data, fit_kw: dict) -> None:
    # the parent handles Ctrl-C and ends the pool; BLAS gets one thread per worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadpoolctl import threadpool_limits

    _WORKER["limits"] = threadpool_limits(limits=1)
    _WORKER["data"] = data
    _WORKER["fit_kw"] = fit_kw


def _worker_task(task: list[dict]) -> list[dict]:
    return [fit_cell(cell, _WORKER["data"], _WORKER["fit_kw"]) for cell in task]


def _pool_context():
    # fork: workers start in milliseconds and inherit the imported libraries;
    # they only run scikit-learn/NumPy, never torch
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_grid(cells: list[dict], data, fit_kw: dict, workers: int, on_result=None) -> tuple[list[dict], str]:
    """Fit every cell; ``on_result(result, done, total)`` as results arrive.
    Returns the results in grid order and how they were run."""
    from threadpoolctl import threadpool_limits

    n_samples, n_features = data[0].shape
    estimates = [estimate_seconds(c, n_samples, n_features, fit_kw["max_iter"]) for c in cells]
    workers = min(workers, len(cells))
    results: dict[int, dict] = {}
    done = 0

    def collect(batch):
        nonlocal done
        for res in batch:
            results[res["index"]] = res
            done += 1
            if on_result is not None:
                on_result(res, done, len(cells))

    if workers <= 1 or sum(estimates) < MIN_PARALLEL_S:
        how = "in-process, BLAS on one thread"
        with threadpool_limits(limits=1):
            for cell in sorted(cells, key=lambda c: c["index"]):
                collect([fit_cell(cell, data, fit_kw)])
    else:
        tasks = bundle(cells, estimates, workers)
        workers = min(workers, len(tasks))
        how = f"{workers} worker processes, {len(tasks)} tasks, BLAS on one thread each"
        pool = _pool_context().Pool(processes=workers, initializer=_worker_init, initargs=(data, fit_kw))
        try:
            for batch in pool.imap_unordered(_worker_task, tasks):
                collect(batch)
            pool.close()
        finally:
            pool.terminate()  # on Ctrl-C / Stop / an error: end the workers now
            pool.join()
    return [results[i] for i in sorted(results)], how


# ------------------------------------------------------------------ run
def hidden_label(hidden) -> str:
    return "(" + ",".join(str(n) for n in hidden) + ")"


def run(p: MLPClassifyParams, run: Run) -> None:
    # --- data
    X, y, class_names = load_data(p.dataset)
    X_tr, X_va, X_te, y_tr, y_va, y_te = split_data(X, y, p.test_size, p.val_size, run.seed, p.standardize)
    run.text(f"{p.dataset}: {len(X)} samples x {X.shape[1]} features; train {len(y_tr)}, "
             f"validation {len(y_va)}, test {len(y_te)} (stratified; "
             f"{'standardised on train' if p.standardize else 'not scaled'})")

    # --- the grid
    hidden = [tuple(h) for h in dict.fromkeys(tuple(h) for h in p.hidden)]
    solvers, activations = list(dict.fromkeys(p.solvers)), list(dict.fromkeys(p.activations))
    cells = [{"index": i, "solver": s, "activation": a, "hidden": list(h)}
             for i, (s, a, h) in enumerate((s, a, h) for s in solvers for a in activations for h in hidden)]
    fit_kw = {"max_iter": p.max_iter, "learning_rate_init": p.learning_rate_init, "alpha": p.alpha,
              "random_state": run.seed}
    workers = p.workers or default_workers()
    run.progress(0, len(cells), phase="cell")

    best_so_far = 0.0

    def on_result(res, done, total):
        nonlocal best_so_far
        best_so_far = max(best_so_far, res["val_acc"])  # a cell index is no training step: show the running best
        run.scalars(done, {"best val acc so far": best_so_far})
        run.progress(done, total, phase="cell")

    t0 = time.perf_counter()
    results, how = run_grid(cells, (X_tr, y_tr, X_va, y_va), fit_kw, workers, on_result)
    wall = time.perf_counter() - t0
    n_warn = sum(r["warnings"] for r in results)
    run.text(f"{len(results)} cells in {wall:.1f} s ({how})")
    if n_warn:
        run.text(f"{n_warn} of {len(results)} fits stopped at max_iter {p.max_iter} before converging "
                 f"(scikit-learn's ConvergenceWarning, silenced)", level="warning")

    # --- every cell as a table and a heat map
    rows = sorted(results, key=lambda r: (-r["val_acc"], r["index"]))
    best = rows[0]
    ref = REPORT_BEST[p.dataset]
    ref_key = (ref["solver"], ref["activation"], tuple(ref["hidden"]))

    def note(k: int, r: dict) -> str:
        bits = ["best here"] if k == 0 else []
        if (r["solver"], r["activation"], tuple(r["hidden"])) == ref_key:
            bits.append(f"report's best: val {ref['val_acc']:.3f}, test {ref['test_acc']:.3f}")
        return "; ".join(bits)

    run.table("grid", ["rank", "solver", "activation", "hidden", "val acc", "train acc", "iterations", "converged",
                       "fit s", "note"],
              [[k + 1, r["solver"], r["activation"], hidden_label(r["hidden"]), round(r["val_acc"], 4),
                round(r["train_acc"], 4), r["n_iter"], "yes" if r["converged"] else "no", round(r["fit_s"], 3),
                note(k, r)]
               for k, r in enumerate(rows)],
              title=f"{p.dataset}: validation accuracy of every cell (best first)",
              note=f"the report's best cell: {cell_label(ref)}, val {ref['val_acc']:.3f}, test {ref['test_acc']:.3f}")
    by_key = {(r["solver"], r["activation"], tuple(r["hidden"])): r["val_acc"] for r in results}
    ylabels = [f"{s}/{a}" for s in solvers for a in activations]
    z = [[by_key[(s, a, h)] for h in hidden] for s in solvers for a in activations]
    best_row = ylabels.index(f"{best['solver']}/{best['activation']}")
    best_col = hidden.index(tuple(best["hidden"]))
    run.figure("grid-heatmap", "heatmap", title=f"{p.dataset}: validation accuracy (solver/activation x hidden)",
               z=z, xlabels=[hidden_label(h) for h in hidden], ylabels=ylabels, annotate=True,
               marks=[{"row": best_row, "col": best_col, "text": "best"}], zlabel="val acc")

    # --- the best cell re-scored on the test set
    from sklearn.metrics import confusion_matrix

    model = make_mlp(best["solver"], best["activation"], best["hidden"], p, run.seed)
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):  # small nets: one BLAS thread is fastest
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_tr, y_tr)
    test_acc = float(model.score(X_te, y_te))
    cm = confusion_matrix(y_te, model.predict(X_te), labels=[0, 1])
    run.figure("confusion", "heatmap", title="best cell on test: confusion matrix (rows true, columns predicted)",
               z=cm.tolist(), xlabels=class_names, ylabels=class_names, annotate=True, zlabel="count")
    label = cell_label(best)
    run.text(f"best cell: {label}, validation accuracy {best['val_acc']:.4f}, test accuracy {test_acc:.4f}")
    run.summary(best_val_acc=best["val_acc"], test_acc=test_acc, best_solver=best["solver"],
                best_activation=best["activation"], best_hidden=hidden_label(best["hidden"]),
                cells=len(results), unconverged=n_warn, grid_seconds=round(wall, 3))

    # --- the report's cell next to the best one here, each over several seeds
    compare_with_report(X, y, p, run, best, ref)


def cell_label(cell: dict) -> str:
    return f"{cell['solver']}/{cell['activation']} {hidden_label(cell['hidden'])}"


def cell_scores(X, y, cell: dict, p: MLPClassifyParams, seed: int) -> tuple[float, float]:
    """Validation and test accuracy of one cell on the split and initialisation of ``seed``."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    X_tr, X_va, X_te, y_tr, y_va, y_te = split_data(X, y, p.test_size, p.val_size, seed, p.standardize)
    model = make_mlp(cell["solver"], cell["activation"], cell["hidden"], p, seed)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_tr, y_tr)
    return float(model.score(X_va, y_va)), float(model.score(X_te, y_te))


def spread_text(values: list[float]) -> str:
    import numpy as np

    a = np.asarray(values)
    return f"{a.mean():.3f} ± {a.std(ddof=1):.3f} ({a.min():.3f}-{a.max():.3f})" if len(a) > 1 else f"{a[0]:.3f}"


def compare_with_report(X, y, p: MLPClassifyParams, run: Run, best: dict, ref: dict) -> None:
    """One table: the report's best cell as the report gives it, the same cell
    here, and the best cell here; with their spread over seeds."""
    cells = {"report's cell": ref}
    if (best["solver"], best["activation"], tuple(best["hidden"])) != (ref["solver"], ref["activation"],
                                                                       tuple(ref["hidden"])):
        cells["best here"] = best
    seeds = [run.seed + k for k in range(max(1, p.spread_seeds))]
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in cells}
    run.progress(0, len(seeds), phase="seed", check=False)
    for k, seed in enumerate(seeds, start=1):
        if run.stop_requested():  # Stop: report the seeds done so far
            break
        for name, cell in cells.items():
            scores[name].append(cell_scores(X, y, cell, p, seed))
        run.progress(k, len(seeds), phase="seed", check=False)
    done = len(scores["report's cell"])
    if done == 0:
        return
    span = f"seeds {seeds[0]}-{seeds[done - 1]}" if done > 1 else f"seed {seeds[0]}"
    rows = [[cell_label(ref), "report", ref["val_acc"], ref["test_acc"], "", ""]]
    metrics = {}
    for name, cell in cells.items():
        vals, tests = [v for v, _ in scores[name]], [t for _, t in scores[name]]
        rows.append([cell_label(cell) + (" (best here)" if name == "best here" else ""), f"seed {run.seed}",
                     round(vals[0], 4), round(tests[0], 4), spread_text(vals), spread_text(tests)])
        key = "report_cell" if name == "report's cell" else "best_cell"
        metrics.update({f"{key}_val_acc": vals[0], f"{key}_test_acc": tests[0]})
        if done > 1:
            import numpy as np

            metrics.update({f"{key}_test_acc_mean": float(np.mean(tests)),
                            f"{key}_test_acc_sd": float(np.std(tests, ddof=1))})
    run.table("report-vs-here", ["cell", "source", "val acc", "test acc", f"val acc, {span}",
                                 f"test acc, {span}"], rows,
              title=f"{p.dataset}: the report's best cell and the best cell here",
              note="each seed draws a new stratified split and a new initialisation; mean ± sd (min-max)")
    run.summary(**metrics)


EXERCISE = Exercise(
    id="2.2-mlp-classify",
    title="MLP classifiers on Ionosphere and Diabetes: a solver x activation x hidden grid",
    session=2,
    description=DESCRIPTION,
    Params=MLPClassifyParams,
    run=run,
    data=["ionosphere", "pima"],
    needs=lambda p: [p.dataset],
    primary_metric="best_val_acc",
)
