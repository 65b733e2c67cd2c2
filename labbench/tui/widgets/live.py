"""The live panels of one run: status line, curves (textual-plotext), figures,
image grids, tables and the log. Fed from a :class:`RunView` by the app's timer."""

from __future__ import annotations

import re

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import RichLog, Static
from textual_plotext import PlotextPlot

from ...console import STATUS_STYLE, fmt_value, rich_table
from ...engine.events import load_artifact
from ...render.figures import render_figure
from ...render.images import render_images
from ...render.plots import draw_line
from ..state import RunView


def safe_id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", name)


class CurvePlot(PlotextPlot):
    """One chart of curves ("loss/train", "loss/val" share the chart "loss")."""

    def __init__(self, chart: str, **kw):
        super().__init__(**kw)
        self.chart = chart
        self.series: dict[str, tuple[list, list]] = {}
        self.logy = False
        self.points_drawn = 0

    def set_series(self, series: dict, logy: bool) -> None:
        self.series = {k: (list(xs), list(ys)) for k, (xs, ys) in series.items()}
        self.logy = logy
        self.points_drawn = draw_line(self.plt, self.series, logy=logy,
                                      title=self.chart + (" (log)" if logy else ""))
        self.refresh()


class FigureView(Widget):
    """A figure event drawn at the widget's size."""

    DEFAULT_CSS = "FigureView { height: 16; }"

    def __init__(self, event: dict, run_dir, **kw):
        super().__init__(**kw)
        self.event = event
        self.run_dir = run_dir

    def set_event(self, event: dict) -> None:
        self.event = event
        if event.get("kind") == "heatmap":
            z = (event.get("data") or {}).get("z") or []
            self.styles.height = min(max(len(z) + 4, 6), 30)
        self.refresh()

    def render(self):
        return render_figure(self.event, self.size.width, self.size.height, run_dir=self.run_dir)


class ImageView(Widget):
    """An images event as a half-block grid, as wide as the widget."""

    DEFAULT_CSS = "ImageView { height: auto; }"

    def __init__(self, event: dict, run_dir, **kw):
        super().__init__(**kw)
        self.run_dir = run_dir
        self.event = event
        self.array = None
        self.set_event(event)

    def set_event(self, event: dict) -> None:
        self.event = event
        try:
            self.array = load_artifact(self.run_dir, event["file"])
        except (OSError, ValueError, KeyError):
            self.array = None
        self.refresh(layout=True)

    def render(self):
        if self.array is None:
            return Text(f"{self.event.get('title', '')}: image file not readable", style="yellow")
        colors = "256" if self.app.console.color_system in ("256", "standard") else "truecolor"
        return render_images(self.array, self.event.get("captions"), self.event.get("highlight"),
                             width=max(self.size.width, 10), ncols=self.event.get("ncols"),
                             title=self.event.get("title", ""), colors=colors)


def status_text(view: RunView | None) -> Text:
    if view is None:
        return Text("No run selected: pick an exercise and press r, or open one in Runs.", style="dim")
    st = view.status
    t = Text()
    t.append(f" {st} ", style=f"bold reverse {STATUS_STYLE.get(st, '')}")
    t.append(f" {view.exercise or view.folder.name}")
    if view.name:
        t.append(f" ({view.name})", style="dim")
    if view.step is not None:
        total = f"/{view.total}" if view.total else ""
        t.append(f"  {view.phase} {view.step}{total}")
        if view.total:
            frac = min(max(view.step / view.total, 0), 1)
            n = 12
            full = int(frac * n)
            t.append("  " + "█" * full + "░" * (n - full), style=STATUS_STYLE.get(st, "cyan"))
    t.append(f"  {view.t:.1f}s", style="dim")
    shown = list(view.last.items())[:3]
    if shown:
        t.append("  " + "  ".join(f"{k}={fmt_value(v)}" for k, v in shown), style="dim")
    if view.ended and view.message and st != "ok":
        t.append(f"\n{view.message}", style=STATUS_STYLE.get(st, ""))
    return t


class LivePanel(Vertical):
    """Everything about the selected run."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.view: RunView | None = None
        self.logy = False

    def compose(self) -> ComposeResult:
        yield Static(status_text(None), id="live-status")
        with VerticalScroll(id="live-body"):
            yield Vertical(id="live-curves")
            yield Vertical(id="live-figures")
            yield Vertical(id="live-images")
            yield Vertical(id="live-tables")
            yield RichLog(id="live-log", wrap=True, markup=False, highlight=False, max_lines=2000)

    def show(self, view: RunView | None) -> None:
        """Switch to another run: clear and redraw everything."""
        self.view = view
        for cid in ("#live-curves", "#live-figures", "#live-images", "#live-tables"):
            self.query_one(cid).remove_children()
        self.query_one("#live-log", RichLog).clear()
        self._log_n = 0
        if view is not None:
            view.take_dirty()
            dirty = {f"charts:{c}" for c in view.charts} | {f"figures:{f}" for f in view.figures}
            dirty |= {"images", "tables", "log", "status"}
            self.call_after_refresh(self.update_from, dirty)
        else:
            self.query_one("#live-status", Static).update(status_text(None))

    def refresh_view(self) -> None:
        """Redraw what changed since the last call (the app calls this a few times a second)."""
        if self.view is not None:
            dirty = self.view.take_dirty()
            if dirty:
                self.update_from(dirty)

    def set_logy(self, logy: bool) -> None:
        self.logy = logy
        if self.view is not None:
            self.update_from({f"charts:{c}" for c in self.view.charts})

    def update_from(self, dirty: set[str]) -> None:
        view = self.view
        if view is None:
            return
        if "status" in dirty:
            self.query_one("#live-status", Static).update(status_text(view))
        curves = self.query_one("#live-curves")
        for chart, series in view.charts.items():
            if f"charts:{chart}" not in dirty:
                continue
            wid = safe_id("chart-", chart)
            found = curves.query(f"#{wid}")
            if found:
                plot = found.first(CurvePlot)
            else:
                plot = CurvePlot(chart, id=wid, classes="curve")
                curves.mount(plot)
            plot.set_series(series, self.logy)
        figures = self.query_one("#live-figures")
        for name, ev in view.figures.items():
            if f"figures:{name}" not in dirty:
                continue
            wid = safe_id("fig-", name)
            found = figures.query(f"#{wid}")
            if found:
                found.first(FigureView).set_event(ev)
            else:
                fv = FigureView(ev, view.folder, id=wid)
                figures.mount(fv)
                fv.set_event(ev)
        if "images" in dirty:
            box = self.query_one("#live-images")
            for name, ev in view.images.items():
                wid = safe_id("img-", name)
                found = box.query(f"#{wid}")
                if found:
                    iv = found.first(ImageView)
                    if iv.event is not ev:
                        iv.set_event(ev)
                else:
                    box.mount(ImageView(ev, view.folder, id=wid))
        if "tables" in dirty:
            box = self.query_one("#live-tables")
            for name, ev in view.tables.items():
                wid = safe_id("tbl-", name)
                table = rich_table(ev.get("title", name), ev.get("columns", []), ev.get("rows", []),
                                   ev.get("note", ""))
                found = box.query(f"#{wid}")
                if found:
                    found.first(Static).update(table)
                else:
                    box.mount(Static(table, id=wid, classes="run-table"))
        if "log" in dirty:
            log = self.query_one("#live-log", RichLog)
            for level, text in view.log[self._log_n:]:
                style = {"warning": "yellow", "error": "red"}.get(level, "")
                log.write(Text(text, style=style))
            self._log_n = len(view.log)

    def curve_points(self) -> dict[str, int]:
        return {p.chart: sum(len(xs) for xs, _ in p.series.values()) for p in self.query(CurvePlot)}
