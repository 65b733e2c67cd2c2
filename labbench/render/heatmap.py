"""Heat maps as coloured character cells (confusion matrices, SOM u-matrices,
weight pictures), with optional numbers, row/column labels and marks."""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

# A perceptually ordered ramp (dark blue -> teal -> yellow), like viridis.
_RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=float)


def ramp(v: float) -> tuple[int, int, int]:
    """Colour of ``v`` in [0, 1]."""
    if not math.isfinite(v):
        return (90, 90, 90)
    v = min(max(v, 0.0), 1.0) * (len(_RAMP) - 1)
    i = min(int(v), len(_RAMP) - 2)
    f = v - i
    c = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    return (int(c[0]), int(c[1]), int(c[2]))


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.1e}"


def _pool(z: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Block-mean ``z`` down to at most rows x cols."""
    r, c = z.shape
    fr, fc = max(1, math.ceil(r / rows)), max(1, math.ceil(c / cols))
    if fr == 1 and fc == 1:
        return z
    pad = np.full((math.ceil(r / fr) * fr, math.ceil(c / fc) * fc), np.nan)
    pad[:r, :c] = z
    blocks = pad.reshape(pad.shape[0] // fr, fr, pad.shape[1] // fc, fc)
    with np.errstate(all="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def render_heatmap(z, *, xlabels=None, ylabels=None, annotate: bool = False, marks=None, width: int = 60,
                   height: int = 20, title: str = "", zlabel: str = "", x=None, y=None,
                   colors: str = "truecolor") -> Text:
    """``z`` rows top to bottom. Cells are wide enough for the numbers when
    ``annotate``; a big matrix is pooled (block mean) to fit."""
    arr = np.array([[np.nan if v is None else float(v) if not isinstance(v, str) else np.nan for v in row]
                    for row in z], dtype=float) if not isinstance(z, np.ndarray) else z.astype(float)
    if arr.ndim != 2 or arr.size == 0:
        return Text("(empty heat map)", style="dim")
    xlabels = [str(v) for v in (xlabels if xlabels is not None else (x if x is not None else []))]
    ylabels = [str(v) for v in (ylabels if ylabels is not None else (y if y is not None else []))]
    label_w = min(max((len(s) for s in ylabels), default=0), 12)
    avail_w = max(4, width - (label_w + 1 if label_w else 0))
    avail_h = max(2, height - (1 if title else 0) - (1 if xlabels else 0) - 1)
    rows, cols = arr.shape
    cell_w = 2
    if annotate:
        cell_w = max(len(_fmt(v)) for v in arr.ravel()) + 1
        cell_w = max(cell_w, min(max((len(s) for s in xlabels), default=0) + 1, 6))
    if cols * cell_w > avail_w:
        if annotate:
            annotate = False
        cell_w = max(1, avail_w // cols)
    pooled = _pool(arr, avail_h if not annotate else rows, max(1, avail_w // cell_w))
    if pooled.shape != arr.shape:
        xlabels, ylabels, marks = [], [], None
        label_w = 0
    finite = pooled[np.isfinite(pooled)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    mark_at = {(int(m.get("row", -1)), int(m.get("col", -1))): str(m.get("text", "*")) for m in (marks or [])}
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    if xlabels:
        head = " " * (label_w + 1 if label_w else 0)
        head += "".join(s[:cell_w - 1 if cell_w > 1 else 1].center(cell_w) for s in xlabels[:pooled.shape[1]])
        out.append(head + "\n", style="dim")
    for r in range(pooled.shape[0]):
        if label_w:
            lab = ylabels[r] if r < len(ylabels) else ""
            out.append(lab[:label_w].rjust(label_w) + " ", style="dim")
        for c in range(pooled.shape[1]):
            v = pooled[r, c]
            bg = ramp((v - lo) / span)
            if colors == "256":
                from rich.color import ColorSystem

                bgc = Color.from_rgb(*bg).downgrade(ColorSystem.EIGHT_BIT)
            else:
                bgc = Color.from_rgb(*bg)
            bright = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 140
            fg = "black" if bright else "white"
            text = ""
            if (r, c) in mark_at:
                text = mark_at[(r, c)]
            elif annotate:
                text = _fmt(v)
            out.append(text[:cell_w].center(cell_w), Style(bgcolor=bgc, color=fg, bold=(r, c) in mark_at))
        out.append("\n")
    out.append(f"{zlabel + ': ' if zlabel else ''}{_fmt(lo)} ", style="dim")
    for i in range(8):
        out.append("  ", Style(bgcolor=Color.from_rgb(*ramp(i / 7))))
    out.append(f" {_fmt(hi)}", style="dim")
    return out
