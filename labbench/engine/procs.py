"""Runs as subprocesses: one ``python -m labbench run`` each (or one
``labbench sweep``, or one ``labbench resume``), a queue when the wanted GPU
is busy, Stop = SIGINT then a hard kill after a grace period.

Each process is started detached (its own session, as ``setsid`` gives): it
survives the lab bench's exit and a dropped SSH connection (SIGHUP), and a
lab bench opened later finds it again by its run folder (:meth:`RunManager.adopt`,
with :func:`labbench.runs.is_live` telling a live writer from a reused pid).

Used by the lab bench (each run gets a view that tails its folder) and by
``labbench sweep --jobs N``; nothing here knows about the UI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .events import SUMMARY, read_json, write_json_atomic

GRACE_S = 60.0  # a stopped run first evaluates the model it has (10 s for MNIST on a busy CPU)
STAGING = ".labbench-tui"  # under the runs folder: preset files and stderr of started runs


@dataclass
class RunProc:
    folder: Path
    preset_file: Path | None
    exercise: str
    device_spec: str = "auto"
    state: str = "queued"  # queued, running, done, cancelled
    device: str = ""
    popen: subprocess.Popen | None = None
    stop_at: float | None = None
    killed: bool = False
    returncode: int | None = None
    view: Any = None  # what the caller follows the run with (the lab bench: a RunView)
    kind: str = "run"  # "run", "sweep" (the folder is a sweep folder) or "resume"
    args: list[str] = field(default_factory=list)  # the labbench command, without python -m labbench
    cmd: list[str] = field(default_factory=list)  # the whole command line, once started
    adopted_pid: int | None = None  # a process started by an earlier lab bench, found running
    pid_start: float | None = None  # when the process started (see process_start_time)
    stderr_path: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else self.adopted_pid

    @property
    def stderr_file(self) -> Path:
        if self.stderr_path is not None:
            return self.stderr_path
        return stderr_file_of(self.folder)

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


def stderr_file_of(folder: Path) -> Path:
    """Where the lab bench keeps the stderr of the process writing ``folder``."""
    folder = Path(folder)
    return folder.parent / STAGING / f"{folder.name}.stderr"


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
    def _stage(self, folder: Path, text: str) -> Path:
        staging = self.runs_dir / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        preset_file = staging / f"{folder.name}.toml"
        preset_file.write_text(text, encoding="utf-8")
        return preset_file

    def _add(self, proc: RunProc) -> RunProc:
        if self.view_factory is not None and proc.view is None and proc.kind != "sweep":
            proc.view = self.view_factory(proc.folder)
        self.procs.append(proc)
        self.schedule()
        return proc

    def submit(self, exercise, params, *, name: str = "", seed: int = 0, device: str = "auto") -> RunProc:
        """One run of ``exercise`` with ``params`` (``labbench run``)."""
        from ..engine.presets import Preset, render_preset
        from ..engine.runner import default_run_dir

        preset = Preset(exercise=exercise, params=params, name=name, seed=seed, device=device)
        folder = default_run_dir(preset, self.runs_dir)
        preset_file = self._stage(folder, render_preset(exercise, params, name=name, seed=seed, device=device))
        return self._add(RunProc(folder=folder, preset_file=preset_file, exercise=exercise.id, device_spec=device,
                                 args=["run", str(preset_file), "--out", str(folder), "--quiet"]))

    def submit_sweep(self, exercise, params, sweep: dict, *, name: str = "", seed: int = 0,
                     device: str = "auto") -> RunProc:
        """A whole sweep as one ``labbench sweep PRESET --out FOLDER`` process;
        its points appear as run folders inside FOLDER."""
        from ..engine.presets import Preset, render_preset
        from ..engine.runner import default_run_dir

        preset = Preset(exercise=exercise, params=params, name=name, seed=seed, device=device, sweep=sweep)
        folder = default_run_dir(preset, self.runs_dir, prefix="sweep-")
        text = render_preset(exercise, params, name=name, seed=seed, device=device, sweep=sweep)
        preset_file = self._stage(folder, text)
        return self._add(RunProc(folder=folder, preset_file=preset_file, exercise=exercise.id, device_spec=device,
                                 kind="sweep", args=["sweep", str(preset_file), "--out", str(folder), "--quiet"]))

    def resume(self, folder: Path, epochs: int | None = None, exercise: str = "") -> RunProc:
        """Continue an interrupted run in its own folder (``labbench resume``).
        The resumed process picks its device itself, so it never waits in the queue."""
        folder = Path(folder)
        args = ["resume", str(folder)] + (["--epochs", str(int(epochs))] if epochs else [])
        stderr = self.runs_dir / STAGING / f"{folder.name}.resume.stderr"
        return self._add(RunProc(folder=folder, preset_file=None, exercise=exercise, device_spec="own",
                                 kind="resume", args=args, stderr_path=stderr))

    def adopt(self, folder: Path, pid: int, started: float, exercise: str = "", kind: str = "run") -> RunProc:
        """Follow (and be able to stop) a process that an earlier lab bench, or
        a headless command, started: ``started`` is its start time as
        :func:`process_start_time` gives, so a reused pid is never taken for it."""
        folder = Path(folder)
        existing = next((p for p in self.procs if p.folder == folder and p.active), None)
        if existing is not None:
            return existing
        proc = RunProc(folder=folder, preset_file=None, exercise=exercise, state="running", adopted_pid=int(pid),
                       pid_start=started, kind=kind)
        if self.view_factory is not None and kind != "sweep":
            proc.view = self.view_factory(folder)
        self.procs.append(proc)
        return proc

    def find_detached(self) -> list[dict]:
        """The records of processes started from a lab bench (any, earlier
        ones too) under this runs folder that are still running."""
        out = []
        staging = self.runs_dir / STAGING
        if not staging.is_dir():
            return out
        for rec_file in sorted(staging.glob("*" + RECORD)):
            rec = read_json(rec_file) or {}
            pid, started = rec.get("pid"), rec.get("started")
            if isinstance(pid, int) and isinstance(started, (int, float)) and same_process(pid, started):
                out.append(rec)
            else:
                try:
                    rec_file.unlink()  # a record of a process that has ended
                except OSError:
                    pass
        return out

    def _busy(self) -> set[str]:
        return {p.device for p in self.procs if p.state == "running" and p.device}

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
            if p.device_spec == "own":
                self._start(p, "")
                continue
            dev = self.pick_device(p.device_spec)
            if dev is not None:
                self._start(p, dev)

    def command(self, p: RunProc, device: str) -> list[str]:
        """The command line that starts ``p`` on ``device`` ("" = its own choice)."""
        return [self.python, "-m", "labbench", *p.args] + (["--device", device] if device else [])

    def _start(self, p: RunProc, device: str) -> None:
        p.cmd = self.command(p, device)
        p.stderr_file.parent.mkdir(parents=True, exist_ok=True)
        with open(p.stderr_file, "wb") as err:
            # start_new_session: the run is not in the app's session, so neither a quit of the app nor
            # the terminal's SIGHUP (a dropped SSH connection) reaches it
            p.popen = subprocess.Popen(p.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                       start_new_session=True, close_fds=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        p.state, p.device = "running", device
        p.pid_start = process_start_time(p.popen.pid)
        if p.pid_start is not None:  # the liveness record a later lab bench reattaches with
            write_json_atomic(record_file(p.folder), {"pid": p.popen.pid, "started": p.pid_start, "kind": p.kind,
                                                      "folder": str(p.folder), "exercise": p.exercise,
                                                      "cmd": p.cmd})

    # ---------------------------------------------------------------- poll
    def _exit_code(self, p: RunProc) -> int | None:
        """The process's exit code, or None while it runs (an adopted process
        is not our child: its folder's liveness record tells)."""
        if p.popen is not None:
            return p.popen.poll()
        return None if same_process(p.adopted_pid, p.pid_start) else -1

    def poll(self) -> list[RunProc]:
        """Reap ended processes (and kill those past their grace period);
        returns the runs that ended now."""
        ended = []
        now = time.monotonic()
        for p in self.procs:
            if p.state != "running" or p.pid is None:
                continue
            rc = self._exit_code(p)
            if rc is None:
                if p.stop_at is not None and now - p.stop_at > self.grace_s and not p.killed:
                    self._kill(p)
                continue
            if p.kind == "sweep" or not p.folder.is_dir():
                p.state, p.returncode = "done", rc
            else:
                self._ended(p, rc)
            try:
                record_file(p.folder).unlink()
            except OSError:
                pass
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

    def _signal(self, p: RunProc, sig: int, group: bool = False) -> None:
        pid = p.pid
        if pid is None or (p.popen is None and not same_process(pid, p.pid_start)):
            return  # never signal a pid that another process has taken over
        try:
            if group:  # the run was started as a session (and group) leader: its helpers go too
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except OSError:
            if group:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass

    def _kill(self, p: RunProc) -> None:
        p.killed = True
        self._signal(p, signal.SIGKILL, group=True)

    # ---------------------------------------------------------------- stop
    def stop(self, p: RunProc) -> None:
        if p.state == "queued":
            p.state = "cancelled"
            if p.kind != "resume":
                try:
                    p.folder.rmdir()
                except OSError:
                    pass
            if p.view is not None:
                p.view.mark_finished("cancelled", "taken off the queue")
            return
        if p.state == "running" and p.pid is not None:
            if p.stop_at is None:
                p.stop_at = time.monotonic()
                self._signal(p, signal.SIGINT)
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
            if p.state != "running":
                continue
            while self._exit_code(p) is None and time.monotonic() < deadline:
                if p.popen is not None:
                    try:
                        p.popen.wait(max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.05)
            if self._exit_code(p) is None:
                self._kill(p)
                if p.popen is not None:
                    try:
                        p.popen.wait(5)
                    except subprocess.TimeoutExpired:  # pragma: no cover
                        pass
        self.poll()


RECORD = ".proc.json"


def record_file(folder: Path) -> Path:
    """The liveness record of the process writing ``folder``: its pid and the
    time the process started (a pid reused later has another start time)."""
    folder = Path(folder)
    return folder.parent / STAGING / f"{folder.name}{RECORD}"


def process_start_time(pid: int | None) -> float | None:
    """When process ``pid`` started (seconds since the epoch, from /proc), or
    None when there is no such process, it is a zombie, or /proc is missing."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # the command name in (...) may hold spaces
        if fields[0] in ("Z", "X"):
            return None
        ticks = int(fields[19])  # field 22 of proc(5): start time in clock ticks after boot
        with open("/proc/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def same_process(pid: int | None, started: float | None) -> bool:
    """True when ``pid`` is still the process that started at ``started``."""
    now = process_start_time(pid)
    return now is not None and started is not None and abs(now - started) < 0.5
