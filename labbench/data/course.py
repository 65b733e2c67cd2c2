"""The course's regression file ``data.csv`` (session 1, personal regression).

Seven comma-separated rows of 13,600 values (no header), published in the
course repository ``KULasagna/ANN_DL_public`` as ``session1/data.csv``.
Transposed it is (13600, 7): x1, x2 in [0, 1] and the surfaces T1..T5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DataCorrupt, DataSet, register, require

FILE = "course/data.csv"
URLS = ["https://raw.githubusercontent.com/KULasagna/ANN_DL_public/main/session1/data.csv",
        "https://raw.githubusercontent.com/KULasagna/ANN_DL_public/master/session1/data.csv"]
SHA256 = "4b48966f596a73ee8e06fe24d8ac58fd275a9527721f5c1436df7405d428625b"
COLUMNS = ["x1", "x2", "T1", "T2", "T3", "T4", "T5"]


def fetch(root: Path, progress=None) -> None:
    from .download import download

    download(URLS, root / FILE, sha256=SHA256, progress=progress)


register(DataSet(
    name="course-data", title="course regression surfaces data.csv (13,600 x 7)",
    files=[FILE], source="course repository KULasagna/ANN_DL_public, session1/data.csv", fetch=fetch,
    auto_fetch=True,  # 0.9 MB, published by the course: fetched the first time an exercise needs it
))


def load() -> np.ndarray:
    """The file as a (13600, 7) float64 array: columns x1, x2, T1..T5."""
    path = require("course-data") / FILE
    try:
        arr = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataCorrupt(f"{path}: not a table of numbers ({exc})") from None
    if arr.shape[0] == 7 and arr.shape[1] != 7:
        arr = arr.T
    if arr.ndim != 2 or arr.shape[1] != 7 or arr.shape[0] < 10:
        raise DataCorrupt(f"{path}: shape {arr.shape}, expected 7 rows of values (x1, x2, T1..T5)")
    if not np.isfinite(arr).all():
        raise DataCorrupt(f"{path}: holds non-numeric or infinite values")
    return np.ascontiguousarray(arr)


load_course_data = load
