"""4.2-gan: the course's nets by hand-counted size and shape, each player's
step touching only its own weights, a short run on real MNIST changing the
fixed samples (with its score, curves and pictures), and resumption."""

from __future__ import annotations

import pytest
import torch

from labbench.engine import Run
from labbench.exercises.s4_gan import (WATCHED, ConvDiscriminator, ConvGenerator, Discriminator, Generator,
                                       discriminator_step, generator_step)
from labbench.nn import count_parameters, precision

from .generative import check_resume, images, need, tiny_scorer, tiny_scorer_folder  # noqa: F401 (fixtures)
from .helpers import run_exercise


def test_fc_generator_and_discriminator_sizes_from_a_hand_count():
    g, d = Generator(10), Discriminator(0.3)
    # generator: 10*256+256, 256*512+512, 512*1024+1024, 1024*784+784
    assert [p.numel() for p in g.parameters()] == [2560, 256, 131072, 512, 524288, 1024, 802816, 784]
    assert count_parameters(g) == 2_816 + 131_584 + 525_312 + 803_600 == 1_463_312
    # discriminator: 784*1024+1024, 1024*512+512, 512*256+256, 256*1+1
    assert count_parameters(d) == 803_840 + 524_800 + 131_328 + 257 == 1_460_225
    x = g(torch.randn(5, 10))
    assert x.shape == (5, 1, 28, 28) and float(x.detach().abs().max()) <= 1.0
    assert d(x).shape == (5, 1)


def test_dcgan_maps_latents_to_digits_and_back_to_one_probability():
    g, d = ConvGenerator(10), ConvDiscriminator(10)
    z = torch.randn(4, 10, 1, 1)
    x = g(z)
    assert x.shape == (4, 1, 28, 28)
    assert torch.equal(x, g(z.flatten(1)))  # (N, 10) is accepted as the course's x[:, :, None, None]
    p = d(x)
    assert p.shape == (4, 1) and bool(((p > 0) & (p < 1)).all())
    # hand count: convT 10*320*25+320, BN 640, 320*160*25+160, BN 320, 160*10*16+10, BN 20, 10*1*16+1
    assert count_parameters(g) == 80_320 + 640 + 1_280_160 + 320 + 25_610 + 20 + 161 == 1_387_231
    # conv 1*10*16+10, BN 20, 10*160*16+160, BN 320, 160*320*25+320, BN 640, 320*10*25+10, BN 20, Linear 11
    assert count_parameters(d) == 170 + 20 + 25_760 + 320 + 1_280_320 + 640 + 80_010 + 20 + 11 == 1_387_271


@pytest.mark.parametrize("arch", ["fc", "dcgan"])
def test_each_step_updates_only_its_own_player(arch):
    torch.manual_seed(0)
    g, d = (Generator(10), Discriminator()) if arch == "fc" else (ConvGenerator(10), ConvDiscriminator(10))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    prec = precision("fp32", "cpu")
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    fake = g(torch.randn(16, 10))

    def snap(m):
        return [p.detach().clone() for p in m.parameters()]

    def changed(before, m):
        return [not torch.equal(a, b) for a, b in zip(before, m.parameters())]

    g0, d0 = snap(g), snap(d)
    loss_d, d_real, d_fake = discriminator_step(d, opt_d, real, fake, prec)
    assert not any(changed(g0, g)) and all(p.grad is None for p in g.parameters())
    assert all(changed(d0, d))
    assert d_real.shape == d_fake.shape == (16, 1) and 0 < float(loss_d) < 5

    g1, d1 = snap(g), snap(d)
    opt_d.zero_grad(set_to_none=True)
    loss_g = generator_step(d, opt_g, fake, prec)
    assert not any(changed(d1, d)) and all(p.grad is None for p in d.parameters())
    assert all(changed(g1, g))
    assert all(p.requires_grad for p in d.parameters())  # handed back trainable
    assert float(loss_g) > 0


def test_only_non_finite_gan_losses_stop_a_run():
    run = Run(None)
    assert WATCHED == ["loss/D", "loss/G"]
    run.scalars(1, {"loss/D": 0.02, "loss/G": 0.5, "D output/D(x)": 0.99}, check=WATCHED)
    run.scalars(2, {"loss/D": 90.0, "loss/G": 100.0, "D output/D(x)": 0.0}, check=WATCHED)  # a big swing
    from labbench.engine import Diverged
    with pytest.raises(Diverged):
        run.scalars(3, {"loss/D": float("nan"), "loss/G": 1.0}, check=WATCHED)


def test_a_short_run_forms_the_samples_and_scores_them(tmp_path, tiny_scorer):
    need("mnist", "train-images-idx3-ubyte.gz")
    result, events = run_exercise("4.2-gan", tmp_path, epochs=2, train_limit=1024, batch_size=256,
                                  quality_samples=500, interp_steps=6)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["params_G"] == 1_463_312 and m["params_D"] == 1_460_225 and m["epochs_done"] == 2
    assert 0 < m["D_x"] < 1 and 0 < m["D_G_z"] < 1
    # the score: a barely trained G is far from the real digits' features
    assert m["quality_samples"] == 500 and m["fd"] > m["fd_floor"] > 0 and 0 <= m["class_entropy_bits"] <= 3.33
    grids = images(result.dir, "samples")
    assert [ev["step"] for ev, _ in grids] == [1, 2]
    (_, first), (_, second) = grids
    assert first.shape == second.shape == (64, 28, 28)
    assert abs(first.astype(float) - second.astype(float)).mean() > 2  # training moved the fixed samples
    strip = images(result.dir, "samples by epoch")[-1]
    assert strip[0]["captions"] == ["epoch 1", "epoch 2"] and strip[1].shape == (2, 28, 6 * 28 + 5)
    interp = images(result.dir, "interpolation")[-1][0]
    assert interp["captions"] == ["λ=0.00", "λ=0.20", "λ=0.40", "λ=0.60", "λ=0.80", "λ=1.00"]
    keys = {k for e in events if e["type"] == "scalars" for k in e["values"]}
    assert keys == {"loss/D", "loss/G", "D output/D(x)", "D output/D(G(z))"}
    log = [e for e in events if e["type"] == "figure" and e["name"] == "losses (log scale)"][-1]
    assert log["data"]["logy"] is True and log["data"]["x"] == [1, 2]
    assert any(e["type"] == "figure" and e["name"] == "sample classes" for e in events)


def test_course_range_and_dcgan_with_two_d_steps(tmp_path, shared_data):
    need("mnist", "train-images-idx3-ubyte.gz")
    result, events = run_exercise("4.2-gan", tmp_path, arch="dcgan", epochs=1, train_limit=128, batch_size=32,
                                  d_steps=2, data_range="[0, 1]", quality_samples=0)
    assert result.status == "ok", result.summary.get("message")
    assert result.summary["metrics"]["params_G"] == 1_387_231
    assert any("as the course" in e.get("text", "") for e in events)
    assert "fd" not in result.summary["metrics"]  # quality_samples = 0 switches the score off


def test_the_gan_resumes_from_a_checkpoint(tmp_path, shared_data):
    need("mnist", "train-images-idx3-ubyte.gz")
    check_resume("4.2-gan", tmp_path, epochs=3, stop_at=2, train_limit=256, batch_size=128, quality_samples=0)


class StopOnCall:
    """A stop flag that turns on at its ``n``-th check (run.epochs checks once
    an epoch, run.batches before every batch but the first)."""

    def __init__(self, n: int):
        self.n, self.calls, self.requested = n, 0, False

    def __call__(self) -> bool:
        self.calls += 1
        self.requested = self.requested or self.calls >= self.n
        return self.requested


def test_a_stop_in_the_middle_of_an_epoch_keeps_no_grid_of_it(tmp_path, shared_data):
    from labbench.engine.events import read_json
    from labbench.engine.presets import preset_for_exercise
    from labbench.engine.runner import execute

    preset = preset_for_exercise("4.2-gan", overrides=["epochs=3", "train_limit=512", "batch_size=128",
                                                       "quality_samples=0"])
    preset.device = "cpu"
    # checks: epoch 1 start, batches 2-4, epoch 2 start, batch 2 -> the 6th stops epoch 2 after one batch
    result = execute(preset, tmp_path / "cut", stop=StopOnCall(6))
    assert result.status == "interrupted"
    assert read_json(tmp_path / "cut" / "artifacts" / "checkpoint.json")["epoch"] == 1
    assert [ev["step"] for ev, _ in images(tmp_path / "cut", "samples")] == [1]
    assert images(tmp_path / "cut", "samples by epoch")[-1][0]["captions"] == ["epoch 1"]
