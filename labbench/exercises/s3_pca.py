"""Session 3.1 - principal component analysis and reconstruction error.

Course notebook: a PCA written by hand (centre the data, eigendecompose the
covariance matrix, project onto the top-q eigenvectors, reconstruct, measure
the error) next to scikit-learn's ``PCA``, on Gaussian random data (500 x 50)
and on Iris (4 features).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from ..data import DataCorrupt, DataMissing
from ..engine import Exercise, Params, Run

DESCRIPTION = """
**PCA by hand**: subtract the mean, take the covariance matrix, sort its
eigenvectors by eigenvalue, keep the first *q* as the projection, map back and
measure the **reconstruction RMSE**. The same is done with scikit-learn's
`PCA`; the two agree on the explained variance and on the components up to
their sign.

* **Gaussian noise** (500 x 50, independent features): no direction is special,
  so each component removes about the same share of variance - the RMSE falls
  almost **linearly** from about 1 to 0 as q goes from 0 to 50.
* **Iris** (150 x 4): the first component alone carries about 92% of the
  variance, so the RMSE curve is **concave** - a steep first drop, then little
  - and it is exactly 0 from q = 4.

* **your own data** (`dataset = "matrix"` with the rows in `matrix`, or
  `dataset = "csv"` with a file in `csv`): the course's unit check - the mean,
  the eigenvalues and the reconstruction MSE at q = `q` (default 2) - in one
  table, to compare with your own implementation.

The covariance matrix divides by **n - 1** (as `np.cov` and scikit-learn do);
the check table also gives each eigenvalue with the divisor n, in case your
code divides by n. The reconstruction MSE is the mean of (x - x̂)² over all n x d
entries, which equals (n - 1) / (n·d) times the sum of the dropped eigenvalues;
the table shows both.

Questions: why is the RMSE at q = d zero for any data? Why does random data
not compress? What do the first two principal components of Iris show about
its three species?
"""


class PCAParams(Params):
    dataset: Literal["both", "gaussian", "iris", "matrix", "csv"] = Field(
        "both", description="Which data set(s) to analyse (matrix: the rows in `matrix`; csv: the file in `csv`)")
    n_samples: int = Field(500, ge=2, le=1_000_000, description="Rows of the Gaussian random data")
    n_features: int = Field(50, ge=1, le=2000, description="Columns of the Gaussian random data")
    standardize_iris: bool = Field(False, description="Standardise the Iris features first (the course does not)")
    matrix: Optional[list[list[float]]] = Field(None, description="Your data, one list per row, e.g. "
                                                                  "[[1, 2], [3, 4], [5, 7]] (dataset = matrix)")
    csv: Optional[str] = Field(None, description="A CSV file of numbers, one row per sample, optional header line "
                                                 "(dataset = csv; a relative path is from the working folder)")
    q: int = Field(2, ge=0, le=2000, description="Your data: the number of components of the unit check")

    @model_validator(mode="after")
    def _data_given(self):
        if self.dataset == "matrix":
            if not self.matrix:
                raise ValueError('dataset "matrix" needs the rows in matrix, e.g. matrix = [[1, 2], [3, 4], [5, 7]]')
            width = len(self.matrix[0])
            if width == 0:
                raise ValueError("matrix: row 1 is empty")
            for i, row in enumerate(self.matrix, start=1):
                if len(row) != width:
                    raise ValueError(f"matrix: row {i} has {len(row)} values, expected {width} like row 1")
            if len(self.matrix) < 2:
                raise ValueError("matrix: at least 2 rows are needed for a covariance")
        if self.dataset == "csv" and not self.csv:
            raise ValueError('dataset "csv" needs a file in csv, e.g. csv = "mydata.csv"')
        return self


# ------------------------------------------------------------ hand-written PCA
class HandPCA:
    """PCA the way the course writes it: mean, covariance, eigendecomposition."""

    def fit(self, X: np.ndarray) -> "HandPCA":
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        cov = np.cov(X - self.mean_, rowvar=False, ddof=1).reshape(X.shape[1], X.shape[1])
        eigval, eigvec = np.linalg.eigh(cov)  # ascending for a symmetric matrix
        order = np.argsort(eigval)[::-1]
        self.explained_variance_ = np.clip(eigval[order], 0.0, None)
        self.components_ = eigvec[:, order].T  # rows = principal directions, as sklearn
        total = self.explained_variance_.sum()
        self.explained_variance_ratio_ = self.explained_variance_ / total if total > 0 else self.explained_variance_
        return self

    def project(self, X: np.ndarray, q: int) -> np.ndarray:
        return (np.asarray(X) - self.mean_) @ self.components_[:q].T

    def reconstruct(self, Z: np.ndarray) -> np.ndarray:
        q = Z.shape[1]
        return Z @ self.components_[:q] + self.mean_


def rmse(X: np.ndarray, X_hat: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(X) - np.asarray(X_hat)) ** 2)))


def hand_rmse_curve(X: np.ndarray, pca: HandPCA) -> list[float]:
    return [rmse(X, pca.reconstruct(pca.project(X, q))) for q in range(X.shape[1] + 1)]


def sklearn_rmse_curve(X: np.ndarray, seed: int) -> list[float]:
    from sklearn.decomposition import PCA

    out = [rmse(X, np.broadcast_to(X.mean(axis=0), X.shape))]  # q = 0: the mean alone
    for q in range(1, min(X.shape) + 1):
        pca = PCA(n_components=q, random_state=seed).fit(X)
        out.append(rmse(X, pca.inverse_transform(pca.transform(X))))
    out += [0.0] * (X.shape[1] + 1 - len(out))  # q > rank: nothing left to lose
    return out


def align_signs(reference: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Flip each row of ``components`` to point the same way as ``reference``."""
    signs = np.sign(np.sum(reference * components, axis=1))
    signs[signs == 0] = 1
    return components * signs[:, None]


# --------------------------------------------------------------------- data
def gaussian_data(n_samples: int, n_features: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_samples, n_features))


def read_matrix_csv(path: str | Path) -> np.ndarray:
    """A CSV file of numbers (separated by commas, semicolons or blanks); a
    first line that is not numeric is taken as a header. Errors name the file,
    the line and the column."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataMissing(f"{path}: no such file (csv = the path of a CSV file of numbers)")
    rows: list[list[float]] = []
    width = None
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        delim = ";" if sample.count(";") > sample.count(",") else ","
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            cells = next(csv.reader([text], delimiter=delim)) if delim in text else re.split(r"\s+", text)
            cells = [c.strip() for c in cells]
            try:
                values = [float(c) for c in cells]
            except ValueError:
                if not rows and width is None and lineno == 1:
                    width = len(cells)  # a header line
                    continue
                bad = next(k for k, c in enumerate(cells, start=1) if not _is_number(c))
                raise DataCorrupt(f"{path}:{lineno}: column {bad}: {cells[bad - 1]!r} is not a number") from None
            if width is None:
                width = len(values)
            if len(values) != width:
                raise DataCorrupt(f"{path}:{lineno}: expected {width} values, found {len(values)}")
            rows.append(values)
    if len(rows) < 2:
        raise DataCorrupt(f"{path}: {len(rows)} data row(s); at least 2 are needed for a covariance")
    return np.asarray(rows, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def iris_data(standardize: bool):
    from sklearn.datasets import load_iris

    iris = load_iris()
    X = iris.data.astype(np.float64)
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
    return X, iris.target, list(iris.target_names)


# ---------------------------------------------------------------------- run
def analyse(name: str, X: np.ndarray, run: Run, seed: int, step0: int, total: int) -> dict:
    from sklearn.decomposition import PCA

    hand = HandPCA().fit(X)
    sk = PCA(random_state=seed).fit(X)
    q_max = X.shape[1]
    hand_curve = hand_rmse_curve(X, hand)
    sk_curve = sklearn_rmse_curve(X, seed)
    for q in range(q_max + 1):
        # one chart per data set: Iris (q <= 4) would vanish in the corner of Gaussian's q <= 50
        run.scalars(q, {f"rmse {name}/hand-written": hand_curve[q], f"rmse {name}/scikit-learn": sk_curve[q]},
                    check=False)
        run.progress(step0 + q + 1, total, phase="component")
    run.figure(f"rmse-{name}", "line", title=f"{name}: reconstruction RMSE against the number of components q",
               x=list(range(q_max + 1)), series={"hand-written": hand_curve, "scikit-learn": sk_curve},
               xlabel="q", ylabel="RMSE")
    k = min(len(sk.explained_variance_), q_max)
    ev_diff = float(np.max(np.abs(hand.explained_variance_[:k] - sk.explained_variance_[:k])))
    comp_diff = float(np.max(np.abs(align_signs(sk.components_[:k], hand.components_[:k]) - sk.components_[:k])))
    ratio = hand.explained_variance_ratio_
    run.figure(f"explained-{name}", "bar", title=f"{name}: explained variance ratio per component",
               labels=[f"PC{i + 1}" for i in range(min(q_max, 20))], values=ratio[:20])
    run.table(f"explained-{name}", ["component", "variance (hand)", "variance (sklearn)", "ratio", "cumulative"],
              [[f"PC{i + 1}", round(float(hand.explained_variance_[i]), 6),
                round(float(sk.explained_variance_[i]), 6) if i < len(sk.explained_variance_) else None,
                round(float(ratio[i]), 4), round(float(np.cumsum(ratio)[i]), 4)] for i in range(min(q_max, 10))],
              title=f"{name}: explained variance (first {min(q_max, 10)} components)")
    run.text(f"{name}: hand-written vs scikit-learn: largest difference in explained variance {ev_diff:.2e}, "
             f"in components (signs aligned) {comp_diff:.2e}")
    return {"hand": hand, "sklearn": sk, "hand_curve": hand_curve, "sk_curve": sk_curve, "ev_diff": ev_diff,
            "comp_diff": comp_diff}


def unit_check(name: str, X: np.ndarray, pca: "HandPCA", q: int, run: Run) -> dict:
    """The course's unit check on a small data set: mean, eigenvalues (divisor
    n - 1, and n), reconstruction MSE per q (and at ``q``)."""
    n, d = X.shape
    q = min(q, d)
    eig = pca.explained_variance_
    run.table(f"check-{name}-mean", ["feature", "mean"], [[j + 1, float(m)] for j, m in enumerate(pca.mean_)],
              title=f"{name}: the mean of each feature ({n} samples)")
    run.table(f"check-{name}-eigen", ["component", "eigenvalue (cov / (n-1))", "eigenvalue (cov / n)", "ratio"],
              [[i + 1, float(v), float(v * (n - 1) / n), float(r)]
               for i, (v, r) in enumerate(zip(eig, pca.explained_variance_ratio_))],
              title=f"{name}: eigenvalues of the covariance matrix, largest first",
              note="labbench divides by n - 1 (as np.cov and scikit-learn); the column with n is for code that "
                   "divides by n")
    rows, mses = [], []
    for k in range(d + 1):
        err = float(np.mean((X - pca.reconstruct(pca.project(X, k))) ** 2))
        mses.append(err)
        dropped = float(eig[k:].sum() * (n - 1) / (n * d))
        rows.append([k, err, float(np.sqrt(err)), dropped, "<- q" if k == q else ""])
    run.table(f"check-{name}-reconstruction", ["q", "MSE", "RMSE", "(n-1)/(n·d) · dropped eigenvalues", ""], rows,
              title=f"{name}: reconstruction error with q components (MSE over all {n} x {d} entries)")
    run.text(f"{name}: unit check at q = {q}: reconstruction MSE {mses[q]:.6g}; eigenvalues "
             + ", ".join(f"{v:.6g}" for v in eig) + "; mean " + ", ".join(f"{m:.6g}" for m in pca.mean_))
    return {f"{name}_mean": [float(m) for m in pca.mean_], f"{name}_eigenvalues": [float(v) for v in eig],
            f"{name}_q": q, f"{name}_mse_q": mses[q]}


def run(p: PCAParams, run: Run) -> None:
    # --- data
    sets = []
    if p.dataset in ("both", "gaussian"):
        sets.append(("gaussian", gaussian_data(p.n_samples, p.n_features, run.seed), None, None))
    if p.dataset in ("both", "iris"):
        X, y, names = iris_data(p.standardize_iris)
        sets.append(("iris", X, y, names))
    if p.dataset == "matrix":
        sets.append(("matrix", np.asarray(p.matrix, dtype=np.float64), None, None))
    if p.dataset == "csv":
        X = read_matrix_csv(p.csv)
        run.text(f"{p.csv}: {X.shape[0]} rows x {X.shape[1]} columns")
        sets.append(("csv", X, None, None))
    total = sum(X.shape[1] + 1 for _, X, _, _ in sets)
    run.progress(0, total, phase="component")

    # --- PCA by hand and by scikit-learn, q = 0..d
    metrics: dict[str, float] = {}
    step = 0
    for name, X, y, names in sets:
        res = analyse(name, X, run, run.seed, step, total)
        step += X.shape[1] + 1
        curve = res["hand_curve"]
        metrics[f"{name}_rmse_q0"] = curve[0]
        metrics[f"{name}_rmse_q1"] = curve[1]
        metrics[f"{name}_rmse_qd"] = curve[-1]
        metrics[f"{name}_pc1_ratio"] = float(res["hand"].explained_variance_ratio_[0])
        metrics[f"{name}_max_diff_explained_variance"] = res["ev_diff"]
        metrics[f"{name}_max_diff_components"] = res["comp_diff"]
        if name in ("matrix", "csv"):
            metrics.update(unit_check(name, X, res["hand"], p.q, run))
        if y is not None:
            # --- the first two PCs of Iris, both implementations side by side
            Z_hand = res["hand"].project(X, 2)
            Z_sk = res["sklearn"].transform(X)[:, :2]
            for label, Z in (("hand-written", Z_hand), ("scikit-learn", Z_sk)):
                run.figure(f"iris-pcs-{'hand' if label == 'hand-written' else 'sklearn'}", "scatter",
                           title=f"Iris on its first two principal components ({label} PCA)",
                           series={names[c]: {"x": Z[y == c, 0], "y": Z[y == c, 1]} for c in range(len(names))},
                           xlabel="PC1", ylabel="PC2")
    run.summary(**metrics)


EXERCISE = Exercise(
    id="3.1-pca",
    title="PCA by hand and with scikit-learn: reconstruction error",
    session=3,
    description=DESCRIPTION,
    Params=PCAParams,
    run=run,
    primary_metric="iris_rmse_q1",
)
