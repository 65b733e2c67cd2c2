"""The run folder's files and how to read them.

``events.jsonl`` holds one JSON object per line, appended and flushed as the
run goes. Every event has ``type`` and ``t`` (seconds since the start). Types:

- ``start``     exercise, params, seed, device, total (steps expected, or null)
- ``progress``  step, total, phase (what is being counted, e.g. "epoch")
- ``scalars``   step, values {name: float}; a name "chart/series" puts the
                series on a shared chart (e.g. "loss/SGD", "loss/Adam")
- ``text``      text, level ("info", "warning", "error")
- ``table``     name, title, columns, rows
- ``images``    name, title, file (an .npy under artifacts/), shape, captions,
                highlight (indices drawn as errors), step
- ``figure``    name, kind ("line", "scatter", "heatmap", "bar", "hist"),
                title, data (inline) or file (a .json under artifacts/)
- ``system``    values {cpu_percent, rss_mb, gpu_util, gpu_mem_used_mb, ...}
                every few seconds, or step + values {cuda_peak_mb} after an
                epoch on CUDA; written by a thread (see engine/sysmon.py)
- ``end``       status, message

Readers (console, TUI, compare, export) may tail the file while it grows: a
last line without its newline is not yet complete and is left for later.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

SUMMARY = "summary.json"
EVENTS = "events.jsonl"
META = "meta.json"
PRESET = "preset.toml"
ARTIFACTS = "artifacts"

STATUSES = ("running", "ok", "diverged", "interrupted", "failed")
EXIT_CODES = {"ok": 0, "failed": 1, "diverged": 3, "interrupted": 130}


def to_jsonable(obj: Any) -> Any:
    """Numbers, arrays and tensors to plain JSON values; NaN/inf to strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        return to_jsonable(obj.detach().cpu().numpy())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_json_number(v: Any) -> float:
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, math.nan)
    return float(v)


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(to_jsonable(data), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


class EventTail:
    """Reads ``events.jsonl`` incrementally; call :meth:`read` again for new events."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # incomplete last line (or b"")
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line from a killed writer: skip it
        return out


def iter_events(run_dir: Path) -> Iterator[dict]:
    yield from EventTail(Path(run_dir) / EVENTS).read()


def load_artifact(run_dir: Path, name: str):
    path = Path(run_dir) / name
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    return json.loads(path.read_text(encoding="utf-8"))


def scalar_history(events) -> dict[str, tuple[list[float], list[float]]]:
    """{name: (steps, values)} from a sequence of events."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for ev in events:
        if ev.get("type") != "scalars":
            continue
        step = ev.get("step")
        for k, v in (ev.get("values") or {}).items():
            xs, ys = out.setdefault(k, ([], []))
            xs.append(step)
            ys.append(from_json_number(v))
    return out


def chart_of(key: str) -> tuple[str, str]:
    """A scalar's chart and series: "loss/train" -> ("loss", "train"); "mse" -> ("mse", "mse")."""
    chart, _, series = key.partition("/")
    return chart, series or chart


def curve_charts(events) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """{chart: {series: (steps, values)}}: the scalars grouped the way they are drawn."""
    charts: dict[str, dict] = {}
    for key, xy in scalar_history(events).items():
        chart, series = chart_of(key)
        charts.setdefault(chart, {})[series] = xy
    return charts


def last_by_name(events, kind: str) -> dict[str, dict]:
    """The latest event of type ``kind`` ("figure", "images", "table") for each name."""
    out: dict[str, dict] = {}
    for ev in events:
        if ev.get("type") == kind:
            out[ev.get("name", kind)] = ev
    return out
