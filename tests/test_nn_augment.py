"""Augmentation on the device against torchvision's transforms: the same
crops and flips give the same pixels, and with the same random draws the
batched version equals RandomCrop(32, padding=4) + RandomHorizontalFlip."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from labbench.nn import channel_stats, crop_flip, denormalize, normalize, random_crop_flip
from labbench.nn.augment import crop_offsets, flip_mask


def images(n=16, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


def test_fixed_crops_and_flips_equal_torchvision_pad_crop_hflip():
    x = images()
    g = torch.Generator().manual_seed(1)
    oy, ox = crop_offsets(len(x), 4, g)
    flip = flip_mask(len(x), 0.5, g)
    assert set(oy.tolist()) | set(ox.tolist()) <= set(range(9)) and 0 < int(flip.sum()) < len(x)
    ours = crop_flip(x, oy, ox, flip, padding=4)
    for i in range(len(x)):
        ref = TF.crop(TF.pad(x[i], [4]), int(oy[i]), int(ox[i]), 32, 32)
        if flip[i]:
            ref = TF.hflip(ref)
        assert torch.equal(ours[i], ref), i


def test_extreme_offsets_show_the_padding():
    x = torch.ones(2, 1, 8, 8)
    out = crop_flip(x, torch.tensor([0, 8]), torch.tensor([0, 8]), None, padding=4)
    assert out[0, 0, :4].sum() == 0 and out[0, 0, :, :4].sum() == 0 and out[0, 0, 4:, 4:].min() == 1
    assert out[1, 0, 4:].sum() == 0 and out[1, 0, :4, :4].min() == 1


@pytest.mark.parametrize("seed", range(12))
def test_same_random_draws_as_torchvision_random_crop_and_flip(seed):
    img = images(1, seed=seed)
    tv = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
    torch.manual_seed(seed)
    ref = tv(img[0])
    torch.manual_seed(seed)
    ours = random_crop_flip(img)  # no generator: the global one, drawn in torchvision's order for one image
    assert torch.equal(ours[0], ref)


def test_seeded_generator_repeats_and_keeps_channels_last():
    x = images(8).contiguous(memory_format=torch.channels_last)
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(5))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(5))
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.is_contiguous(memory_format=torch.channels_last)


def test_normalize_matches_torchvision_and_inverts():
    x = images(4)
    mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    ours = normalize(x, mean, std)
    ref = torch.stack([T.Normalize(mean, std)(img) for img in x])
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(denormalize(ours, mean, std), x, atol=1e-6)
    m, s = channel_stats(ours)
    assert m == pytest.approx([float(ours[:, i].mean()) for i in range(3)], abs=1e-6)
    assert s == pytest.approx([float(ours[:, i].std()) for i in range(3)], abs=1e-5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        crop_flip(torch.zeros(3, 32, 32), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="3 means and 3 stds for images of shape"):
        normalize(torch.zeros(2, 1, 4, 4), [0.5] * 3, [0.2] * 3)
