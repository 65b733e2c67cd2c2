"""render.overlay: a coarse heat map over a digit as colour pixels."""

from __future__ import annotations

import numpy as np
import pytest

from labbench.render import render_images
from labbench.render.heatmap import ramp
from labbench.render.overlay import heat_overlay, ramp_colours


def test_ramp_colours_match_the_heat_map_ramp():
    for v in (0.0, 0.3, 0.5, 0.99, 1.0):
        assert tuple(int(c) for c in ramp_colours(np.array(v))) == ramp(v)


def test_overlay_spreads_each_cell_over_its_block_and_keeps_the_ink():
    digit = np.zeros((1, 28, 28))
    digit[0, 10:18, 10:18] = 1.0                       # ink in the middle
    heat = np.zeros((1, 4, 4))
    heat[0, 0, 0] = 2.0                                # the top-left patch is hot
    rgb = heat_overlay(digit, heat, floor=0.3)
    assert rgb.shape == (1, 28, 28, 3) and rgb.dtype == np.uint8
    hot, cold = np.array(ramp(1.0)), np.array(ramp(0.0))
    assert np.array_equal(rgb[0, 3, 3], np.round(0.3 * hot).astype(np.uint8))     # background: 30% bright
    assert np.array_equal(rgb[0, 6, 6], rgb[0, 0, 0])                             # one 7x7 block, one colour
    assert np.array_equal(rgb[0, 12, 12], np.round(cold).astype(np.uint8))       # full ink, cold patch
    assert not np.array_equal(rgb[0, 7, 7], rgb[0, 6, 6])                         # the next block is cold


def test_overlay_normalises_each_map_and_refuses_a_map_that_does_not_tile():
    digit = np.ones((2, 28, 28))
    heat = np.stack([np.arange(16.0).reshape(4, 4), 100 + 10 * np.arange(16.0).reshape(4, 4)])
    rgb = heat_overlay(digit, heat)
    assert np.array_equal(rgb[0], rgb[1])              # same pattern, other units: same picture
    flat = heat_overlay(digit[:1], np.full((1, 4, 4), 3.0))
    assert np.array_equal(flat[0, 0, 0], np.round(np.array(ramp(0.5))).astype(np.uint8))
    with pytest.raises(ValueError, match="does not tile"):
        heat_overlay(digit, np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="match in N"):
        heat_overlay(digit, np.zeros((3, 4, 4)))


def test_overlay_draws_as_a_colour_grid():
    rgb = heat_overlay(np.random.default_rng(0).random((3, 28, 28)), np.random.default_rng(1).random((3, 4, 4)))
    text = render_images(rgb, captions=["a", "b", "c"], width=90)
    assert text.plain.count("\u2580") == 3 * 28 * 14
