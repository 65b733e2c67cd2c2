"""MNIST and Fashion-MNIST from the four original IDX ``.gz`` files.

The files are looked for in ``<data>/mnist/`` and ``<data>/fashion-mnist/``
under their original names. The first load parses them (gzip + the IDX
header, every size checked) and writes a decoded uint8 copy to the cache
folder, keyed by the files' sizes and modification times, so later loads
take a few milliseconds. A truncated or malformed file raises
:class:`DataCorrupt`; nothing is loaded half.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from . import DataCorrupt, DataSet, cache_dir, register, require

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SIZES = {"train": 60_000, "test": 10_000}

# Sources and MD5s as torchvision lists them (the original archives).
SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}

CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}


def _fetcher(name: str):
    def fetch(root: Path, progress=None) -> None:
        from .download import download

        src = SOURCES[name]
        for fname, md5 in src["md5"].items():
            download([m + fname for m in src["mirrors"]], root / name / fname, md5=md5, progress=progress)

    return fetch


for _name, _title in (("mnist", "MNIST handwritten digits (60k/10k, 28x28 grey)"),
                      ("fashion-mnist", "Fashion-MNIST clothing images (60k/10k, 28x28 grey)")):
    register(DataSet(
        name=_name, title=_title,
        files=[f"{_name}/{f}" for pair in FILES.values() for f in pair],
        source="the original IDX files (torchvision's download mirrors)",
        fetch=_fetcher(_name),
    ))


# ---------------------------------------------------------------- IDX parsing
def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (EOFError, OSError, zlib.error) as exc:  # truncated stream, bad CRC, not gzip
        raise DataCorrupt(f"{path}: cannot be decompressed ({exc}); the file is damaged or truncated - "
                          "delete it and fetch it again") from None


def parse_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An IDX file (gzipped) as a uint8 array; every size is checked."""
    raw = _gunzip(path) if str(path).endswith(".gz") else Path(path).read_bytes()
    head = 4 + 4 * dims
    if len(raw) < head:
        raise DataCorrupt(f"{path}: {len(raw)} bytes is too short for an IDX header")
    got_magic, *shape = struct.unpack(f">{1 + dims}I", raw[:head])
    if got_magic != magic:
        raise DataCorrupt(f"{path}: IDX magic number is 0x{got_magic:08x}, expected 0x{magic:08x} "
                          f"(not an {'image' if dims == 3 else 'label'} file)")
    want = head + int(np.prod(shape))
    if len(raw) != want:
        raise DataCorrupt(f"{path}: holds {len(raw)} bytes after decompression, the header promises {want} "
                          f"(shape {tuple(shape)}); the file is truncated or damaged")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def _cache_key(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def load(name: str = "mnist", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 arrays of shape (N, 28, 28) and (N,)."""
    if split not in FILES:
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    root = require(name)
    paths = [root / name / f for f in FILES[split]]
    cache = cache_dir() / f"{name}-{split}-{_cache_key(paths)}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return z["images"], z["labels"]
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    images = parse_idx(paths[0], 0x00000803, 3)
    labels = parse_idx(paths[1], 0x00000801, 1)
    if len(images) != len(labels):
        raise DataCorrupt(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
    if images.shape[1:] != (28, 28):
        raise DataCorrupt(f"{paths[0]}: images are {images.shape[1:]}, expected 28x28")
    if labels.size and labels.max() > 9:
        raise DataCorrupt(f"{paths[1]}: a label is {int(labels.max())}, expected 0-9")
    tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, images=images, labels=labels)
        os.replace(tmp, cache)
    except OSError:  # a read-only cache is only slower
        tmp.unlink(missing_ok=True)
    return images.copy(), labels.copy()


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    return load("mnist", split)


def load_fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    return load("fashion-mnist", split)


def tensors(name: str = "mnist", split: str = "train", *, device="cpu", limit: int | None = None,
            dtype=None, channels_last: bool = False):
    """``(x, y)`` torch tensors on ``device``: x float (N, 1, 28, 28) = pixels / 255,
    y int64 (N,). ``limit`` keeps the first N images."""
    import torch

    images, labels = load(name, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.unsqueeze(1).to(dtype or torch.float32).div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return x, y
