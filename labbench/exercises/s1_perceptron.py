"""Session 1.1 - the perceptron vs linear regression, and a two-layer net.

Course notebook: fit ``y = -sin(0.8 * pi * x)`` on 50 points of [0, 3] with one
linear unit (SGD on the MSE), compare with the least-squares optimum, and with
a small net (Dense(10, sigmoid) -> Dense(1), Adam).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import Field

from ..engine import Exercise, Params, Run
from ..nn import batch_indices, make_generator

DESCRIPTION = """
A **perceptron** without activation is linear regression trained by gradient
descent. On `y = -sin(0.8·π·x)` for 50 points of [0, 3] it can at best reach
the **least-squares optimum**: MSE 0.4235 with π, 0.0352 without (the course
notebook's target).

The course trains it on the full batch (batch 50), so the loss is a quadratic
bowl in (w, b) whose curvature (Hessian) has eigenvalues 0.408 and 7.65:

* a learning rate above 2/7.65 = 0.261 overshoots along the steep direction:
  lr 0.25 oscillates and converges slowly, **lr 0.3 diverges** - labbench ends
  such a run as *diverged* and says at which epoch;
* along the flat direction the error shrinks by 1 - lr·0.408 per epoch:
  0.918 at lr 0.2, but 0.992 at lr 0.02 and 0.99992 at lr 0.0002.

So how soon a run reaches the optimum (within 0.001) depends on where it
starts. From labbench's seed-0 start (w -1.43, b 0; preset
`1.1-perceptron-lr-sweep`) lr 0.2 takes 35 epochs, lr 0.02 takes 348, and lr
0.0002 is still at MSE 0.647 after 2000 epochs. The report's lr 0.2 in about 25
epochs, lr 0.02 in about 37 and lr 0.0002 at about 0.444 after 2000 epochs
(report) are what gradient descent does from starts that lie mostly along the
steep direction - Keras draws a new start for every model. The preset
`1.1-perceptron-start-sweep` sets the start (`init_w`, with b 0): from w 0,
lr 0.2 takes 25 epochs; from w 1.3, lr 0.02 takes 33; from w 0.35, lr 0.0002
ends at 0.444.

The **two-layer** net (10 sigmoid units, Adam lr 0.1, 300 epochs, batch 25) can
follow the curve; its loss is drawn on a log scale, as the course notebook
plots the log of the loss.

Questions: why does a linear unit stop at 0.4235? Which learning rates are
stable, and why does the bound depend on the data (the largest eigenvalue of
the input's second-moment matrix)? Why does the start matter so much at lr 0.02?
"""

COURSE = {
    "perceptron": {"lr": 0.2, "epochs": 35, "batch_size": 50, "optimizer": "sgd"},
    "two-layer": {"lr": 0.1, "epochs": 300, "batch_size": 25, "optimizer": "adam"},
}


class PerceptronParams(Params):
    model: Literal["perceptron", "two-layer", "both"] = Field(
        "perceptron", description="Which model to train (both: one after the other, curves overlaid)")
    use_pi: bool = Field(True, description="Target -sin(0.8*pi*x) (report); false: -sin(0.8*x) (course notebook)")
    n_points: int = Field(50, ge=2, le=100_000, description="Number of points on [0, 3]")
    lr: Optional[float] = Field(None, gt=0, description="Learning rate (unset: 0.2 perceptron, 0.1 two-layer)")
    epochs: Optional[int] = Field(None, ge=1, le=1_000_000,
                                  description="Epochs (unset: 35 perceptron, 300 two-layer)")
    batch_size: Optional[int] = Field(None, ge=1, description="Batch size (unset: 50 perceptron, 25 two-layer)")
    optimizer: Optional[Literal["sgd", "adam"]] = Field(
        None, description="Optimiser (unset: SGD perceptron, Adam two-layer)")
    hidden: int = Field(10, ge=1, le=10_000, description="Hidden sigmoid units of the two-layer net")
    init_w: Optional[float] = Field(None, description="Perceptron: starting weight (unset: Keras' Glorot-uniform "
                                                      "draw from the seed)")
    init_b: float = Field(0.0, description="Perceptron: starting bias (Keras starts at 0)")


def dataset_generation(n_points: int = 50, use_pi: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(0, 3, n_points, dtype=torch.float64)
    y = -torch.sin(0.8 * (math.pi if use_pi else 1.0) * x)
    return x.unsqueeze(1), y.unsqueeze(1)


def least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Closed-form optimum of one linear unit: (w, b, mse)."""
    A = torch.cat([x, torch.ones_like(x)], dim=1)
    sol = torch.linalg.lstsq(A, y).solution
    w, b = sol[0, 0].item(), sol[1, 0].item()
    mse = torch.mean((A @ sol - y) ** 2).item()
    return w, b, mse


def loss_curvature(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the perceptron's MSE Hessian
    2/n [x 1]^T [x 1]: full-batch gradient descent shrinks the error along
    eigenvector i by |1 - lr * eigenvalue_i| per epoch."""
    A = torch.cat([x, torch.ones_like(x)], dim=1)
    return torch.linalg.eigh(2.0 * A.T @ A / len(x))


def make_model(kind: str, hidden: int) -> torch.nn.Module:
    if kind == "perceptron":
        model = torch.nn.Linear(1, 1)
        layers = [model]
    else:
        model = torch.nn.Sequential(torch.nn.Linear(1, hidden), torch.nn.Sigmoid(), torch.nn.Linear(hidden, 1))
        layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    for layer in layers:  # Keras' Dense defaults: Glorot-uniform weights, zero biases
        torch.nn.init.xavier_uniform_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return model.double()


def settings(p: PerceptronParams, kind: str) -> dict:
    s = dict(COURSE[kind])
    for key in ("lr", "epochs", "batch_size", "optimizer"):
        if getattr(p, key) is not None:
            s[key] = getattr(p, key)
    return s


def train(kind: str, p: PerceptronParams, x, y, run: Run, gen) -> tuple[torch.nn.Module, list, tuple | None]:
    """Train one model; returns it, its loss per epoch and (perceptron) its start (w, b)."""
    s = settings(p, kind)
    model = make_model(kind, p.hidden).to(x.device)
    start = None
    if kind == "perceptron":
        with torch.no_grad():
            if p.init_w is not None:
                model.weight.fill_(p.init_w)
            model.bias.fill_(p.init_b)
        start = (model.weight.item(), model.bias.item())
    opt_cls = torch.optim.SGD if s["optimizer"] == "sgd" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=s["lr"])
    run.text(f"{kind}: {s['optimizer']} lr {s['lr']}, {s['epochs']} epochs, batch {s['batch_size']}")
    losses = []
    refresh = max(1, s["epochs"] // 20)
    phase = "epoch" if p.model != "both" else f"{kind} epoch"
    for epoch in run.epochs(s["epochs"], phase=phase):
        # Keras-style epoch loss: the mean of the batch losses seen while training.
        total_loss = torch.zeros((), dtype=x.dtype, device=x.device)
        for idx in batch_indices(len(x), s["batch_size"], generator=gen, device=x.device):
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.detach() * len(idx)
        epoch_loss = (total_loss / len(x)).item()
        losses.append(epoch_loss)
        run.scalars(epoch, {f"loss/{kind}": epoch_loss})
        if epoch % refresh == 0 or epoch == s["epochs"]:
            with torch.no_grad():
                run.figure("fit", "line", title=f"{kind} fit (epoch {epoch})", xlabel="x", ylabel="y",
                           x=x[:, 0], series={"data": y[:, 0], kind: model(x)[:, 0]})
    return model, losses, start


def run(p: PerceptronParams, run: Run) -> None:
    # --- data
    x, y = dataset_generation(p.n_points, p.use_pi)
    w_opt, b_opt, mse_opt = least_squares(x, y)
    dev = run.device or torch.device("cpu")
    if dev.type == "mps":  # no float64 there; 50 points are no work for the CPU anyway
        dev = torch.device("cpu")
    x, y = x.to(dev), y.to(dev)
    run.text(f"least-squares optimum: w = {w_opt:.4f}, b = {b_opt:.4f}, MSE = {mse_opt:.4f}")
    run.summary(optimum_mse=mse_opt, optimum_w=w_opt, optimum_b=b_opt)
    kinds = ["perceptron", "two-layer"] if p.model == "both" else [p.model]
    gen = make_generator(run.seed)

    # --- models and training
    fits = {"data": y[:, 0]}
    metrics: dict[str, float] = {}
    for kind in kinds:
        model, losses, start = train(kind, p, x, y, run, gen)
        if not losses:  # stopped before the first epoch
            break
        with torch.no_grad():
            pred = model(x)
            final = torch.mean((pred - y) ** 2).item()
        fits[kind] = pred[:, 0]
        prefix = "" if len(kinds) == 1 else f"{kind}_"
        metrics[f"{prefix}final_mse"] = final
        metrics[f"{prefix}final_loss"] = losses[-1]
        if kind == "perceptron":
            metrics.update(perceptron_metrics(p, model, losses, start, x, mse_opt, (w_opt, b_opt), run))
        else:
            run.figure("loss-two-layer", "line", title="two-layer net: training loss (log scale, as the course plots "
                       "log(loss))", x=list(range(1, len(losses) + 1)), series={"two-layer": losses},
                       xlabel="epoch", ylabel="MSE (log scale)", logy=True)
        run.summary(**metrics)
        if run.stopped_early:  # Stop: evaluate what was trained, start nothing new
            break

    # --- pictures
    run.figure("fit", "line", title="data and fitted curves", x=x[:, 0], series=fits, xlabel="x", ylabel="y")
    gap = {k: v for k, v in metrics.items() if k.endswith("final_mse")}
    run.table("result", ["quantity", "value"],
              [["least-squares MSE", mse_opt], ["least-squares w", w_opt], ["least-squares b", b_opt]]
              + [[k, v] for k, v in gap.items()], title="Perceptron vs least squares")
    if not np.isfinite(list(gap.values())).all():  # pragma: no cover - the divergence check stops this earlier
        run.text("the fit is not finite", level="warning")


def perceptron_metrics(p: PerceptronParams, model, losses: list, start: tuple, x, mse_opt: float, opt: tuple,
                       run: Run) -> dict:
    """Where the perceptron started, how far it got, and the two rates of
    full-batch gradient descent (flat and steep direction of the loss)."""
    s = settings(p, "perceptron")
    eigval, eigvec = loss_curvature(x)
    offset = eigvec.T @ torch.tensor([start[0] - opt[0], start[1] - opt[1]], dtype=eigvec.dtype, device=eigvec.device)
    out = {"w": model.weight.item(), "b": model.bias.item(), "start_w": start[0], "start_b": start[1],
           "hessian_eig_min": eigval[0].item(), "hessian_eig_max": eigval[1].item(),
           "flat_factor_per_epoch": abs(1 - s["lr"] * eigval[0].item()),
           "steep_factor_per_epoch": abs(1 - s["lr"] * eigval[1].item()),
           "start_offset_flat": offset[0].item(), "start_offset_steep": offset[1].item()}
    hit = next((i + 1 for i, v in enumerate(losses) if v <= mse_opt + 1e-3), None)
    if hit is not None:
        out["epoch_at_optimum"] = hit
    if s["batch_size"] >= len(x):
        run.text(f"start w {start[0]:.3f}, b {start[1]:.3f}: offset from the optimum "
                 f"{out['start_offset_flat']:+.3f} along the flat direction (eigenvalue {out['hessian_eig_min']:.3f}, "
                 f"shrinks x{out['flat_factor_per_epoch']:.4f} per epoch at lr {s['lr']:g}), "
                 f"{out['start_offset_steep']:+.3f} along the steep one (eigenvalue {out['hessian_eig_max']:.3f}, "
                 f"x{out['steep_factor_per_epoch']:.4f})")
    return out


EXERCISE = Exercise(
    id="1.1-perceptron",
    title="Perceptron vs linear regression, and a two-layer net",
    session=1,
    description=DESCRIPTION,
    Params=PerceptronParams,
    run=run,
    primary_metric="final_mse",
)
