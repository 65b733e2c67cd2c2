"""4.3-vae: the course's encoder and decoder by hand-counted size, the loss
on a hand-made batch, a rising KL that is not divergence, a short run on
real MNIST with a batch size that does not divide the data (samples, walk,
score), and resumption."""

from __future__ import annotations

import math

import pytest
import torch

from labbench.engine import Diverged, Run
from labbench.exercises.s4_vae import Decoder, Encoder, VaeParams, report_epoch, reparametrize, vae_loss
from labbench.nn import count_parameters
from labbench.render.figures import figure_data, render_figure

from .generative import check_resume, images, tiny_scorer, tiny_scorer_folder  # noqa: F401 (fixtures)
from .helpers import run_exercise


def test_encoder_and_decoder_sizes_from_a_hand_count():
    enc, dec = Encoder(784, 128, 100), Decoder(784, 128, 100)
    # encoder: 784*128+128, then two heads 128*100+100
    assert count_parameters(enc) == 100_480 + 12_900 + 12_900 == 126_280
    # decoder: 100*128+128, 128*784+784
    assert count_parameters(dec) == 12_928 + 101_136 == 114_064
    # the course's initialisation: biases 0.01, Xavier-uniform bounds sqrt(6 / (fan_in + fan_out))
    assert torch.all(enc.lin_middle.bias == 0.01) and torch.all(dec.lin_middle.bias == 0.01)
    bound = math.sqrt(6 / (784 + 128))
    top = float(enc.lin_middle.weight.detach().abs().max())
    assert 0.9 * bound < top <= bound
    mu, logvar = enc(torch.rand(3, 1, 28, 28))
    assert mu.shape == logvar.shape == (3, 100)
    out = dec(mu)
    assert out.shape == (3, 784) and bool(((out > 0) & (out < 1)).all())


def test_the_loss_on_a_hand_made_batch():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    recon = torch.tensor([[0.8, 0.4], [0.5, 0.9]])
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    total, rec, kl = vae_loss(x, recon, mu, logvar)
    # summed BCE / batch: -(ln 0.8 + ln 0.6 + ln 0.5 + ln 0.9) / 2
    want_rec = -(math.log(0.8) + math.log(0.6) + math.log(0.5) + math.log(0.9)) / 2
    # KL per image 0.5 sum(exp(lv) + mu^2 - 1 - lv): (0 + (2 + 1 - 1 - ln 2)) / 2 and (4 + 0) / 2; then the mean
    want_kl = ((2 - math.log(2.0)) / 2 + 2.0) / 2
    assert float(rec) == pytest.approx(want_rec, rel=1e-6) and want_rec == pytest.approx(0.766238, abs=1e-6)
    assert float(kl) == pytest.approx(want_kl, rel=1e-6) and want_kl == pytest.approx(1.326713, abs=1e-6)
    assert float(total) == pytest.approx(want_rec + want_kl, rel=1e-6)


def test_the_loss_from_logits_equals_the_loss_from_probabilities():
    torch.manual_seed(0)
    x = torch.rand(5, 784)
    logits, mu, logvar = torch.randn(5, 784) * 3, torch.randn(5, 8), torch.randn(5, 8)
    a = vae_loss(x, torch.sigmoid(logits), mu, logvar)
    b = vae_loss(x, logits, mu, logvar, logits=True)
    for u, v in zip(a, b):
        assert float(u) == pytest.approx(float(v), rel=1e-5)
    dec = Decoder(784, 16, 8)
    assert torch.allclose(dec(mu), torch.sigmoid(dec(mu, logits=True)))


def test_the_reparametrisation_uses_the_standard_deviation():
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[math.log(4.0), 0.0]])
    z = reparametrize(mu, logvar, torch.tensor([[1.0, 3.0]]))
    assert z.tolist() == [[pytest.approx(3.0), pytest.approx(1.0)]]  # 1 + 2 * 1, -2 + 1 * 3


def test_a_kl_rising_a_million_fold_is_not_divergence():
    run = Run(None)
    kl = 1e-3
    for epoch in range(1, 8):  # KL 0.001 -> 1000 (a million-fold rise), total and recon steady
        report_epoch(run, epoch, {"loss/total": 150.0 + kl, "loss/recon": 150.0, "loss/KL": kl, "loss/test": 151.0})
        kl *= 10
    assert run.last_scalars["loss/KL"] == pytest.approx(1000.0)
    with pytest.raises(Diverged, match="loss/recon"):  # the same rise in a watched series stops the run
        report_epoch(run, 8, {"loss/total": 150.0, "loss/recon": 150.0 * 1e5, "loss/KL": 1.0})


def test_a_short_run_with_a_2d_latent(tmp_path, tiny_scorer):
    result, events = run_exercise("4.3-vae", tmp_path, epochs=2, train_limit=1500, test_limit=400,
                                  batch_size=700, latent_dim=2, walk_steps=5, quality_samples=300,
                                  interpolate="test digits")
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    # latent 2: encoder 784*128+128 + 2 * (128*2+2), decoder 2*128+128 + 128*784+784
    assert m["params_encoder"] == 100_480 + 2 * 258 and m["params_decoder"] == 384 + 101_136
    assert m["loss_total"] == pytest.approx(m["loss_recon"] + m["loss_kl"], rel=1e-5)
    assert 100 < m["test_loss"] < 545  # below the 784 ln 2 = 543 nats of a decoder that outputs 0.5 everywhere
    # 1,500 images in batches of 700: three batches (700, 700, 100) per epoch
    assert m["course_printed_total"] == pytest.approx(m["loss_total"] * 3 / 700)
    assert m["quality_samples"] == 300 and m["fd"] > m["fd_floor"]
    live = images(result.dir, "samples")
    assert [ev["step"] for ev, _ in live] == [1, 2] and live[0][1].shape == (16, 28, 28)
    assert images(result.dir, "prior samples")[-1][1].shape == (64, 28, 28)
    walk_ev, walk = images(result.dir, "latent walk")[-1]
    assert walk.shape == (25, 28, 28) and walk_ev["ncols"] == 5
    interp = images(result.dir, "interpolation")[-1][0]
    assert "test 7 and a test 2" in interp["title"]  # the first two test digits: 7 and 2
    scatter = next(e for e in events if e["type"] == "figure" and e["name"] == "test codes")
    series = figure_data(scatter, result.dir)["series"]
    assert sorted(series) == [str(d) for d in range(10)]
    assert sum(len(s["x"]) for s in series.values()) == sum(len(s["y"]) for s in series.values()) == 400
    drawn = render_figure(scatter, width=60, height=16, run_dir=result.dir).plain
    assert drawn.count("•") > 20  # the points are drawn (series as {"x": .., "y": ..} survive the JSON file)
    keys = {k for e in events if e["type"] == "scalars" for k in e["values"]}
    assert keys == {"loss/total", "loss/recon", "loss/KL", "loss/test"}


def test_any_batch_size_is_accepted():
    assert VaeParams(batch_size=4096).batch_size == 4096  # 60,000 / 4096 is not whole


def test_the_vae_resumes_from_a_checkpoint(tmp_path, shared_data):
    check_resume("4.3-vae", tmp_path, epochs=3, stop_at=2, train_limit=600, test_limit=200, batch_size=256,
                 quality_samples=0)
