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
- ``for idx in run.batches(b):``  a batch loop that a Stop ends after the current batch
- ``run.resumable(models=..., optimizers=..., ...)``  checkpoints for run.epochs()
                                  (periodically, on Stop, at the end) and the
                                  restore when the run is resumed; see docs/KIT.md
- ``run.checkpoint(...)``, ``run.restore(...)``, ``run.save_weights(...)`` the same by hand

plus ``run.device`` (a ``torch.device``), ``run.seed`` and ``run.dir``.
"""

from __future__ import annotations

import json
import math
import re
import threading
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
        self.exercise_id: str | None = None  # set by the runner; checked when a checkpoint is restored
        self.resume_from: Path | None = None  # set by the runner when this run continues from a checkpoint
        self._tracked: dict | None = None  # what run.resumable() registered
        self._cut_short = False  # run.batches() ended an epoch early on a Stop
        self._restored = False  # a checkpoint was loaded (run.restore / run.resumable)
        self.events_written = 0
        self._emit_lock = threading.Lock()  # the system monitor's thread writes events too
        if self.dir is not None:
            (self.dir / ARTIFACTS).mkdir(parents=True, exist_ok=True)
            self._fh = open(self.dir / EVENTS, "a", encoding="utf-8")

    # ----------------------------------------------------------------- core
    def emit(self, event: dict) -> None:
        event = to_jsonable(event)
        with self._emit_lock:  # whole lines, with times in file order
            event = {"t": round(time.monotonic() - self._t0, 4), **event}
            if self._fh is not None:
                self._fh.write(json.dumps(event, separators=(",", ":")) + "\n")
                self._fh.flush()
            self.events_written += 1
        for listener in self.listeners:
            listener(event)

    def close(self) -> None:
        with self._emit_lock:
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

        With :meth:`resumable`, it also checkpoints after an epoch when one is
        due, on a Stop and after the last epoch, and saves the final weights.
        """
        if self.resume_from is not None and not self._restored:
            raise RuntimeError("this run continues from a checkpoint, but the exercise did not restore it: "
                               "call run.resumable(...) (or run.restore(...)) before run.epochs()")
        first = self.start_epoch if start is None else int(start)
        self.progress(first - 1, total, phase=phase, check=False)
        for epoch in range(first, int(total) + 1):
            if self.stop_requested():
                self.stopped_early = True
                self.text(f"stopped after {phase} {epoch - 1} of {total}; evaluating the model as it is", "warning")
                self._loop_stopped()
                return
            self._cut_short = False
            yield epoch
            if self._cut_short:
                self.stopped_early = True
                self.text(f"stopped during {phase} {epoch} of {total}; evaluating the model as it is", "warning")
                self._loop_stopped()
                return
            self.progress(epoch, total, phase=phase, check=False)
            self._epoch_done(epoch, int(total), phase)
        self._loop_done()

    def batches(self, batches):
        """The batches of one epoch, ending early (no exception) after the
        current batch when a Stop comes; ``run.epochs()`` then ends too, and
        the checkpoint of the last whole epoch is what a resumption starts from."""
        for i, b in enumerate(batches):
            if i and self.stop_requested():
                self._cut_short = True
                return
            yield b

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
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        while True:  # a resumed run writes into a folder that has artifacts already: never overwrite one
            self._artifact_n += 1
            rel = f"{ARTIFACTS}/{safe}-{self._artifact_n:04d}{suffix}"
            if self.dir is None or not (self.dir / rel).exists():
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

    # ------------------------------------------------- checkpoints and resume
    #: run.epochs() checkpoints a resumable loop once this many minutes passed
    #: since the last checkpoint (unless resumable(every=N) says every N epochs)
    checkpoint_minutes = 5.0

    def _events_offset(self) -> int | None:
        with self._emit_lock:
            if self._fh is None:
                return None
            self._fh.flush()
            return self._fh.tell()

    def _artifacts(self) -> Path | None:
        return self.dir / ARTIFACTS if self.dir is not None else None

    def _write_checkpoint(self, payload: dict, reason: str) -> Path | None:
        from ..nn import checkpoint as ck
        from .events import write_json_atomic

        folder = self._artifacts()
        if folder is None:
            return None
        path = ck.save_atomic(payload, folder / ck.CHECKPOINT)
        write_json_atomic(folder / ck.CHECKPOINT_INFO, {
            "file": f"{ARTIFACTS}/{ck.CHECKPOINT}", "exercise": payload.get("exercise"), "epoch": payload["epoch"],
            "total": payload.get("total"), "phase": payload.get("phase"), "saved": payload.get("saved"),
            "reason": reason, "bytes": path.stat().st_size})
        return path

    def checkpoint(self, epoch: int, *, models, optimizers=None, schedulers=None, scaler=None, generators=None,
                   extra: dict | None = None, total: int | None = None, phase: str = "epoch") -> Path | None:
        """Save a checkpoint now (``artifacts/checkpoint.pt``, atomically): the
        ``models``, ``optimizers``, ``schedulers`` (each one object or a
        ``{name: object}`` dict), the GradScaler, every random state (torch,
        CUDA, numpy, Python and the ``generators``), ``extra`` and ``epoch``
        (the epochs completed). Returns the path (None without a run folder)."""
        from ..nn import checkpoint as ck

        payload = ck.capture(epoch, models=models, optimizers=optimizers, schedulers=schedulers, scaler=scaler,
                             generators=generators, extra=extra, exercise=self.exercise_id,
                             total=total if total is not None else self.total, phase=phase,
                             events_offset=self._events_offset())
        return self._write_checkpoint(payload, "manual")

    def restore(self, *, models, optimizers=None, schedulers=None, scaler=None, generators=None,
                extra: dict | None = None, path: Path | str | None = None) -> int:
        """Load a checkpoint (default: the one this run resumes from, else
        ``artifacts/checkpoint.pt``) into the given objects, every random state
        included, and ``extra`` (updated in place); loaded with
        ``weights_only=True``. Sets :attr:`start_epoch` to the next epoch and
        returns the epochs the checkpoint had completed. Raises
        :class:`labbench.nn.CheckpointError` with the reason (another
        exercise's checkpoint, a damaged file, models that do not fit)."""
        from ..nn import checkpoint as ck

        if path is None:
            path = self.resume_from or (self._artifacts() / ck.CHECKPOINT if self.dir is not None else None)
        if path is None:
            raise ck.CheckpointError("no checkpoint to restore: this run has no folder")
        payload = ck.read_checkpoint(Path(path), exercise=self.exercise_id)
        ck.apply(payload, models=models, optimizers=optimizers, schedulers=schedulers, scaler=scaler,
                 generators=generators, extra=extra, path=path)
        self.start_epoch = int(payload["epoch"]) + 1
        self._restored = True
        return int(payload["epoch"])

    def resumable(self, *, models, optimizers=None, schedulers=None, scaler=None, generators=None,
                  extra: dict | None = None, every: int | None = None, minutes: float | None = None) -> dict:
        """Make the loop of :meth:`epochs` resumable. Call it once the models,
        optimisers, schedule and generators exist, just before the loop:

        - when this run is a resumption (``labbench resume``), the checkpoint
          is restored into them and the loop starts after its epoch;
        - after an epoch, a checkpoint is saved every ``every`` epochs (default:
          once ``minutes``, default :attr:`checkpoint_minutes`, have passed since
          the last), after the last epoch, and on a Stop (the state at the end
          of the last whole epoch);
        - when the loop ends (done or stopped) the models' weights go to
          ``artifacts/weights.pt``.

        ``extra`` is a dict of what the loop carries across epochs (histories,
        timers; tensors, numbers, strings, lists); it is returned, restored
        in place when resuming."""
        extra = {} if extra is None else extra
        self._tracked = {"objects": {"models": models, "optimizers": optimizers, "schedulers": schedulers,
                                     "scaler": scaler, "generators": generators, "extra": extra},
                         "every": every, "minutes": self.checkpoint_minutes if minutes is None else float(minutes),
                         "last_time": time.monotonic(), "saved_epoch": None, "snapshot": None}
        if self.resume_from is not None:
            done = self.restore(**self._tracked["objects"], path=self.resume_from)
            self._tracked["saved_epoch"] = done
            self.text(f"resumed from the checkpoint of epoch {done}; continuing at epoch {done + 1}")
        return extra

    def save_weights(self, models, name: str = "weights", epoch: int | None = None) -> Path | None:
        """Save the models' weights (one module or ``{name: module}``) to
        ``artifacts/<name>.pt`` for later exercises (:func:`labbench.nn.load_weights`)."""
        from ..nn import checkpoint as ck

        folder = self._artifacts()
        if folder is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        return ck.save_atomic(ck.weights_payload(models, exercise=self.exercise_id, epoch=epoch),
                              folder / f"{safe}.pt")

    # run.epochs() hooks ------------------------------------------------
    def _epoch_done(self, epoch: int, total: int, phase: str) -> None:
        t = self._tracked
        if t is None:
            return
        from ..nn import checkpoint as ck

        objs = t["objects"]
        t["snapshot"] = ck.capture(epoch, models=objs["models"], optimizers=objs["optimizers"],
                                   schedulers=objs["schedulers"], scaler=objs["scaler"],
                                   generators=objs["generators"], extra=objs["extra"], exercise=self.exercise_id,
                                   total=total, phase=phase, events_offset=self._events_offset())
        if t["every"]:
            due = epoch % int(t["every"]) == 0
        else:
            due = time.monotonic() - t["last_time"] >= 60.0 * t["minutes"]
        if due or epoch >= total:
            self._save_snapshot("end" if epoch >= total else "periodic")

    def _save_snapshot(self, reason: str) -> Path | None:
        t = self._tracked
        snap = t["snapshot"] if t else None
        if snap is None or (t["saved_epoch"] is not None and snap["epoch"] <= t["saved_epoch"]):
            return None
        path = self._write_checkpoint(snap, reason)
        t["saved_epoch"] = snap["epoch"]
        t["last_time"] = time.monotonic()
        return path

    def _loop_stopped(self) -> None:
        t = self._tracked
        if t is None:
            return
        path = self._save_snapshot("stop")
        if path is not None:
            self.text(f"checkpoint of epoch {t['saved_epoch']} saved: `labbench resume {self.dir}` continues the run")
        self._loop_done()

    def _loop_done(self) -> None:
        t = self._tracked
        if t is None:
            return
        done = t["snapshot"]["epoch"] if t["snapshot"] is not None else t["saved_epoch"]
        self.save_weights(t["objects"]["models"], epoch=done)
