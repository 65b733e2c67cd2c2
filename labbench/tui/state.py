"""What the live panels show about one run, built from its events.

Pure data (no widgets): :class:`RunView` tails a run folder's ``events.jsonl``
and keeps curves by chart, the latest figure/images of each name, tables, the
log and the progress. The app polls it from a timer and redraws what changed.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..engine.events import EVENTS, SUMMARY, EventTail, chart_of, from_json_number, read_json
from ..engine.sysmon import SystemSeries


class RunView:
    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.tail = EventTail(self.folder / EVENTS)
        self.charts: dict[str, dict[str, tuple[list, list]]] = {}
        self.figures: dict[str, dict] = {}
        self.images: dict[str, dict] = {}
        self.tables: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []
        self.system = SystemSeries()  # CPU, memory, GPU samples (the "system" events)
        self.exercise = ""
        self.title = ""
        self.name = ""
        self.params: dict = {}
        self.device = ""
        self.seed = None
        self.step = None
        self.total = None
        self.phase = "epoch"
        self.last: dict[str, float] = {}
        self.metrics: dict = {}
        self.status = "running"
        self.message = ""
        self.t = 0.0
        self.version = 0  # bumped on every change
        self.dirty: set[str] = set()  # "charts:<name>", "figures:<name>", "images", "tables", "log", "status"
        self.ended = False
        self.seen_at = time.monotonic()  # when the last event was read (for "no news for ...")

    # ------------------------------------------------------------------
    def poll(self) -> bool:
        """Read new events; True when anything changed."""
        events = self.tail.read()
        for ev in events:
            self.apply(ev)
        if not self.ended and not events and self.status == "running":
            # a run killed hard never writes "end": trust summary.json when it says otherwise
            s = read_json(self.folder / SUMMARY)
            if s and s.get("status") not in (None, "running"):
                self._finish(s)
        return bool(events)

    def apply(self, ev: dict) -> None:
        kind = ev.get("type")
        if isinstance(ev.get("t"), (int, float)):
            self.t = float(ev["t"])
        if self.system.add(ev):  # the machine, not the run's own news: "no news for ..." still counts
            self.dirty.add("system")
        else:
            self.seen_at = time.monotonic()
        if kind == "start":
            if self.ended:  # the run was resumed in the same folder: it goes on
                self.ended, self.status, self.message = False, "running", ""
            self.exercise = ev.get("exercise", "")
            self.title = ev.get("title", "")
            self.name = ev.get("name") or ""
            self.params = ev.get("params") or {}
            self.device = ev.get("device", "")
            self.seed = ev.get("seed")
            self.dirty.add("status")
        elif kind == "progress":
            self.step, self.total = ev.get("step"), ev.get("total")
            self.phase = ev.get("phase") or self.phase
            self.dirty.add("status")
        elif kind == "scalars":
            step = ev.get("step")
            for k, v in (ev.get("values") or {}).items():
                val = from_json_number(v)
                chart, series = chart_of(k)
                xs, ys = self.charts.setdefault(chart, {}).setdefault(series, ([], []))
                xs.append(step if step is not None else len(xs))
                ys.append(val)
                self.last[k] = val
                self.dirty.add(f"charts:{chart}")
            self.dirty.add("status")
        elif kind == "text":
            self.log.append((ev.get("level", "info"), str(ev.get("text", ""))))
            self.dirty.add("log")
        elif kind == "table":
            self.tables[ev.get("name", "table")] = ev
            self.dirty.add("tables")
        elif kind == "images":
            self.images[ev.get("name", "images")] = ev
            self.dirty.add("images")
        elif kind == "figure":
            name = ev.get("name", "figure")
            self.figures[name] = ev
            self.dirty.add(f"figures:{name}")
        elif kind == "metrics":
            self.metrics.update(ev.get("values") or {})
            self.dirty.add("status")
        elif kind == "end":
            s = read_json(self.folder / SUMMARY) or {}
            if s.get("status") in (None, "running"):
                s = {**s, "status": ev.get("status", "?"), "message": ev.get("message", "")}
            self._finish(s)
        self.version += 1

    def _finish(self, summary: dict) -> None:
        self.ended = True
        self.status = summary.get("status", self.status)
        self.message = summary.get("message") or ""
        if summary.get("metrics"):
            self.metrics.update(summary["metrics"])
        if summary.get("wall_time_s") is not None:
            self.t = float(summary["wall_time_s"])
        if isinstance(summary.get("diverged_step"), int):
            # the loss of epoch N blew up before epoch N's progress event: say N, as the message does
            self.step = max(self.step or 0, summary["diverged_step"])
        if self.status != "ok" and self.message:
            self.log.append(("error" if self.status == "failed" else "warning", f"{self.status}: {self.message}"))
            self.dirty.add("log")
        self.dirty.add("status")
        self.version += 1

    def mark_finished(self, status: str, message: str) -> None:
        """Set by the process owner when the run's process ended without an end event."""
        if not self.ended:
            self._finish({"status": status, "message": message})

    def quiet_s(self) -> float:
        """Seconds since the last event of a run that has not ended (0 once ended)."""
        return 0.0 if self.ended else time.monotonic() - self.seen_at

    def take_dirty(self) -> set[str]:
        d, self.dirty = self.dirty, set()
        return d

    def points(self) -> int:
        return sum(len(xs) for series in self.charts.values() for xs, _ in series.values())


class SweepView:
    """A sweep folder as it fills: its grid (``sweep.json``) and each point's
    summary. ``current()`` is the point being run now."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.index: dict = {}
        self.rows: list[tuple[dict, dict]] = []  # (point, summary) in grid order

    def poll(self) -> None:
        from ..engine.sweep import load_sweep

        self.index = read_json(self.folder / "sweep.json") or {}
        self.rows = load_sweep(self.folder) if self.index else []

    @property
    def keys(self) -> list[str]:
        return list(self.index.get("keys") or [])

    def point_dir(self, point: dict) -> Path:
        return self.folder / point["dir"]

    def current(self) -> Path | None:
        """The folder of the point that is running (the newest one started)."""
        started = [self.point_dir(pt) for pt, s in self.rows if s.get("status") == "running"]
        if started:
            return started[-1]
        begun = [self.point_dir(pt) for pt, _ in self.rows if (self.point_dir(pt) / EVENTS).exists()]
        return begun[-1] if begun else None

    def done(self) -> int:
        return sum(1 for _, s in self.rows if s.get("status") not in ("pending", "running", None))
