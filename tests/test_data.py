"""The data registry and loaders on the real files in ../shared/data."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from labbench.data import DataCorrupt, DataMissing, dataset_status, get_dataset, require

from .helpers import SHARED_DATA as SHARED


@pytest.fixture
def shared_data(monkeypatch, tmp_path_factory):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED))
    # decoded copies go to a per-session cache (the shared folder is read-only)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    return SHARED


@pytest.fixture
def empty_data(monkeypatch, tmp_path):
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "data"


def test_mnist_counts_and_cache(shared_data):
    from labbench.data import mnist

    x, y = mnist.load("mnist", "train")
    assert x.shape == (60_000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    xt, yt = mnist.load("mnist", "test")
    assert xt.shape == (10_000, 28, 28)
    assert np.bincount(yt, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # the second load comes from the decoded cache and is identical
    x2, y2 = mnist.load("mnist", "train")
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert list((Path(mnist.cache_dir())).glob("mnist-train-*.npz"))
    xt_t, yt_t = mnist.tensors("mnist", "test", limit=5)
    assert tuple(xt_t.shape) == (5, 1, 28, 28) and float(xt_t.max()) <= 1.0 and yt_t.tolist() == [7, 2, 1, 0, 4]


def test_cifar_batches_present(shared_data):
    from labbench.data import cifar

    x, y = cifar.load("train")
    assert x.shape == (4000, 32, 32, 3) and x.dtype == np.uint8
    assert x[0, 0, 0].tolist() == [59, 62, 63]
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    xt, yt = cifar.load("test")
    assert xt.shape == (1000, 32, 32, 3)
    assert xt[0, 0, 0].tolist() == [158, 112, 49]
    assert yt[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert int((y == 8).sum()) == 407 and int((yt == 8).sum()) == 106  # ships
    assert cifar.classes()[8] == "ship"


def test_course_data(shared_data):
    from labbench.data import course

    arr = course.load()
    assert arr.shape == (13_600, 7)
    assert 0.0 <= arr[:, :2].min() and arr[:, :2].max() <= 1.0


def test_uci_sets(shared_data):
    uci = pytest.importorskip("labbench.data.uci", reason="the UCI loaders (labbench.data.uci) are not there yet")
    for name, shape in (("ionosphere", (351, 34)), ("pima", (768, 8))):
        loader = next((getattr(uci, f) for f in (f"load_{name}", "load") if hasattr(uci, f)), None)
        if loader is None:
            pytest.skip("labbench.data.uci has no load_<name> function")
        out = loader() if loader.__name__ != "load" else loader(name)
        X = out[0]
        assert tuple(np.shape(X)) == shape


def test_builtin_sets():
    from labbench.data import builtin

    X, y, names = builtin.load_iris()
    assert X.shape == (150, 4) and names[0] == "setosa"
    assert builtin.load_digits()[0].shape == (1797, 64)
    assert builtin.load_two_moons(100)[0].shape == (100, 2)
    assert dataset_status("iris")


def _copy_mnist(dst: Path, truncate: str | None = None) -> None:
    (dst / "mnist").mkdir(parents=True)
    for f in (SHARED / "mnist").glob("*.gz"):
        shutil.copy(f, dst / "mnist" / f.name)
    if truncate:
        p = dst / "mnist" / truncate
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])


def test_truncated_mnist_is_corrupt(shared_data, tmp_path, monkeypatch):
    from labbench.data import mnist

    root = tmp_path / "data"
    _copy_mnist(root, truncate="t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("LABBENCH_DATA", str(root))
    with pytest.raises(DataCorrupt, match="t10k-images-idx3-ubyte.gz"):
        mnist.load("mnist", "test")
    assert not list((root / ".cache").glob("mnist-test-*"))  # nothing half-loaded was cached


def test_complete_gzip_with_short_payload_is_corrupt(shared_data, tmp_path, monkeypatch):
    """A well-formed gzip whose IDX payload is shorter than its header says."""
    from labbench.data import mnist

    root = tmp_path / "data"
    _copy_mnist(root)
    p = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-10]))
    monkeypatch.setenv("LABBENCH_DATA", str(root))
    with pytest.raises(DataCorrupt, match="header promises"):
        mnist.load("mnist", "test")


def test_truncated_cifar_is_corrupt(shared_data, tmp_path, monkeypatch):
    from labbench.data import cifar

    folder = tmp_path / "data" / cifar.FOLDER
    folder.mkdir(parents=True)
    data = (SHARED / cifar.FOLDER / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(data[:100_000])
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path / "data"))
    with pytest.raises(DataCorrupt, match="test_batch"):
        cifar.load("test")


def test_missing_data_names_folder_files_and_command(empty_data):
    from labbench.data import mnist

    with pytest.raises(DataMissing) as info:
        mnist.load("mnist", "train")
    msg = str(info.value)
    assert str(empty_data) in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert "labbench data fetch mnist" in msg
    assert not dataset_status("mnist")
    with pytest.raises(DataMissing, match="labbench data fetch course-data"):
        require("course-data")
    assert get_dataset("cifar10").any_of


def _cli():
    from labbench.cli import app

    return app


def test_cli_list_and_missing_exit_code(empty_data, monkeypatch):
    from labbench.data import REGISTRY

    runner = CliRunner()
    res = runner.invoke(_cli(), ["data", "list"])
    assert res.exit_code == 0, res.output
    for name in ("mnist", "cifar10", "course-data", "iris"):
        assert name in res.output
    res = runner.invoke(_cli(), ["data", "fetch", "no-such-set"])
    assert res.exit_code == 2
    assert "unknown data set" in res.output and "Traceback" not in res.output

    # offline: a fetch that fails is a clean error with exit code 2, no traceback
    from labbench.data import DataError

    def offline(root, progress=None):
        raise DataError("could not download data.csv: <urlopen error offline>")

    monkeypatch.setattr(REGISTRY["course-data"], "fetch", offline)
    res = runner.invoke(_cli(), ["data", "fetch", "course-data"])
    assert res.exit_code == 2 and "could not download" in res.output and "Traceback" not in res.output


def test_cli_import_climate_guarded(empty_data, tmp_path):
    runner = CliRunner()
    res = runner.invoke(_cli(), ["data", "import", "climate", str(tmp_path / "nope.csv")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output


def test_download_checks_checksum(tmp_path):
    """A file:// download with a wrong checksum is refused and leaves nothing behind."""
    from labbench.data.download import DownloadFailed, download, file_digest

    src = tmp_path / "src.bin"
    src.write_bytes(b"hello labbench" * 100)
    good = file_digest(src, "sha256")
    dest = tmp_path / "out" / "file.bin"
    download(src.as_uri(), dest, sha256=good)
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(DownloadFailed, match="sha256"):
        download(src.as_uri(), tmp_path / "out" / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "out" / "bad.bin").exists()
    assert not list((tmp_path / "out").glob("*.part"))


def test_course_file_is_fetched_on_first_use(tmp_path, monkeypatch):
    """data.csv is small and public: require() downloads it once instead of failing."""
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path))
    monkeypatch.delenv("LABBENCH_OFFLINE")
    calls = []

    def fake_fetch(root, progress=None):
        calls.append(root)
        (root / "course").mkdir(parents=True)
        (root / "course" / "data.csv").write_text("0\n")

    monkeypatch.setattr(get_dataset("course-data"), "fetch", fake_fetch)
    assert require("course-data") == tmp_path and calls == [tmp_path]
    assert require("course-data") == tmp_path and len(calls) == 1  # not again


def test_failed_first_use_download_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("LABBENCH_DATA", str(tmp_path))
    monkeypatch.delenv("LABBENCH_OFFLINE")

    def offline(root, progress=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr(get_dataset("course-data"), "fetch", offline)
    with pytest.raises(DataMissing, match="download on first use failed: network is unreachable"):
        require("course-data")
