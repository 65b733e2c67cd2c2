"""The ``Run`` object an exercise reports through.

An exercise never talks to the UI. It is handed a :class:`Run` and calls:

- ``run.progress(step, total)``   where the run is (e.g. epoch 3 of 35)
- ``run.scalars(step, loss=...)`` metrics per step; losses are watched for divergence
- ``run.text("...")``             a log line
- ``run.table(name, columns, rows)``
- ``run.images(name, array, captions=..., highlight=...)``
- ``run.figure(name, kind, **data)`` line/scatter/heatmap/bar/hist data
- ``run.summary(**metrics)``      final metrics (may be called more than once)
- ``run.check_stop()``            raises :class:`Interrupted` after Ctrl-C / Stop
- ``for epoch in run.epochs(n):`` the epoch loop: reports progress and ends
                                  early (no exception) on the first Stop, so
                                  the exercise still evaluates the model it has

plus ``run.device`` (a ``torch.device``), ``run.seed`` and ``run.dir``.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .events import ARTIFACTS, EVENTS, to_jsonable


class Interrupted(Exception):
    """Raised inside an exercise when the user asked the run to stop."""


class Diverged(Exception):
    """Raised when a watched loss becomes non-finite or blows up."""

    def __init__(self, step: int | None, key: str, value: float, reason: str = ""):
        self.step, self.key, self.value = step, key, value
        where = f" at epoch {step}" if step is not None else ""
        why = reason or ("non-finite" if not math.isfinite(value) else "blew up")
        super().__init__(f"diverged{where}: {key} {why} ({value:.4g})")


def _is_loss_key(key: str) -> bool:
    return "loss" in key.split("/")[0].lower() or key.lower().endswith("loss") or key.lower() == "mse"


class Run:
    """Recorder for one run: appends events, keeps the latest metrics."""

    #: a watched loss this many times its first value counts as diverged
    blowup_factor = 1e4

    def __init__(self, run_dir: Path | None, *, device=None, seed: int = 0, listeners=None,
                 stop_flag: Callable[[], bool] | None = None):
        self.dir = Path(run_dir) if run_dir is not None else None
        self.device = device
        self.seed = seed
        self.listeners: list[Callable[[dict], None]] = list(listeners or [])
        self._stop_flag = stop_flag or (lambda: False)
        self._t0 = time.monotonic()
        self._fh = None
        self._first_loss: dict[str, float] = {}
        self._artifact_n = 0
        self.metrics: dict[str, Any] = {}
        self.last_scalars: dict[str, float] = {}
        self.step: int | None = None
        self.total: int | None = None
        self.phase = "epoch"
        self.start_epoch = 1  # where run.epochs() starts (later than 1 when a run is resumed)
        self.stopped_early = False  # run.epochs() ended on a Stop before its last epoch
        self.events_written = 0
        if self.dir is not None:
            (self.dir / ARTIFACTS).mkdir(parents=True, exist_ok=True)
            self._fh = open(self.dir / EVENTS, "a", encoding="utf-8")

    # ----------------------------------------------------------------- core
    def emit(self, event: dict) -> None:
        event = {"t": round(time.monotonic() - self._t0, 4), **event}
        event = to_jsonable(event)
        if self._fh is not None:
            self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
            self._fh.flush()
        self.events_written += 1
        for listener in self.listeners:
            listener(event)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def stop_requested(self) -> bool:
        return bool(self._stop_flag())

    def check_stop(self) -> None:
        if self._stop_flag():
            raise Interrupted()

    def epochs(self, total: int, start: int | None = None, phase: str = "epoch"):
        """The epoch loop: ``for epoch in run.epochs(p.epochs): ...``.

        Yields ``start`` (default :attr:`start_epoch`, 1 unless resumed) to
        ``total`` and reports progress after each epoch. On the first Stop or
        Ctrl-C it ends early without raising, so the code after the loop still
        evaluates and reports the model it has; the run then ends
        ``interrupted`` with those results (a second Ctrl-C ends at once).
        """
        first = self.start_epoch if start is None else int(start)
        self.progress(first - 1, total, phase=phase, check=False)
        for epoch in range(first, int(total) + 1):
            if self.stop_requested():
                self.stopped_early = True
                self.text(f"stopped after {phase} {epoch - 1} of {total}; evaluating the model as it is", "warning")
                return
            yield epoch
            self.progress(epoch, total, phase=phase, check=False)

    # ------------------------------------------------------------ reporting
    def progress(self, step: int, total: int | None = None, phase: str | None = None, *, check: bool = True) -> None:
        """Where the run is; also the place a stop request takes effect
        (raises :class:`Interrupted` unless ``check=False``)."""
        self.step = int(step)
        if total is not None:
            self.total = int(total)
        if phase:
            self.phase = phase
        self.emit({"type": "progress", "step": self.step, "total": self.total, "phase": self.phase})
        if check:
            self.check_stop()

    def scalars(self, step: int | None = None, values: dict | None = None, *, check: bool | list[str] = True,
                **kw) -> None:
        """Record metrics for one step. Keys that name a loss are watched for
        divergence unless ``check=False`` (or only the keys listed in ``check``)."""
        vals = {**(values or {}), **kw}
        clean: dict[str, float] = {}
        for k, v in vals.items():
            if hasattr(v, "item"):
                v = v.item()
            clean[k] = float(v)
        self.last_scalars.update(clean)
        self.emit({"type": "scalars", "step": step, "values": clean})
        if check:
            keys = check if isinstance(check, list) else [k for k in clean if _is_loss_key(k)]
            for k in keys:
                if k in clean:
                    self.check_divergence(k, clean[k], step)

    def check_divergence(self, key: str, value: float, step: int | None = None) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise Diverged(step, key, value)
        first = self._first_loss.setdefault(key, abs(value))
        if first > 0 and abs(value) > self.blowup_factor * first and abs(value) > 1.0:
            raise Diverged(step, key, value, reason=f"grew over {self.blowup_factor:g}x its first value")

    def text(self, text: str, level: str = "info") -> None:
        self.emit({"type": "text", "text": str(text), "level": level})

    def table(self, name: str, columns: list[str], rows: list[list], title: str = "", note: str = "") -> None:
        self.emit({"type": "table", "name": name, "title": title or name, "columns": list(columns),
                   "rows": [list(r) for r in rows], "note": note})

    def _artifact_path(self, name: str, suffix: str) -> tuple[str, Path | None]:
        self._artifact_n += 1
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        rel = f"{ARTIFACTS}/{safe}-{self._artifact_n:04d}{suffix}"
        return rel, (self.dir / rel if self.dir is not None else None)

    def images(self, name: str, images, *, title: str = "", captions: list[str] | None = None,
               highlight: list[int] | None = None, step: int | None = None, ncols: int | None = None,
               value_range: tuple[float, float] | None = None) -> None:
        """A grid of images: (N, H, W) grey or (N, H, W, 3) colour; floats are
        scaled from ``value_range`` (default: [0, 1], or [-1, 1] when negative
        values are present) to uint8."""
        arr = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = np.transpose(arr, (0, 2, 3, 1))  # NCHW -> NHWC
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype != np.uint8:
            lo, hi = value_range if value_range else ((-1.0, 1.0) if float(np.nanmin(arr)) < -1e-6 else (0.0, 1.0))
            arr = np.clip((arr.astype(np.float32) - lo) / max(hi - lo, 1e-12), 0, 1)
            arr = (arr * 255 + 0.5).astype(np.uint8)
        rel, path = self._artifact_path(name, ".npy")
        if path is not None:
            np.save(path, arr, allow_pickle=False)
        self.emit({"type": "images", "name": name, "title": title or name, "file": rel, "shape": list(arr.shape),
                   "captions": captions, "highlight": highlight, "step": step, "ncols": ncols})

    def figure(self, name: str, kind: str, *, title: str = "", **data) -> None:
        """Data for a picture drawn by the render layer. Kinds and their data:
        ``line`` x, series {label: ys}; ``scatter`` series {label: (xs, ys)};
        ``heatmap`` z (2-D), optional x, y, marks; ``bar`` labels, values (or
        series); ``hist`` values, bins. Extra keys (xlabel, ylabel, logy,
        markers) are passed through."""
        payload = to_jsonable(data)
        event = {"type": "figure", "name": name, "kind": kind, "title": title or name}
        blob = json.dumps(payload)
        if len(blob) > 20_000 and self.dir is not None:
            rel, path = self._artifact_path(name, ".json")
            path.write_text(blob, encoding="utf-8")
            event["file"] = rel
        else:
            event["data"] = payload
        self.emit(event)

    def summary(self, **metrics) -> None:
        """Final metrics; merged over repeated calls."""
        self.metrics.update(to_jsonable(metrics))
        self.emit({"type": "metrics", "values": metrics})
