"""Run folders under a runs directory: list them with their summary and preset.

UI-free: used by the TUI's runs table and by the ``compare``/``export`` commands.
A folder counts as a run when it holds a ``summary.json`` or an
``events.jsonl``; sweep folders (``sweep.json``) contribute their points.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .engine.events import EVENTS, META, SUMMARY, read_json


@dataclass
class RunInfo:
    path: Path
    exercise: str = ""
    status: str = "?"
    name: str = ""
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    seed: int | None = None
    device: str = ""
    start: str = ""
    wall_time_s: float | None = None
    message: str = ""
    sweep: str = ""  # the sweep folder's name when this run is a sweep point
    system: dict = field(default_factory=dict)  # peak memory, mean utilisation (engine/sysmon.py)

    @property
    def id(self) -> str:
        return f"{self.sweep}/{self.path.name}" if self.sweep else self.path.name

    @property
    def finished(self) -> bool:
        return self.status not in ("running", "?")

    def primary_metric(self) -> tuple[str, object] | None:
        """(name, value) of the exercise's primary metric, else the first number."""
        key = ""
        try:
            from .engine.registry import all_exercises

            ex = all_exercises().get(self.exercise)
            key = ex.primary_metric if ex else ""
        except Exception:  # pragma: no cover - a broken exercise module must not hide runs
            key = ""
        if key and key in self.metrics:
            return key, self.metrics[key]
        for k, v in self.metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return k, v
        return None

    def key_params(self) -> dict:
        """The parameters that differ from the exercise's defaults."""
        try:
            from .engine.registry import all_exercises

            ex = all_exercises().get(self.exercise)
            defaults = ex.default_params().model_dump(mode="json") if ex else {}
        except Exception:  # pragma: no cover
            defaults = {}
        return {k: v for k, v in self.params.items() if k not in defaults or defaults[k] != v}


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def is_live(run_dir: Path | str) -> bool:
    """True while the process that writes ``run_dir`` is running: the pid in
    its meta.json exists on this host and started no later than the run did
    (a pid the system reused for a newer process fails that)."""
    import datetime as _dt
    import socket

    from .engine.procs import process_start_time

    run_dir = Path(run_dir)
    if (read_json(run_dir / SUMMARY) or {}).get("status", "running") != "running":
        return False
    meta = read_json(run_dir / META) or {}
    if meta.get("hostname") not in (None, socket.gethostname()) or not isinstance(meta.get("pid"), int):
        return False
    started = process_start_time(meta["pid"])
    try:
        run_start = _dt.datetime.fromisoformat(meta["start"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return started is not None
    return started is not None and started <= run_start + 2.0  # "start" is written to the second


def load_run(path: Path | str, sweep: str = "") -> RunInfo | None:
    """The summary of one run folder, or None when it is not one."""
    path = Path(path)
    summary = read_json(path / SUMMARY)
    if summary is None and not (path / EVENTS).exists():
        return None
    summary = summary or {}
    info = RunInfo(path=path, exercise=summary.get("exercise", ""), status=summary.get("status", "?"),
                   name=summary.get("name") or "", params=summary.get("params") or {},
                   metrics=summary.get("metrics") or {}, seed=summary.get("seed"),
                   device=summary.get("device") or "", start=summary.get("start") or "",
                   wall_time_s=summary.get("wall_time_s"), message=summary.get("message") or "", sweep=sweep,
                   system=summary.get("system") if isinstance(summary.get("system"), dict) else {})
    if info.status == "running":
        meta = read_json(path / META) or {}
        import socket

        if meta.get("hostname") in (None, socket.gethostname()) and meta.get("pid") and not _pid_alive(meta["pid"]):
            info.status = "lost"
            info.message = info.message or "the process that wrote this run is gone"
    if not info.start:
        info.start = (read_json(path / META) or {}).get("start", "")
    return info


def list_runs(runs_dir: Path | str, include_sweeps: bool = True) -> list[RunInfo]:
    """Every run under ``runs_dir`` (one level, plus sweep points), newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    out: list[RunInfo] = []
    for child in runs_dir.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        if (child / "sweep.json").exists():
            if include_sweeps:
                for point in sorted(p for p in child.iterdir() if p.is_dir()):
                    info = load_run(point, sweep=child.name)
                    if info:
                        out.append(info)
            continue
        info = load_run(child)
        if info:
            out.append(info)
    out.sort(key=lambda r: (r.start or "", r.id), reverse=True)
    return out


def differing_keys(dicts: list[dict]) -> list[str]:
    """Keys whose values are not all equal across ``dicts`` (a missing key counts as a value)."""
    keys: list[str] = []
    for d in dicts:
        for k in d:
            if k not in keys:
                keys.append(k)
    marker = object()
    return [k for k in keys if len({repr(d.get(k, marker)) for d in dicts}) > 1]


_STAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:_(.*))?$")


def run_label(info: RunInfo, max_len: int = 36) -> str:
    """A short name for a run folder: "11-25 09:23:42 lr-0.02" for
    "20241125-092342_1.1-perceptron_lr-0.02" (the exercise is shown elsewhere)."""
    name = info.path.name
    m = _STAMP.match(name)
    if m:
        rest = m.group(7) or ""
        if info.exercise and rest.startswith(info.exercise):
            rest = rest[len(info.exercise):].lstrip("_")
        name = f"{m.group(2)}-{m.group(3)} {m.group(4)}:{m.group(5)}:{m.group(6)}" + (f" {rest}" if rest else "")
    label = f"{info.sweep}/{name}" if info.sweep else name
    return label if len(label) <= max_len else "…" + label[-(max_len - 1):]
