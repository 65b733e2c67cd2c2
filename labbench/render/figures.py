"""One entry point for every figure kind of the run contract."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from .heatmap import render_heatmap
from .plots import draw_bar, draw_hist, draw_line, draw_scatter, figure_text, legend_text, new_figure

KINDS = ("line", "scatter", "heatmap", "bar", "hist")


def figure_data(event: dict, run_dir: Path | str | None = None) -> dict:
    """The data of a figure event, read from its artifact file when it has one."""
    if event.get("data") is not None:
        return event["data"]
    if event.get("file") and run_dir is not None:
        from ..engine.events import load_artifact

        try:
            return load_artifact(Path(run_dir), event["file"])
        except (OSError, ValueError):
            return {}
    return {k: v for k, v in event.items() if k not in ("type", "t", "name", "kind", "title", "file")}


def draw_figure(fig, kind: str, data: dict, title: str = "", legend: list | None = None) -> int:
    """Draw a plotext kind (not heatmap) into ``fig``; returns points drawn.
    With a ``legend`` list the series names go there (see :func:`legend_text`)."""
    common = {"title": title, "xlabel": data.get("xlabel", ""), "ylabel": data.get("ylabel", "")}
    if kind == "line":
        return draw_line(fig, data.get("series") or {}, data.get("x"), logy=bool(data.get("logy")),
                         markers=data.get("markers"), legend=legend, **common)
    if kind == "scatter":
        return draw_scatter(fig, data.get("series") or {}, data.get("lines"), legend=legend, **common)
    if kind == "bar":
        return draw_bar(fig, data.get("labels"), data.get("values"), data.get("series"), legend=legend, **common)
    if kind == "hist":
        return draw_hist(fig, data.get("values") or [], int(data.get("bins") or 20), logy=bool(data.get("logy")),
                         marks=data.get("marks"), **common)
    raise ValueError(f"unknown figure kind {kind!r}; expected one of {', '.join(KINDS)}")


def titled_legend(title: str, legend: list, width: int) -> Text:
    """The title (bold) and the series legend: one line when both fit, else two."""
    leg = legend_text(legend) if legend else Text()
    if not title:
        return leg
    head = Text()
    head.append(title, style="bold")
    if leg.plain and len(title) + 3 + len(leg.plain) <= width:
        return head + Text("   ") + leg
    if leg.plain:
        leg.truncate(width, overflow="ellipsis")
        return Text("\n").join([head, leg])
    return head


def render_figure(event_data: dict, width: int = 60, height: int = 15, run_dir=None, colors: str = "truecolor") -> Text:
    """A figure event (``{"kind", "title", "data"|"file"}``) as a rich Text of
    about ``width`` x ``height`` cells. Never raises on odd data: it says what
    was wrong instead."""
    kind = event_data.get("kind", "")
    title = event_data.get("title") or event_data.get("name") or ""
    data = figure_data(event_data, run_dir)
    try:
        if kind == "heatmap":
            return render_heatmap(data.get("z") or [], xlabels=data.get("xlabels"), ylabels=data.get("ylabels"),
                                  x=data.get("x"), y=data.get("y"), annotate=bool(data.get("annotate")),
                                  marks=data.get("marks"), zlabel=data.get("zlabel", ""), xlabel=data.get("xlabel") or "",
                                  ylabel=data.get("ylabel") or "", width=width,
                                  height=height, title=title, colors=colors)
        fig = new_figure()
        legend: list = []
        draw_figure(fig, kind, data, "", legend=legend)
        head = titled_legend(title, legend, width)
        body = figure_text(fig, width, max(height - len(head.plain.splitlines()), 5))
        return Text("\n").join([head, body]) if head.plain else body
    except Exception as exc:  # a figure with bad data must not take the screen down
        return Text(f"{title}: cannot draw this {kind or 'figure'} ({type(exc).__name__}: {exc})", style="yellow")
