"""Session 3.2 - a stacked autoencoder (course notebook ``ae_sae.ipynb``, second part).

Course notebook: ``get_mnist_loader`` picks a random 6,000 training and 1,000
test MNIST images (``torch.manual_seed(42)``), batch 128. Two
``AutoEncoderLayer`` s, 784-256 and 256-64, each a sigmoid encoder and a
sigmoid decoder, are pre-trained greedily (``train_layer``: SGD lr 0.1, MSE
against the layer's own input, 10 epochs each, the earlier layers frozen).
``StackedAutoEncoderClassifier`` keeps the encoders and adds Linear(64, 10);
``train_classifier`` trains it with cross-entropy and SGD lr 1 for 10 epochs
with the encoders frozen, then again for 20 epochs with everything trainable
(fine-tuning), printing the test accuracy after each.

Frozen layers do not change, so their codes are computed once per phase and
the layer being trained reads them (the notebook recomputes them every batch:
the same numbers, more work). In the notebook only the layers *before* the last
one are locked, so its classifier phase also trains the 256-64 encoder; here,
as the exercise text says, every encoder is frozen in that phase.

The report's variant: pre-training with binary cross-entropy, then the whole
stack (encoders, then decoders in reverse) trained end to end for
reconstruction with MSE, against the same stack from the same initial
weights trained end to end from scratch for the same total number of epochs.

The phases are one epoch loop (``run.epochs`` over all of them), so a run
stopped in any phase resumes there; each phase's weights are saved at its end.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from ..engine import Exercise, Run
from ..nn import (DeepParams, LossMeter, batch_indices, count_parameters, cpu_threads, make_generator,
                  make_optimizer, mnist_subsets, precision, reconstruction_grid, unit_images)

DESCRIPTION = """
A **stacked autoencoder** is built one layer at a time. Each layer is a small
autoencoder (sigmoid encoder, sigmoid decoder) trained to rebuild its own
input - the pixels for the first (784-256), the first layer's code for the
second (256-64) - while the layers below it stay frozen: **greedy layer-wise
pre-training** (SGD lr 0.1, MSE, 10 epochs a layer). The encoders then feed a
**classifier head**, Linear(64, 10), trained alone with the encoders frozen
(SGD lr 1, cross-entropy, 10 epochs), and finally everything is
**fine-tuned** together (20 epochs). The course uses a random 6,000 training
and 1,000 test images (seed 42) and batch 128, and prints the test accuracy
after each phase.

The **report's variant** pre-trains with binary cross-entropy instead, then
trains the whole stack end to end to reconstruct its input (MSE), and compares
it with the same stack trained from scratch for the same total number of
epochs (preset "report").

Counts: a layer n-m has n x m + m encoder and m x n + n decoder parameters;
the classifier 784-256-64-10 has 218,058 (200,960 + 16,448 + 650).

Shown: the training loss of every phase on one time line with the phase
boundaries marked, test accuracy per epoch, a table of the phases with the
test accuracy (or reconstruction error) after each, the test digits
reconstructed through one layer and through the stack, and the first layer's
features. Each phase's weights are saved in the run folder.

Questions: does pre-training make the classifier better than the head alone?
How much does fine-tuning add, and what does it do to the decoders' pictures?
Does layer-wise pre-training help end-to-end reconstruction, against the same
number of epochs from scratch?
"""

N_CLASSES = 10


class StackedAEParams(DeepParams):
    variant: Literal["course", "report"] = Field(
        "course", description="course: classifier head, then fine-tuning (accuracy after each); report: end-to-end "
                              "reconstruction against the same stack from scratch")
    hidden: list[int] = Field([256, 64], min_length=1, max_length=4,
                              description="Code sizes of the stacked layers (course: 256, 64 -> 784-256-64)")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Optimiser of every phase (course: SGD); the "
                                                                "learning rates below are its")
    pretrain_loss: Literal["mse", "bce"] = Field("mse", description="Pre-training loss (course: MSE; report: BCE)")
    pretrain_epochs: int = Field(10, ge=0, le=500, description="Pre-training epochs per layer (course: 10)")
    pretrain_lr: float = Field(0.1, gt=0, le=100, description="Learning rate of pre-training (course: 0.1 with SGD)")
    classifier_epochs: int = Field(10, ge=0, le=500, description="Epochs of the head alone, encoders frozen "
                                                                 "(course: 10; variant course)")
    classifier_lr: float = Field(1.0, gt=0, le=100, description="Learning rate of the head (course: 1 with SGD)")
    finetune_epochs: int = Field(20, ge=0, le=1000, description="Fine-tuning epochs (course: 20), or end-to-end "
                                                                "reconstruction epochs (variant report)")
    finetune_lr: float = Field(1.0, gt=0, le=100, description="Learning rate of fine-tuning (course: 1 with SGD) or "
                                                              "of end-to-end reconstruction")
    batch_size: int = Field(128, ge=1, le=60_000, description="Mini-batch size (course: 128)")
    subset_seed: int = Field(42, ge=0, description="Seed that picks the random images (course: 42)")
    train_limit: int | None = Field(6_000, ge=1, le=60_000,
                                    description="Random training images (course: 6,000; unset: all 60,000)")
    test_limit: int | None = Field(1_000, ge=1, le=10_000,
                                   description="Random test images (course: 1,000; unset: all 10,000)")
    show_digits: int = Field(10, ge=0, le=64, description="Test digits shown above their reconstructions")
    # precision, compile (not used: small MLPs), channels_last (unused), checkpoint_every: DeepParams

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v):
        bad = [h for h in v if h < 1 or h > 4096]
        if bad:
            raise ValueError(f"code sizes must be 1 to 4096, got {bad[0]}")
        return v


# ----------------------------------------------------------------------- model
class AutoEncoderLayer(torch.nn.Module):
    """One layer of the stack: a sigmoid encoder n_in -> n_hidden and a sigmoid decoder back."""

    def __init__(self, n_in: int, n_hidden: int):
        super().__init__()
        self.n_in, self.n_hidden = n_in, n_hidden
        self.encoder = torch.nn.Sequential(torch.nn.Linear(n_in, n_hidden), torch.nn.Sigmoid())
        self.decoder = torch.nn.Sequential(torch.nn.Linear(n_hidden, n_in), torch.nn.Sigmoid())

    def forward(self, x):  # the layer's own reconstruction (pre-training)
        return self.decoder(self.encoder(x))


class StackedAutoEncoderClassifier(torch.nn.Module):
    """The layers' encoders in a row, then a linear classifier (no softmax:
    cross-entropy takes the logits)."""

    def __init__(self, layers: list[AutoEncoderLayer], n_classes: int = N_CLASSES):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.head = torch.nn.Linear(layers[-1].n_hidden, n_classes)

    def encode(self, x, upto: int | None = None):
        for layer in list(self.layers)[:upto]:
            x = layer.encoder(x)
        return x

    def decode(self, z, start: int | None = None):
        """From the code of layer ``start`` (default: the last) back to the pixels."""
        top = len(self.layers) if start is None else start
        for layer in reversed(list(self.layers)[:top]):
            z = layer.decoder(z)
        return z

    def reconstruct(self, x, depth: int | None = None):
        """Through the first ``depth`` encoders and back through their decoders."""
        return self.decode(self.encode(x, depth), depth)

    def forward(self, x):
        return self.head(self.encode(x))


def build(hidden: list[int]) -> StackedAutoEncoderClassifier:
    sizes = [784, *hidden]
    return StackedAutoEncoderClassifier([AutoEncoderLayer(a, b) for a, b in zip(sizes, sizes[1:])])


def phases(p: StackedAEParams) -> list[tuple[str, int]]:
    """The run's phases in order: (name, epochs); phases of 0 epochs are left out."""
    out = [(f"layer {i + 1}", p.pretrain_epochs) for i in range(len(p.hidden))]
    if p.variant == "course":
        out += [("classifier", p.classifier_epochs), ("fine-tuning", p.finetune_epochs)]
    else:
        out += [("end-to-end", p.finetune_epochs)]
    return [(name, n) for name, n in out if n > 0]


def phase_at(plan: list[tuple[str, int]], epoch: int) -> tuple[str, int, int]:
    """(phase, epoch within it, its length) of global epoch ``epoch`` (1-based)."""
    for name, n in plan:
        if epoch <= n:
            return name, epoch, n
        epoch -= n
    raise ValueError("epoch past the last phase")


def sgd_epoch(run: Run, opt, n: int, batch_size: int, gen, device, prec, loss_of: Callable) -> float:
    """One shuffled pass in index-slice batches; ``loss_of(idx)`` gives the
    batch loss. Returns the mean loss (read once)."""
    meter = LossMeter()
    for idx in run.batches(batch_indices(n, batch_size, generator=gen, device=device)):
        with prec.autocast():
            loss = loss_of(idx)
        opt.zero_grad(set_to_none=True)
        prec.minimize(loss.float(), opt)
        meter.add(len(idx), loss=loss)
    return meter.means().get("loss", float("nan"))


@torch.no_grad()
def accuracy(model: StackedAutoEncoderClassifier, x, y) -> float:
    model.eval()
    acc = float((model(x).argmax(1) == y).float().mean()) if len(y) else float("nan")
    model.train()
    return acc


def run(p: StackedAEParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)
    bce = p.pretrain_loss == "bce"

    def recon_loss(out, target, use_bce=False):
        # in fp32 outside autocast: CUDA autocast refuses binary_cross_entropy on half-precision inputs
        with torch.autocast(out.device.type, enabled=False):
            out, target = out.float(), target.float()
            return F.binary_cross_entropy(out, target) if use_bce else F.mse_loss(out, target)

    # --- data: the course's random subsets, flattened
    (x, y), (x_test, y_test) = mnist_subsets("mnist", p.train_limit, p.test_limit, seed=p.subset_seed, device=dev,
                                             flatten=True)
    n = len(x)
    run.text(f"MNIST: {n:,} random training and {len(x_test):,} test images (subset seed {p.subset_seed}) on {dev}")

    # --- model: the layers, the classifier around them and (report) the same stack from scratch
    sae = build(p.hidden).to(dev)
    scratch = copy.deepcopy(sae) if p.variant == "report" else None  # the same initial weights
    layers = list(sae.layers)
    n_params = count_parameters(sae) - sum(count_parameters(layer.decoder) for layer in layers)  # the classifier
    opts = {f"layer {i + 1}": make_optimizer(p.optimizer, layer.parameters(), lr=p.pretrain_lr, fused=True)
            for i, layer in enumerate(layers)}
    if p.variant == "course":
        opts["classifier"] = make_optimizer(p.optimizer, sae.head.parameters(), lr=p.classifier_lr, fused=True)
        opts["fine-tuning"] = make_optimizer(p.optimizer, sae.parameters(), lr=p.finetune_lr, fused=True)
    else:
        opts["end-to-end"] = make_optimizer(p.optimizer, sae.layers.parameters(), lr=p.finetune_lr, fused=True)
        opts["scratch"] = make_optimizer(p.optimizer, scratch.layers.parameters(), lr=p.finetune_lr, fused=True)
    plan = phases(p)
    total = sum(e for _, e in plan)
    sizes = "-".join(str(s) for s in [784, *p.hidden])
    run.text(f"stack {sizes}, classifier {sizes}-{N_CLASSES}: {n_params:,} parameters "
             f"({count_parameters(sae):,} with the decoders); batch {p.batch_size}; "
             f"{prec.describe()}. Phases: " + ", ".join(f"{name} ({e} epochs)" for name, e in plan))
    if total == 0:
        run.text("every phase has 0 epochs: nothing to train", "warning")
    if p.compile is True:
        run.text("compile: not used here (each phase trains a different small part of the stack)", "warning")

    # --- loop: every phase in one resumable epoch loop
    gen, gen_scratch = make_generator(run.seed), make_generator(run.seed + 1)
    state = run.resumable(models={"stack": sae, **({"scratch": scratch} if scratch is not None else {})},
                          optimizers=opts, scaler=prec.scaler, generators={"shuffle": gen, "scratch": gen_scratch},
                          extra={"train_s": 0.0, "results": {}, "curve": {}}, every=p.checkpoint_every)
    codes: dict[int, torch.Tensor] = {}  # outputs of the frozen encoders, per depth, for the current phase
    k = min(p.show_digits, len(x_test))
    threads = 1 if dev.type == "cpu" and p.batch_size * 784 * max(p.hidden) < 50_000_000 else None
    current = None
    for epoch in run.epochs(total):
        name, within, length = phase_at(plan, epoch)
        if name != current:  # a new phase (or the first after a resumption)
            current = name
            codes.clear()
            run.text(f"phase {name}: epochs {epoch - within + 1}-{epoch - within + length} of the run"
                     + (f" (resumed at its epoch {within})" if within > 1 else ""))
        t0 = time.perf_counter()
        values: dict[str, float] = {}
        with cpu_threads(threads, dev):
            if name.startswith("layer"):
                i = int(name.split()[1]) - 1
                if i not in codes:
                    with torch.no_grad():
                        codes[i] = sae.encode(x, i)  # the frozen layers' codes: computed once a phase
                inputs = codes[i]
                loss = sgd_epoch(run, opts[name], n, p.batch_size, gen, dev, prec,
                                 lambda idx: recon_loss(layers[i](inputs[idx]), inputs[idx], bce))
                values[f"pre-training {'BCE' if bce else 'MSE'}/{name}"] = loss
            elif name == "classifier":
                if len(layers) not in codes:
                    with torch.no_grad():
                        codes[len(layers)] = sae.encode(x)
                z = codes[len(layers)]
                loss = sgd_epoch(run, opts[name], n, p.batch_size, gen, dev, prec,
                                 lambda idx: F.cross_entropy(sae.head(z[idx]).float(), y[idx]))
                values["cross-entropy/classifier"] = loss
            elif name == "fine-tuning":
                loss = sgd_epoch(run, opts[name], n, p.batch_size, gen, dev, prec,
                                 lambda idx: F.cross_entropy(sae(x[idx]).float(), y[idx]))
                values["cross-entropy/fine-tuning"] = loss
            else:  # end-to-end reconstruction (report)
                loss = sgd_epoch(run, opts[name], n, p.batch_size, gen, dev, prec,
                                 lambda idx: recon_loss(sae.reconstruct(x[idx]), x[idx]))
                values["end-to-end MSE/pre-trained"] = loss
            if scratch is not None:  # the same stack from scratch, one end-to-end epoch per run epoch
                values["end-to-end MSE/from scratch"] = sgd_epoch(
                    run, opts["scratch"], n, p.batch_size, gen_scratch, dev, prec,
                    lambda idx: recon_loss(scratch.reconstruct(x[idx]), x[idx]))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        state["curve"].setdefault(name, []).append([epoch, loss])
        if name in ("classifier", "fine-tuning"):
            values[f"test accuracy/{name}"] = accuracy(sae, x_test, y_test)
        if scratch is not None:
            with torch.no_grad():
                values["stack test MSE/pre-trained"] = float(F.mse_loss(sae.reconstruct(x_test), x_test))
                values["stack test MSE/from scratch"] = float(F.mse_loss(scratch.reconstruct(x_test), x_test))
        run.scalars(epoch, values, check=[key for key in values if "accuracy" not in key])
        if within == length:  # the phase is over: its results, pictures and weights
            state["results"][name] = phase_results(p, name, sae, scratch, x_test, y_test, epoch, loss)
            run.save_weights({"stack": sae, **({"scratch": scratch} if scratch is not None else {})},
                             name=f"weights-after-{name.replace(' ', '-')}", epoch=epoch)
            show_phase(run, p, name, sae, x_test, k, epoch)
            phase_figure(run, plan, state["curve"], bce)

    # --- results (also after a Stop: the phases done, and the model as it is)
    done = run.step or 0
    phase_figure(run, plan, state["curve"], bce)
    results = state["results"]
    rows = [[name, e, r.get("loss"), r.get("what", ""), r.get("test")] for name, e in plan
            if (r := results.get(name))]
    if rows:
        run.table("phases", ["phase", "epochs", "train loss (last epoch)", "test measure", "test value"], rows,
                  title="after each phase")
    if k:
        reconstruction_grid(run, "stack-reconstructions", x_test[:k], sae.reconstruct(x_test[:k]).detach(), n=k,
                            shape=(28, 28), step=done,
                            title=f"test digits through the whole stack and back, at the end (epoch {done})")
    metrics: dict = {}
    if p.variant == "course":
        for name, key in (("classifier", "acc_classifier"), ("fine-tuning", "acc_finetuned")):
            if name in results:
                metrics[key] = results[name]["test"]
        metrics["test_acc"] = accuracy(sae, x_test, y_test)
    else:
        with torch.no_grad():
            metrics["mse_pretrained"] = float(F.mse_loss(sae.reconstruct(x_test), x_test))
            metrics["mse_scratch"] = float(F.mse_loss(scratch.reconstruct(x_test), x_test))
            metrics["mse_mean_image"] = float(((x_test - x.mean(0)) ** 2).mean())  # the floor to beat
        if k:
            reconstruction_grid(run, "scratch-reconstructions", x_test[:k], scratch.reconstruct(x_test[:k]).detach(),
                                n=k, shape=(28, 28), step=done,
                                title=f"the same stack trained from scratch ({done} epochs end to end)")
    metrics.update({"params": n_params, "epochs_done": done, "train_s": state["train_s"]})
    run.summary(**metrics)


@torch.no_grad()
def phase_results(p, name, sae, scratch, x_test, y_test, epoch, loss) -> dict:
    """What the phase ends with: its last training loss and a test measure."""
    if name.startswith("layer"):
        depth = int(name.split()[1])
        return {"loss": loss, "what": "stack test MSE (to this layer)",
                "test": float(F.mse_loss(sae.reconstruct(x_test, depth), x_test)), "epoch": epoch}
    if name in ("classifier", "fine-tuning"):
        return {"loss": loss, "what": "test accuracy", "test": accuracy(sae, x_test, y_test), "epoch": epoch}
    return {"loss": loss, "what": "stack test MSE", "test": float(F.mse_loss(sae.reconstruct(x_test), x_test)),
            "epoch": epoch}


@torch.no_grad()
def show_phase(run: Run, p, name: str, sae, x_test, k: int, epoch: int) -> None:
    """Pictures at the end of a pre-training phase: the digits through the
    layers so far, and the first layer's features."""
    if not name.startswith("layer") or not k:
        return
    depth = int(name.split()[1])
    reconstruction_grid(run, f"layer-{depth}-reconstructions", x_test[:k], sae.reconstruct(x_test[:k], depth),
                        n=k, shape=(28, 28), step=epoch,
                        title=f"test digits through layer{'s 1-' if depth > 1 else ' '}{depth} and back "
                              f"(after pre-training layer {depth})")
    if depth == 1:
        w = unit_images(sae.layers[0].encoder[0].weight, 32)
        run.images("layer-1-features", w, value_range=(-1.0, 1.0), step=epoch,
                   title=f"first-layer features: the weights of {len(w)} of {sae.layers[0].n_hidden} units, each "
                         "scaled to its largest (grey 0, white +, black -)")


def phase_figure(run: Run, plan, curve: dict, bce: bool) -> None:
    """The training loss of every phase on one time line, the boundaries marked."""
    series = {}
    for name, _ in plan:
        if curve.get(name):
            unit = ("BCE" if bce else "MSE") if name.startswith("layer") else (
                "MSE" if name == "end-to-end" else "cross-entropy")
            series[f"{name} ({unit})"] = {"x": [float(e) for e, _ in curve[name]],
                                          "y": [float(v) for _, v in curve[name]]}
    if not series:
        return
    markers, start = [], 0
    for name, e in plan:
        if start:
            markers.append({"x": start + 0.5, "label": name})
        start += e
    run.figure("phases", "line", title="training loss, phase by phase (log scale)", series=series, logy=True,
               markers=markers, xlabel="epoch of the run", ylabel="training loss")


EXERCISE = Exercise(
    id="3.2-stacked-ae",
    title="Stacked autoencoder: layer-wise pre-training, head, fine-tuning",
    session=3,
    description=DESCRIPTION,
    Params=StackedAEParams,
    run=run,
    data=["mnist"],
    primary_metric="test_acc",
)
