"""The data registry: one name -> one data set, one data folder.

The data folder is ``$LABBENCH_DATA``, else a per-user cache folder
(``$XDG_CACHE_HOME/labbench/data`` or ``~/.cache/labbench/data``). Each source
module (``mnist``, ``cifar``, ``course``, ``uci``, ``climate``, ``builtin``)
registers its :class:`DataSet` entries here and provides the loaders.
Exercises call the loaders; a loader calls :func:`require` first, which fails
with a :class:`DataMissing` that says where it looked, what it expected and
what to run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class DataError(Exception):
    """Base of data problems; printed without a traceback (exit 2 on the CLI)."""


class DataMissing(DataError):
    """A data set is not in the data folder."""


class DataCorrupt(DataError):
    """A data file is there but truncated or malformed."""


def data_root() -> Path:
    env = os.environ.get("LABBENCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "labbench" / "data"


@dataclass
class DataSet:
    name: str
    title: str
    files: list[str] = field(default_factory=list)  # relative to the data folder; all must exist
    source: str = ""  # where it comes from, for humans
    fetch: Callable | None = None  # fetch(root: Path, progress) -> None downloads into root
    hint: str = ""  # how to get it when it cannot be fetched (e.g. an import command)
    builtin: bool = False  # ships with a package (scikit-learn); always present
    any_of: bool = False  # present when at least one of ``files`` exists
    auto_fetch: bool = False  # small public file: download it on first use (unless LABBENCH_OFFLINE)

    def paths(self, root: Path | None = None) -> list[Path]:
        root = root or data_root()
        return [root / f for f in self.files]

    def present(self, root: Path | None = None) -> bool:
        if self.builtin:
            return True
        paths = self.paths(root)
        if not paths:
            return False
        return any(p.exists() for p in paths) if self.any_of else all(p.exists() for p in paths)

    def how_to_get(self) -> str:
        if self.builtin:
            return "built in"
        if self.fetch is not None:
            return f"labbench data fetch {self.name}"
        return self.hint or "see `labbench data list`"


REGISTRY: dict[str, DataSet] = {}


def register(ds: DataSet) -> DataSet:
    REGISTRY[ds.name] = ds
    return ds


def get_dataset(name: str) -> DataSet:
    _load_sources()
    if name not in REGISTRY:
        raise DataMissing(f'unknown data set "{name}"; known: {", ".join(sorted(REGISTRY))}')
    return REGISTRY[name]


def dataset_status(name: str) -> bool:
    """True when the data set is ready to load."""
    try:
        return get_dataset(name).present()
    except DataMissing:
        return False


def require(name: str) -> Path:
    """The data folder, after checking ``name`` is there; else a DataMissing
    that names the folder searched, the files expected and the command to run."""
    ds = get_dataset(name)
    root = data_root()
    if ds.present(root):
        return root
    failure = ""
    if ds.auto_fetch and ds.fetch is not None and not os.environ.get("LABBENCH_OFFLINE"):
        try:
            ds.fetch(root)
        except Exception as exc:  # offline, refused, bad checksum: fall through to the clear message
            failure = f"\n  (the download on first use failed: {str(exc).splitlines()[0]})"
        else:
            if ds.present(root):
                return root
    missing = [str(p) for p in ds.paths(root) if not p.exists()]
    expected = ("one of " if ds.any_of else "") + ", ".join(missing or [str(root)])
    raise DataMissing(
        f"data set {name} ({ds.title}) is not in the data folder {root}\n"
        f"  expected: {expected}\n"
        f"  to get it: {ds.how_to_get()}\n"
        f"  (set LABBENCH_DATA to use another data folder)" + failure)


def cache_dir() -> Path:
    """Where decoded copies go (inside the data folder when it is writable)."""
    root = data_root()
    cand = root / ".cache"
    try:
        cand.mkdir(parents=True, exist_ok=True)
        if os.access(cand, os.W_OK):
            return cand
    except OSError:
        pass
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    alt = Path(cache) / "labbench" / "decoded"
    alt.mkdir(parents=True, exist_ok=True)
    return alt


_SOURCES = ("mnist", "cifar", "course", "uci", "climate", "builtin")
_loaded = False


def _load_sources() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib import import_module
    from importlib.util import find_spec

    for mod in _SOURCES:
        if find_spec(f"{__name__}.{mod}") is not None:
            import_module(f"{__name__}.{mod}")
