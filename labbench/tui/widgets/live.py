"""The live panels of one run: status line, curves (textual-plotext), figures,
image grids, tables and the log. Fed from a :class:`RunView` by the app's timer."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import RichLog, Static
from textual_plotext import PlotextPlot

from ...console import STATUS_STYLE, fmt_value
from ...engine.events import load_artifact
from ...render import colour_mode
from ...render.figures import figure_data, render_figure
from ...render.heatmap import heatmap_min_width
from ...render.images import render_images
from ...render.plots import draw_line, legend_text
from ...render.tables import compact_table
from ..state import RunView
from .system import SystemPanel


def safe_id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "_", name)


def term_colors(app) -> str:
    """The colour mode pictures are drawn in, from the terminal's colour system:
    "truecolor", "256" (tmux/screen/SSH sessions that announce 256 colours) or
    "standard" (16 colours or none: heat maps switch to shade characters)."""
    return colour_mode(getattr(app.console, "color_system", None) if app is not None else None)


class CurvePlot(PlotextPlot):
    """One chart of curves ("loss/train", "loss/val" share the chart "loss").
    The title and legend are a line above it (:class:`CurveChart`), so the
    legend never covers the curves."""

    def __init__(self, chart: str, **kw):
        super().__init__(**kw)
        self.chart = chart
        self.series: dict[str, tuple[list, list]] = {}
        self.logy = False
        self.points_drawn = 0
        self.legend: list = []

    def set_series(self, series: dict, logy: bool, xlabel: str = "") -> None:
        # the lists are the RunView's own, only ever appended to: no copy needed
        self.series = dict(series)
        self.logy = logy
        self.legend = []
        self.points_drawn = draw_line(self.plt, self.series, logy=logy, legend=self.legend, xlabel=xlabel)
        self.refresh()


class CurveChart(Vertical):
    """A chart's title line (name, log flag, legend) over its :class:`CurvePlot`."""

    DEFAULT_CSS = """
    CurveChart { height: auto; }
    CurveChart > .chart-head { height: 1; padding: 0 1; }
    """

    def __init__(self, chart: str, **kw):
        super().__init__(**kw)
        self.chart = chart
        self._pending: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="chart-head")
        yield CurvePlot(self.chart, classes="curve")

    def on_mount(self) -> None:
        if self._pending is not None:
            args, self._pending = self._pending, None
            self.set_series(*args)

    @property
    def plot(self) -> CurvePlot:
        return self.query_one(CurvePlot)

    def set_series(self, series: dict, logy: bool, xlabel: str = "") -> None:
        if not self.query(CurvePlot):
            # mounted a moment ago and not composed yet (a busy machine): draw once it is
            self._pending = (series, logy, xlabel)
            return
        plot = self.plot
        plot.set_series(series, logy, xlabel)
        head = Text(self.chart + (" (log y)" if logy else ""), style="bold")
        if len(plot.legend) > 1 or (plot.legend and plot.legend[0][0] != self.chart):
            head.append("   ")
            head.append_text(legend_text(plot.legend))
        head.no_wrap, head.overflow = True, "ellipsis"
        self.query_one(".chart-head", Static).update(head)


class FigureView(Widget):
    """A figure event drawn at the widget's width. Plots have a fixed height;
    a heat map is as tall as its content (up to ``HEATMAP_MAX_H`` lines), so a
    small confusion matrix leaves no gap and a 40x40 surface is not squashed."""

    DEFAULT_CSS = "FigureView { height: 16; } FigureView.-heatmap { height: auto; }"
    HEATMAP_MAX_H = 30

    def __init__(self, event: dict, run_dir, **kw):
        super().__init__(**kw)
        self.event = event
        self.run_dir = run_dir
        self.data: dict = {}
        self._cache: tuple | None = None

    def set_event(self, event: dict) -> None:
        self.event = event
        # read the data once (an artifact file for big figures), not on every repaint
        self.data = figure_data(event, self.run_dir)
        self._cache = None
        self.set_class(event.get("kind") == "heatmap", "-heatmap")
        self.refresh(layout=True)

    def _text(self, width: int, height: int) -> Text:
        key = (width, height, term_colors(self.app))
        if self._cache is None or self._cache[0] != key:
            ev = {**self.event, "data": self.data}
            ev.pop("file", None)
            title = str(ev.get("title") or "")
            long_title = self.is_heatmap and len(title) > width
            if long_title:  # a map narrower than its title: the title wraps above it instead of being cut
                ev["title"], ev["name"] = "", ""
            text = render_figure(ev, width, height, run_dir=self.run_dir, colors=key[2])
            if self.is_heatmap:  # a picture: a line too long is cut, never wrapped (its height stays right)
                text.no_wrap, text.overflow = True, "crop"
            if long_title:
                import textwrap

                head = Text("\n".join(textwrap.wrap(title, max(width, 8))) + "\n", style="bold")
                text = head + text
                text.no_wrap, text.overflow = True, "crop"
            self._cache = (key, text)
        return self._cache[1]

    @property
    def is_heatmap(self) -> bool:
        return self.event.get("kind") == "heatmap"

    def min_width(self) -> int | None:
        """The narrowest width that shows this heat map whole (None: not one
        that can share a row)."""
        if not self.is_heatmap:
            return None
        title = self.event.get("title") or self.event.get("name") or ""
        return heatmap_min_width(self.data, self.HEATMAP_MAX_H, title, term_colors(self.app))

    def get_content_height(self, container, viewport, width: int) -> int:
        if self.event.get("kind") != "heatmap":
            return super().get_content_height(container, viewport, width)
        return len(self._text(width, self.HEATMAP_MAX_H).plain.splitlines())

    def render(self):
        if self.event.get("kind") == "heatmap":
            return self._text(self.size.width, self.HEATMAP_MAX_H)
        return self._text(self.size.width, self.size.height)


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
        self._cache = None
        self.refresh(layout=True)

    MAX_LINES = 48  # a grid taller than this is drawn with smaller images (down to MIN_PX pixels wide)
    MIN_PX = 12

    def _text(self, width: int) -> Text:
        colors = "truecolor" if term_colors(self.app) == "truecolor" else "256"
        key = (width, colors)
        if getattr(self, "_cache", None) is None or self._cache[0] != key:
            text = render_images(self.array, self.event.get("captions"), self.event.get("highlight"),
                                 width=width, ncols=self.event.get("ncols"), title=self.event.get("title", ""),
                                 colors=colors, max_lines=self.MAX_LINES, min_px=self.MIN_PX)
            self._cache = (key, text)
        return self._cache[1]

    def get_content_height(self, container, viewport, width: int) -> int:
        if self.array is None:
            return 1
        return len(self._text(max(width, 10)).plain.splitlines())

    def render(self):
        if self.array is None:
            return Text(f"{self.event.get('title', '')}: image file not readable", style="yellow")
        return self._text(max(self.size.width, 10))


QUIET_S = 5  # after this long without an event, the status line says how long


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
    quiet = view.quiet_s()
    if quiet >= QUIET_S:  # a long epoch, or a run that stalled: say so rather than look frozen
        t.append(f"  (no news for {int(quiet)}s)", style="yellow" if quiet > 120 else "dim")
    shown = list(view.last.items())[:3]
    if shown:
        t.append("  " + "  ".join(f"{k}={fmt_value(v)}" for k, v in shown), style="dim")
    if view.ended and view.message and st != "ok":
        t.append(f"\n{view.message}", style=STATUS_STYLE.get(st, ""))
    return t


def _same_curve(a: list, b: list) -> bool:
    if len(a) != len(b) or len(a) < 2:
        return False
    try:
        return all(abs(float(x) - float(y)) <= 1e-6 * max(1.0, abs(float(x))) for x, y in zip(a, b)
                   if x == x and y == y)
    except (TypeError, ValueError):
        return False


class LivePanel(Vertical):
    """Everything about the selected run. Heat maps sit side by side (up to
    ``MAX_FIG_COLUMNS`` a row) when the panel is at least twice as wide as they
    need, after the other figures (a row each)."""

    MAX_FIG_COLUMNS = 3
    FIG_GAP = 2  # columns between maps side by side

    def __init__(self, **kw):
        super().__init__(**kw)
        self.view: RunView | None = None
        self.logy = False
        self._gen = 0  # ids of one run's widgets carry this: a switch never meets the last run's ids
        self._repeated: set[str] = set()  # charts that a line figure of the same data replaces
        self.sweep_table = None  # what #live-sweep shows

    def compose(self) -> ComposeResult:
        yield Static("", id="live-sweep")
        yield Static(status_text(None), id="live-status")
        with VerticalScroll(id="live-body"):
            yield SystemPanel(id="live-system")
            yield Vertical(id="live-curves")
            with Vertical(id="live-figures"):
                yield Vertical(id="live-plots")
                yield Container(id="live-maps")
            yield Vertical(id="live-images")
            yield Vertical(id="live-tables")
            yield RichLog(id="live-log", wrap=True, markup=False, highlight=False, max_lines=2000)

    def show(self, view: RunView | None) -> None:
        """Switch to another run: clear and redraw everything."""
        self.view = view
        self._gen += 1
        self._repeated = set()
        for cid in ("#live-curves", "#live-plots", "#live-maps", "#live-images", "#live-tables"):
            self.query_one(cid).remove_children()
        self.query_one("#live-log", RichLog).clear()
        self._log_n = 0
        self.query_one(SystemPanel).show_series(getattr(view, "system", None))
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
        if "system" in dirty:
            self.query_one(SystemPanel).show_series(view.system)
        curves = self.query_one("#live-curves")
        for chart, series in view.charts.items():
            if f"charts:{chart}" not in dirty:
                continue
            wid = self._wid("chart-", chart)
            found = curves.query(f"#{wid}")
            if found:
                box = found.first(CurveChart)
                box.set_series(series, self.logy, view.phase)
            else:
                box = CurveChart(chart, id=wid)
                curves.mount(box)
                # the scale is read when the chart is drawn, not now: an "l" in between must count
                box.call_after_refresh(lambda b=box, s=series: b.set_series(s, self.logy, view.phase))
            box.display = chart not in self._repeated
        figures = self.query_one("#live-figures")
        relayout = False
        for name, ev in view.figures.items():
            if f"figures:{name}" not in dirty:
                continue
            wid = self._wid("fig-", name)
            repeated = self._repeats_chart(ev)
            if repeated is not None and repeated not in self._repeated:
                self._repeated.add(repeated)  # the figure says the same, with its title and marks: one is enough
                for box in curves.query(f"#{self._wid('chart-', repeated)}"):
                    box.display = False
            found = figures.query(f"#{wid}")
            if found:
                found.first(FigureView).set_event(ev)
            else:
                fv = FigureView(ev, view.folder, id=wid)
                # heat maps in a grid that can put several side by side, other figures a row each
                self.query_one("#live-maps" if ev.get("kind") == "heatmap" else "#live-plots").mount(fv)
                fv.set_event(ev)
                relayout = True
        if relayout:
            self.layout_figures()
        if "images" in dirty:
            box = self.query_one("#live-images")
            for name, ev in view.images.items():
                wid = self._wid("img-", name)
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
                wid = self._wid("tbl-", name)
                table = compact_table(ev.get("title", name), ev.get("columns", []), ev.get("rows", []),
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

    def _wid(self, prefix: str, name: str) -> str:
        return safe_id(f"g{self._gen}-{prefix}", name)

    def _repeats_chart(self, ev: dict) -> str | None:
        """The live chart whose curves a line figure draws again (1.4's "MSE
        per epoch" is its loss chart with marks), or None."""
        if ev.get("kind") != "line" or self.view is None:
            return None
        data = figure_data(ev, self.view.folder)
        fig_series = [list(v.get("y") or []) if isinstance(v, dict) else list(v)
                      for v in (data.get("series") or {}).values()]
        for chart, series in self.view.charts.items():
            if any(_same_curve(ys, fs) for _, ys in series.values() for fs in fig_series):
                return chart
        return None

    def set_sweep(self, text) -> None:
        """The sweep table above the run (None: not part of a followed sweep)."""
        box = self.query_one("#live-sweep", Static)
        box.display = text is not None
        self.sweep_table = text
        if text is not None:
            box.update(text)

    def on_resize(self, event) -> None:
        self.layout_figures()

    def figure_columns(self, width: int) -> int:
        """How many heat maps share a row at ``width`` columns."""
        needs = [fv.min_width() for fv in self.query_one("#live-maps").query(FigureView)]
        if len(needs) < 2 or any(n is None for n in needs):
            return 1
        return max(1, min(self.MAX_FIG_COLUMNS, len(needs), (width + self.FIG_GAP) // (max(needs) + self.FIG_GAP)))

    def layout_figures(self) -> None:
        box = self.query_one("#live-maps")
        width = box.size.width or self.size.width - 1
        if width > 0:
            n = self.figure_columns(width)
            if box.styles.grid_size_columns != n:
                box.styles.grid_size_columns = n

    def focus_body(self) -> None:
        """Keyboard focus on the scrolling body (arrows / PageUp / PageDown / Home / End)."""
        self.query_one("#live-body").focus()

    def curve_points(self) -> dict[str, int]:
        return {p.chart: sum(len(xs) for xs, _ in p.series.values()) for p in self.query(CurvePlot)}


def sweep_text(sweep, primary: str = "", current=None) -> Text | object:
    """The table of a sweep's grid: the swept values, each point's status and
    primary metric, the running point marked with ▶."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    from ..names import short_value

    keys = sweep.keys
    done = sweep.done()
    name = sweep.index.get("name") or sweep.folder.name
    head = Text(f"sweep {name}: {done}/{len(sweep.rows)} done", style="bold")
    if not sweep.rows:
        return Group(head, Text("waiting for the sweep to write its grid...", style="dim"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    table.add_column("#", justify="right")
    for k in keys:
        table.add_column(k, justify="right")
    table.add_column("status")
    table.add_column(primary or "metric", justify="right")
    for point, summary in sweep.rows:
        st = summary.get("status", "pending")
        mark = "▶" if current is not None and sweep.point_dir(point) == current else ""
        value = (summary.get("metrics") or {}).get(primary) if primary else None
        table.add_row(f"{mark}{point.get('index', '')}", *(short_value((point.get("values") or {}).get(k, ""))
                                                           for k in keys),
                      Text(st, style=STATUS_STYLE.get(st, "")), fmt_value(value) if value is not None else "")
    return Group(head, table)
