"""CIFAR-10 from the standard python batches.

Looked for in ``<data>/cifar10/cifar-10-batches-py/``: ``data_batch_1`` ...
``data_batch_5`` and ``test_batch``. Whichever training batches are present
are used (a copy with fewer images is fine; checksums of the original
archive are only checked when labbench downloads it).
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from . import DataCorrupt, DataMissing, DataSet, register, require

FOLDER = "cifar10/cifar-10-batches-py"
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = ["test_batch"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"


def fetch(root: Path, progress=None) -> None:
    from .download import download

    archive = download(URL, root / "cifar10" / "cifar-10-python.tar.gz", md5=MD5, progress=progress)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                tar.extractall(root / "cifar10", filter="data")
            except TypeError:  # Python without extraction filters
                tar.extractall(root / "cifar10")  # noqa: S202 - checksum-verified archive
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataCorrupt(f"{archive}: cannot be unpacked ({exc})") from None
    archive.unlink(missing_ok=True)


register(DataSet(
    name="cifar10", title="CIFAR-10 colour images (50k/10k, 32x32, 10 classes)",
    files=[f"{FOLDER}/{f}" for f in TRAIN + TEST], any_of=True,
    source="the CIFAR-10 python version (Krizhevsky 2009), as torchvision downloads it",
    fetch=fetch,
))


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python batch as ``(images (N, 32, 32, 3) uint8, labels (N,) int64)``."""
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DataCorrupt(f"{path}: not a readable CIFAR-10 batch ({exc or type(exc).__name__}); "
                          "the file is damaged or truncated") from None
    if not isinstance(d, dict):
        raise DataCorrupt(f"{path}: not a CIFAR-10 batch (a {type(d).__name__}, expected a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise DataCorrupt(f"{path}: no data/labels in the batch")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataCorrupt(f"{path}: data is {data.shape} with {len(labels)} labels, expected (N, 3072) and N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataCorrupt(f"{path}: labels outside 0-9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def classes() -> list[str]:
    meta = require("cifar10") / FOLDER / "batches.meta"
    try:
        with open(meta, "rb") as fh:
            names = pickle.load(fh, encoding="bytes")[b"label_names"]
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    except Exception:
        return list(CLASSES)


def load(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: (N, 32, 32, 3) uint8 and (N,) int64, from the batches present."""
    if split not in ("train", "test"):
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    folder = require("cifar10") / FOLDER
    names = TRAIN if split == "train" else TEST
    present = [folder / n for n in names if (folder / n).exists()]
    if not present:
        raise DataMissing(f"CIFAR-10 {split} batches are not in {folder}\n"
                          f"  expected: {', '.join(names)}\n  to get it: labbench data fetch cifar10")
    parts = [read_batch(p) for p in present]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


load_cifar10 = load


def tensors(split: str = "train", *, device="cpu", limit: int | None = None, normalize: bool = False):
    """``(x, y)``: x float (N, 3, 32, 32) in [0, 1] (or [-1, 1] with ``normalize``), y int64."""
    import torch

    images, labels = load(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    if normalize:
        x = x.mul_(2).sub_(1)
    return x, torch.from_numpy(labels).to(device)
