"""unit_images: a layer's incoming weights per unit as images, each scaled to its own largest."""

from __future__ import annotations

import pytest
import torch

from labbench.nn import unit_images


def test_unit_images_scale_each_unit_to_its_largest_weight():
    w = torch.zeros(3, 784)
    w[0, 0], w[0, 5] = 0.02, -0.01  # a small unit
    w[1, 783] = -4.0  # a large one
    imgs = unit_images(w, 2)
    assert imgs.shape == (2, 28, 28)
    assert imgs[0, 0, 0] == 1.0 and imgs[0, 0, 5] == -0.5 and imgs[1, 27, 27] == -1.0
    assert torch.equal(unit_images(w)[2], torch.zeros(28, 28))  # a dead unit stays grey
    with pytest.raises(ValueError, match="784 inputs per unit cannot be shown as"):
        unit_images(w, shape=(32, 32))
