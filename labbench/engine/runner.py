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
from .events import EXIT_CODES, META, PRESET, SUMMARY, read_json, write_json_atomic
from .presets import Preset, render_preset
from .run import Diverged, Interrupted, Run
from .sysmon import SystemMonitor


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
            device=None, resume: "Resumption | None" = None) -> RunResult:
    """Run ``preset`` into the (existing, empty) folder ``run_dir``
    (or, with ``resume``, continue the run in it: see :func:`resume`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if device is None:
        device = resolve_device(preset.device)
    meta = _meta(preset, device)
    if resume is not None:  # resume: the folder's meta.json keeps its history
        meta = resume.merge_meta(meta)
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
    run.exercise_id = preset.exercise.id
    sysmon = SystemMonitor.attach(run, device)  # CPU/GPU samples into events.jsonl from the start event on
    if resume is not None:
        resume.attach(run)
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
        summary["system"] = sysmon.stop()  # its last sample comes before the end event; nothing after
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


# ------------------------------------------------------------------- resume
class ResumeError(ValueError):
    """A run folder that cannot be resumed (said why); bad input, exit 2."""


@dataclass
class Resumption:
    """What :func:`execute` needs to continue a run in its own folder."""

    checkpoint: Path
    from_epoch: int
    epochs: int | None
    previous_meta: dict
    previous_summary: dict
    events_offset: int | None = None  # where events.jsonl was when the checkpoint was taken
    previous_s: float = 0.0  # how long the earlier parts ran (their wall time, or their last event's time)
    set_aside: int = 0  # events of epochs after the checkpoint, moved out of events.jsonl

    def attach(self, run: Run) -> None:
        """The run restores from the checkpoint; its event clock goes on from
        the previous parts' wall time, so times stay increasing."""
        run.resume_from = self.checkpoint
        run._t0 -= self.previous_s

    def merge_meta(self, meta: dict) -> dict:
        """The folder's meta.json with this resumption appended under ``resumes``
        (and the pid, host and device of the process now writing the folder)."""
        old = dict(self.previous_meta or {})
        entry = {k: meta.get(k) for k in ("start", "command", "cwd", "pid", "hostname", "device", "labbench",
                                          "torch", "git_commit")}
        entry.update(from_epoch=self.from_epoch, epochs=self.epochs, events_set_aside=self.set_aside)
        merged = {**meta, **{k: v for k, v in old.items() if k not in ("end", "wall_time_s")}}
        for k in ("pid", "hostname", "device", "cuda_available"):
            merged[k] = meta.get(k)
        merged["resumes"] = list(old.get("resumes") or []) + [entry]
        return merged


def _last_event_time(run_dir: Path) -> float:
    """The ``t`` of the last whole event in events.jsonl (0 when none)."""
    import json

    from .events import EVENTS

    try:
        with open(Path(run_dir) / EVENTS, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            lines = fh.read().split(b"\n")
    except OSError:
        return 0.0
    for line in reversed(lines[:-1] if len(lines) > 1 else []):  # the last piece may be torn
        try:
            t = json.loads(line).get("t")
        except (ValueError, AttributeError):
            continue
        if isinstance(t, (int, float)):
            return float(t)
    return 0.0


def checkpoint_info(run_dir: Path) -> dict | None:
    """What ``artifacts/checkpoint.json`` says (epoch, total, exercise, saved,
    reason) without loading the checkpoint or torch; None when there is none.
    For a runs table that offers resume; :func:`prepare_resume` checks for real."""
    from .events import ARTIFACTS

    info = read_json(Path(run_dir) / ARTIFACTS / "checkpoint.json")
    if not isinstance(info, dict) or not isinstance(info.get("epoch"), int):
        return None
    if not (Path(run_dir) / ARTIFACTS / "checkpoint.pt").is_file():
        return None
    return info


def _set_aside_events(run_dir: Path, offset: int | None) -> int:
    """Move the progress and scalars events written after ``offset`` (the
    checkpoint's place in events.jsonl: epochs that will be trained again) to
    ``artifacts/events-set-aside.jsonl``, with any torn last line; the rest
    stays. Returns how many lines moved."""
    import json

    from .events import ARTIFACTS, EVENTS

    path = run_dir / EVENTS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if offset is None or offset < 0 or offset > len(data):
        offset = len(data)
    head, tail = data[:offset], data[offset:]
    if head and not head.endswith(b"\n"):  # cannot happen with a checkpoint's offset; keep lines whole
        cut = head.rfind(b"\n") + 1
        head, tail = head[:cut], head[cut:] + tail
    keep, moved = [], []
    lines = tail.split(b"\n")
    last_torn = not tail.endswith(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if i == len(lines) - 1 and last_torn:
            moved.append(line)  # a line cut off by a kill
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            moved.append(line)
            continue
        (moved if isinstance(ev, dict) and ev.get("type") in ("scalars", "progress") else keep).append(line)
    if not moved:
        return 0
    with open(run_dir / ARTIFACTS / "events-set-aside.jsonl", "ab") as fh:
        fh.write(b"\n".join(moved) + b"\n")
    tmp = path.with_name(f".{path.name}.resume.tmp")
    tmp.write_bytes(head + b"".join(line + b"\n" for line in keep))
    os.replace(tmp, path)
    return len(moved)


def prepare_resume(run_dir: Path, *, epochs: int | None = None, preset: Preset | None = None
                   ) -> tuple[Preset, Resumption]:
    """Check that ``run_dir`` can be resumed (to ``epochs`` in all, when given)
    and return the preset to run and the :class:`Resumption`; raises
    :class:`ResumeError` (or ``ParamsInvalid`` for a bad preset) saying why not.
    Nothing in the folder changes."""
    from ..nn.checkpoint import CHECKPOINT, CheckpointError, read_checkpoint
    from ..nn.schedules import LENGTH_BOUND
    from .events import ARTIFACTS, read_json
    from .params import validate_params
    from .presets import load_preset

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResumeError(f"{run_dir}: no such run folder")
    if preset is None:
        if not (run_dir / PRESET).is_file():
            raise ResumeError(f"{run_dir}: not a run folder (no {PRESET})")
        preset = load_preset(run_dir / PRESET)
    summary = read_json(run_dir / SUMMARY)
    summary = summary if isinstance(summary, dict) else {}
    meta = read_json(run_dir / META)
    meta = meta if isinstance(meta, dict) else {}
    if summary.get("status") == "running" and meta.get("hostname") == socket.gethostname():
        pid = meta.get("pid")
        try:
            alive = bool(pid) and int(pid) != os.getpid() and (os.kill(int(pid), 0) is None)
        except (OSError, ValueError, TypeError):
            alive = False
        if alive:
            raise ResumeError(f"{run_dir}: still running (process {pid}); stop it first")
    ckpt = run_dir / ARTIFACTS / CHECKPOINT
    if not ckpt.is_file():
        raise ResumeError(f"{run_dir}: no checkpoint to resume from ({ARTIFACTS}/{CHECKPOINT} is missing: the "
                          f"exercise {preset.exercise.id} does not save checkpoints, or the run ended before its first)")
    try:
        payload = read_checkpoint(ckpt, exercise=preset.exercise.id)
    except CheckpointError as exc:
        raise ResumeError(str(exc)) from None
    done = int(payload["epoch"])
    fields = preset.exercise.Params.model_fields
    if epochs is not None:
        if "epochs" not in fields:
            raise ResumeError(f"--epochs: exercise {preset.exercise.id} has no epochs parameter")
        if epochs <= done:
            raise ResumeError(f"--epochs {epochs}: the checkpoint has {done} epochs done already; "
                              f"give more than {done}")
        values = {**preset.params.model_dump(mode="json"), "epochs": int(epochs)}
        preset.params = validate_params(preset.exercise.Params, values, locate=lambda key: "--epochs")
        for name, state in (payload.get("schedulers") or {}).items():
            if isinstance(state, dict) and state.get("kind") in LENGTH_BOUND and state.get("total") != epochs:
                raise ResumeError(f"--epochs {epochs}: the {state['kind']} LR schedule of this run is shaped for "
                                  f"{state.get('total')} epochs and cannot be stretched; resume without --epochs")
    total = getattr(preset.params, "epochs", None)
    if epochs is None and isinstance(total, int) and done >= total:
        raise ResumeError(f"{run_dir}: all {total} epochs are done; `--epochs N` (N > {total}) extends the run")
    return preset, Resumption(checkpoint=ckpt, from_epoch=done, epochs=total if isinstance(total, int) else None,
                              previous_meta=meta, previous_summary=summary,
                              events_offset=payload.get("events_offset"),
                              previous_s=max(float(summary.get("wall_time_s") or 0.0), _last_event_time(run_dir)))


def resume(run_dir: Path, *, epochs: int | None = None, listeners=None, stop: StopSignal | None = None,
           device=None, preset: Preset | None = None,
           prepared: tuple[Preset, Resumption] | None = None) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint, in the same folder:
    events are appended (those of epochs after the checkpoint, which are
    trained again, are set aside first), ``meta.json`` records the resumption
    under ``resumes``, and the summary is written anew at the end, with the
    wall time of every part. ``epochs`` extends (or sets) the run's length.
    Raises :class:`ResumeError` when the folder cannot be resumed
    (``prepared``: what :func:`prepare_resume` returned, to check only once)."""
    run_dir = Path(run_dir)
    preset, resumption = prepared or prepare_resume(run_dir, epochs=epochs, preset=preset)
    if device is None:
        device = resolve_device(preset.device)
    resumption.set_aside = _set_aside_events(run_dir, resumption.events_offset)
    result = execute(preset, run_dir, listeners=listeners, stop=stop, device=device, resume=resumption)
    # the record of every part: summary and meta say it was resumed, and the total wall time
    prev = resumption.previous_summary
    meta = read_json(run_dir / META)
    meta = meta if isinstance(meta, dict) else {}
    started = (meta.get("resumes") or [{}])[-1].get("start")
    parts = list(prev.get("resumed") or []) + [{
        "start": started, "from_epoch": resumption.from_epoch, "epochs": resumption.epochs,
        "previous_status": prev.get("status"), "wall_time_s": result.summary.get("wall_time_s")}]
    total_wall = resumption.previous_s + float(result.summary.get("wall_time_s") or 0)
    result.summary.update(resumed=parts, wall_time_s=round(total_wall, 3))
    if meta:
        meta["wall_time_s"] = result.summary["wall_time_s"]
        write_json_atomic(run_dir / META, meta)
    write_json_atomic(run_dir / SUMMARY, result.summary)
    return result
