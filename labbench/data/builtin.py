"""Small data sets that ship with scikit-learn: nothing to download."""

from __future__ import annotations

import numpy as np

from . import DataSet, register

register(DataSet(name="iris", title="Iris flowers (150 x 4, 3 classes)", source="scikit-learn", builtin=True))
register(DataSet(name="two-moons", title="two interleaving half circles (generated)", source="scikit-learn",
                 builtin=True))
register(DataSet(name="digits", title="8x8 handwritten digits (1,797 x 64)", source="scikit-learn", builtin=True))


def load_iris() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X (150, 4), y (150,), class names)``."""
    from sklearn.datasets import load_iris as _load

    d = _load()
    return d.data.astype(np.float64), d.target.astype(np.int64), list(d.target_names)


def load_two_moons(n_samples: int = 200, noise: float = 0.1, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return X, y.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(X (1797, 64) in [0, 16], y (1797,))``."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return d.data.astype(np.float64), d.target.astype(np.int64)
