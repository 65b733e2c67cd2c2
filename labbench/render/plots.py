"""Plotext-based line, scatter, bar and histogram pictures.

Each ``draw_*`` function draws into a plotext figure object: the TUI passes the
``plt`` of a textual-plotext ``PlotextPlot`` widget (so the widget sizes and
themes it), the console passes a fresh figure and turns the result into a rich
``Text`` with :func:`figure_text`. Long curves are downsampled first (min/max per
bucket), so a 10,000-point curve draws as fast as a 500-point one.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from rich.text import Text

#: series colours, in order; a run/series keeps its colour by its index
PALETTE: list[tuple[int, int, int]] = [
    (78, 161, 255), (255, 159, 64), (80, 200, 120), (240, 82, 82), (176, 132, 230),
    (230, 200, 60), (64, 210, 210), (240, 120, 200), (170, 170, 170), (160, 110, 70),
]


SPARSE = 30  # a scatter series with at most this many points is drawn with a heavy marker


def color(i: int) -> tuple[int, int, int]:
    return PALETTE[i % len(PALETTE)]


def new_figure():
    """A fresh, independent plotext figure (not plotext's global one)."""
    from plotext._figure import _figure_class

    fig = _figure_class()
    fig.theme("clear")
    return fig


def figure_text(fig, width: int, height: int) -> Text:
    """Build ``fig`` at ``width`` x ``height`` characters as a rich Text."""
    width, height = max(int(width), 10), max(int(height), 5)
    fig.plotsize(width, height)
    if hasattr(fig, "_set_size"):
        fig._set_size(width, height)
    return Text.from_ansi(fig.build())


def _finite(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        if isinstance(v, str):
            return {"inf": math.inf, "-inf": -math.inf}.get(v, math.nan)
        return math.nan
    return f


def _as_floats(vals: Sequence):
    import numpy as np

    try:
        return np.asarray(vals, dtype=float)
    except (TypeError, ValueError):  # None, "inf" strings, ...: one by one
        return np.array([_finite(v) if v is not None else math.nan for v in vals], dtype=float)


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int = 400) -> tuple[list[float], list[float]]:
    """At most about ``max_points`` points that keep the curve's shape: each
    bucket of consecutive points is replaced by its min and max (in x order);
    the first and the newest point are always kept. Non-finite values are
    dropped. Vectorised: a 100,000-point curve takes a few milliseconds."""
    import numpy as np

    n0 = min(len(xs), len(ys))
    x, y = _as_floats(list(xs[:n0]) if not isinstance(xs, np.ndarray) else xs[:n0]), \
        _as_floats(list(ys[:n0]) if not isinstance(ys, np.ndarray) else ys[:n0])
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        x, y = x[ok], y[ok]
    n = len(x)
    if n <= max_points or max_points < 4:
        return x.tolist(), y.tolist()
    buckets = (max_points - 2) // 2
    k = -(-n // buckets)  # points per bucket
    rows = -(-n // k)
    pad = rows * k - n
    lo = np.concatenate([y, np.full(pad, np.inf)]).reshape(rows, k)
    hi = np.concatenate([y, np.full(pad, -np.inf)]).reshape(rows, k)
    base = np.arange(rows) * k
    keep = np.union1d(lo.argmin(axis=1) + base, hi.argmax(axis=1) + base)
    keep = np.union1d(keep, [0, n - 1])
    return x[keep].tolist(), y[keep].tolist()


def _xy(value: Any, shared_x: Sequence | None) -> tuple[list, list]:
    """A series given as ys (with the shared x), (xs, ys) or {"x": .., "y": ..}."""
    if isinstance(value, dict):
        return list(value.get("x") or []), list(value.get("y") or [])
    if isinstance(value, tuple) and len(value) == 2:
        return list(value[0]), list(value[1])
    ys = list(value)
    xs = list(shared_x) if shared_x is not None else list(range(len(ys)))
    return xs[:len(ys)], ys[:len(xs)]


def _labels(fig, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    if title:
        fig.title(title)
    if xlabel:
        fig.xlabel(xlabel)
    if ylabel:
        fig.ylabel(ylabel)


def legend_text(entries: list[tuple[str, tuple[int, int, int]]], width: int | None = None) -> Text:
    """One line naming the series in their colours (drawn above a chart, so
    that the legend never hides data as plotext's in-plot legend does)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, (label, rgb) in enumerate(entries):
        if i:
            out.append("  ")
        out.append("━━ ", style=f"rgb({rgb[0]},{rgb[1]},{rgb[2]})")
        out.append(str(label))
    if width is not None:
        out.truncate(width, overflow="ellipsis")
    return out


def _label(legend: list | None, label, rgb) -> str | None:
    """The label for plotext, or None when the legend is drawn outside."""
    if legend is None:
        return str(label)
    legend.append((str(label), tuple(rgb)))
    return None


def int_ticks(lo: float, hi: float, n: int = 6) -> list[int]:
    """About ``n`` whole-number ticks from ``lo`` to ``hi`` at a round step
    (1, 2, 5, 10, 20, 50 ...): epochs are never labelled 75.8."""
    lo_i, hi_i = math.ceil(lo), math.floor(hi)
    if hi_i <= lo_i:
        return [lo_i]
    raw = (hi_i - lo_i) / max(n - 1, 1)
    step = 1
    for mult in (1, 2, 5):
        for p10 in range(0, 12):
            cand = mult * 10 ** p10
            if cand >= raw:
                step = cand if step == 1 or cand < step else step
                break
    start = math.ceil(lo_i / step) * step
    ticks = list(range(start, hi_i + 1, step))
    return ticks or [lo_i]


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks for values drawn as log10: each power of ten in range, with 2
    and 5 between them when the range is under two decades."""
    k0, k1 = math.floor(lo), math.ceil(hi)
    steps = (1, 2, 5) if k1 - k0 <= 2 else (1,)
    pos, labels = [], []
    for k in range(k0, k1 + 1):
        for m in steps:
            v = math.log10(m) + k
            if lo - 1e-9 <= v <= hi + 1e-9:
                pos.append(v)
                labels.append(f"{m * 10.0 ** k:g}")
    if len(pos) < 2:
        pos, labels = [lo, hi], [f"{10 ** lo:.3g}", f"{10 ** hi:.3g}"]
    return pos, labels


def draw_line(fig, series: dict, x: Sequence | None = None, *, logy: bool = False,
              markers: Iterable[dict] | None = None, title: str = "", xlabel: str = "", ylabel: str = "",
              colors: dict | None = None, max_points: int = 400, legend: list | None = None) -> int:
    """Curves on one chart; returns the number of points drawn (after
    downsampling). ``colors`` maps a label to an RGB tuple (default: palette
    order). With a ``legend`` list, the (label, colour) pairs go there instead
    of into plotext's legend box.

    A log scale is drawn by plotting log10 of the values on a linear axis
    labelled in the original units: plotext's own log scale transforms the
    stored data on every build, so a redraw (a resize) took the log twice."""
    fig.clear_data()
    xmin, xmax = math.inf, -math.inf
    drawn = 0
    ymin, ymax = math.inf, -math.inf
    whole_x = True
    for i, (label, value) in enumerate(series.items()):
        xs, ys = _xy(value, x)
        xs, ys = downsample(xs, ys, max_points)
        if logy:
            keep = [(a, math.log10(b)) for a, b in zip(xs, ys) if b > 0]
            xs, ys = [a for a, _ in keep], [b for _, b in keep]
        if not xs:
            continue
        whole_x = whole_x and all(float(a).is_integer() for a in xs)
        ymin, ymax = min(ymin, min(ys)), max(ymax, max(ys))
        xmin, xmax = min(xmin, xs[0]), max(xmax, xs[-1])
        c = (colors or {}).get(label) or color(i)
        lab = _label(legend, label, c)
        if len(xs) == 1:
            fig.scatter(xs, ys, label=lab, color=c, marker="dot")
        else:
            fig.plot(xs, ys, label=lab, color=c, marker="braille")
        drawn += len(xs)
    fig.yscale("linear")
    if drawn and logy and math.isfinite(ymin):
        pos, labels = log_ticks(ymin, ymax)
        fig.yticks(pos, labels)
    if drawn and whole_x and xmax > xmin:
        ticks = int_ticks(xmin, xmax)
        fig.xticks(ticks, [str(t) for t in ticks])
    for m in markers or []:
        try:
            mx = float(m.get("x"))
        except (TypeError, ValueError):
            continue
        fig.vertical_line(mx, color=(200, 200, 200))
        if m.get("label") and drawn and math.isfinite(ymin):
            # a mark near the right edge gets its label on its left, so it is not cut off
            right = xmax > xmin and (mx - xmin) / (xmax - xmin) > 0.6
            fig.text(str(m["label"]), mx, ymin, color=(200, 200, 200), alignment="right" if right else "left")
    _labels(fig, title, xlabel, ylabel)
    return drawn


def draw_scatter(fig, series: dict, lines: dict | None = None, *, title: str = "", xlabel: str = "",
                 ylabel: str = "", max_points: int = 3000, legend: list | None = None) -> int:
    """Classes as coloured points, plus optional polylines (e.g. a SOM grid)
    drawn underneath. A small series (prototypes, centroids: at most
    ``SPARSE`` points) gets a heavier marker so it stands out."""
    fig.clear_data()
    drawn = 0
    for j, (label, value) in enumerate((lines or {}).items()):
        xs, ys = _xy(value, None)
        if len(xs) >= 2:
            fig.plot([_finite(a) for a in xs], [_finite(b) for b in ys], color=(120, 120, 120), marker="braille")
            drawn += len(xs)
    for i, (label, value) in enumerate(series.items()):
        xs, ys = _xy(value, None)
        step = max(1, len(xs) // max_points)
        xs, ys = xs[::step], ys[::step]
        pts = [(a, b) for a, b in zip(xs, ys) if math.isfinite(_finite(a)) and math.isfinite(_finite(b))]
        if not pts:
            continue
        sparse = len(pts) <= SPARSE and len(series) > 1
        fig.scatter([_finite(a) for a, _ in pts], [_finite(b) for _, b in pts], label=_label(legend, label, color(i)),
                    color=color(i), marker="●" if sparse else "dot")
        drawn += len(pts)
    _labels(fig, title, xlabel, ylabel)
    return drawn


def draw_bar(fig, labels: Sequence | None = None, values: Sequence | None = None, series: dict | None = None, *,
             title: str = "", xlabel: str = "", ylabel: str = "", legend: list | None = None) -> int:
    fig.clear_data()
    labels = [str(v) for v in (labels or [])]
    if series:
        names = list(series)
        data = [[_finite(v) for v in series[n]] for n in names]
        if not labels:
            labels = [str(i) for i in range(max(len(d) for d in data))]
        labs = [_label(legend, n, color(i)) for i, n in enumerate(names)]
        fig.multiple_bar(labels, data, labels=labs if legend is None else None,
                         color=[color(i) for i in range(len(names))])
        drawn = sum(len(d) for d in data)
    else:
        vals = [_finite(v) for v in (values or [])]
        if not labels:
            labels = [str(i) for i in range(len(vals))]
        fig.bar(labels, vals, color=color(0))
        drawn = len(vals)
    _labels(fig, title, xlabel, ylabel)
    return drawn


def draw_hist(fig, values: Sequence, bins: int = 20, *, logy: bool = False, marks: Iterable[dict] | None = None,
              title: str = "", xlabel: str = "", ylabel: str = "") -> int:
    import numpy as np

    fig.clear_data()
    arr = np.asarray([_finite(v) for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        _labels(fig, title or "(no values)", xlabel, ylabel)
        return 0
    counts, edges = np.histogram(arr, bins=max(1, int(bins)))
    centers = ((edges[:-1] + edges[1:]) / 2).tolist()
    ys = counts.astype(float).tolist()
    if logy:
        ys = [math.log10(c) if c > 0 else 0.0 for c in ys]
        ylabel = ylabel or "log10 count"
    fig.bar(centers, ys, color=color(0), width=1.0)
    ticks = np.linspace(edges[0], edges[-1], 5).tolist()
    fig.xticks(ticks, [f"{t:.3g}" for t in ticks])
    top = max(ys) if ys else 0.0
    for m in marks or []:
        try:
            mx = float(m.get("x"))
        except (TypeError, ValueError):
            continue
        fig.vertical_line(mx, color=color(3))
        if m.get("label") and len(marks) <= 6:  # many marks: the lines alone (labels would pile up)
            right = (mx - edges[0]) / max(edges[-1] - edges[0], 1e-300) > 0.6
            fig.text(str(m["label"]), mx, top, color=color(3), alignment="right" if right else "left")
    _labels(fig, title, xlabel, ylabel)
    return int(arr.size)


def render_line(series: dict, x=None, width: int = 60, height: int = 15, **kw) -> Text:
    fig = new_figure()
    draw_line(fig, series, x, **kw)
    return figure_text(fig, width, height)


def render_scatter(series: dict, lines=None, width: int = 60, height: int = 15, **kw) -> Text:
    fig = new_figure()
    draw_scatter(fig, series, lines, **kw)
    return figure_text(fig, width, height)


def render_bar(labels=None, values=None, series=None, width: int = 60, height: int = 15, **kw) -> Text:
    fig = new_figure()
    draw_bar(fig, labels, values, series, **kw)
    return figure_text(fig, width, height)


def render_hist(values, bins: int = 20, width: int = 60, height: int = 15, **kw) -> Text:
    fig = new_figure()
    draw_hist(fig, values, bins, **kw)
    return figure_text(fig, width, height)
