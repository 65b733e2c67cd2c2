"""Report-ready files from run folders: SVG charts, PNG image grids and heat
maps, tables as CSV / Markdown / LaTeX. No plotting library needed: the SVG is
written by hand and PNGs go through Pillow (a torchvision dependency)."""

from __future__ import annotations

import csv
import io
import math
from html import escape
from pathlib import Path
from typing import Sequence

import numpy as np

# A palette that stays readable in print and for colour-blind readers (Okabe-Ito order).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    ticks, v = [], start
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.0e}"
    return f"{v:g}"


def svg_lines(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "", xlabel: str = "",
              ylabel: str = "", logy: bool = False, width: int = 640, height: int = 400,
              markers: Sequence[dict] = (), colors: dict[str, str] | None = None) -> str:
    """A line chart as an SVG document: {label: (xs, ys)}, optional log-y and
    vertical markers ({"x": value, "label": text})."""
    left, right, top, bottom = 64, 16, 32 if title else 12, 48
    pw, ph = width - left - right, height - top - bottom
    pts = {}
    for label, (xs, ys) in series.items():
        keep = [(float(x), float(y)) for x, y in zip(xs, ys)
                if x is not None and y is not None and math.isfinite(float(y)) and (not logy or float(y) > 0)]
        pts[label] = keep
    allx = [x for p in pts.values() for x, _ in p] or [0.0, 1.0]
    ally = [(math.log10(y) if logy else y) for p in pts.values() for _, y in p] or [0.0, 1.0]
    x0, x1 = min(allx), max(allx)
    y0, y1 = min(ally), max(ally)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        v = math.log10(y) if logy else y
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        out.append(f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    for t in _nice_ticks(x0, x1):
        X = sx(t)
        out.append(f'<line x1="{X:.1f}" y1="{top + ph}" x2="{X:.1f}" y2="{top + ph + 4}" stroke="#444"/>')
        out.append(f'<text x="{X:.1f}" y="{top + ph + 17}" text-anchor="middle">{_fmt_tick(t)}</text>')
    if logy:
        yt = [10.0 ** e for e in range(math.floor(y0), math.ceil(y1) + 1) if y0 <= e <= y1]
    else:
        yt = _nice_ticks(y0, y1)
    for t in yt:
        Y = sy(t)
        out.append(f'<line x1="{left - 4}" y1="{Y:.1f}" x2="{left + pw}" y2="{Y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{Y + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>')
    if xlabel:
        out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 14 {top + ph / 2})">{escape(ylabel)}</text>')
    for m in markers:
        X = sx(float(m["x"]))
        out.append(f'<line x1="{X:.1f}" y1="{top}" x2="{X:.1f}" y2="{top + ph}" stroke="#888" '
                   f'stroke-dasharray="4 3"/>')
        if m.get("label"):
            out.append(f'<text x="{X + 3:.1f}" y="{top + 12}" fill="#555">{escape(str(m["label"]))}</text>')
    for i, (label, p) in enumerate(pts.items()):
        col = (colors or {}).get(label, PALETTE[i % len(PALETTE)])
        if len(p) > 4000:  # keep files small: every k-th point, the last one kept
            k = math.ceil(len(p) / 4000)
            p = p[::k] + ([p[-1]] if (len(p) - 1) % k else [])
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in p)
        if len(p) == 1:
            out.append(f'<circle cx="{sx(p[0][0]):.1f}" cy="{sy(p[0][1]):.1f}" r="2.5" fill="{col}"/>')
        elif p:
            out.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="1.6"/>')
        ly = top + 14 + 16 * i
        out.append(f'<line x1="{left + pw - 150}" y1="{ly - 4}" x2="{left + pw - 130}" y2="{ly - 4}" '
                   f'stroke="{col}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw - 126}" y="{ly}">{escape(label[:22])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png_images(array: np.ndarray, path: Path, ncols: int | None = None, scale: int = 2, pad: int = 2,
               highlight: Sequence[int] | None = None) -> None:
    """An image grid (N,H,W) or (N,H,W,3) uint8 as one PNG; highlighted images
    get a red frame."""
    from PIL import Image

    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    n, h, w, _ = arr.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    H, W = h + 2 * pad, w + 2 * pad
    canvas = np.full((nrows * H, ncols * W, 3), 255, np.uint8)
    marked = set(highlight or [])
    for i in range(n):
        r, c = divmod(i, ncols)
        if i in marked:
            canvas[r * H:(r + 1) * H, c * W:(c + 1) * W] = (220, 40, 40)
        canvas[r * H + pad:r * H + pad + h, c * W + pad:c * W + pad + w] = arr[i]
    img = Image.fromarray(canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)


def _viridis_like(t: np.ndarray) -> np.ndarray:
    """A perceptually ordered dark-blue -> green -> yellow ramp (t in [0, 1])."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
    t = np.clip(t, 0, 1) * (len(stops) - 1)
    i = np.minimum(t.astype(int), len(stops) - 2)
    f = (t - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def png_heatmap(z, path: Path, cell: int = 8) -> None:
    from PIL import Image

    z = np.asarray(z, dtype=float)
    finite = np.isfinite(z)
    lo, hi = (np.nanmin(z[finite]), np.nanmax(z[finite])) if finite.any() else (0.0, 1.0)
    t = (z - lo) / (hi - lo) if hi > lo else np.zeros_like(z)
    rgb = _viridis_like(np.nan_to_num(t))
    rgb[~finite] = (200, 200, 200)
    img = Image.fromarray(rgb)
    img.resize((img.width * cell, img.height * cell), Image.NEAREST).save(path)


def table_csv(columns: Sequence, rows: Sequence[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def _cell(v) -> str:
    from .console import fmt_value

    return fmt_value(v)


def table_markdown(columns: Sequence, rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(str(c) for c in columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines) + "\n"


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s


def table_latex(columns: Sequence, rows: Sequence[Sequence], caption: str = "") -> str:
    spec = "l" + "r" * (len(columns) - 1)
    lines = [r"\begin{table}[ht]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\hline",
             " & ".join(_tex(str(c)) for c in columns) + r" \\", r"\hline"]
    for r in rows:
        lines.append(" & ".join(_tex(_cell(c)) for c in r) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_tex(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
