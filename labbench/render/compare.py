"""Comparing runs: load several run folders, align their curves by step, find
the parameters that differ, and draw the overlay with a stable colour per run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..engine.events import SUMMARY, iter_events, read_json, scalar_history
from ..engine.sysmon import columns_for
from ..runs import RunInfo, differing_keys, load_run, run_label
from .plots import color, draw_line, figure_text, new_figure


@dataclass
class Compared:
    info: RunInfo
    curves: dict[str, tuple[list, list]] = field(default_factory=dict)
    color: tuple[int, int, int] = (255, 255, 255)
    name: str = ""  # what the caller calls the run (the lab bench: its preset or changed parameters)
    total: float | None = None  # steps the run was to take (summary.json's steps_total), for fractions

    @property
    def label(self) -> str:
        return self.name or self.info.name or self.info.id


@dataclass
class Comparison:
    runs: list[Compared]

    @property
    def curve_names(self) -> list[str]:
        """Curve names, those every run has first."""
        names: list[str] = []
        for r in self.runs:
            for k in r.curves:
                if k not in names:
                    names.append(k)
        common = [n for n in names if all(n in r.curves for r in self.runs)]
        return common + [n for n in names if n not in common]

    def differing_params(self) -> list[str]:
        return differing_keys([{"exercise": r.info.exercise, "seed": r.info.seed, **r.info.params} for r in self.runs])

    def metric_names(self, only_differing: bool = False) -> list[str]:
        """Numeric final metrics; with ``only_differing``, those not equal in every run."""
        names: list[str] = []
        for r in self.runs:
            for k, v in r.info.metrics.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                    names.append(k)
        if only_differing and len(self.runs) > 1:
            names = [k for k in names if k in differing_keys([r.info.metrics for r in self.runs])]
        return names

    def overlay(self, curve: str, fraction: bool = False) -> dict[str, tuple[list, list]]:
        """{run label: (steps, values)} of one curve; runs without it are left out.
        With ``fraction`` the steps become the fraction of the run's planned
        steps (its last step when the plan is unknown), so runs of different
        lengths line up from start (0) to end (1)."""
        out = {}
        for r in self.runs:
            if curve in r.curves:
                xs, ys = r.curves[curve]
                if fraction:
                    nums = [x for x in xs if isinstance(x, (int, float))]
                    total = r.total if r.total else (max(nums) if nums else 0)
                    xs = [x / total if total and isinstance(x, (int, float)) else x for x in xs]
                out[self.unique_label(r)] = (xs, ys)
        return out

    def unique_label(self, r: Compared) -> str:
        labels = [x.label for x in self.runs]
        lab = r.label
        return lab if labels.count(lab) == 1 else f"{lab} #{self.runs.index(r) + 1}"

    def colors(self) -> dict[str, tuple[int, int, int]]:
        return {self.unique_label(r): r.color for r in self.runs}


def load_comparison(paths: list[Path | str]) -> Comparison:
    """Runs in the given order; run i keeps palette colour i."""
    runs = []
    for i, p in enumerate(paths):
        info = load_run(p) or RunInfo(path=Path(p), status="missing")
        hist = scalar_history(iter_events(Path(p)))
        curves = {k: (list(xs), list(ys)) for k, (xs, ys) in hist.items()}
        total = (read_json(Path(p) / SUMMARY) or {}).get("steps_total")
        runs.append(Compared(info=info, curves=curves, color=color(i),
                             total=total if isinstance(total, (int, float)) and total > 0 else None))
    return Comparison(runs)


def curve_stats(ys: list) -> dict[str, float]:
    vals = [v for v in ys if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return {"min": math.nan, "max": math.nan, "last": math.nan}
    return {"min": min(vals), "max": max(vals), "last": vals[-1]}


def render_overlay(cmp: Comparison, curve: str, width: int = 80, height: int = 16, logy: bool = False) -> Text:
    fig = new_figure()
    draw_line(fig, cmp.overlay(curve), logy=logy, colors=cmp.colors(), title=curve)
    return figure_text(fig, width, height)


def _fmt(v) -> str:
    from ..console import fmt_value

    return fmt_value(v)


def comparison_table(cmp: Comparison, only_differing: bool = False, curve: str | None = None,
                     max_params: int = 12) -> Table:
    """One row per run: colour swatch, status, parameters (all or only those that
    differ), final metrics, and min/last of the chosen curve."""
    if only_differing:
        keys = cmp.differing_params()
    else:
        keys = []
        for r in cmp.runs:
            for k in r.info.params:
                if k not in keys:
                    keys.append(k)
    keys = keys[:max_params]
    metrics = cmp.metric_names(only_differing)[:6]
    table = Table(show_lines=False, expand=False, title_justify="left")
    table.add_column("run", no_wrap=True, max_width=28)
    table.add_column("status")
    for k in keys:
        table.add_column(k, justify="right")
    for m in metrics:
        table.add_column(m, justify="right", style="bold")
    system = columns_for([r.info.system for r in cmp.runs])  # peak memory, mean utilisation
    for title, _, _ in system:
        table.add_column(title, justify="right", style="dim")
    if curve:
        table.add_column(f"{curve} min", justify="right")
        table.add_column(f"{curve} last", justify="right")
    for r in cmp.runs:
        params = {"exercise": r.info.exercise, "seed": r.info.seed, **r.info.params}
        label = Text("██ ", style=f"rgb({r.color[0]},{r.color[1]},{r.color[2]})")
        label.append(cmp.unique_label(r))
        row = [label, r.info.status] + [_fmt(params.get(k, "")) for k in keys]
        row += [_fmt(r.info.metrics.get(m, "")) for m in metrics]
        row += [fmt(r.info.system.get(key)) for _, key, fmt in system]
        if curve:
            st = curve_stats(r.curves.get(curve, ([], []))[1])
            row += [_fmt(st["min"]), _fmt(st["last"])]
        table.add_row(*row)
    return table


def comparison_table_by_param(cmp: Comparison, only_differing: bool = False, curve: str | None = None) -> Table:
    """The comparison turned sideways: one column per run (headed by its
    colour), one row per parameter / final metric / curve statistic. Reads
    well at 80 columns for a handful of runs, however many parameters there
    are; parameters that differ are highlighted."""
    differ = set(cmp.differing_params())
    if only_differing:
        keys = [k for k in cmp.differing_params()]
    else:
        keys = ["exercise", "seed"]
        for r in cmp.runs:
            for k in r.info.params:
                if k not in keys:
                    keys.append(k)
    table = Table(show_lines=False, expand=False, pad_edge=False, box=None, padding=(0, 1))
    table.add_column("", style="dim", no_wrap=True, max_width=24)
    for r in cmp.runs:
        head = Text("██ ", style=f"rgb({r.color[0]},{r.color[1]},{r.color[2]})")
        label = r.name or r.info.name or run_label(r.info, 22)
        head.append(label if [x.name or x.info.name or run_label(x.info, 22) for x in cmp.runs].count(label) == 1
                    else f"{label} #{cmp.runs.index(r) + 1}", style="bold")
        table.add_column(head, justify="right", no_wrap=True, overflow="ellipsis", max_width=26)
    table.add_row("status", *[Text(r.info.status) for r in cmp.runs])
    for k in keys:
        params = [{"exercise": r.info.exercise, "seed": r.info.seed, **r.info.params} for r in cmp.runs]
        style = "yellow" if k in differ else ""
        table.add_row(Text(k, style=style), *[Text(_fmt(p.get(k, "")), style=style) for p in params])
    for m in cmp.metric_names(only_differing)[:8]:
        table.add_row(Text(m, style="bold"), *[Text(_fmt(r.info.metrics.get(m, "")), style="bold")
                                              for r in cmp.runs])
    for title, key, fmt in columns_for([r.info.system for r in cmp.runs]):  # peak memory, mean utilisation
        table.add_row(Text(title, style="dim"), *[Text(fmt(r.info.system.get(key)), style="dim") for r in cmp.runs])
    if curve:
        stats = [curve_stats(r.curves.get(curve, ([], []))[1]) for r in cmp.runs]
        table.add_row(f"{curve} min", *[_fmt(st["min"]) for st in stats])
        table.add_row(f"{curve} last", *[_fmt(st["last"]) for st in stats])
    return table
