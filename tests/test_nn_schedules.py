"""LR schedules: the shape of each kind, and their checkpoint state."""

from __future__ import annotations

import io
import math

import pytest
import torch

from labbench.nn import make_schedule
from labbench.nn.schedules import ScheduleMismatch


def lrs(kind, epochs=10, steps=4, lr=0.1, **kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    sched = make_schedule(kind, opt, epochs=epochs, steps_per_epoch=steps, **kw)
    per_epoch, per_batch = [], []
    for _ in range(epochs):
        per_epoch.append(sched.lr)
        for _ in range(steps):
            per_batch.append(sched.lr)
            opt.step()
            sched.after_batch()
        sched.after_epoch()
    return per_epoch, per_batch, sched


def test_none_is_constant():
    per_epoch, per_batch, _ = lrs("none")
    assert set(per_batch) == {0.1}


def test_step_drops_by_gamma_every_step_size_epochs():
    per_epoch, _, _ = lrs("step", step_size=3, gamma=0.5)
    assert per_epoch == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(10)])


def test_exponential_per_epoch():
    per_epoch, per_batch, _ = lrs("exponential", gamma=0.9)
    assert per_epoch == pytest.approx([0.1 * 0.9 ** e for e in range(10)])
    assert per_batch[:4] == [per_epoch[0]] * 4  # constant within an epoch


def test_cosine_per_batch_from_lr_to_min():
    _, per_batch, sched = lrs("cosine", min_lr=0.01)
    total = 40
    expected = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / total)) / 2 for t in range(total)]
    assert per_batch == pytest.approx(expected, rel=1e-6)
    assert sched.lr == pytest.approx(0.01)  # after the last batch
    assert all(a > b for a, b in zip(per_batch, per_batch[1:]))


def test_onecycle_warms_up_to_max_then_anneals():
    _, per_batch, sched = lrs("onecycle", max_lr=1.0, pct_start=0.25)
    peak = max(range(len(per_batch)), key=per_batch.__getitem__)
    assert per_batch[0] == pytest.approx(1.0 / 25)
    assert per_batch[peak] == pytest.approx(1.0) and peak == 9  # 25% of 40 batches, counted from 0
    assert all(a < b for a, b in zip(per_batch[:peak], per_batch[1:peak + 1]))
    assert all(a > b for a, b in zip(per_batch[peak:], per_batch[peak + 1:]))
    assert per_batch[-1] < 1e-3  # towards max_lr / (25 * 1e4)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="lr_schedule: must be one of none, step"):
        lrs("warmup")


def test_state_round_trip_with_weights_only_and_mismatches():
    _, _, sched = lrs("cosine", epochs=10)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    fresh = make_schedule("cosine", opt, epochs=10, steps_per_epoch=4)
    fresh.load_state_dict(state)
    assert fresh.scheduler.last_epoch == 40
    longer = make_schedule("cosine", opt, epochs=20, steps_per_epoch=4)
    with pytest.raises(ScheduleMismatch, match="cannot be stretched"):
        longer.load_state_dict(state)
    with pytest.raises(ScheduleMismatch, match="'cosine', this run's is 'step'"):
        make_schedule("step", opt, epochs=10).load_state_dict(state)
    step_state = lrs("step", epochs=4, step_size=2)[2].state_dict()
    make_schedule("step", opt, epochs=8, step_size=2).load_state_dict(step_state)  # step can be extended
