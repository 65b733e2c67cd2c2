"""Image helpers: input-above-reconstruction pairs, sample grids and the
latent interpolation strip, through run.images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labbench.engine.events import iter_events, load_artifact
from labbench.engine.run import Run
from labbench.nn import interpolation_strip, lerp_latents, reconstruction_grid, sample_grid


def last_images(tmp_path):
    ev = [e for e in iter_events(tmp_path) if e["type"] == "images"][-1]
    return ev, load_artifact(tmp_path, ev["file"])


def test_each_input_sits_above_its_reconstruction(tmp_path):
    run = Run(tmp_path)
    x = torch.rand(10, 28 * 28)
    recon = 1 - x
    reconstruction_grid(run, "recon", x, recon, n=6, shape=(28, 28), step=3)
    run.close()
    ev, arr = last_images(tmp_path)
    assert arr.shape == (6, 28 + 2 + 28, 28) and ev["ncols"] == 6 and ev["step"] == 3
    top = (x[:6].reshape(6, 28, 28).numpy() * 255 + 0.5).astype(np.uint8)
    bottom = ((1 - x[:6]).reshape(6, 28, 28).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(arr[:, :28], top) and np.array_equal(arr[:, 30:], bottom)
    assert (arr[:, 28:30] == 128).all()  # the grey strip between


def test_colour_pairs_and_a_shape_mismatch(tmp_path):
    run = Run(tmp_path)
    x = torch.rand(3, 3, 8, 8) * 2 - 1  # [-1, 1]
    reconstruction_grid(run, "c", x, x, n=3)
    run.close()
    _, arr = last_images(tmp_path)
    assert arr.shape == (3, 18, 8, 3)
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_grid(Run(None), "c", x, x[:, :1])


def test_sample_grid(tmp_path):
    run = Run(tmp_path)
    sample_grid(run, "samples", torch.rand(12, 1, 28, 28), ncols=4, captions=[str(i) for i in range(12)])
    run.close()
    ev, arr = last_images(tmp_path)
    assert arr.shape == (12, 28, 28) and ev["ncols"] == 4 and ev["captions"][11] == "11"


def test_interpolation_strip_decodes_the_line_between_two_latents(tmp_path):
    z0, z1 = torch.zeros(2), torch.tensor([4.0, -2.0])
    lambdas, z = lerp_latents(z0, z1, steps=5)
    assert lambdas.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert torch.allclose(z[1], torch.tensor([1.0, -0.5])) and torch.equal(z[-1], z1)
    seen = []

    def decode(zz):
        seen.append(zz.clone())
        return torch.sigmoid(zz[:, :1, None].expand(-1, 6, 6))  # (N, 6, 6): brightness from z[0]

    run = Run(tmp_path)
    out = interpolation_strip(run, "interp", decode, z0, z1, steps=5)
    run.close()
    ev, arr = last_images(tmp_path)
    assert torch.equal(seen[0], z) and out.shape == (5, 6, 6)
    assert ev["captions"] == ["λ=0.00", "λ=0.25", "λ=0.50", "λ=0.75", "λ=1.00"] and ev["ncols"] == 5
    assert list(arr[:, 0, 0]) == sorted(arr[:, 0, 0])  # brighter along the line
