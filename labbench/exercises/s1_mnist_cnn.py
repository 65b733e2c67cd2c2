"""Session 1.3 - a small CNN on MNIST, and what the optimiser changes.

Course notebook: the Keras example CNN (two 3x3 convolutions with max pooling,
dropout, a dense softmax layer: 34,826 parameters), pixels / 255, 10% of the
training set held out for validation, cross-entropy, Adam, batch 128, 15
epochs. The report swaps Adam for SGD and Adadelta.

How it is made fast: the images are one tensor on the device, batches are
index slices (no DataLoader, no per-image ToTensor), losses and hits are
summed on the device and read once per epoch; channels-last memory layout and
bf16 autocast (CUDA always, CPU on request) speed up the convolutions.

It is also the worked example of the deep-learning kit (docs/KIT.md): the
shared parameters (precision, compile, channels_last, limits, checkpoints),
``run.epochs`` with a checkpoint on Stop, and ``labbench resume``; a stopped
run still reports its test accuracy, confusion matrix and digits.
"""

from __future__ import annotations

import time
from typing import Literal, Optional

import torch
from pydantic import Field

from ..data import mnist
from ..engine import Exercise, Run
from ..nn import (DeepParams, classifier_epoch, compile_model, confusion_matrix, count_parameters, evaluate,
                  make_generator, make_optimizer, precision)

DESCRIPTION = """
The Keras example **CNN** for MNIST:

    Conv(32, 3x3, ReLU) - MaxPool 2 - Conv(64, 3x3, ReLU) - MaxPool 2
    - Flatten - Dropout 0.5 - Dense(10)

has **34,826** trainable parameters (320 + 18,496 + 16,010). Trained with the
course settings (Adam, batch 128, 15 epochs, 10% validation) it reaches about
99% test accuracy (report); the report's SGD and Adadelta land near 97.9%
(report). The report's test figures, per optimiser:

- Adam: accuracy 0.9905, loss 0.0275 (report)
- SGD lr 0.01, momentum 0.4: accuracy 0.9792, loss 0.0665 (report)
- Adadelta lr 0.1, rho 0.95, eps 1e-7: accuracy 0.9786, loss 0.0659 (report)

Shown: train/validation loss and accuracy per epoch, test digits with the
predicted label over the true one (errors highlighted), the misclassified
digits, and the confusion matrix.

Questions: how fast does each optimiser get there, and does validation
accuracy track test accuracy? Which digits are confused with which?
Unset optimiser settings take the Keras defaults (Adam eps 1e-7; Adadelta
rho 0.95; RMSprop rho 0.9).
"""

# Keras' defaults per optimiser (the course uses Keras); a field left unset takes these.
KERAS = {
    "adam": {"lr": 1e-3, "eps": 1e-7},
    "sgd": {"lr": 1e-2, "momentum": 0.0},
    "adadelta": {"lr": 1e-3, "rho": 0.95, "eps": 1e-7},
    "rmsprop": {"lr": 1e-3, "rho": 0.9, "eps": 1e-7},
    "adagrad": {"lr": 1e-3, "eps": 1e-7},
}


class MnistCnnParams(DeepParams):
    optimizer: Literal["adam", "sgd", "adadelta", "rmsprop", "adagrad"] = Field(
        "adam", description="Optimiser (course: Adam; report: SGD, Adadelta)")
    lr: Optional[float] = Field(None, gt=0, description="Learning rate (unset: the optimiser's Keras default)")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="Momentum for SGD / RMSprop (unset: 0)")
    nesterov: bool = Field(False, description="Nesterov momentum (SGD)")
    rho: Optional[float] = Field(None, gt=0, lt=1, description="Decay rate of Adadelta / RMSprop (unset: Keras')")
    eps: Optional[float] = Field(None, gt=0, description="Epsilon of adaptive optimisers (unset: 1e-7)")
    epochs: int = Field(15, ge=1, le=1000, description="Epochs")
    batch_size: int = Field(128, ge=1, le=60_000, description="Mini-batch size")
    validation_split: float = Field(0.1, ge=0, lt=1, description="Fraction of the training set held out "
                                                                 "(the last part, as Keras does)")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before the dense layer")
    show_digits: int = Field(32, ge=0, le=200, description="Test digits shown with their predictions")
    # precision, compile, channels_last, train_limit, test_limit, checkpoint_every: DeepParams


# ----------------------------------------------------------------------- model
class CourseCNN(torch.nn.Module):
    """The Keras example CNN; Keras initialisation (Glorot-uniform, zero bias)."""

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        )
        self.classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(dropout),
                                              torch.nn.Linear(64 * 5 * 5, 10))
        for m in self.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x))


def optimizer_settings(p: MnistCnnParams) -> dict:
    s = dict(KERAS[p.optimizer])
    for key in ("lr", "momentum", "rho", "eps"):
        if getattr(p, key) is not None:
            s[key] = getattr(p, key)
    if p.optimizer == "sgd":
        s["nesterov"] = p.nesterov
    return s


def load_data(p: MnistCnnParams, device):
    """Train / validation / test tensors on the device (pixels / 255)."""
    x, y = mnist.tensors("mnist", "train", device=device, limit=p.train_limit)
    x_test, y_test = mnist.tensors("mnist", "test", device=device, limit=p.test_limit)
    n_val = int(round(len(x) * p.validation_split))
    n_train = len(x) - n_val
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), (x_test, y_test)


def run(p: MnistCnnParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    prec = precision(p.precision, dev)
    fmt = torch.channels_last if p.channels_last else torch.contiguous_format

    # --- data
    (x, y), (x_val, y_val), (x_test, y_test) = load_data(p, dev)
    x, x_val, x_test = (t.contiguous(memory_format=fmt) for t in (x, x_val, x_test))
    run.text(f"MNIST: {len(x)} train, {len(x_val)} validation, {len(x_test)} test images on {dev}")

    # --- model
    model = CourseCNN(p.dropout).to(dev, memory_format=fmt)
    n_params = count_parameters(model)
    settings = optimizer_settings(p)
    opt = make_optimizer(p.optimizer, model.parameters(), **settings)
    # compile (auto) pays only for long runs; a GPU does this CNN at roughly 20,000 images/s
    net = compile_model(model, p.compile, device=dev, expected_s=p.epochs * len(x) / 20_000, log=run.text)
    run.text(f"CourseCNN: {n_params:,} trainable parameters; {p.optimizer} "
             + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in settings.items())
             + f"; {prec.describe()}")

    # --- loop (resumable: checkpoints on Stop, every few minutes and at the end)
    gen = make_generator(run.seed)
    state = run.resumable(models=model, optimizers=opt, scaler=prec.scaler, generators={"shuffle": gen},
                          extra={"train_s": 0.0, "images": 0}, every=p.checkpoint_every)
    val_loss = val_acc = None
    for epoch in run.epochs(p.epochs):
        t0 = time.perf_counter()
        loss, acc = classifier_epoch(model, opt, x, y, p.batch_size, generator=gen, precision=prec, run=run,
                                     forward=net)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        state["train_s"] += time.perf_counter() - t0
        state["images"] += len(x)
        values = {"loss/train": loss, "acc/train": acc}
        if len(x_val):
            val_loss, val_acc, _ = evaluate(model, x_val, y_val, precision=prec, forward=net)
            values.update({"loss/val": val_loss, "acc/val": val_acc})
        run.scalars(epoch, values)

    # --- test
    test_loss, test_acc, pred = evaluate(model, x_test, y_test, precision=prec, forward=net)
    test_loss, test_acc = float(test_loss), float(test_acc)
    pred, true = pred.cpu(), y_test.cpu()
    cm = confusion_matrix(pred, true, 10)
    digits = [str(d) for d in range(10)]
    run.figure("confusion", "heatmap", title=f"confusion matrix (test accuracy {test_acc:.4f})", z=cm,
               xlabels=digits, ylabels=digits, annotate=True, zlabel="count", xlabel="predicted", ylabel="true")
    k = min(p.show_digits, len(x_test))
    if k:
        run.images("test-digits", x_test[:k, 0].float().cpu(), title="test digits: predicted / true",
                   captions=[f"{int(a)}/{int(b)}" for a, b in zip(pred[:k], true[:k])],
                   highlight=[i for i in range(k) if pred[i] != true[i]])
        wrong = torch.nonzero(pred != true).flatten()[:k]
        if len(wrong):
            run.images("errors", x_test[wrong.to(x_test.device), 0].float().cpu(),
                       title=f"misclassified test digits ({int((pred != true).sum())} of {len(true)}): "
                             "predicted / true",
                       captions=[f"{int(pred[i])}/{int(true[i])}" for i in wrong],
                       highlight=list(range(len(wrong))))
    per_class = (cm.diag().float() / cm.sum(1).clamp_min(1).float()).tolist()
    run.table("per-class", ["digit", "test images", "accuracy", "most confused with"],
              [[d, int(cm[d].sum()), per_class[d],
                int(torch.argmax(cm[d] - torch.diag(cm.diag())[d])) if cm[d].sum() > cm[d, d] else "-"]
               for d in range(10)], title="accuracy per digit")
    train_time = state["train_s"]
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "params": n_params, "train_s": train_time,
               "epochs_done": run.step}
    if val_acc is not None:
        metrics.update(val_acc=float(val_acc), val_loss=float(val_loss))
    if train_time > 0:
        metrics["images_per_s"] = state["images"] / train_time
    run.summary(**metrics)


EXERCISE = Exercise(
    id="1.3-mnist-cnn",
    title="A small CNN on MNIST: optimiser swap",
    session=1,
    description=DESCRIPTION,
    Params=MnistCnnParams,
    run=run,
    data=["mnist"],
    primary_metric="test_acc",
)
