"""``labbench compare`` and ``labbench export``: runs side by side, and files for a report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List

import typer
from rich.console import Console

from .engine.events import curve_charts, iter_events, last_by_name, load_artifact, read_json, scalar_history
from .engine.sysmon import COLUMNS as SYSTEM_COLUMNS, columns_for, read_system, system_heading

out = Console()
err = Console(stderr=True, soft_wrap=True)


def expand_run_paths(paths: list[Path]) -> list[Path]:
    """Run folders as given; a sweep folder stands for its points, a runs folder
    for every run in it. Unknown paths are an error (exit 2)."""
    found: list[Path] = []
    for p in paths:
        if (p / "summary.json").exists() or (p / "events.jsonl").exists():
            found.append(p)
        elif (p / "sweep.json").exists():
            index = read_json(p / "sweep.json") or {"points": []}
            found.extend(p / pt["dir"] for pt in index["points"] if (p / pt["dir"]).is_dir())
        elif p.is_dir() and any((c / "summary.json").exists() for c in p.iterdir() if c.is_dir()):
            found.extend(sorted(c for c in p.iterdir() if (c / "summary.json").exists()))
        else:
            err.print(f"[bold red]error:[/] {p}: not a run folder (no summary.json or events.jsonl), "
                      "nor a sweep folder (sweep.json)", highlight=False)
            raise typer.Exit(2)
    return found


def compare_cmd(
    runs: List[Path] = typer.Argument(..., help="Run folders, sweep folders or a runs folder"),
    only_diff: bool = typer.Option(True, "--only-diff/--all-params", help="Show only the parameters that differ."),
    curve: List[str] = typer.Option([], "--curve", "-c", help="Curves to overlay (default: those all runs share)."),
    logy: bool = typer.Option(False, "--logy", help="Log scale for the curves."),
    width: int = typer.Option(0, "--width", help="Chart width in characters (default: the terminal's)."),
):
    """Put runs side by side: parameters, final metrics and overlaid curves.

    One colour per run; a sweep folder stands for all its points.
    """
    from .render.compare import comparison_table, load_comparison, render_overlay

    paths = expand_run_paths(runs)
    if not paths:
        err.print("[bold red]error:[/] no runs to compare")
        raise typer.Exit(2)
    cmp = load_comparison(paths)
    out.print(comparison_table(cmp, only_differing=only_diff and len(paths) > 1))
    names = curve or [n for n in cmp.curve_names if all(n in r.curves for r in cmp.runs)][:4]
    unknown = [n for n in names if n not in cmp.curve_names]
    if unknown:
        err.print(f"[bold red]error:[/] --curve {unknown[0]}: no run has it; curves: {', '.join(cmp.curve_names)}",
                  highlight=False)
        raise typer.Exit(2)
    w = width or max(40, min(out.width, 140))
    for name in names:
        out.print(render_overlay(cmp, name, width=w, height=14, logy=logy))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-")[:80] or "x"


def export_run(run_dir: Path, dest: Path, fmt: list[str]) -> list[Path]:
    """Everything a report needs from one run; returns the files written."""
    from . import export as ex

    dest.mkdir(parents=True, exist_ok=True)
    events = list(iter_events(run_dir))
    written: list[Path] = []

    def write(name: str, text: str) -> None:
        path = dest / name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    def tables(stem: str, columns, rows, caption=""):
        if "md" in fmt:
            write(f"{stem}.md", ex.table_markdown(columns, rows))
        if "csv" in fmt:
            write(f"{stem}.csv", ex.table_csv(columns, rows))
        if "tex" in fmt:
            write(f"{stem}.tex", ex.table_latex(columns, rows, caption))

    summary = read_json(run_dir / "summary.json") or {}
    rows = [["status", summary.get("status", "?")]]
    if summary.get("message"):
        rows.append(["message", summary["message"]])
    rows += [[f"param {k}", json.dumps(v) if isinstance(v, (list, dict)) else v]
             for k, v in (summary.get("params") or {}).items()]
    rows += [[k, json.dumps(v) if isinstance(v, (list, dict)) else v] for k, v in (summary.get("metrics") or {}).items()]
    rows.append(["wall time (s)", summary.get("wall_time_s", "")])
    system = summary.get("system") if isinstance(summary.get("system"), dict) else {}
    rows += [[system_heading(title, key), system[key]] for title, key, _ in SYSTEM_COLUMNS if key in system]
    tables("summary", ["quantity", "value"], rows, caption=summary.get("exercise", ""))
    sys_series = read_system(events)  # the system samples over time (engine/sysmon.py)
    if sys_series.v:
        keys = list(sys_series.v)
        by_t: dict[float, dict] = {}
        for k in keys:
            for t, v in zip(sys_series.t[k], sys_series.v[k]):
                by_t.setdefault(t, {})[k] = v
        write("system.csv", ex.table_csv(["t", *keys], [[t, *(row.get(k, "") for k in keys)]
                                                       for t, row in sorted(by_t.items())]))

    # curves: one CSV with every scalar, one SVG per chart ("chart/series" names share one)
    hist = scalar_history(events)
    if hist:
        steps = sorted({s for xs, _ in hist.values() for s in xs if s is not None})
        lookup = {k: dict(zip(xs, ys)) for k, (xs, ys) in hist.items()}
        write("curves.csv", ex.table_csv(["step", *hist], [[s, *(lookup[k].get(s, "") for k in hist)]
                                                            for s in steps]))
        for chart, series in curve_charts(events).items():
            logy = "loss" in chart.lower() and all(v > 0 for _, ys in series.values() for v in ys if v == v)
            write(f"curve-{_slug(chart)}.svg", ex.svg_lines(series, title=chart, xlabel="step", ylabel=chart,
                                                            logy=logy))
    for name, ev in last_by_name(events, "figure").items():
        data = ev.get("data")
        if data is None and ev.get("file"):
            data = load_artifact(run_dir, ev["file"])
        data = data or {}
        kind = ev.get("kind")
        if kind == "line" and data.get("series"):
            x = data.get("x")
            series = {}
            for lab, ys in data["series"].items():
                if isinstance(ys, dict):  # a series with its own x: {"x": [...], "y": [...]}
                    series[lab] = (list(ys.get("x") or []), list(ys.get("y") or []))
                elif isinstance(ys, list):
                    series[lab] = (x if x is not None else list(range(len(ys))), ys)
            write(f"figure-{_slug(name)}.svg", ex.svg_lines(series, title=ev.get("title", name),
                                                            xlabel=data.get("xlabel", ""),
                                                            ylabel=data.get("ylabel", ""),
                                                            logy=bool(data.get("logy")),
                                                            markers=data.get("markers") or []))
        elif kind == "heatmap" and data.get("z") is not None:
            path = dest / f"figure-{_slug(name)}.png"
            ex.png_heatmap(data["z"], path)
            written.append(path)
        write(f"figure-{_slug(name)}.json", json.dumps({"kind": kind, "title": ev.get("title"), **data}))
    for name, ev in last_by_name(events, "images").items():
        try:
            arr = load_artifact(run_dir, ev["file"])
        except (OSError, ValueError):
            continue
        path = dest / f"images-{_slug(name)}.png"
        ex.png_images(arr, path, ncols=ev.get("ncols"), highlight=ev.get("highlight"))
        written.append(path)
        if ev.get("captions"):
            write(f"images-{_slug(name)}.txt", "\n".join(str(c) for c in ev["captions"]) + "\n")
    for name, ev in last_by_name(events, "table").items():
        tables(f"table-{_slug(name)}", ev.get("columns", []), ev.get("rows", []), caption=ev.get("title", ""))
    return written


def export_cmd(
    runs: List[Path] = typer.Argument(..., help="Run folders, sweep folders or a runs folder"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder to write into (created)."),
    fmt: str = typer.Option("md,csv,tex", "--tables", help="Table formats, comma-separated: md, csv, tex."),
):
    """Write figures and tables for a report.

    SVG charts, PNG image grids and heat maps, tables as Markdown, CSV and
    LaTeX; with several runs also a comparison table and overlaid curves.
    """
    from . import export as ex

    formats = [f.strip() for f in fmt.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("md", "csv", "tex")]
    if bad:
        err.print(f"[bold red]error:[/] --tables: unknown format {bad[0]!r}; expected md, csv or tex")
        raise typer.Exit(2)
    paths = expand_run_paths(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    used: set[str] = set()
    for p in paths:
        name = _slug(f"{p.parent.name}-{p.name}" if (p.parent / "sweep.json").exists() else p.name)
        while name in used:
            name += "-b"
        used.add(name)
        files = export_run(p, out_dir / name, formats)
        total += len(files)
        out.print(f"{p} -> {out_dir / name} ({len(files)} files)", highlight=False)
    if len(paths) > 1:
        from .render.compare import load_comparison

        cmp = load_comparison(paths)
        keys = cmp.differing_params()
        metrics = cmp.metric_names()
        system = columns_for([r.info.system for r in cmp.runs])
        rows = [[cmp.unique_label(r), r.info.status, *(r.info.params.get(k, "") for k in keys
                                                       if k not in ("exercise", "seed")),
                 *(r.info.metrics.get(k, "") for k in metrics),
                 *(r.info.system.get(key, "") for _, key, _ in system)] for r in cmp.runs]
        cols = ["run", "status", *(k for k in keys if k not in ("exercise", "seed")), *metrics,
                *(system_heading(title, key) for title, key, _ in system)]
        for f in formats:
            text = {"md": ex.table_markdown, "csv": ex.table_csv}.get(f, lambda c, r: ex.table_latex(c, r))(cols, rows)
            (out_dir / f"compare.{f}").write_text(text, encoding="utf-8")
            total += 1
        for curve in cmp.curve_names:
            series = cmp.overlay(curve)
            if len(series) < 2:
                continue
            colors = {lab: ex.PALETTE[i % len(ex.PALETTE)] for i, lab in enumerate(series)}
            (out_dir / f"compare-{_slug(curve)}.svg").write_text(
                ex.svg_lines(series, title=curve, xlabel="step", ylabel=curve, colors=colors), encoding="utf-8")
            total += 1
    out.print(f"wrote {total} files under {out_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
    app.command("export")(export_cmd)
