"""Image grids drawn with half-block characters.

Each character cell shows two pixels stacked: the upper half block ``▀`` in
the top pixel's colour on the bottom pixel's colour. Grey (N, H, W) and colour
(N, H, W, 3) uint8 arrays (or floats in [0, 1] / [-1, 1]) are supported, in
true colour or quantised to the xterm 256-colour palette. Images wider than
the space are shrunk by an integer factor (block mean).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER = "\u2580"


def to_uint8(array) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) uint8 from an array or tensor in any of the
    layouts the engine accepts (NCHW too, floats in [0, 1] or [-1, 1])."""
    arr = array.detach().float().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.transpose(arr, (0, 2, 3, 1))
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        finite = arr[np.isfinite(arr)]
        lo = -1.0 if finite.size and float(finite.min()) < -1e-6 else 0.0
        hi = 255.0 if finite.size and float(finite.max()) > 1.5 else 1.0
        lo = 0.0 if hi == 255.0 else lo
        arr = np.clip((np.nan_to_num(arr) - lo) / (hi - lo), 0, 1)
        arr = (arr * 255 + 0.5).astype(np.uint8)
    return arr


def shrink(img: np.ndarray, factor: int) -> np.ndarray:
    """Block-mean downscale of one (H, W) or (H, W, 3) image by ``factor``."""
    if factor <= 1:
        return img
    h, w = img.shape[:2]
    h2, w2 = max(1, h // factor), max(1, w // factor)
    img = img[: h2 * factor, : w2 * factor].astype(np.float32)
    shape = (h2, factor, w2, factor) + img.shape[2:]
    return (img.reshape(shape).mean(axis=(1, 3)) + 0.5).astype(np.uint8)


@lru_cache(maxsize=65536)
def _style(top: tuple, bottom: tuple | None, colors: str) -> Style:
    fg = Color.from_rgb(*top)
    bg = Color.from_rgb(*bottom) if bottom is not None else None
    if colors == "256":
        from rich.color import ColorSystem

        fg = fg.downgrade(ColorSystem.EIGHT_BIT)
        bg = bg.downgrade(ColorSystem.EIGHT_BIT) if bg is not None else None
    return Style(color=fg, bgcolor=bg)


def _rgb(px) -> tuple[int, int, int]:
    if np.ndim(px) == 0:
        v = int(px)
        return (v, v, v)
    return (int(px[0]), int(px[1]), int(px[2]))


def image_lines(img: np.ndarray, colors: str = "truecolor") -> list[Text]:
    """One image as lines of half blocks (H/2 rounded up lines, W cells)."""
    h = img.shape[0]
    lines = []
    for r in range(0, h, 2):
        line = Text()
        top_row = img[r]
        bot_row = img[r + 1] if r + 1 < h else None
        for c in range(img.shape[1]):
            top = _rgb(top_row[c])
            bottom = _rgb(bot_row[c]) if bot_row is not None else None
            line.append(UPPER, _style(top, bottom, colors))
        lines.append(line)
    return lines


def grid_layout(n: int, img_w: int, width: int | None, ncols: int | None, gap: int = 1) -> tuple[int, int]:
    """(columns, shrink factor) so that the grid fits ``width`` cells."""
    factor = 1
    if width is not None and width > 0:
        while img_w // factor > width and factor < img_w:
            factor += 1
    cell = max(1, img_w // factor) + gap
    fit = max(1, (width + gap) // cell) if width else n
    cols = min(n, ncols or fit, fit) if n else 1
    return max(1, cols), factor


def grid_lines(n: int, h: int, w: int, width: int | None, ncols: int | None, factor: int, gap: int,
               captions: bool) -> int:
    """Lines a grid of ``n`` (h x w) images takes when shrunk by ``factor``."""
    cols, f = grid_layout(n, max(1, w // factor), width, ncols, gap)
    per_row = -(-max(1, (h // factor) // f) // 2) + (1 if captions else 0)
    return -(-n // cols) * per_row


def pick_factor(n: int, h: int, w: int, width: int | None, ncols: int | None, gap: int, captions: bool,
                max_lines: int | None, min_px: int) -> int:
    """The smallest shrink factor whose grid fits ``max_lines``, without making
    an image narrower than ``min_px`` pixels (small images are never shrunk)."""
    factor = 1
    if not max_lines:
        return factor
    while (w // (factor + 1) >= min_px
           and grid_lines(n, h, w, width, ncols, factor, gap, captions) > max_lines):
        factor += 1
    return factor


def render_images(array, captions: list | None = None, highlight: list | None = None, *, width: int | None = None,
                  ncols: int | None = None, colors: str = "truecolor", title: str = "", max_images: int = 64,
                  gap: int = 1, max_lines: int | None = None, min_px: int = 12) -> Text:
    """A grid of images with a caption under each; highlighted (wrong) ones
    get their caption in red, marked with ``x``. ``colors`` is "truecolor" or "256".
    With ``max_lines``, images are shrunk (block mean, never below ``min_px``
    pixels wide) until the grid fits in that many lines: 32 MNIST digits at
    14x14 in a few rows rather than 28x28 three to a row."""
    arr = to_uint8(array)
    n = min(len(arr), max_images)
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    if n == 0:
        out.append("(no images)", style="dim")
        return out
    h, w = arr.shape[1:3]
    pre = pick_factor(n, h, w, width, ncols, gap, bool(captions), max_lines, min_px)
    cols, factor = grid_layout(n, max(1, w // pre), width, ncols, gap)
    factor *= pre
    imgs = [shrink(arr[i], factor) for i in range(n)]
    cw = imgs[0].shape[1]
    marked = set(int(i) for i in (highlight or []))
    caps = list(captions or [])
    rows_out: list[Text] = []
    for start in range(0, n, cols):
        idx = list(range(start, min(start + cols, n)))
        blocks = [image_lines(imgs[i], colors) for i in idx]
        for li in range(len(blocks[0])):
            line = Text()
            for j, b in enumerate(blocks):
                if j:
                    line.append(" " * gap)
                line.append_text(b[li])
            rows_out.append(line)
        if caps:
            line = Text()
            for j, i in enumerate(idx):
                if j:
                    line.append(" " * gap)
                cap = str(caps[i]) if i < len(caps) else ""
                if i in marked:
                    cap = "x" + cap
                cap = cap[:cw].ljust(cw)
                line.append(cap, style="bold red" if i in marked else "dim")
            rows_out.append(line)
    out.append_text(Text("\n").join(rows_out))
    if len(arr) > n:
        out.append(f"\n(+{len(arr) - n} more)", style="dim")
    return out
