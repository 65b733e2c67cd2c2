"""UCI Ionosphere and Pima Indians Diabetes (session 2.2).

Both live in the data folder as the original UCI files, comma separated and
without a header:

- ``uci/ionosphere.csv``: 351 rows of 34 numbers and a label ``g``/``b``
  (good/bad radar return; 225 g, 126 b);
- ``uci/pima-indians-diabetes.csv``: 768 rows of 8 numbers and a 0/1 class
  (500 negative, 268 positive).

``labbench data fetch ionosphere`` (or ``pima``) downloads them from OpenML
(names "ionosphere" and "diabetes") with scikit-learn's ``fetch_openml`` and
writes the same UCI layout, so a copy from anywhere else works as well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DataCorrupt, DataMissing, DataSet, register, require

IONOSPHERE_FILE = "uci/ionosphere.csv"
PIMA_FILE = "uci/pima-indians-diabetes.csv"

IONOSPHERE_LABELS = {"g": 1, "b": 0}
PIMA_FEATURES = ["pregnancies", "glucose", "blood pressure", "skin thickness", "insulin", "BMI",
                 "diabetes pedigree", "age"]


def read_uci_csv(path: Path, n_features: int, labels: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``n_features`` numbers and a class; a bad line raises DataCorrupt
    naming the file and the line. ``labels`` maps class strings to ints
    (None: the class is a number)."""
    path = Path(path)
    rows: list[list[float]] = []
    ys: list[int] = []
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataMissing(f"{path}: no such file") from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != n_features + 1:
                raise DataCorrupt(f"{path}:{lineno}: expected {n_features + 1} comma-separated fields "
                                  f"({n_features} features and a class), found {len(parts)}")
            try:
                rows.append([float(v) for v in parts[:-1]])
            except ValueError:
                bad = next(v for v in parts[:-1] if not _is_number(v))
                raise DataCorrupt(f"{path}:{lineno}: feature value {bad!r} is not a number") from None
            label = parts[-1]
            if labels is not None:
                if label not in labels:
                    raise DataCorrupt(f"{path}:{lineno}: class {label!r} is not one of {', '.join(labels)}")
                ys.append(labels[label])
            else:
                try:
                    value = float(label)
                except ValueError:
                    raise DataCorrupt(f"{path}:{lineno}: class {label!r} is not a number") from None
                if value not in (0.0, 1.0):
                    raise DataCorrupt(f"{path}:{lineno}: class {label!r} is not 0 or 1")
                ys.append(int(value))
    if not rows:
        raise DataCorrupt(f"{path}: the file holds no data rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(ys, dtype=np.int64)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_ionosphere() -> tuple[np.ndarray, np.ndarray]:
    """X (351, 34) float64, y (351,) with 1 = good (g), 0 = bad (b)."""
    root = require("ionosphere")
    return read_uci_csv(root / IONOSPHERE_FILE, 34, IONOSPHERE_LABELS)


def load_pima() -> tuple[np.ndarray, np.ndarray]:
    """X (768, 8) float64, y (768,) with 1 = diabetes."""
    root = require("pima")
    return read_uci_csv(root / PIMA_FILE, 8, None)


# ----------------------------------------------------------------- fetching
def _fetch_openml(name: str, root: Path, progress=None):
    from sklearn.datasets import fetch_openml

    if progress is not None:
        try:
            progress(f"downloading {name} from OpenML")
        except TypeError:  # a progress callback with another signature: not essential
            pass
    cache = Path(root) / ".cache" / "openml"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        bunch = fetch_openml(name=name, version=1, as_frame=False, data_home=str(cache), parser="liac-arff")
    except Exception as exc:  # network, HTTP, parse errors: say which and what to do instead
        raise DataMissing(f"could not download {name} from OpenML ({type(exc).__name__}: {exc}); "
                          f"copy the UCI file into {root / 'uci'} instead") from None
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target).astype(str)


def _write_uci(path: Path, X: np.ndarray, labels) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row, label in zip(X, labels):
            fh.write(",".join(f"{v:.10g}" for v in row) + f",{label}\n")
    tmp.replace(path)


def fetch_ionosphere(root: Path, progress=None) -> None:
    X, target = _fetch_openml("ionosphere", root, progress)
    if X.shape != (351, 34) or not set(target) <= {"g", "b"}:
        raise DataCorrupt(f"OpenML ionosphere has an unexpected shape {X.shape} or classes {sorted(set(target))}")
    _write_uci(Path(root) / IONOSPHERE_FILE, X, target)


def fetch_pima(root: Path, progress=None) -> None:
    X, target = _fetch_openml("diabetes", root, progress)
    mapping = {"tested_negative": 0, "tested_positive": 1, "0": 0, "1": 1}
    if X.shape != (768, 8) or not set(target) <= set(mapping):
        raise DataCorrupt(f"OpenML diabetes has an unexpected shape {X.shape} or classes {sorted(set(target))}")
    _write_uci(Path(root) / PIMA_FILE, X, [mapping[t] for t in target])


register(DataSet(
    name="ionosphere", title="UCI Ionosphere (351 x 34, good/bad radar returns)", files=[IONOSPHERE_FILE],
    source="UCI ionosphere.data; fetched from OpenML (name ionosphere)", fetch=fetch_ionosphere))
register(DataSet(
    name="pima", title="Pima Indians Diabetes (768 x 8, 268 positive)", files=[PIMA_FILE],
    source="UCI pima-indians-diabetes.data; fetched from OpenML (name diabetes)", fetch=fetch_pima))
