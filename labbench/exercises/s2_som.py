"""Session 2.3 - self-organising maps with MiniSom.

Course notebook: a SOM on the two-moons data (how the prototype grid unfolds
over the iterations), a U-matrix of Iris, a 1x3 SOM used as three clusters,
and a SOM used as a classifier by majority vote of its neurons.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from ..engine import Exercise, Params, Run

DESCRIPTION = """
A **self-organising map** is a grid of prototypes; every sample pulls its
best-matching unit and, less strongly, that unit's grid neighbours towards it.
The neighbourhood width `sigma` and the learning rate shrink over the
iterations, so the grid first unfolds and then fine-tunes. Four modes:

* **moons**: a 4x4 grid with prototypes initialised uniformly in [-1, 1]² on
  the two-moons data, drawn after 1, 10, 100 and 1000 iterations - some
  prototypes stay between the moons, where there is no data.
* **iris-umatrix**: standardised Iris on a 7x7 map (sigma 1.5, lr 0.5,
  gaussian, PCA initialisation, 1000 iterations); the **U-matrix** (mean
  distance of each prototype to its neighbours) shows the cluster borders,
  with the winners of each class marked.
* **iris-cluster**: a 1x3 map is a 3-cluster algorithm; clusters are compared
  with the species by the **normalised mutual information**: NMI **0.813**
  with gaussian, sigma 1.0, lr 0.1, MiniSom's `train_batch`, 500 iterations on
  the *unscaled* features (as the report; the same for any seed), 0.669 on
  standardised features - so `standardize` is off by default here.
* **iris-classify**: every neuron is labelled by a majority vote of the training
  samples it wins (unlabelled ones fall back to the most common class); a
  classification report on a held-out 20%. 4x4, triangle, sigma 2, lr 0.5 ->
  accuracy 1.00 on 30 test samples, as in the report.

Every MiniSom setting is a parameter (unset: the mode's course value).
Questions: what do sigma and the learning rate do early and late in training?
Why do some prototypes end up where there is no data? Why does feature scaling
change the clustering?
"""

Mode = Literal["moons", "iris-umatrix", "iris-cluster", "iris-classify"]

#: the course settings of each mode; a parameter left unset takes these
MODE_DEFAULTS = {
    "moons": dict(rows=4, cols=4, sigma=1.0, learning_rate=0.5, neighborhood_function="gaussian", iterations=1000,
                  initialization="uniform", training="random", standardize=False),
    "iris-umatrix": dict(rows=7, cols=7, sigma=1.5, learning_rate=0.5, neighborhood_function="gaussian",
                         iterations=1000, initialization="pca", training="random", standardize=True),
    "iris-cluster": dict(rows=1, cols=3, sigma=1.0, learning_rate=0.1, neighborhood_function="gaussian",
                         iterations=500, initialization="minisom", training="batch", standardize=False),
    "iris-classify": dict(rows=4, cols=4, sigma=2.0, learning_rate=0.5, neighborhood_function="triangle",
                          iterations=1000, initialization="random", training="random", standardize=False),
}


class SOMParams(Params):
    mode: Mode = Field("moons", description="What to show: moons, iris-umatrix, iris-cluster, iris-classify")
    rows: Optional[int] = Field(None, ge=1, le=200, description="Map rows (unset: the mode's course value)")
    cols: Optional[int] = Field(None, ge=1, le=200, description="Map columns (unset: the mode's course value)")
    sigma: Optional[float] = Field(None, gt=0, description="Initial neighbourhood width (unset: the mode's value)")
    learning_rate: Optional[float] = Field(None, gt=0, description="Initial learning rate (unset: the mode's value)")
    neighborhood_function: Optional[Literal["gaussian", "mexican_hat", "bubble", "triangle"]] = Field(
        None, description="Neighbourhood function (unset: the mode's value)")
    topology: Literal["rectangular", "hexagonal"] = Field("rectangular", description="Grid topology")
    activation_distance: Literal["euclidean", "cosine", "manhattan", "chebyshev"] = Field(
        "euclidean", description="Distance used to find the best-matching unit")
    decay_function: Literal["asymptotic_decay", "inverse_decay_to_zero", "linear_decay_to_zero"] = Field(
        "asymptotic_decay", description="How the learning rate decays over the iterations")
    sigma_decay_function: Literal["asymptotic_decay", "inverse_decay_to_one", "linear_decay_to_one"] = Field(
        "asymptotic_decay", description="How sigma decays over the iterations")
    iterations: Optional[int] = Field(None, ge=1, le=10_000_000, description="Training iterations, one sample each")
    initialization: Optional[Literal["minisom", "random", "pca", "uniform"]] = Field(
        None, description="minisom: MiniSom's own; random: random samples; pca: first two PCs; uniform: U[-1, 1]")
    training: Optional[Literal["batch", "random"]] = Field(
        None, description="batch: MiniSom's train_batch (samples in order); random: train_random (random order)")
    standardize: Optional[bool] = Field(None, description="Standardise the features (unset: on for the U-matrix)")
    snapshots: list[int] = Field([1, 10, 100, 1000], description="Moons: draw the map after these iterations")
    moons_samples: int = Field(200, ge=10, le=100_000, description="Moons: number of samples")
    moons_noise: float = Field(0.05, ge=0, le=1, description="Moons: noise level")
    test_size: float = Field(0.2, gt=0, lt=1, description="iris-classify: fraction held out for the report")


def setting(p: SOMParams, key: str):
    value = getattr(p, key)
    return MODE_DEFAULTS[p.mode][key] if value is None else value


# ------------------------------------------------------------------- data
def load_data(p: SOMParams, seed: int):
    from sklearn.datasets import load_iris, make_moons

    if p.mode == "moons":
        X, y = make_moons(n_samples=p.moons_samples, noise=p.moons_noise, random_state=seed)
        names = ["moon 0", "moon 1"]
    else:
        iris = load_iris()
        X, y, names = iris.data, iris.target, list(iris.target_names)
    return X.astype(np.float64), y, names


def standardize(X_fit: np.ndarray, *others):
    mean, std = X_fit.mean(0), X_fit.std(0)
    std[std == 0] = 1.0
    return [(X - mean) / std for X in (X_fit, *others)]


# ------------------------------------------------------------------ model
def make_som(p: SOMParams, data: np.ndarray, seed: int):
    from minisom import MiniSom

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            som = MiniSom(setting(p, "rows"), setting(p, "cols"), data.shape[1], sigma=setting(p, "sigma"),
                          learning_rate=setting(p, "learning_rate"),
                          neighborhood_function=setting(p, "neighborhood_function"), topology=p.topology,
                          activation_distance=p.activation_distance, decay_function=p.decay_function,
                          sigma_decay_function=p.sigma_decay_function, random_seed=seed)
        except ValueError as exc:
            raise ValueError(f"MiniSom refused these settings: {exc}") from None
        init = setting(p, "initialization")
        if init == "random":
            som.random_weights_init(data)
        elif init == "pca":
            if data.shape[1] < 2 or min(setting(p, "rows"), setting(p, "cols")) < 2:
                raise ValueError("initialization pca needs at least 2 features and a map of at least 2x2")
            som.pca_weights_init(data)
        elif init == "uniform":
            rng = np.random.default_rng(seed)
            som._weights = rng.uniform(-1.0, 1.0, size=som._weights.shape)  # no public setter in MiniSom
    notes = sorted({str(w.message) for w in caught})
    return som, notes


def train_som(som, data: np.ndarray, iterations: int, order: str, run: Run, on_iteration=None,
              step0: int = 0, total: int | None = None) -> int:
    """MiniSom's ``train_batch`` / ``train_random`` written out, so that the
    run can show progress (and stop) between chunks of iterations; the
    updates are exactly MiniSom's. On Stop the training ends at the next
    chunk and the map is evaluated as it is. Returns the iterations done."""
    idx = np.arange(iterations) % len(data)
    if order == "random":
        som._random_generator.shuffle(idx)
    chunk = max(1, iterations // 50)
    total = total if total is not None else iterations
    for t, i in enumerate(idx):
        if t % chunk == 0 and t > 0 and run.stop_requested():
            run.text(f"stopped after iteration {t} of {iterations}; evaluating the map as it is", level="warning")
            return t
        som.update(data[i], som.winner(data[i]), t, iterations)
        if on_iteration is not None:
            on_iteration(t + 1)
        if (t + 1) % chunk == 0 or t + 1 == iterations:
            run.progress(step0 + t + 1, total, phase="iteration", check=False)
    return iterations


def grid_lines(weights: np.ndarray, dims=(0, 1)) -> dict:
    """The map's rows and columns as polylines in the data space."""
    a, b = dims
    lines = {}
    for r in range(weights.shape[0]):
        lines[f"row {r}"] = {"x": weights[r, :, a], "y": weights[r, :, b]}
    for c in range(weights.shape[1]):
        lines[f"col {c}"] = {"x": weights[:, c, a], "y": weights[:, c, b]}
    return lines


# ------------------------------------------------------------------ modes
def run_moons(p: SOMParams, run: Run, X, y, names) -> dict:
    som, notes = make_som(p, X, run.seed)
    iterations = setting(p, "iterations")
    shots = sorted({s for s in p.snapshots if 1 <= s <= iterations} | {iterations})

    def picture(t):
        if t in shots:
            w = som.get_weights()
            series = {names[c]: {"x": X[y == c, 0], "y": X[y == c, 1]} for c in range(len(names))}
            series["prototypes"] = {"x": w[..., 0].ravel(), "y": w[..., 1].ravel()}
            run.figure(f"moons-{t}", "scatter", title=f"two moons and the SOM after {t} iteration{'s' * (t > 1)}",
                       series=series, lines=grid_lines(w), xlabel="x1", ylabel="x2")
            run.scalars(t, {"quantization error": som.quantization_error(X)})

    w0 = som.get_weights()
    run.figure("moons-0", "scatter", title="two moons and the initial SOM",
               series={**{names[c]: {"x": X[y == c, 0], "y": X[y == c, 1]} for c in range(len(names))},
                       "prototypes": {"x": w0[..., 0].ravel(), "y": w0[..., 1].ravel()}},
               lines=grid_lines(w0), xlabel="x1", ylabel="x2")
    train_som(som, X, iterations, setting(p, "training"), run, on_iteration=picture)
    w = som.get_weights().reshape(-1, X.shape[1])
    nearest = np.min(np.linalg.norm(w[:, None, :] - X[None, :, :], axis=2), axis=1)
    off = int(np.sum(nearest > 0.2))
    run.text(f"{off} of {len(w)} prototypes are more than 0.2 from every sample (off the moons)")
    return {"quantization_error": float(som.quantization_error(X)), "prototypes_off_data": off, "notes": notes}


def run_umatrix(p: SOMParams, run: Run, X, y, names) -> dict:
    som, notes = make_som(p, X, run.seed)
    train_som(som, X, setting(p, "iterations"), setting(p, "training"), run)
    umatrix = som.distance_map()
    winners: dict[tuple[int, int], Counter] = {}
    for x, label in zip(X, y):
        winners.setdefault(som.winner(x), Counter())[int(label)] += 1
    marks = [{"row": int(r), "col": int(c), "text": "/".join(str(k) for k in sorted(cnt))}
             for (r, c), cnt in sorted(winners.items())]
    legend = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    run.figure("u-matrix", "heatmap", title=f"U-matrix with the winners per class ({legend})", z=umatrix,
               marks=marks, zlabel="mean distance to neighbours")
    mixed = sum(1 for cnt in winners.values() if len(cnt) > 1)
    run.table("winners", ["neuron", *names], [[f"({r},{c})", *[cnt.get(k, 0) for k in range(len(names))]]
                                               for (r, c), cnt in sorted(winners.items())],
              title="samples won by each neuron, per class")
    return {"quantization_error": float(som.quantization_error(X)),
            "topographic_error": float(som.topographic_error(X)) if min(umatrix.shape) > 1 else float("nan"),
            "neurons_used": len(winners), "neurons_mixed": mixed, "notes": notes}


def run_cluster(p: SOMParams, run: Run, X, y, names) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    som, notes = make_som(p, X, run.seed)
    train_som(som, X, setting(p, "iterations"), setting(p, "training"), run)
    cols = setting(p, "cols")
    clusters = np.array([r * cols + c for r, c in (som.winner(x) for x in X)])
    nmi = float(normalized_mutual_info_score(y, clusters))
    w = som.get_weights().reshape(-1, X.shape[1])
    dims = (2, 3)  # petal length and width separate the species best
    series = {f"cluster {k}": {"x": X[clusters == k, dims[0]], "y": X[clusters == k, dims[1]]}
              for k in sorted(set(clusters.tolist()))}
    series["prototypes"] = {"x": w[:, dims[0]], "y": w[:, dims[1]]}
    scaled = " (standardised)" if setting(p, "standardize") else ""
    run.figure("clusters", "scatter", title=f"Iris clustered by a {setting(p, 'rows')}x{cols} SOM, NMI {nmi:.3f}",
               series=series, xlabel=f"petal length{scaled}", ylabel=f"petal width{scaled}")
    n_units = setting(p, "rows") * cols
    run.table("contingency", ["cluster", *names],
              [[k, *[int(np.sum((clusters == k) & (y == c))) for c in range(len(names))]] for k in range(n_units)],
              title="samples per cluster and species")
    run.text(f"NMI against the species: {nmi:.4f} (report: 0.813 unscaled, 0.669 standardised)")
    return {"nmi": nmi, "quantization_error": float(som.quantization_error(X)), "notes": notes}


def run_classify(p: SOMParams, run: Run, X, y, names) -> dict:
    from sklearn.metrics import classification_report, confusion_matrix
    from sklearn.model_selection import train_test_split

    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=p.test_size, stratify=y, random_state=run.seed)
    if setting(p, "standardize"):
        X_tr, X_te = standardize(X_tr, X_te)
    som, notes = make_som(p, X_tr, run.seed)
    train_som(som, X_tr, setting(p, "iterations"), setting(p, "training"), run)
    # label every neuron by the majority of the training samples it wins
    votes: dict[tuple[int, int], Counter] = {}
    for x, label in zip(X_tr, y_tr):
        votes.setdefault(som.winner(x), Counter())[int(label)] += 1
    fallback = Counter(y_tr.tolist()).most_common(1)[0][0]
    labels = {cell: cnt.most_common(1)[0][0] for cell, cnt in votes.items()}
    pred = np.array([labels.get(som.winner(x), fallback) for x in X_te])
    unlabeled = setting(p, "rows") * setting(p, "cols") - len(labels)
    report = classification_report(y_te, pred, labels=list(range(len(names))), target_names=names,
                                   output_dict=True, zero_division=0)
    rows = [[n, round(report[n]["precision"], 3), round(report[n]["recall"], 3), round(report[n]["f1-score"], 3),
             int(report[n]["support"])] for n in names]
    for avg in ("macro avg", "weighted avg"):
        rows.append([avg, round(report[avg]["precision"], 3), round(report[avg]["recall"], 3),
                     round(report[avg]["f1-score"], 3), int(report[avg]["support"])])
    accuracy = float(np.mean(pred == y_te))
    run.table("classification-report", ["class", "precision", "recall", "f1-score", "support"], rows,
              title=f"classification report on {len(y_te)} held-out samples (accuracy {accuracy:.3f})")
    cm = confusion_matrix(y_te, pred, labels=list(range(len(names))))
    run.figure("confusion", "heatmap", title="confusion matrix (rows true, columns predicted)", z=cm,
               xlabels=names, ylabels=names, annotate=True, zlabel="count")
    grid = [[names[labels[(r, c)]][:3] if (r, c) in labels else "-" for c in range(setting(p, "cols"))]
            for r in range(setting(p, "rows"))]
    run.table("neuron-labels", [f"col {c}" for c in range(setting(p, "cols"))], grid,
              title=f"neuron labels by majority vote ({unlabeled} unlabelled -> {names[fallback]})")
    return {"accuracy": accuracy, "test_samples": int(len(y_te)), "unlabeled_neurons": int(unlabeled),
            "classes_reported": sum(1 for n in names if n in report), "notes": notes}


MODES = {"moons": run_moons, "iris-umatrix": run_umatrix, "iris-cluster": run_cluster, "iris-classify": run_classify}


def run(p: SOMParams, run: Run) -> None:
    # --- data
    X, y, names = load_data(p, run.seed)
    if setting(p, "standardize") and p.mode != "iris-classify":  # classify scales on its training part
        X = standardize(X)[0]
    resolved = {k: setting(p, k) for k in MODE_DEFAULTS[p.mode]}
    run.text(f"{p.mode}: {len(X)} samples x {X.shape[1]} features; SOM "
             + ", ".join(f"{k} {v}" for k, v in resolved.items()))
    run.progress(0, resolved["iterations"], phase="iteration")
    # --- map, training and pictures
    out = MODES[p.mode](p, run, X, y, names)
    for note in out.pop("notes"):
        run.text(f"MiniSom: {note}", level="warning")
    run.summary(**out)


EXERCISE = Exercise(
    id="2.3-som",
    title="Self-organising maps: two moons, Iris U-matrix, clustering and classification",
    session=2,
    description=DESCRIPTION,
    Params=SOMParams,
    run=run,
    primary_metric="quantization_error",
)
