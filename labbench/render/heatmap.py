"""Heat maps as coloured character cells (confusion matrices, SOM u-matrices,
weight pictures, surfaces on a grid), with optional numbers, row/column labels
or axis values, and marks.

Colours: ``"truecolor"``, ``"256"`` (the xterm palette, for tmux/SSH sessions
that announce 256 colours) or ``"standard"`` (16 colours or none: the level is
drawn with shade characters so the picture still reads in monochrome).
Cells that hold no value (NaN) are a dim ``·`` on the terminal's background,
never a colour of the ramp.

A plain surface (no numbers, marks or category labels) with many rows is drawn
with half blocks in colour: two data rows per line, cells square.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from rich.color import Color, ColorSystem
from rich.style import Style
from rich.text import Text

# A perceptually ordered ramp (dark blue -> teal -> yellow), like viridis.
_RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=float)
_SHADES = "░▒▓█"
MAX_SCALE = 3  # a small matrix is drawn with cells up to 2*3 x 3 characters
HALF_BLOCK_ROWS = 12  # a plain surface with more rows than this is drawn two rows per line
UPPER, LOWER = "▀", "▄"


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


def _pool(z: np.ndarray, rows: int, cols: int, square: bool = False) -> np.ndarray:
    """Block-mean ``z`` down to at most rows x cols (with ``square``, by the
    same factor both ways, so a surface keeps its shape)."""
    r, c = z.shape
    fr, fc = max(1, math.ceil(r / max(rows, 1))), max(1, math.ceil(c / max(cols, 1)))
    if square:
        fr = fc = max(fr, fc)
    if fr == 1 and fc == 1:
        return z
    pad = np.full((math.ceil(r / fr) * fr, math.ceil(c / fc) * fc), np.nan)
    pad[:r, :c] = z
    blocks = pad.reshape(pad.shape[0] // fr, fr, pad.shape[1] // fc, fc)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
            return np.nanmean(blocks, axis=(1, 3))


def _pool_axis(values: list, n_out: int) -> list:
    """Axis values for pooled cells: the first value of each block."""
    if not values or n_out >= len(values):
        return values
    f = math.ceil(len(values) / n_out)
    return [values[i] for i in range(0, len(values), f)]


@lru_cache(maxsize=4096)
def _cell_style(rgb: tuple[int, int, int], colors: str, bold: bool) -> Style:
    bright = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140
    c = Color.from_rgb(*rgb)
    if colors == "standard":
        return Style(color=c.downgrade(ColorSystem.STANDARD), bold=bold)
    if colors == "256":
        c = c.downgrade(ColorSystem.EIGHT_BIT)
    return Style(bgcolor=c, color="black" if bright else "white", bold=bold)


def _axis_line(values: list, cell_w: int, n: int) -> str:
    """Tick labels of a numeric axis under/over ``n`` cells of ``cell_w``:
    as many as fit without overlapping, the first always."""
    out = [" "] * (n * cell_w)
    free_from = 0
    for c in range(min(n, len(values))):
        v = values[c]
        s = _fmt(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
        start = c * cell_w
        if start < free_from or start + len(s) > len(out):
            continue
        out[start:start + len(s)] = list(s)
        free_from = start + len(s) + 1
    return "".join(out).rstrip()


def _place(s: str, w: int, right: bool) -> str:
    """Numbers right-aligned (with a space after), anything else centred."""
    if right and w >= 3:
        return s.rjust(w - 1)[: w - 1] + " "
    return s.center(w)


def _as_array(z) -> np.ndarray:
    if isinstance(z, np.ndarray):
        return z.astype(float)
    rows = []
    for row in z:
        rows.append([np.nan if v is None or isinstance(v, str) else float(v) for v in row])
    width = max((len(r) for r in rows), default=0)
    return np.array([r + [np.nan] * (width - len(r)) for r in rows], dtype=float)


def _numeric(values) -> bool:
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _half_blocks(rows: int, colors: str, annotate, marks, xlabels, ylabels) -> bool:
    return (colors != "standard" and not annotate and not marks and xlabels is None and ylabels is None
            and rows > HALF_BLOCK_ROWS)


def _half_block_cols(rows: int, cols: int, avail_h: int) -> int:
    """Columns of a half-block surface once it is pooled to fit ``avail_h`` lines."""
    return math.ceil(cols / max(1, math.ceil(rows / (2 * max(avail_h, 1)))))


def heatmap_min_width(data: dict, height: int = 20, title: str = "", colors: str = "truecolor") -> int | None:
    """The narrowest width at which a heat map drawn in half blocks still shows
    every cell (its row labels may go), for laying maps out side by side;
    None for a map drawn one cell per character (its width is what it draws)."""
    if data.get("z") is None:
        return None
    try:
        arr = _as_array(data["z"])
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2 or arr.size == 0 or not _half_blocks(arr.shape[0], colors, data.get("annotate"),
                                                          data.get("marks"), data.get("xlabels"),
                                                          data.get("ylabels")):
        return None
    fixed_h = (1 if title else 0) + (1 if data.get("xlabel") else 0) + (1 if data.get("x") is not None else 0) + 1
    return max(20, _half_block_cols(*arr.shape, max(2, height - fixed_h)))


def render_heatmap(z, *, xlabels=None, ylabels=None, annotate: bool = False, marks=None, width: int = 60,
                   height: int = 20, title: str = "", zlabel: str = "", x=None, y=None, xlabel: str = "",
                   ylabel: str = "", colors: str = "truecolor") -> Text:
    """``z`` rows top to bottom, drawn in at most ``width`` x ``height`` cells.

    Category labels (``xlabels``/``ylabels``) name every column/row; axis
    values (``x``/``y``) are written as ticks where they fit. Small matrices get
    bigger cells; a big one is pooled (block mean) to fit, and loses its
    per-cell numbers, labels and marks when it has to be."""
    try:
        arr = _as_array(z)
    except (TypeError, ValueError):
        return Text("(heat map: z must be a 2-D list of numbers)", style="yellow")
    if arr.ndim != 2 or arr.size == 0:
        return Text("(empty heat map)", style="dim")
    rows, cols = arr.shape
    numeric_x = xlabels is None and x is not None and len(x) > 0  # axis values: ticks where they fit
    xl = [str(v) for v in xlabels] if xlabels is not None else (list(x) if x is not None else [])
    yl = [str(v) for v in ylabels] if ylabels is not None else (
        [_fmt(float(v)) for v in y] if y is not None and _numeric(list(y)) else [str(v) for v in (y or [])])
    mark_at = {}
    for m in marks or []:
        try:
            mark_at[(int(m.get("row", -1)), int(m.get("col", -1)))] = str(m.get("text", "*"))
        except (TypeError, ValueError, AttributeError):
            continue

    label_w = min(max([len(s) for s in yl] + [len(ylabel) if yl else 0], default=0), 14)
    avail_w = max(4, width - (label_w + 1 if label_w else 0))
    fixed_h = (1 if title else 0) + (1 if xlabel else 0) + (1 if xl else 0) + 1  # + legend
    avail_h = max(2, height - fixed_h)
    if _half_blocks(rows, colors, annotate, mark_at, xlabels, ylabels):
        return _render_half_blocks(arr, x=xl, y=yl, label_w=label_w, avail_w=avail_w, avail_h=avail_h,
                                   title=title, zlabel=zlabel, xlabel=xlabel, ylabel=ylabel, colors=colors,
                                   width=width)

    # the cell width the content wants
    need = 2
    if annotate:
        need = max(len(_fmt(v)) for v in arr.ravel()) + 1
        for (r, c), t in mark_at.items():
            if 0 <= r < rows and 0 <= c < cols:
                need = max(need, min(len(t) + 1 + len(_fmt(arr[r, c])), 14) + 1)
    elif mark_at:
        need = max(need, min(max(len(t) for t in mark_at.values()), 8) + 1)
    if xl and not numeric_x:
        need = max(need, min(max(len(str(s)) for s in xl) + 1, 12))
    cell_w = need
    if cols * cell_w > avail_w:  # too wide: first drop the words, then the numbers
        cell_w = max(2, min(need, avail_w // cols))
        if annotate and cell_w < max(len(_fmt(v)) for v in arr.ravel()) + 1:
            annotate = False
    # a small matrix: square-ish cells (2k wide, k lines), up to MAX_SCALE
    scale = 1
    if not annotate and cols * 4 <= avail_w and rows * 2 <= avail_h:
        scale = max(1, min(MAX_SCALE, avail_w // (cols * 2), avail_h // rows))
        cell_w = max(cell_w, 2 * scale)
    line_h = scale
    if cols * cell_w > avail_w or rows * line_h > avail_h:
        line_h = 1
        cell_w = max(1, min(cell_w, avail_w // cols)) if cols * cell_w > avail_w else cell_w
    pooled = _pool(arr, avail_h if rows > avail_h and not annotate else rows, max(1, avail_w // max(cell_w, 1)),
                   square=not annotate and not xlabels and not ylabels)
    if pooled.shape != arr.shape:
        annotate = False
        mark_at = {}
        cell_w = max(1, min(2, avail_w // pooled.shape[1]))
        xl = _pool_axis(xl, pooled.shape[1]) if numeric_x else []
        yl = _pool_axis(yl, pooled.shape[0]) if y is not None and ylabels is None else []
        if not yl:
            label_w = 0
    prow, pcol = pooled.shape
    finite = pooled[np.isfinite(pooled)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0

    out = Text()
    pad = " " * (label_w + 1) if label_w else ""
    if title:
        out.append(title + "\n", style="bold")
    if xlabel:
        out.append(pad + f"{xlabel} →".center(pcol * cell_w).rstrip() + "\n", style="dim italic")
    if xl:
        corner = (ylabel[:label_w].rjust(label_w) + " ") if label_w and ylabel else pad
        if numeric_x:
            head = _axis_line(xl, cell_w, pcol)
        else:
            head = "".join(_place(str(s)[:max(cell_w - 1, 1)], cell_w, annotate) for s in xl[:pcol])
        out.append(corner, style="dim italic")
        out.append(head.rstrip() + "\n", style="dim")
    nan_seen = False
    for r in range(prow):
        for sub in range(line_h):
            if label_w:
                lab = yl[r] if r < len(yl) and sub == (line_h - 1) // 2 else ""
                out.append(lab[:label_w].rjust(label_w) + " ", style="dim")
            for c in range(pcol):
                v = pooled[r, c]
                if not math.isfinite(v):
                    nan_seen = True
                    out.append("·".center(cell_w) if sub == (line_h - 1) // 2 else " " * cell_w, "dim")
                    continue
                level = (v - lo) / span
                marked = (r, c) in mark_at
                st = _cell_style(ramp(level), colors, marked)
                text = ""
                if sub == (line_h - 1) // 2:
                    if marked and annotate:
                        text = f"{mark_at[(r, c)]} {_fmt(v)}"
                        if len(text) > cell_w:
                            text = mark_at[(r, c)]
                    elif marked:
                        text = mark_at[(r, c)]
                    elif annotate:
                        text = _fmt(v)
                if colors == "standard" and not text:
                    text = _SHADES[min(int(level * len(_SHADES)), len(_SHADES) - 1)] * cell_w
                out.append(_place(text[:cell_w], cell_w, annotate and not marked), st)
            out.append("\n")
    if ylabel and label_w == 0:
        out.append(f"rows: {ylabel}\n", style="dim italic")
    _legend(out, lo, hi, zlabel, colors, nan_seen, width)
    return out


def _legend(out: Text, lo: float, hi: float, zlabel: str, colors: str, nan_seen: bool, width: int = 0) -> None:
    """The colour ramp from ``lo`` to ``hi``; where that is too wide for
    ``width``, a shorter ramp, and the value's name on a line of its own."""
    head, tail = f"{zlabel + ': ' if zlabel else ''}{_fmt(lo)} ", f" {_fmt(hi)}"
    note = "   · no data" if nan_seen else ""
    step = 2
    if width and len(head) + 16 + len(tail) + len(note) > width:
        step = 1
        if len(head) + 8 + len(tail) + len(note) > width and (zlabel or note):
            out.append((zlabel + note)[:width] + "\n", style="dim")
            head, note = f"{_fmt(lo)} ", ""
    out.append(head, style="dim")
    for i in range(8):
        st = _cell_style(ramp(i / 7), colors, False)
        out.append(_SHADES[min(i // 2, 3)] * step if colors == "standard" else " " * step, st)
    out.append(tail, style="dim")
    if note:
        out.append(note, style="dim")


@lru_cache(maxsize=8192)
def _half_style(top: tuple[int, int, int] | None, bottom: tuple[int, int, int] | None, colors: str) -> Style:
    def col(rgb):
        c = Color.from_rgb(*rgb)
        return c.downgrade(ColorSystem.EIGHT_BIT) if colors == "256" else c

    return Style(color=col(top) if top else None, bgcolor=col(bottom) if bottom else None)


def _render_half_blocks(arr: np.ndarray, *, x: list, y: list, label_w: int, avail_w: int, avail_h: int,
                        title: str, zlabel: str, xlabel: str, ylabel: str, colors: str, width: int) -> Text:
    """A surface without numbers or marks, two data rows per line: each
    character is an upper half block, its colour the top cell, its background
    the cell below. A cell is 1 character wide and half a line tall, square in
    a usual terminal font (2 wide and a line tall when there is room); a
    surface too big for the space is pooled by the same factor both ways."""
    rows, cols = arr.shape
    y_range = ""
    if label_w and avail_w < _half_block_cols(rows, cols, avail_h) <= avail_w + label_w + 1:
        # the row labels would cost the map half its columns: leave them out, say the range instead
        y_range = f"{ylabel or 'rows'} ↓ {y[0]} … {y[-1]}"
        avail_w, label_w = avail_w + label_w + 1, 0
    k = 2 if cols * 2 <= avail_w and rows <= avail_h else 1  # pixels per cell, each way
    pooled = _pool(arr, 2 * avail_h, avail_w, square=True) if k == 1 else arr
    prow, pcol = pooled.shape
    if pooled.shape != arr.shape:
        x = _pool_axis(x, pcol)
        y = _pool_axis(y, prow)
    px = np.repeat(np.repeat(pooled, k, axis=0), k, axis=1) if k > 1 else pooled
    if px.shape[0] % 2:  # an odd number of pixel rows: the last line's lower half is empty
        px = np.vstack([px, np.full((1, px.shape[1]), np.nan)])
        pad_row = True
    else:
        pad_row = False
    finite = pooled[np.isfinite(pooled)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    rgb = [[ramp((v - lo) / span) if math.isfinite(v) else None for v in row] for row in px]
    if not y:
        label_w = 0

    out = Text()
    pad = " " * (label_w + 1) if label_w else ""
    if title:
        out.append(title[:max(width, 1)] + "\n", style="bold")
    if xlabel:
        out.append(pad + f"{xlabel} →".center(pcol * k).rstrip() + "\n", style="dim italic")
    if x:
        corner = (ylabel[:label_w].rjust(label_w) + " ") if label_w and ylabel else pad
        out.append(corner, style="dim italic")
        out.append(_axis_line(x, k, pcol).rstrip() + "\n", style="dim")
    nan_seen = False
    n_lines = px.shape[0] // 2
    last_label = -1
    for line in range(n_lines):
        if label_w:
            r = (2 * line) // k  # the data row at the top of this line
            lab = ""
            if r != last_label and r < len(y):
                lab, last_label = str(y[r]), r
            out.append(lab[:label_w].rjust(label_w) + " ", style="dim")
        top_row, bottom_row = rgb[2 * line], rgb[2 * line + 1]
        for c in range(px.shape[1]):
            top, bottom = top_row[c], bottom_row[c]
            if top is None and bottom is None:
                nan_seen = True
                out.append("·", style="dim")
            elif top is None:
                nan_seen = True
                out.append(LOWER, _half_style(bottom, None, colors))
            else:
                if bottom is None and not (pad_row and line == n_lines - 1):
                    nan_seen = True
                out.append(UPPER, _half_style(top, bottom, colors))
        out.append("\n")
    if y_range:
        out.append(y_range[:max(width, 1)] + "\n", style="dim italic")
    elif ylabel and label_w == 0:
        out.append(f"rows: {ylabel}\n", style="dim italic")
    _legend(out, lo, hi, zlabel, colors, nan_seen, width)
    return out
