"""Checkpoints: a round trip of every state, weights_only loading, atomic
writes, and clear errors for another exercise's or a damaged checkpoint."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from labbench.engine.run import Run
from labbench.nn import CheckpointError, load_weights, make_schedule, precision


def make_objects(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = make_schedule("onecycle", opt, epochs=3, steps_per_epoch=5, max_lr=0.1)
    prec = precision("fp16", "cpu")
    return model, opt, sched, prec


def train_a_little(model, opt, sched, prec, steps=4):
    for _ in range(steps):
        with prec.autocast():
            loss = model(torch.randn(16, 4)).float().pow(2).mean()
        opt.zero_grad()
        prec.minimize(loss, opt)
        sched.after_batch()


def test_round_trip_of_every_state(tmp_path):
    run = Run(tmp_path)
    run.exercise_id = "3.3-resnet18-cifar"
    model, opt, sched, prec = make_objects()
    train_a_little(model, opt, sched, prec)
    shuffle, noise = torch.Generator().manual_seed(3), np.random.default_rng(4)
    path = run.checkpoint(7, models={"net": model}, optimizers={"sgd": opt}, schedulers={"lr": sched},
                          scaler=prec.scaler, generators={"shuffle": shuffle, "noise": noise},
                          extra={"history": [0.5, 0.25], "best": torch.tensor(0.9)})
    assert path == tmp_path / "artifacts" / "checkpoint.pt"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["epoch"] == 7 and raw["exercise"] == "3.3-resnet18-cifar"
    # what comes next from every random source, and the trained state
    expect = (torch.rand(3), np.random.rand(2), random.random(), torch.rand(2, generator=shuffle),
              noise.normal(size=2))
    shuffle_next = expect[3]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    lr, scale = sched.lr, prec.scaler.get_scale()

    model2, opt2, sched2, prec2 = make_objects(seed=1)
    shuffle2, noise2 = torch.Generator().manual_seed(99), np.random.default_rng(99)
    extra = {"stale": 1}
    run2 = Run(tmp_path)
    run2.exercise_id = "3.3-resnet18-cifar"
    done = run2.restore(models={"net": model2}, optimizers={"sgd": opt2}, schedulers={"lr": sched2},
                        scaler=prec2.scaler, generators={"shuffle": shuffle2, "noise": noise2}, extra=extra)
    assert done == 7 and run2.start_epoch == 8
    assert all(torch.equal(state[k], v) for k, v in model2.state_dict().items())  # BatchNorm buffers too
    assert sched2.lr == pytest.approx(lr) and prec2.scaler.get_scale() == scale
    assert opt2.state_dict()["state"][0]["exp_avg"].shape == (8, 4)
    assert extra["history"] == [0.5, 0.25] and float(extra["best"]) == pytest.approx(0.9) and "stale" not in extra
    got = (torch.rand(3), np.random.rand(2), random.random(), torch.rand(2, generator=shuffle2),
           noise2.normal(size=2))
    assert torch.equal(got[0], expect[0]) and np.array_equal(got[1], expect[1]) and got[2] == expect[2]
    assert torch.equal(got[3], shuffle_next) and np.array_equal(got[4], expect[4])
    run.close()
    run2.close()


def test_a_failed_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    run = Run(tmp_path)
    model = torch.nn.Linear(2, 2)
    path = run.checkpoint(1, models=model)
    before = path.read_bytes()

    def broken_save(obj, fh, *a, **k):
        fh.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        run.checkpoint(2, models=model)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.json", "checkpoint.pt"]


def test_another_exercise_or_a_damaged_file_says_so(tmp_path):
    run = Run(tmp_path)
    run.exercise_id = "4.3-vae"
    model = torch.nn.Linear(2, 2)
    path = run.checkpoint(1, models=model)
    other = Run(tmp_path)
    other.exercise_id = "4.2-gan"
    with pytest.raises(CheckpointError, match="written by exercise 4.3-vae, not 4.2-gan"):
        other.restore(models=model)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        run.restore(models=model)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        run.restore(models=model)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a labbench checkpoint"):
        run.restore(models=model)
    path.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        run.restore(models=model)


def test_models_and_optimisers_that_do_not_fit(tmp_path):
    run = Run(tmp_path)
    model = torch.nn.Linear(4, 3)
    run.checkpoint(2, models={"enc": model}, optimizers={"opt": torch.optim.SGD(model.parameters(), lr=0.1)})
    with pytest.raises(CheckpointError, match=r"model 'enc' does not fit the checkpoint \(were its parameters"):
        bigger = torch.nn.Linear(4, 5)
        run.restore(models={"enc": bigger}, optimizers={"opt": torch.optim.SGD(bigger.parameters(), lr=0.1)})
    with pytest.raises(CheckpointError, match=r"has models \['enc'\], this run has \['G'\]"):
        run.restore(models={"G": model}, optimizers={"opt": torch.optim.SGD(model.parameters(), lr=0.1)})
    with pytest.raises(CheckpointError, match="optimiser 'opt' is SGD in the checkpoint, Adam here"):
        run.restore(models={"enc": model}, optimizers={"opt": torch.optim.Adam(model.parameters())})
    with pytest.raises(CheckpointError, match="GradScaler"):
        run.restore(models={"enc": model}, optimizers={"opt": torch.optim.SGD(model.parameters(), lr=0.1)},
                    scaler=precision("fp16", "cpu").scaler)


def test_saved_weights_load_into_a_new_model(tmp_path):
    run = Run(tmp_path)
    run.exercise_id = "4.1-rbm"
    torch.manual_seed(0)
    rbm = torch.nn.Linear(6, 3)
    run.save_weights({"rbm": rbm}, name="rbm-layer1", epoch=5)
    fresh = torch.nn.Linear(6, 3)
    states = load_weights(tmp_path, fresh, file="rbm-layer1.pt", exercise="4.1-rbm")
    assert torch.equal(fresh.weight, rbm.weight) and list(states) == ["rbm"]
    with pytest.raises(CheckpointError, match="weights of exercise 4.1-rbm, expected 4.2-dbm"):
        load_weights(tmp_path / "artifacts" / "rbm-layer1.pt", exercise="4.2-dbm")
    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_weights(tmp_path, torch.nn.Linear(6, 4), file="rbm-layer1.pt")
