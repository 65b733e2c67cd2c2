"""Live samples of the generative exercises: one grid per epoch (with its
step), the kept rows surviving a resumption (they live in the resumable
state), the strip of epochs, and the 2-D latent walk's placement."""

from __future__ import annotations

import pytest
import torch

from labbench.engine import Run
from labbench.nn.samples import SampleEvolution, gaussian_grid, latent_walk, pick_rows, side_by_side, to_uint8


def recorder():
    events = []
    return Run(None, listeners=[events.append]), events


def test_pick_rows_spreads_evenly_and_keeps_both_ends():
    assert pick_rows([1, 2, 3], 8) == [1, 2, 3]
    assert pick_rows(list(range(1, 51)), 8) == [1, 8, 15, 22, 29, 36, 43, 50]
    assert pick_rows(list(range(1, 11)), 1) == [10]


def test_side_by_side_puts_a_grey_column_between_images():
    a = torch.zeros(3, 2, 2, dtype=torch.uint8)
    out = side_by_side(a)
    assert out.shape == (2, 3 * 2 + 2) and out[:, 2].tolist() == [128, 128] and out[:, 5].tolist() == [128, 128]
    colour = side_by_side(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    assert colour.shape == (3, 4, 9)


def test_to_uint8_maps_the_value_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0])
    assert to_uint8(x, (-1.0, 1.0)).tolist() == [0, 128, 255, 255]


def test_one_grid_per_epoch_and_a_strip_of_the_first_samples():
    run, events = recorder()
    state: dict = {}
    evo = SampleEvolution("samples", state, ncols=4, keep=3, value_range=(-1, 1))
    for epoch in range(1, 6):
        evo.show(run, epoch, torch.full((16, 1, 28, 28), epoch / 5 * 2 - 1))
    grids = [e for e in events if e["type"] == "images"]
    assert [g["step"] for g in grids] == [1, 2, 3, 4, 5]
    assert grids[0]["shape"] == [16, 28, 28] and grids[0]["ncols"] == 4
    assert evo.epochs == [1, 2, 3, 4, 5]
    chosen = evo.strip(run, "samples by epoch", rows=3)
    assert chosen == [1, 3, 5]
    strip = events[-1]
    assert strip["captions"] == ["epoch 1", "epoch 3", "epoch 5"] and strip["shape"] == [3, 28, 3 * 28 + 2]


def test_the_kept_rows_live_in_the_resumable_state():
    run, events = recorder()
    state: dict = {}
    evo = SampleEvolution("samples", state, keep=2)
    for epoch in (1, 2, 3):
        evo.show(run, epoch, torch.rand(4, 28, 28))
    saved = {k: v for k, v in state.items()}  # what a checkpoint after epoch 3 holds
    # a resumption from epoch 2's checkpoint: epoch 3 is trained again and replaces the kept row
    state2 = {"sample_evolution": {"epochs": saved["sample_evolution"]["epochs"][:2],
                                   "images": saved["sample_evolution"]["images"][:2]}}
    evo2 = SampleEvolution("samples", state2, keep=2)
    evo2.show(run, 3, torch.zeros(4, 28, 28))
    evo2.show(run, 3, torch.ones(4, 28, 28))  # the same epoch again replaces, never duplicates
    assert evo2.epochs == [1, 2, 3] and int(state2["sample_evolution"]["images"][-1].max()) == 255


def test_the_latent_walk_covers_gaussian_quantiles():
    axis = gaussian_grid(3)
    assert axis.tolist() == pytest.approx([-1.6449, 0.0, 1.6449], abs=1e-4)
    run, events = recorder()
    seen = []

    def decode(z):
        seen.append(z.clone())
        return torch.zeros(len(z), 784)

    z = latent_walk(run, "walk", decode, steps=3, shape=(28, 28))
    assert z.shape == (9, 2) and torch.equal(seen[0], z)
    # first row: z2 at the top (95%), z1 from low to high; last row: z2 at 5%
    assert z[0].tolist() == pytest.approx([-1.6449, 1.6449], abs=1e-4)
    assert z[2].tolist() == pytest.approx([1.6449, 1.6449], abs=1e-4)
    assert z[8].tolist() == pytest.approx([1.6449, -1.6449], abs=1e-4)
    assert events[-1]["shape"] == [9, 28, 28] and events[-1]["ncols"] == 3
