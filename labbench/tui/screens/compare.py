"""Compare runs: their curves overlaid on one chart (a stable colour per run)
and a table of parameters and final metrics."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Select, Static
from textual_plotext import PlotextPlot

from rich.console import Group
from rich.text import Text

from ...render.compare import comparison_table, comparison_table_by_param, load_comparison
from ...render.plots import draw_line
from ..names import unique_names


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "toggle_differing", "Only differing"),
        Binding("l", "toggle_log", "Log scale"),
        Binding("f", "toggle_fraction", "x: fraction of training"),
    ]

    def __init__(self, paths: list[Path | str], exercises: dict | None = None):
        super().__init__()
        self.cmp = load_comparison(paths)
        for r, name in zip(self.cmp.runs, unique_names([r.info for r in self.cmp.runs], 40, exercises)):
            r.name = name  # the names the runs table shows
        self.only_differing = False
        self.logy = False
        self.fraction = False  # x = fraction of each run's planned steps, not the step
        names = self.cmp.curve_names
        self.curve = names[0] if names else None

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-bar"):
            yield Label(f"Comparing {len(self.cmp.runs)} runs  curve:", id="compare-title")
            yield Select([(n, n) for n in self.cmp.curve_names], value=self.curve if self.curve else Select.NULL,
                         allow_blank=self.curve is None, compact=True, id="compare-curve")
        yield PlotextPlot(id="compare-plot")
        with VerticalScroll(id="compare-table-box"):
            yield Static(id="compare-table")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        plot = self.query_one("#compare-plot", PlotextPlot)
        if self.curve:
            draw_line(plot.plt, self.cmp.overlay(self.curve, fraction=self.fraction), logy=self.logy,
                      colors=self.cmp.colors(), title=self.curve + (" (log)" if self.logy else ""),
                      xlabel="fraction of training (f: steps)" if self.fraction else "step (f: fraction of training)",
                      legend=[])  # the table heads are the legend
        else:
            plot.plt.clear_data()
            plot.plt.title("no curves in these runs")
        plot.refresh()
        plot.display = self.curve is not None  # runs without curves: all the room to the table
        self.query_one("#compare-table-box").styles.max_height = "45%" if self.curve else "100%"
        if len(self.cmp.runs) <= 6:  # a few runs: one column each, parameters as rows (reads at 80 columns)
            table = comparison_table_by_param(self.cmp, only_differing=self.only_differing, curve=self.curve)
        else:
            table = comparison_table(self.cmp, only_differing=self.only_differing, curve=self.curve)
        title = Text("only the parameters and metrics that differ (d: all)" if self.only_differing
                     else "all parameters, those that differ in yellow (d: only what differs)", style="dim italic")
        self.table_renderable = Group(title, table)
        self.query_one("#compare-table", Static).update(self.table_renderable)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.curve = event.value
            self.redraw()

    def action_toggle_differing(self) -> None:
        self.only_differing = not self.only_differing
        self.redraw()

    def action_toggle_fraction(self) -> None:
        self.fraction = not self.fraction
        self.redraw()

    def action_toggle_log(self) -> None:
        self.logy = not self.logy
        self.redraw()
