"""3.2-stacked-ae: the sizes by hand, the phase plan, fine-tuning beating the
head alone on real MNIST, the report's variant against the same stack from
scratch, and a run stopped in its last phase resumed to the same weights."""

from __future__ import annotations

import pytest
import torch

from labbench.engine.events import iter_events
from labbench.engine.presets import load_preset, preset_for_exercise, shipped_presets_dir
from labbench.engine.runner import execute, resume
from labbench.exercises.s3_stacked_ae import StackedAEParams, build, phase_at, phases
from labbench.nn import count_parameters, load_weights

from .helpers import SHARED_DATA, run_exercise
from .test_resume import StopAt, curves


@pytest.fixture
def mnist_data(monkeypatch, tmp_path_factory):
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED_DATA / 'mnist'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def test_sizes_by_hand():
    sae = build([256, 64])
    encoders = (784 * 256 + 256) + (256 * 64 + 64)  # 200,960 + 16,448
    decoders = (256 * 784 + 784) + (64 * 256 + 256)  # 201,488 + 16,640
    head = 64 * 10 + 10
    assert count_parameters(sae) == encoders + decoders + head == 436_186
    assert count_parameters(sae) - sum(count_parameters(layer.decoder) for layer in sae.layers) == 218_058
    x = torch.rand(3, 784)
    with torch.no_grad():
        assert sae(x).shape == (3, 10) and sae.encode(x).shape == (3, 64) and sae.encode(x, 1).shape == (3, 256)
        assert sae.reconstruct(x).shape == sae.reconstruct(x, 1).shape == (3, 784)
        # through one layer and back is that layer's own autoencoder
        assert torch.equal(sae.reconstruct(x, 1), sae.layers[0](x))


def test_the_course_plan_and_the_reports():
    plan = phases(StackedAEParams())
    assert plan == [("layer 1", 10), ("layer 2", 10), ("classifier", 10), ("fine-tuning", 20)]
    assert phase_at(plan, 1) == ("layer 1", 1, 10) and phase_at(plan, 21) == ("classifier", 1, 10)
    assert phase_at(plan, 50) == ("fine-tuning", 20, 20)
    report = phases(StackedAEParams(variant="report", hidden=[100, 50, 20], classifier_epochs=0))
    assert report == [("layer 1", 10), ("layer 2", 10), ("layer 3", 10), ("end-to-end", 20)]
    preset = load_preset(shipped_presets_dir() / "3.2-stacked-ae-course.toml")
    assert preset.seed == 42 and phases(preset.params) == plan and preset.params.batch_size == 128
    assert preset.params.train_limit == 6000 and preset.params.pretrain_lr == 0.1


def test_fine_tuning_beats_the_head_alone(mnist_data, tmp_path):
    # 2,000 images, batch 32: the head on the barely pre-trained codes stays near chance (0.09-0.11 for
    # seeds 0-2), fine-tuning everything for 6 epochs reaches 0.78-0.79
    result, events = run_exercise("3.2-stacked-ae", tmp_path, train_limit=2000, test_limit=500, batch_size=32,
                                  pretrain_epochs=1, classifier_epochs=2, finetune_epochs=6, show_digits=4)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["params"] == 218_058 and m["epochs_done"] == 10
    assert m["acc_finetuned"] > 0.6 and m["acc_finetuned"] > m["acc_classifier"] + 0.3
    assert m["test_acc"] == pytest.approx(m["acc_finetuned"])
    table = next(e for e in events if e["type"] == "table" and e["name"] == "phases")
    assert [r[0] for r in table["rows"]] == ["layer 1", "layer 2", "classifier", "fine-tuning"]
    fig = [e for e in events if e["type"] == "figure" and e["name"] == "phases"][-1]["data"]
    assert [mk["x"] for mk in fig["markers"]] == [1.5, 2.5, 4.5] and fig["logy"] is True
    assert fig["series"]["fine-tuning (cross-entropy)"]["x"] == [5, 6, 7, 8, 9, 10]
    names = {e["name"] for e in events if e["type"] == "images"}
    assert {"layer-1-reconstructions", "layer-2-reconstructions", "layer-1-features", "stack-reconstructions"} <= names
    saved = sorted(p.name for p in (result.dir / "artifacts").glob("weights-after-*.pt"))
    assert saved == ["weights-after-classifier.pt", "weights-after-fine-tuning.pt", "weights-after-layer-1.pt",
                     "weights-after-layer-2.pt"]
    after_head = load_weights(result.dir, file="weights-after-classifier.pt")["stack"]
    after_fine = load_weights(result.dir, file="weights-after-fine-tuning.pt")["stack"]
    after_l2 = load_weights(result.dir, file="weights-after-layer-2.pt")["stack"]
    # the classifier phase moved the head only; fine-tuning moved the encoders too
    assert torch.equal(after_head["layers.0.encoder.0.weight"], after_l2["layers.0.encoder.0.weight"])
    assert not torch.equal(after_head["head.weight"], after_l2["head.weight"])
    assert not torch.equal(after_fine["layers.0.encoder.0.weight"], after_head["layers.0.encoder.0.weight"])
    assert torch.equal(after_fine["layers.0.decoder.0.weight"], after_head["layers.0.decoder.0.weight"])


def test_report_variant_against_the_same_stack_from_scratch(mnist_data, tmp_path):
    result, events = run_exercise("3.2-stacked-ae", tmp_path, variant="report", pretrain_loss="bce",
                                  optimizer="adam", pretrain_lr=0.001, finetune_lr=0.001, train_limit=600,
                                  hidden=[64, 16],
                                  test_limit=100, batch_size=64, pretrain_epochs=1, finetune_epochs=2, show_digits=0)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert 0 < m["mse_pretrained"] < 0.2 and 0 < m["mse_scratch"] < 0.2 and "test_acc" not in m
    history = curves(result.dir)
    assert [s for s, _ in history["end-to-end MSE/from scratch"]] == [1, 2, 3, 4]  # the same 4 epochs in all
    assert [s for s, _ in history["end-to-end MSE/pre-trained"]] == [3, 4]
    assert [s for s, _ in history["pre-training BCE/layer 2"]] == [2]
    assert history["stack test MSE/from scratch"][-1][1] == pytest.approx(m["mse_scratch"], rel=1e-5)


def test_stopped_in_fine_tuning_and_resumed_equals_straight(mnist_data, tmp_path):
    sets = ["train_limit=500", "test_limit=100", "batch_size=64", "pretrain_epochs=1", "classifier_epochs=1",
            "finetune_epochs=3", "show_digits=2"]

    def preset():
        p = preset_for_exercise("3.2-stacked-ae", overrides=sets)
        p.device = "cpu"
        return p

    straight = execute(preset(), tmp_path / "straight")
    stop = StopAt(step=4)  # after fine-tuning epoch 1 of 3 (run epochs: 1, 2 layers, 3 head, 4-6 fine-tuning)
    part = execute(preset(), tmp_path / "stopped", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted" and part.summary["metrics"]["epochs_done"] == 4
    assert "acc_finetuned" not in part.summary["metrics"] and "acc_classifier" in part.summary["metrics"]
    done = resume(tmp_path / "stopped", preset=preset())
    assert done.status == "ok", done.summary.get("message")
    texts = [e["text"] for e in iter_events(tmp_path / "stopped") if e["type"] == "text"]
    assert "phase fine-tuning: epochs 4-6 of the run (resumed at its epoch 2)" in texts
    a, b = load_weights(tmp_path / "straight")["stack"], load_weights(tmp_path / "stopped")["stack"]
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-6), key
    assert done.summary["metrics"]["acc_finetuned"] == pytest.approx(straight.summary["metrics"]["acc_finetuned"])
    ca, cb = curves(tmp_path / "straight"), curves(tmp_path / "stopped")
    assert ca.keys() == cb.keys()
    for key in ca:
        assert [s for s, _ in ca[key]] == [s for s, _ in cb[key]], key
        assert [v for _, v in ca[key]] == pytest.approx([v for _, v in cb[key]], rel=1e-6), key
