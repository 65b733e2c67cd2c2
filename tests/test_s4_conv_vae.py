"""4.4-conv-vae-cifar: the nets by hand-counted size and shape, the cost
behind the description's time estimate, the class picked from the real
CIFAR-10 subset, a short run with colour reconstructions every epoch, and
resumption."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from labbench.exercises.s4_conv_vae import CLASSES, ConvDecoder, ConvEncoder, conv_vae_loss, load_class
from labbench.nn import count_parameters, quality

from .generative import check_resume, images
from .helpers import run_exercise


def test_encoder_and_decoder_sizes_from_a_hand_count():
    enc, dec = ConvEncoder(100, 256), ConvDecoder(100, 256)
    # encoder: conv 3*64*16+64, BN 128, conv 64*128*16+128, BN 256, conv 128*256*16+256, BN 512,
    # middle 4096*256+256, mu and logvar 256*100+100 each
    assert count_parameters(enc) == 3_136 + 128 + 131_200 + 256 + 524_544 + 512 + 1_048_832 + 2 * 25_700 \
        == 1_760_008
    # decoder: 100*256+256, 256*4096+4096, BN 512, convT 256*128*16+128, BN 256, 128*64*16+64, BN 128, 64*3*16+3
    assert count_parameters(dec) == 25_856 + 1_052_672 + 512 + 524_416 + 256 + 131_136 + 128 + 3_075 == 1_738_051
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 100)
    out = dec(mu)
    assert out.shape == (2, 3, 32, 32) and float(out.detach().abs().max()) <= 1.0
    assert count_parameters(ConvEncoder(100, 0)) == 1_760_008 - 1_048_832 - 2 * 25_700 + 2 * (4096 * 100 + 100)


def test_about_75_mflop_an_image_forward():
    # the description's cost (225 MFLOP a training step, 280 TFLOP for 250 ship epochs) is three of these;
    # tests/test_descriptions.py checks those numbers against this count
    enc, dec = ConvEncoder(100, 256), ConvDecoder(100, 256)
    with FlopCounterMode(display=False) as counter:
        mu, _ = enc(torch.zeros(1, 3, 32, 32))
        dec(mu)
    assert 70e6 < counter.get_total_flops() < 80e6


def test_the_loss_sums_squared_errors_per_image():
    x = torch.zeros(2, 3, 32, 32)
    recon = torch.full((2, 3, 32, 32), 0.5)
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    total, rec, kl = conv_vae_loss(x, recon, mu, logvar, kl_weight=3.0)
    assert float(rec) == pytest.approx(3072 * 0.25) and float(kl) == 0.0
    mu[0, 0] = 2.0  # KL of image 0: 0.5 * 4 = 2; mean over the batch: 1
    total, rec, kl = conv_vae_loss(x, recon, mu, logvar, kl_weight=3.0)
    assert float(kl) == pytest.approx(1.0) and float(total) == pytest.approx(768 + 3.0)


def test_one_class_is_picked_from_the_real_subset(shared_data):
    x, y = load_class("train", "ship", "cpu", None)
    assert len(x) == 407 and bool((y == CLASSES.index("ship")).all())  # the subset's 4,000 hold 407 ships
    assert x.shape[1:] == (3, 32, 32) and -1.0 <= float(x.min()) < -0.9 and 0.9 < float(x.max()) <= 1.0
    x_all, _ = load_class("test", "all", "cpu", 50)
    assert len(x_all) == 50


def test_a_short_run_shows_colour_reconstructions_every_epoch(tmp_path, shared_data, monkeypatch):
    # the CIFAR score (a stretch) with a classifier trained in a second on 800 images
    monkeypatch.setitem(quality.DEFAULTS, "cifar10", {"epochs": 1, "train_limit": 800, "batch_size": 64,
                                                      "lr": 3e-3, "seed": 0})
    monkeypatch.setattr(quality, "scorer_folder", lambda: tmp_path / "scorers")
    (tmp_path / "scorers").mkdir()
    result, events = run_exercise("4.4-conv-vae-cifar", tmp_path, epochs=2, train_limit=64, test_limit=24,
                                  batch_size=32, show_images=6, cifar_class="cat", quality_samples=64)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    # scored against the cats of the test set; the floor: 64 training cats against them
    assert m["quality_samples"] == 64 and m["fd"] > m["fd_floor"] > 0 and 0 <= m["on_class"] <= 1
    assert "class_entropy_bits" not in m
    assert m["train_images"] == 64 and m["epochs_done"] == 2
    assert m["loss_total"] == pytest.approx(m["loss_recon"] + m["loss_kl"], rel=1e-5)
    recs = images(result.dir, "reconstructions")
    assert [ev["step"] for ev, _ in recs] == [1, 2]
    assert recs[0][1].shape == (6, 66, 32, 3)  # colour; each test image above its reconstruction (32+2+32 rows)
    assert images(result.dir, "samples")[-1][1].shape == (16, 32, 32, 3)
    assert images(result.dir, "prior samples")[-1][1].shape == (64, 32, 32, 3)
    assert images(result.dir, "samples by epoch")[-1][1].shape == (2, 32, 6 * 32 + 5, 3)
    assert any("CIFAR-10 cat: 64 training and 24 test images" in e.get("text", "") for e in events)


def test_the_conv_vae_resumes_from_a_checkpoint(tmp_path, shared_data):
    check_resume("4.4-conv-vae-cifar", tmp_path, epochs=2, stop_at=1, train_limit=32, test_limit=8,
                 batch_size=16, show_images=4)
