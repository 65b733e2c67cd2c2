"""Runs as subprocesses: one ``python -m labbench run`` each, a queue when the
wanted GPU is busy, Stop = SIGINT then a hard kill after a grace period.

Used by the lab bench (each run gets a view that tails its folder) and by
``labbench sweep --jobs N``; nothing here knows about the UI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .events import SUMMARY, read_json, write_json_atomic

GRACE_S = 5.0
STAGING = ".labbench-tui"  # under the runs folder: preset files and stderr of started runs


@dataclass
class RunProc:
    folder: Path
    preset_file: Path
    exercise: str
    device_spec: str = "auto"
    state: str = "queued"  # queued, running, done, cancelled
    device: str = ""
    popen: subprocess.Popen | None = None
    stop_at: float | None = None
    killed: bool = False
    returncode: int | None = None
    view: Any = None  # what the caller follows the run with (the lab bench: a RunView)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def stderr_file(self) -> Path:
        return self.preset_file.with_suffix(".stderr")

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


class RunManager:
    """Starts, queues, polls and stops runs. ``gpus`` are device names such as
    "cuda:0"; with none, "auto" means the CPU and runs start at once."""

    def __init__(self, runs_dir: Path, gpus: list[str] | None = None, grace_s: float = GRACE_S,
                 python: str | None = None, view_factory: Callable[[Path], Any] | None = None):
        self.runs_dir = Path(runs_dir)
        self.gpus = list(gpus or [])
        self.grace_s = grace_s
        self.python = python or sys.executable
        self.view_factory = view_factory
        self.procs: list[RunProc] = []

    # -------------------------------------------------------------- submit
    def submit(self, exercise, params, *, name: str = "", seed: int = 0, device: str = "auto") -> RunProc:
        from ..engine.presets import Preset, render_preset
        from ..engine.runner import default_run_dir

        preset = Preset(exercise=exercise, params=params, name=name, seed=seed, device=device)
        folder = default_run_dir(preset, self.runs_dir)
        staging = self.runs_dir / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        preset_file = staging / f"{folder.name}.toml"
        preset_file.write_text(render_preset(exercise, params, name=name, seed=seed, device=device),
                               encoding="utf-8")
        proc = RunProc(folder=folder, preset_file=preset_file, exercise=exercise.id, device_spec=device)
        if self.view_factory is not None:
            proc.view = self.view_factory(folder)
        self.procs.append(proc)
        self.schedule()
        return proc

    def _busy(self) -> set[str]:
        return {p.device for p in self.procs if p.state == "running"}

    def pick_device(self, spec: str) -> str | None:
        """The device a run asking for ``spec`` goes to now, or None to wait."""
        busy = self._busy()
        if spec == "cpu" or spec == "mps":
            return spec
        if spec == "auto":
            if not self.gpus:
                return "cpu"
            free = [g for g in self.gpus if g not in busy]
            return free[0] if free else None
        name = "cuda:0" if spec == "cuda" else spec
        return None if name in busy else name

    def schedule(self) -> None:
        for p in self.procs:
            if p.state != "queued":
                continue
            dev = self.pick_device(p.device_spec)
            if dev is not None:
                self._start(p, dev)

    def _start(self, p: RunProc, device: str) -> None:
        cmd = [self.python, "-m", "labbench", "run", str(p.preset_file), "--out", str(p.folder), "--quiet",
               "--device", device]
        with open(p.stderr_file, "wb") as err:
            p.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                       start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        p.state, p.device = "running", device

    # ---------------------------------------------------------------- poll
    def poll(self) -> list[RunProc]:
        """Reap ended processes (and kill those past their grace period);
        returns the runs that ended now."""
        ended = []
        now = time.monotonic()
        for p in self.procs:
            if p.state != "running" or p.popen is None:
                continue
            rc = p.popen.poll()
            if rc is None:
                if p.stop_at is not None and now - p.stop_at > self.grace_s and not p.killed:
                    self._kill(p)
                continue
            self._ended(p, rc)
            ended.append(p)
        if ended:
            self.schedule()
        return ended

    def _ended(self, p: RunProc, rc: int) -> None:
        p.state, p.returncode = "done", rc
        summary = read_json(p.folder / SUMMARY)
        if summary is None or summary.get("status") == "running":
            if p.killed or p.stop_at is not None:
                status, msg = "interrupted", "stopped by the user (killed after the grace period)"
            else:
                status, msg = "failed", self.stderr_tail(p) or f"the run process exited with code {rc}"
            if summary is not None or any(p.folder.iterdir()):
                write_json_atomic(p.folder / SUMMARY, {**(summary or {"exercise": p.exercise}),
                                                       "status": status, "message": msg})
            if p.view is not None:
                p.view.mark_finished(status, msg)

    def stderr_tail(self, p: RunProc, n: int = 600) -> str:
        try:
            text = p.stderr_file.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        return text[-n:]

    def _kill(self, p: RunProc) -> None:
        p.killed = True
        try:
            os.killpg(p.popen.pid, signal.SIGKILL)
        except OSError:
            try:
                p.popen.kill()
            except OSError:
                pass

    # ---------------------------------------------------------------- stop
    def stop(self, p: RunProc) -> None:
        if p.state == "queued":
            p.state = "cancelled"
            try:
                p.folder.rmdir()
            except OSError:
                pass
            if p.view is not None:
                p.view.mark_finished("cancelled", "taken off the queue")
            return
        if p.state == "running" and p.popen is not None:
            if p.stop_at is None:
                p.stop_at = time.monotonic()
                try:
                    p.popen.send_signal(signal.SIGINT)
                except OSError:
                    pass
            else:  # a second Stop: do not wait for the grace period
                self._kill(p)

    @property
    def active(self) -> list[RunProc]:
        return [p for p in self.procs if p.active]

    def stop_all(self) -> None:
        for p in list(self.procs):
            if p.active:
                self.stop(p)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop everything and wait (SIGINT, then SIGKILL after the grace period);
        reaps every child so none is left behind."""
        self.stop_all()
        deadline = time.monotonic() + (self.grace_s if timeout is None else timeout)
        for p in self.procs:
            if p.popen is None or p.popen.returncode is not None:
                continue
            try:
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(p)
                try:
                    p.popen.wait(5)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    pass
        self.poll()
