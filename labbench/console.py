"""Headless output: a rich progress bar while a run goes, then a summary table."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

STATUS_STYLE = {"ok": "green", "diverged": "yellow", "interrupted": "magenta", "failed": "red",
                "running": "cyan", "pending": "dim"}


def fmt_value(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e5:
            return str(int(v))  # inputs such as 1.0, -2.0 and exact scores read best without decimals
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.3e}"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    return str(v)


class ConsoleProgress:
    """A run listener that draws progress and prints text and tables as they come."""

    def __init__(self, console: Console | None = None, quiet: bool = False, label: str = ""):
        self.console = console or Console()
        self.quiet = quiet
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[phase]} {task.completed:.0f}/{task.fields[total_txt]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self.task = None

    def __enter__(self):
        if not self.quiet:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if not self.quiet:
            self.progress.stop()
        return False

    def _print(self, *items, **kw) -> None:
        if not self.quiet:
            self.progress.console.print(*items, **kw)

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        kind = event.get("type")
        if kind == "start":
            desc = self.label or event.get("exercise", "run")
            self.task = self.progress.add_task(desc, total=None, phase="epoch", total_txt="?", metrics="")
        elif kind == "progress" and self.task is not None:
            total = event.get("total")
            self.progress.update(self.task, completed=event.get("step") or 0, total=total,
                                 phase=event.get("phase") or "", total_txt=str(total) if total else "?")
        elif kind == "scalars" and self.task is not None:
            vals = event.get("values") or {}
            shown = list(vals.items())[:4]
            text = "  ".join(f"{k}={fmt_value(v if not isinstance(v, str) else float('nan'))}" for k, v in shown)
            self.progress.update(self.task, metrics=text)
        elif kind == "text":
            style = {"warning": "yellow", "error": "red"}.get(event.get("level"), "")
            self._print(f"[{style}]{event.get('text')}[/]" if style else event.get("text"), highlight=False)
        elif kind == "table":
            from .render.tables import compact_table

            self._print(compact_table(event.get("title", ""), event.get("columns", []), event.get("rows", []),
                                   event.get("note", "")))


def summary_table(summary: dict, run_dir: Path | None = None) -> Table:
    status = summary.get("status", "?")
    table = Table(title=f"{summary.get('exercise', '')}  [{STATUS_STYLE.get(status, '')}]{status}[/]",
                  title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    if summary.get("message"):
        table.add_row("message", str(summary["message"]))
    if summary.get("steps_done") is not None:
        total = summary.get("steps_total")
        table.add_row(summary.get("phase") or "steps", f"{summary['steps_done']}" + (f"/{total}" if total else ""))
    table.add_row("wall time", f"{summary.get('wall_time_s', 0):.2f} s")
    table.add_row("device", str(summary.get("device", "")))
    from .engine.sysmon import summary_rows

    for key, text in summary_rows(summary.get("system")):  # peak memory, mean utilisation
        table.add_row(key, text)
    for k, v in (summary.get("metrics") or {}).items():
        table.add_row(k, fmt_value(v))
    if run_dir is not None:
        table.add_row("run folder", str(run_dir))
    return table


def print_pictures(console: Console, run_dir: Path, max_width: int = 120) -> None:
    """The run's final pictures, drawn by the same render layer as the lab
    bench: one chart per curve group, the last version of every figure and
    image grid."""
    from .engine.events import curve_charts, iter_events, last_by_name, load_artifact
    from .render import colour_mode, render_figure, render_images

    events = list(iter_events(run_dir))
    width = max(40, min(console.width, max_width))
    mode = colour_mode(console.color_system)
    for chart, series in curve_charts(events).items():
        if max(len(xs) for xs, _ in series.values()) > 1:
            console.print(render_figure({"kind": "line", "title": chart, "data": {"series": series}},
                                        width=width, height=14, colors=mode))
    for ev in last_by_name(events, "figure").values():
        console.print(render_figure(ev, width=width, height=16, run_dir=run_dir, colors=mode))
    for ev in last_by_name(events, "images").values():
        try:
            arr = load_artifact(run_dir, ev["file"])
        except (OSError, ValueError, KeyError):
            continue
        console.print(render_images(arr, ev.get("captions"), ev.get("highlight"), width=width,
                                    ncols=ev.get("ncols"), colors="truecolor" if mode == "truecolor" else "256",
                                    title=ev.get("title", ""), max_lines=40))
