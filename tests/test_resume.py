"""Checkpoints and resume end to end: "N epochs straight" equals "stopped and
resumed" for the same seed, a SIGKILLed run resumes from its last checkpoint,
a finished run can be extended, and what cannot be resumed says why.

The kit is tested on a toy exercise defined here (not registered); the worked
example, 1.3-mnist-cnn, is resumed through the CLI on real MNIST."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from typer.testing import CliRunner

from labbench.cli import app
from labbench.engine.events import iter_events, read_json
from labbench.engine.presets import Preset
from labbench.engine.registry import Exercise
from labbench.engine.runner import ResumeError, checkpoint_info, execute, resume
from labbench.nn import (DeepParams, LossMeter, ScheduleParams, batch_indices, load_weights, make_generator,
                         make_schedule, precision, schedule_kwargs)

from .helpers import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------ a toy exercise
class ToyParams(DeepParams, ScheduleParams):
    epochs: int = Field(10, ge=1)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(16, ge=1)
    sleep_s: float = Field(0.0, ge=0)
    resumable: bool = True


def toy_run(p: ToyParams, run) -> None:
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.9)
    sched = make_schedule(p.lr_schedule, opt, epochs=p.epochs, steps_per_epoch=math.ceil(256 / p.batch_size),
                          **schedule_kwargs(p))
    prec = precision(p.precision, run.device)
    gen, noise = make_generator(run.seed), np.random.default_rng(run.seed)
    meter = LossMeter()
    state = {"history": []}
    if p.resumable:
        state = run.resumable(models=model, optimizers=opt, schedulers=sched, scaler=prec.scaler,
                              generators={"shuffle": gen, "noise": noise}, extra=state, every=p.checkpoint_every)
    for epoch in run.epochs(p.epochs):
        for idx in run.batches(batch_indices(len(x), p.batch_size, generator=gen)):
            jitter = torch.from_numpy(noise.normal(0, 0.01, size=(len(idx), 6)).astype(np.float32))
            with prec.autocast():
                loss = F.cross_entropy(model(x[idx] + jitter).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            prec.minimize(loss, opt)
            sched.after_batch()
            meter.add(len(idx), loss=loss)
        sched.after_epoch()
        loss = meter.means()["loss"]
        state["history"].append(loss)
        # the global numpy and Python generators are checkpointed too: their draws must continue
        run.scalars(epoch, {"loss/train": loss, "lr": sched.lr, "draw/numpy": np.random.rand(),
                            "draw/python": random.random()})
        if p.sleep_s:
            time.sleep(p.sleep_s)
    run.summary(final_loss=state["history"][-1] if state["history"] else None, history=len(state["history"]))


TOY = Exercise(id="toy-resume", title="toy", session=9, description="", Params=ToyParams, run=toy_run)


def toy_preset(**params) -> Preset:
    return Preset(exercise=TOY, params=ToyParams(**params), seed=0, device="cpu")


class StopAt:
    """A stop flag that turns on after ``calls`` checks (run.epochs and
    run.batches each check it), or when a progress event reaches ``step``."""

    def __init__(self, calls: int | None = None, step: int | None = None):
        self.calls, self.step, self.n, self.requested = calls, step, 0, False

    def __call__(self) -> bool:
        self.n += 1
        if self.calls is not None and self.n > self.calls:
            self.requested = True
        return self.requested

    def listen(self, ev: dict) -> None:
        if self.step is not None and ev.get("type") == "progress" and ev.get("step") == self.step:
            self.requested = True


def curves(folder: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for ev in iter_events(folder):
        if ev["type"] == "scalars":
            for k, v in ev["values"].items():
                out.setdefault(k, []).append((ev["step"], v))
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_weights(folder)["model"]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=0, atol=1e-6), k
    ca, cb = curves(a), curves(b)
    assert ca.keys() == cb.keys()
    for k in ca:
        assert [s for s, _ in cb[k]] == [s for s, _ in ca[k]], k  # every epoch once, in order
        assert np.allclose([v for _, v in cb[k]], [v for _, v in ca[k]], rtol=1e-6, atol=1e-7), k


# ----------------------------------------------------------------- the tests
def test_stopped_at_6_and_resumed_equals_10_straight(tmp_path):
    straight = execute(toy_preset(epochs=10, lr_schedule="step", lr_step_size=3), tmp_path / "straight")
    assert straight.status == "ok"

    stop = StopAt(step=6)
    part = execute(toy_preset(epochs=10, lr_schedule="step", lr_step_size=3), tmp_path / "resumed",
                   listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted" and part.summary["metrics"]["history"] == 6
    info = checkpoint_info(tmp_path / "resumed")  # what a runs table reads to offer resume
    assert info["epoch"] == 6 and info["total"] == 10 and info["reason"] == "stop"
    assert checkpoint_info(tmp_path / "straight")["reason"] == "end" and checkpoint_info(tmp_path) is None

    done = resume(tmp_path / "resumed", preset=toy_preset(epochs=10, lr_schedule="step", lr_step_size=3))
    assert done.status == "ok" and done.summary["metrics"]["history"] == 10  # the history came back too
    assert done.summary["metrics"]["final_loss"] == pytest.approx(straight.summary["metrics"]["final_loss"],
                                                                  rel=1e-6)
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")
    meta = read_json(tmp_path / "resumed" / "meta.json")
    assert [r["from_epoch"] for r in meta["resumes"]] == [6] and meta["start"] <= meta["resumes"][0]["start"]
    assert meta["pid"] == os.getpid() and meta["resumes"][0]["pid"] == os.getpid()  # who writes the folder now
    assert done.summary["resumed"][0]["previous_status"] == "interrupted"
    events = list(iter_events(tmp_path / "resumed"))
    kinds = [e["type"] for e in events]
    assert kinds.count("start") == 2 and kinds.count("end") == 2
    times = [e["t"] for e in events]
    assert times == sorted(times)  # the clock goes on across the resumption
    texts = [e["text"] for e in iter_events(tmp_path / "resumed") if e["type"] == "text"]
    assert "resumed from the checkpoint of epoch 6; continuing at epoch 7" in texts


def test_a_stop_in_the_middle_of_an_epoch_resumes_from_the_last_whole_one(tmp_path):
    preset = toy_preset(epochs=6, lr_schedule="cosine", precision="fp16")  # per-batch schedule, fp16 scaler
    straight = execute(preset, tmp_path / "straight")
    # each epoch checks the flag once in run.epochs and 15 times in run.batches (16 batches)
    stop = StopAt(calls=16 * 3 + 8)
    part = execute(toy_preset(epochs=6, lr_schedule="cosine", precision="fp16"), tmp_path / "cut", stop=stop)
    assert part.status == "interrupted"
    info = read_json(tmp_path / "cut" / "artifacts" / "checkpoint.json")
    assert info["epoch"] == 3 and info["reason"] == "stop"
    texts = [e["text"] for e in iter_events(tmp_path / "cut") if e["type"] == "text"]
    assert "stopped during epoch 4 of 6; evaluating the model as it is" in texts
    assert [s for s, _ in curves(tmp_path / "cut")["loss/train"]] == [1, 2, 3, 4]  # 4: the partial epoch

    done = resume(tmp_path / "cut", preset=toy_preset(epochs=6, lr_schedule="cosine", precision="fp16"))
    assert done.status == "ok"
    assert_same_run(tmp_path / "straight", tmp_path / "cut")  # the partial epoch 4 was set aside
    aside = (tmp_path / "cut" / "artifacts" / "events-set-aside.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in aside if '"scalars"' in line] == [4]


def test_a_finished_run_is_extended(tmp_path):
    straight = execute(toy_preset(epochs=7, lr_schedule="exponential", lr_gamma=0.8), tmp_path / "straight")
    short = execute(toy_preset(epochs=4, lr_schedule="exponential", lr_gamma=0.8), tmp_path / "extended")
    assert straight.status == short.status == "ok"
    with pytest.raises(ResumeError, match=r"all 4 epochs are done; `--epochs N` \(N > 4\) extends the run"):
        resume(tmp_path / "extended", preset=toy_preset(epochs=4, lr_schedule="exponential", lr_gamma=0.8))
    with pytest.raises(ResumeError, match="the checkpoint has 4 epochs done already; give more than 4"):
        resume(tmp_path / "extended", epochs=3, preset=toy_preset(epochs=4, lr_schedule="exponential", lr_gamma=0.8))
    done = resume(tmp_path / "extended", epochs=7,
                  preset=toy_preset(epochs=4, lr_schedule="exponential", lr_gamma=0.8))
    assert done.status == "ok" and done.summary["params"]["epochs"] == 7
    assert_same_run(tmp_path / "straight", tmp_path / "extended")
    assert "epochs = 7" in (tmp_path / "extended" / "preset.toml").read_text()


def test_what_cannot_be_resumed_says_why(tmp_path):
    execute(toy_preset(epochs=3, lr_schedule="cosine"), tmp_path / "cos")
    with pytest.raises(ResumeError, match="cosine LR schedule of this run is shaped for 3 epochs"):
        resume(tmp_path / "cos", epochs=5, preset=toy_preset(epochs=3, lr_schedule="cosine"))
    execute(toy_preset(epochs=2, resumable=False), tmp_path / "plain")
    with pytest.raises(ResumeError, match="no checkpoint to resume from"):
        resume(tmp_path / "plain", epochs=4, preset=toy_preset(epochs=2, resumable=False))
    with pytest.raises(ResumeError, match="no such run folder"):
        resume(tmp_path / "nothing")
    # a run whose process is alive is not resumed under it
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        folder = tmp_path / "cos"
        meta = read_json(folder / "meta.json")
        summary = read_json(folder / "summary.json")
        meta["pid"] = sleeper.pid
        summary["status"] = "running"
        (folder / "meta.json").write_text(json.dumps(meta))
        (folder / "summary.json").write_text(json.dumps(summary))
        with pytest.raises(ResumeError, match=f"still running \\(process {sleeper.pid}\\)"):
            resume(folder, epochs=3, preset=toy_preset(epochs=3, lr_schedule="cosine"))
    finally:
        sleeper.kill()
        sleeper.wait()


def _child(folder: str) -> None:
    """The SIGKILL test's child: a slow toy run checkpointing every epoch."""
    execute(toy_preset(epochs=40, checkpoint_every=1, sleep_s=0.1), Path(folder))


@pytest.mark.slow
def test_a_sigkilled_run_resumes_from_its_last_checkpoint(tmp_path):
    folder = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", f"from tests.test_resume import _child; _child({str(folder)!r})"],
                             cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = read_json(folder / "artifacts" / "checkpoint.json")
            if info and info["epoch"] >= 3:
                break
            assert child.poll() is None, "the child ended before it was killed"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert read_json(folder / "summary.json")["status"] == "running"  # no chance to say anything
    saved = read_json(folder / "artifacts" / "checkpoint.json")["epoch"]
    assert 3 <= saved < 40

    done = resume(folder, preset=toy_preset(epochs=40, checkpoint_every=1, sleep_s=0.0))
    assert done.status == "ok" and done.summary["resumed"][0]["from_epoch"] >= saved
    times = [e["t"] for e in iter_events(folder)]
    assert times == sorted(times) and done.summary["wall_time_s"] >= 0.1 * saved  # the killed part counts
    straight = execute(toy_preset(epochs=40, checkpoint_every=1), tmp_path / "straight")
    assert_same_run(tmp_path / "straight", folder)


# ------------------------------------------------------- the worked example
def test_mnist_cnn_stopped_still_evaluates_and_resumes_through_the_cli(tmp_path, monkeypatch):
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found at {SHARED_DATA / 'mnist'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    from labbench.engine.presets import preset_for_exercise

    sets = ["epochs=5", "train_limit=600", "test_limit=500", "batch_size=64", "show_digits=8"]

    def preset():
        p = preset_for_exercise("1.3-mnist-cnn", overrides=sets)
        p.device = "cpu"
        return p

    straight = execute(preset(), tmp_path / "straight")
    stop = StopAt(step=3)
    part = execute(preset(), tmp_path / "stopped", listeners=[stop.listen], stop=stop)
    assert part.status == "interrupted"
    m = part.summary["metrics"]
    assert m["epochs_done"] == 3 and 0.3 < m["test_acc"] <= 1  # evaluated after the Stop
    names = {e.get("name") for e in iter_events(tmp_path / "stopped") if e["type"] in ("figure", "images")}
    assert {"confusion", "test-digits"} <= names

    res = CliRunner().invoke(app, ["resume", str(tmp_path / "stopped"), "--quiet"])
    assert res.exit_code == 0, res.output
    final = read_json(tmp_path / "stopped" / "summary.json")
    assert final["status"] == "ok" and final["metrics"]["epochs_done"] == 5
    assert final["metrics"]["test_acc"] == pytest.approx(straight.summary["metrics"]["test_acc"], abs=1e-6)
    assert_same_run(tmp_path / "straight", tmp_path / "stopped")
    res = CliRunner().invoke(app, ["resume", str(tmp_path / "stopped")])
    assert res.exit_code == 2 and "all 5 epochs are done" in res.output
