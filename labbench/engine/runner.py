"""Executing a preset into a run folder.

The folder is the single source of truth: ``preset.toml`` (fully resolved),
``meta.json``, ``events.jsonl``, ``summary.json`` and ``artifacts/``. Whatever
happens (success, divergence, Ctrl-C, an exception) the folder ends with a
``summary.json`` whose ``status`` says which.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..data import DataError
from .devices import describe_device, resolve_device, seed_everything
from .events import EXIT_CODES, META, PRESET, SUMMARY, write_json_atomic
from .presets import Preset, render_preset
from .run import Diverged, Interrupted, Run


@dataclass
class RunResult:
    status: str
    dir: Path
    summary: dict

    @property
    def exit_code(self) -> int:
        if self.summary.get("error_kind") == "data":
            return 2  # bad input: the data set is missing or corrupt
        return EXIT_CODES.get(self.status, 1)


class OutDirNotEmpty(ValueError):
    pass


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def default_run_dir(preset: Preset, base: Path | str = "runs", prefix: str = "") -> Path:
    """A new folder under ``base`` named from the time, exercise and preset;
    never one that exists already."""
    base = Path(base)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    parts = [prefix + stamp, preset.exercise.id]
    if preset.slug:
        parts.append(preset.slug)
    stem = "_".join(parts)
    cand, n = base / stem, 1
    while True:
        try:
            cand.mkdir(parents=True, exist_ok=False)
            return cand
        except FileExistsError:
            n += 1
            cand = base / f"{stem}-{n}"


def prepare_out_dir(out: Path) -> Path:
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise OutDirNotEmpty(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()):
            raise OutDirNotEmpty(f"--out {out}: folder is not empty; choose a new one (runs are never overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _meta(preset: Preset, device) -> dict:
    import torch

    return {
        "labbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "device": describe_device(device),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "command": sys.argv,
        "cwd": os.getcwd(),
        "git_commit": _git_commit(),
        "exercise": preset.exercise.id,
        "preset_source": str(preset.path) if preset.path else None,
        "pid": os.getpid(),
        "start": _now(),
    }


class StopSignal:
    """SIGINT/SIGTERM set a flag the run checks at its next step; a second
    SIGINT while a long, uninterruptible call runs raises KeyboardInterrupt."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        return False


def execute(preset: Preset, run_dir: Path, *, listeners=None, stop: StopSignal | None = None,
            device=None) -> RunResult:
    """Run ``preset`` into the (existing, empty) folder ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if device is None:
        device = resolve_device(preset.device)
    meta = _meta(preset, device)
    write_json_atomic(run_dir / META, meta)
    (run_dir / PRESET).write_text(
        render_preset(preset.exercise, preset.params, name=preset.name, seed=preset.seed, device=str(device)),
        encoding="utf-8")
    summary = {"status": "running", "exercise": preset.exercise.id, "name": preset.name,
               "params": preset.params.model_dump(mode="json"), "seed": preset.seed, "device": str(device),
               "metrics": {}, "start": meta["start"]}
    write_json_atomic(run_dir / SUMMARY, summary)

    own_stop = stop is None
    stop = stop or StopSignal()
    run = Run(run_dir, device=device, seed=preset.seed, listeners=listeners, stop_flag=stop)
    status, message = "ok", ""
    t0 = time.perf_counter()
    try:
        if own_stop:
            stop.__enter__()
        seed_everything(preset.seed)
        run.emit({"type": "start", "exercise": preset.exercise.id, "title": preset.exercise.title,
                  "name": preset.name, "params": preset.params.model_dump(mode="json"), "seed": preset.seed,
                  "device": str(device)})
        preset.exercise.run(preset.params, run)
        if stop.requested:
            status, message = "interrupted", "stopped by the user"
    except Diverged as exc:
        status, message = "diverged", str(exc)
        summary["diverged_step"] = exc.step
    except (Interrupted, KeyboardInterrupt):
        status, message = "interrupted", "stopped by the user"
    except DataError as exc:  # missing or corrupt data: the user's to fix, no traceback
        status, message = "failed", str(exc)
        summary["error_kind"] = "data"
    except Exception as exc:  # the run failed; the folder still says so
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        summary["traceback"] = traceback.format_exc()
    finally:
        if own_stop:
            stop.__exit__(None, None, None)
        wall = time.perf_counter() - t0
        summary.update(status=status, message=message, metrics=run.metrics, last_scalars=run.last_scalars,
                       steps_done=run.step, steps_total=run.total, phase=run.phase,
                       wall_time_s=round(wall, 3), end=_now())
        try:
            run.emit({"type": "end", "status": status, "message": message})
        except Exception:  # pragma: no cover - disk full etc.; the summary still gets written below
            pass
        run.close()
        meta["end"] = summary["end"]
        meta["wall_time_s"] = summary["wall_time_s"]
        write_json_atomic(run_dir / META, meta)
        write_json_atomic(run_dir / SUMMARY, summary)
    return RunResult(status, run_dir, summary)
