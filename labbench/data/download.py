"""Downloads into the data folder: a rich progress bar, a checksum, and an
atomic rename so that an interrupted download never leaves a half file
where a loader would find it."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from . import DataCorrupt, DataError

CHUNK = 1 << 16
USER_AGENT = "labbench (course lab bench; python urllib)"


class DownloadFailed(DataError):
    """The network refused (offline, a proxy, a moved file)."""


def file_digest(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_digest(path: Path, *, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise DataCorrupt when ``path`` does not have the given checksum(s)."""
    for algo, want in (("sha256", sha256), ("md5", md5)):
        if want:
            got = file_digest(path, algo)
            if got.lower() != want.lower():
                raise DataCorrupt(f"{path}: {algo} is {got}, expected {want} (a damaged or different file)")


def _progress():
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), transient=False)


def download(url: str | list[str], dest: Path, *, sha256: str | None = None, md5: str | None = None,
             progress=None, timeout: float = 60.0) -> Path:
    """Download ``url`` (or the first of several mirrors that works) to ``dest``.

    The file is written to a temporary name beside ``dest``, checked against the
    checksum, then renamed. ``progress`` is a rich Progress (one is made when
    None). A file already at ``dest`` with the right checksum is kept.
    """
    dest = Path(dest)
    if dest.exists() and (sha256 or md5):
        try:
            check_digest(dest, sha256=sha256, md5=md5)
            return dest
        except DataCorrupt:
            pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    urls = [url] if isinstance(url, str) else list(url)
    errors = []
    own = progress is None
    prog = _progress() if own else progress
    try:
        if own:
            prog.start()
        for u in urls:
            fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
            try:
                req = urllib.request.Request(u, headers={"User-Agent": USER_AGENT})
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
                    total = resp.headers.get("Content-Length")
                    task = prog.add_task(dest.name, total=int(total) if total else None)
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
                        prog.advance(task, len(block))
                check_digest(Path(tmp), sha256=sha256, md5=md5)
                shutil.move(tmp, dest)
                return dest
            except (urllib.error.URLError, OSError, TimeoutError, DataCorrupt) as exc:
                errors.append(f"{u}: {getattr(exc, 'reason', exc)}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    finally:
        if own:
            prog.stop()
    raise DownloadFailed(f"could not download {dest.name}:\n  " + "\n  ".join(errors))
