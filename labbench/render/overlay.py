"""A heat map drawn over a picture, as a colour image for an image grid.

``heat_overlay(digits, maps)`` gives (N, H, W, 3) uint8 pictures: each pixel
takes the heat-map ramp's colour (dark blue -> teal -> yellow) of its map
value and the brightness of the picture there, so the digit's strokes stay
readable and the colour says where the map is high. A coarse map (a ViT's
4 x 4 patches on a 28 x 28 digit) is spread over the pixels it covers.
The result goes to ``run.images`` like any colour grid.
"""

from __future__ import annotations

import numpy as np

from .heatmap import _RAMP


def ramp_colours(values: np.ndarray) -> np.ndarray:
    """The heat-map ramp's colour of every value in [0, 1] (clipped; NaN as 0),
    as floats of shape ``values.shape + (3,)``."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(int), len(_RAMP) - 2)
    f = (v - i)[..., None]
    return _RAMP[i] * (1 - f) + _RAMP[i + 1] * f


def heat_overlay(images, heat, *, floor: float = 0.3, normalize: str = "each") -> np.ndarray:
    """Colour pictures of ``heat`` over grey ``images``.

    ``images``: (N, H, W) in [0, 1] (or uint8); ``heat``: (N, h, w) with H and
    W multiples of h and w (each map cell covers an (H/h) x (W/w) block).
    ``normalize``: "each" scales every map to its own [min, max], "none" takes
    the values as they are in [0, 1]. A pixel's brightness is ``floor`` on the
    background and 1 on full ink. Returns uint8 (N, H, W, 3)."""
    img = np.asarray(images.detach().float().cpu() if hasattr(images, "detach") else images)
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    img = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    hm = np.asarray(heat.detach().float().cpu() if hasattr(heat, "detach") else heat, dtype=np.float64)
    if img.ndim == 2:
        img = img[None]
    if hm.ndim == 2:
        hm = hm[None]
    if img.ndim != 3 or hm.ndim != 3 or len(img) != len(hm):
        raise ValueError(f"images (N, H, W) and heat (N, h, w) must match in N, got {img.shape} and {hm.shape}")
    (H, W), (h, w) = img.shape[1:], hm.shape[1:]
    if h == 0 or w == 0 or H % h or W % w:
        raise ValueError(f"a {h}x{w} map does not tile a {H}x{W} image")
    if normalize == "each":
        lo = hm.min(axis=(1, 2), keepdims=True)
        span = hm.max(axis=(1, 2), keepdims=True) - lo
        hm = np.where(span > 0, (hm - lo) / np.where(span > 0, span, 1.0), 0.5)
    elif normalize != "none":
        raise ValueError(f'normalize must be "each" or "none", got {normalize!r}')
    hm = np.repeat(np.repeat(hm, H // h, axis=1), W // w, axis=2)
    rgb = ramp_colours(hm) * (floor + (1.0 - floor) * img)[..., None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
