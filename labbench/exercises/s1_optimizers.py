"""Session 1.3 - Net3L on a 2-D surface: comparing optimisers.

Course notebook: fit f(x, y) = sin(0.8 r²) / r^1.8 (r² = x² + y²) on a 40x40
grid over [-3, 3]² with a 3-layer ReLU net, and train copies of one
initialisation with SGD (three settings), Adam and LBFGS for 2500 epochs.

How it is made fast (same algorithm, same numbers up to batch order):

* the 1600 points are one tensor; a mini-batch is an index slice of one
  permutation per epoch (the notebook's DataLoader collates 40..1600 single
  rows per batch, which is most of its time);
* Net3L's forward and backward pass are written out by hand (six matrix
  products, two ReLU masks): no autograd graph per step;
* SGD (with momentum/Nesterov) and Adam are a few in-place ``foreach``
  updates per step over all six weight tensors; the other optimisers are
  PyTorch's own, fed the hand-made gradients;
* the whole run uses one CPU thread: for a net this small, waking a second
  thread costs more than it saves (and far more on a busy machine).

``fast = false`` runs the plain autograd + ``torch.optim`` loop instead.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from ..engine import Exercise, Params, Run
from ..nn import batch_indices, cpu_threads, make_generator, make_optimizer

DESCRIPTION = """
**Net3L** (Linear(2, n1) - ReLU - Linear(n1, n2) - ReLU - Linear(n2, 1)) learns the
surface f(x, y) = sin(0.8·(x²+y²)) / (x²+y²)^0.9 from 1600 grid points. Every
optimiser starts from **the same initial weights**, so the curves differ only by
the optimiser and its batch size.

The course comparison (2500 epochs, net 50x50): SGD lr 0.05 full batch; SGD
lr 0.1 batch 40; SGD lr 0.1 Nesterov momentum 0.9 batch 400; Adam batch 400;
LBFGS (lr 1, one iteration, strong Wolfe line search) full batch. The notebook
says this cell "takes about 5 min" (course); here it takes seconds.

Shown: the loss per epoch of each optimiser (the last mini-batch of the epoch,
as the course records it), wall time per optimiser, final train MSE (on the
noisy targets) and test MSE (the noiseless surface), the fitted surface and
the squared residuals as heat maps.

**LBFGS as the course builds it** (lr 1, one iteration per epoch, strong
Wolfe line search) goes **flat**: once a line search fails (a step of 0), no
new curvature pair is stored, so every later epoch repeats the same failed
step and the loss never changes again. The results table marks that "flat
@N". In the course comparison with seed 0 it is flat from epoch 56 on at a
test MSE of 0.0192, the worst of the five.

With **more iterations per epoch** (`lbfgs max_iter=2`, `lbfgs max_iter=20`;
`history=N` sets its memory, default 100) LBFGS gets much further before that
happens, and with twenty it is the strongest optimiser here: after 100 epochs
(preset `1.3-optimizers-lbfgs`, seed 0) the test MSE is 0.0192 with one
iteration, 0.0085 with two, 0.00023 with twenty, and 0.0058 for Adam. Over
the preset's 2500 epochs twenty iterations end more than ten times below
Adam, at several times its wall time; they go flat too, but only once the
change per step falls below LBFGS's tolerance. Two iterations can still go
flat early on the smaller nets of the Table 1 preset (the README has the
numbers).

Questions: which optimiser reaches the lowest error for the same number of
epochs, and for the same wall time? What do small batches buy? Why is LBFGS
with a few iterations per step so strong here (a tiny smooth problem, full
batch), and why does one iteration per step get stuck? What happens with noise?

Optimisers are written `name key=value ...`, e.g. `sgd lr=0.1 momentum=0.9
nesterov bs=400`, `adam bs=400`, `lbfgs`, `lbfgs max_iter=20 history=10`,
`adadelta lr=1 rho=0.9`, `rmsprop lr=0.001`, `adagrad lr=0.01`. Keys: lr, bs,
momentum, nesterov, rho, eps; max_iter and history for lbfgs.
"""

COURSE_OPTIMIZERS = [
    "sgd lr=0.05 bs=1600",
    "sgd lr=0.1 bs=40",
    "sgd lr=0.1 momentum=0.9 nesterov bs=400",
    "adam bs=400",
    "lbfgs bs=1600",
]
NAMES = ("sgd", "adam", "adamw", "lbfgs", "adagrad", "rmsprop", "adadelta")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "lbfgs": 1.0, "adagrad": 1e-2, "rmsprop": 1e-2,
              "adadelta": 1.0}
KEYS = {"lr": float, "bs": int, "momentum": float, "nesterov": bool, "rho": float, "eps": float,
        "max_iter": int, "history": int}
#: settings that only LBFGS has (the course: max_iter 1; PyTorch's default history is 100)
LBFGS_KEYS = ("max_iter", "history")


@dataclass
class OptSpec:
    name: str
    lr: float
    bs: int | None = None  # None: full batch
    momentum: float = 0.0
    nesterov: bool = False
    extra: dict = field(default_factory=dict)  # rho, eps

    def label(self, n: int) -> str:
        bits = [self.name.upper() if self.name in ("sgd", "lbfgs") else self.name.capitalize(), f"lr {self.lr:g}"]
        if self.momentum:
            bits.append(f"{'nesterov' if self.nesterov else 'momentum'} {self.momentum:g}")
        bits += [f"{k} {v:g}" for k, v in self.extra.items()]
        bits.append(f"bs {min(self.bs or n, n)}")
        return " ".join(bits)

    def key(self, n: int) -> str:
        return re.sub(r"[^a-z0-9.]+", "_", self.label(n).lower()).strip("_")


def parse_optimizer(text: str) -> OptSpec:
    """``"sgd lr=0.1 momentum=0.9 nesterov bs=400"`` -> OptSpec; errors say what is expected."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        raise ValueError("an optimiser entry is empty; expected e.g. \"sgd lr=0.05 bs=1600\"")
    name = tokens[0].lower()
    if name not in NAMES:
        raise ValueError(f'"{text}": unknown optimiser "{tokens[0]}"; expected one of {", ".join(NAMES)}')
    vals: dict = {}
    for tok in tokens[1:]:
        key, eq, value = tok.partition("=")
        key = key.lower()
        if key not in KEYS:
            raise ValueError(f'"{text}": unknown setting "{key}"; expected {", ".join(KEYS)} (as key=value)')
        try:
            if KEYS[key] is bool:
                vals[key] = value.lower() not in ("0", "false", "no") if eq else True
            else:
                vals[key] = KEYS[key](value)
        except ValueError:
            raise ValueError(f'"{text}": {key} must be a number, got "{value}"') from None
    lr = vals.pop("lr", DEFAULT_LR[name])
    bs = vals.pop("bs", None)
    if lr <= 0 or (bs is not None and bs < 1):
        raise ValueError(f'"{text}": lr must be > 0 and bs >= 1')
    momentum = vals.pop("momentum", 0.0)
    if not 0 <= momentum < 1:
        raise ValueError(f'"{text}": momentum must be in [0, 1)')
    nesterov = vals.pop("nesterov", False)
    if nesterov and momentum == 0:
        raise ValueError(f'"{text}": nesterov needs a momentum > 0')
    for key in LBFGS_KEYS:
        if key in vals and name != "lbfgs":
            raise ValueError(f'"{text}": {key} is a setting of lbfgs only')
        if key in vals and vals[key] < 1:
            raise ValueError(f'"{text}": {key} must be a whole number >= 1, got {vals[key]}')
    return OptSpec(name, lr, bs, momentum, nesterov, vals)


class OptimizersParams(Params):
    optimizers: list[str] = Field(list(COURSE_OPTIMIZERS), min_length=1,
                                  description="Optimisers to compare from one initialisation, "
                                              "e.g. 'sgd lr=0.1 momentum=0.9 nesterov bs=400'")
    epochs: int = Field(2500, ge=1, le=1_000_000, description="Epochs per optimiser")
    hidden1: int = Field(50, ge=1, le=4096, description="Units of Net3L's first hidden layer (n1)")
    hidden2: Optional[int] = Field(None, ge=1, le=4096, description="Units of the second hidden layer (unset: = n1)")
    noise_level: float = Field(0.0, ge=0, le=10, description="Std of Gaussian noise on the training targets")
    grid: int = Field(40, ge=4, le=400, description="Grid points per axis on [-3, 3] (40 -> 1600 points)")
    fast: bool = Field(True, description="Hand-written Net3L gradients and fused SGD step (false: autograd loop)")
    dtype: Literal["float32", "float64"] = Field("float32", description="Floating-point precision")

    @field_validator("optimizers")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_optimizer(text)
        return v


# ------------------------------------------------------------------------ data
def dataset_generation(grid: int = 40, noise_level: float = 0.0, dtype=torch.float32):
    """The course surface on a grid x grid ij-meshgrid over [-3, 3]²:
    (inputs (N, 2), noisy targets (N, 1), noiseless targets (N, 1))."""
    xs = torch.linspace(-3, 3, grid, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, xs, indexing="ij")
    r2 = X ** 2 + Y ** 2
    f = torch.sin(0.8 * r2) / r2 ** 0.9
    x = torch.stack([X.flatten(), Y.flatten()], dim=1)
    y_clean = f.flatten().unsqueeze(1)
    y = y_clean + noise_level * torch.randn(y_clean.shape, dtype=torch.float64)
    return x.to(dtype), y.to(dtype), y_clean.to(dtype)


# ----------------------------------------------------------------------- model
class Net3L(torch.nn.Module):
    def __init__(self, n1: int = 50, n2: int = 50):
        super().__init__()
        self.layer1 = torch.nn.Linear(2, n1)
        self.layer2 = torch.nn.Linear(n1, n2)
        self.layer3 = torch.nn.Linear(n2, 1)

    def forward(self, x):
        return self.layer3(torch.relu(self.layer2(torch.relu(self.layer1(x)))))


def net3l_forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    W1, b1, W2, b2, W3, b3 = params
    r1 = F.linear(x, W1, b1).relu_()
    r2 = F.linear(r1, W2, b2).relu_()
    return F.linear(r2, W3, b3)


def net3l_grads(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor):
    """MSE and its gradient w.r.t. (W1, b1, W2, b2, W3, b3), by the chain rule."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = F.linear(x, W1, b1)
    r1 = h1.relu()
    h2 = F.linear(r1, W2, b2)
    r2 = h2.relu()
    err = F.linear(r2, W3, b3).sub_(y)
    d = err * (2.0 / err.numel())                                  # dL/d out
    d2 = torch.ops.aten.threshold_backward(d @ W3, h2, 0)          # dL/d h2 (ReLU mask)
    d1 = torch.ops.aten.threshold_backward(d2 @ W2, h1, 0)         # dL/d h1
    grads = [d1.t() @ x, d1.sum(0), d2.t() @ r1, d2.sum(0), d.t() @ r2, d.sum(0)]
    return err, grads


class FusedSGD:
    """torch.optim.SGD's update (momentum, dampening 0, optional Nesterov) as
    a few in-place foreach operations, without the per-step Python bookkeeping."""

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False):
        self.params, self.lr, self.momentum, self.nesterov = params, lr, momentum, nesterov
        self.bufs: list[torch.Tensor] | None = None

    def step(self, grads):
        if self.momentum:
            if self.bufs is None:
                self.bufs = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.bufs, self.momentum)
                torch._foreach_add_(self.bufs, grads)
            if self.nesterov:
                torch._foreach_add_(grads, self.bufs, alpha=self.momentum)
            else:
                grads = self.bufs
        torch._foreach_add_(self.params, grads, alpha=-self.lr)


class FusedAdam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) as seven foreach
    operations per step over all six tensors."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.beta1, self.beta2 = betas
        self.m = [torch.zeros_like(q) for q in params]
        self.v = [torch.zeros_like(q) for q in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        torch._foreach_lerp_(self.m, grads, 1 - self.beta1)
        torch._foreach_mul_(self.v, self.beta2)
        torch._foreach_addcmul_(self.v, grads, grads, 1 - self.beta2)
        step_size = self.lr / (1 - self.beta1 ** self.t)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, math.sqrt(1 - self.beta2 ** self.t))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, -step_size)


# ------------------------------------------------------------------------ loop
def stalled_since(losses: torch.Tensor, rel: float = 1e-6, min_epochs: int = 25) -> int | None:
    """The epoch (1-based) from which the recorded loss stayed within ``rel``
    of its last value for at least ``min_epochs`` epochs, else None. An
    optimiser that no longer moves shows exactly this: LBFGS after a failed
    line search, or once its progress per step is below its tolerance; SGD and
    Adam on mini-batches never do."""
    values = losses.tolist()
    if len(values) < min_epochs or not math.isfinite(values[-1]):
        return None
    last, k = values[-1], len(values) - 1
    while k > 0 and abs(values[k - 1] - last) <= rel * abs(last):
        k -= 1
    return k + 1 if len(values) - k >= min_epochs else None


def make_opt(spec: OptSpec, params: list, settings: dict) -> torch.optim.Optimizer:
    """The optimiser of one comparison entry. LBFGS as the course builds it (lr 1,
    strong Wolfe line search, max_iter 1 unless given) with its own settings."""
    if spec.name == "lbfgs":
        return torch.optim.LBFGS(params, lr=spec.lr, max_iter=int(spec.extra.get("max_iter", 1)),
                                 history_size=int(spec.extra.get("history", 100)), line_search_fn="strong_wolfe")
    return make_optimizer(spec.name, params, **settings)


def train_one(spec: OptSpec, init_state: dict, x, y, epochs: int, *, seed: int, fast: bool, run: Run | None,
              label: str, n1: int = 50, n2: int = 50):
    """Train one copy of the shared initialisation; returns (params, losses, wall_s, diverged_at)."""
    n = len(x)
    bs = min(spec.bs or n, n)
    gen = make_generator(seed)
    model = Net3L(n1, n2).to(device=x.device, dtype=x.dtype)
    model.load_state_dict(init_state)
    losses = torch.empty(epochs, dtype=torch.float64)
    diverged_at = None
    first = None
    settings = dict(lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov, **spec.extra)

    if fast:
        params = [p.detach().clone() for p in model.parameters()]
        fused = None
        if spec.name == "sgd":
            fused = FusedSGD(params, spec.lr, spec.momentum, spec.nesterov)
        elif spec.name == "adam":
            fused = FusedAdam(params, spec.lr, eps=spec.extra.get("eps", 1e-8))
        opt = None if fused else make_opt(spec, params, settings)
        box = {}

        def closure():  # used by LBFGS; the others call it once per batch
            err, grads = net3l_grads(params, box["x"], box["y"])
            for p, g in zip(params, grads):
                p.grad = g
            return err.square().mean()
    else:
        params = list(model.parameters())
        opt = make_opt(spec, params, settings)
        box = {}

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(box["x"]), box["y"])
            loss.backward()
            return loss

    t0 = time.perf_counter()
    # on Stop, run.epochs() ends the loop and this optimiser is evaluated as it is
    numbers = run.epochs(epochs, phase=f"{label}: epoch") if run is not None else range(1, epochs + 1)
    done = 0
    for epoch in (k - 1 for k in numbers):
        done = epoch + 1
        # one gather per epoch; the mini-batches are then views (slices). The full
        # batch is shuffled too, as the notebook's DataLoader does: the row order
        # changes float32 rounding, and LBFGS can stall for good on a fixed order.
        order = torch.cat(batch_indices(n, bs, generator=gen, device=x.device))
        batches = zip(x[order].split(bs), y[order].split(bs))
        for box["x"], box["y"] in batches:
            if fast and fused is not None:
                err, grads = net3l_grads(params, box["x"], box["y"])
                fused.step(grads)
                loss = err
            elif spec.name == "lbfgs":
                loss = opt.step(closure)
            else:
                loss = closure()
                opt.step()
        # the course records the last mini-batch loss of each epoch
        value = float(loss.detach().square().mean() if loss.dim() else loss.detach())
        losses[epoch] = value
        if first is None:
            first = value
        if not math.isfinite(value) or (first > 0 and value > 1e4 * first and value > 1.0):
            diverged_at = epoch + 1
            losses = losses[: epoch + 1]
            if run is not None:
                run.text(f"{label}: diverged at epoch {epoch + 1} (loss {value:.3g})", level="warning")
            break
        if run is not None:
            run.scalars(epoch + 1, {f"loss/{label}": value}, check=False)
    wall = time.perf_counter() - t0
    if diverged_at is None:
        losses = losses[:done]  # shorter when stopped
    final = [p.detach() for p in params]
    return final, losses, wall, diverged_at


def run(p: OptimizersParams, run: Run) -> None:
    dev = run.device or torch.device("cpu")
    # a net of a few thousand weights: one CPU thread is fastest (see nn.cpu_threads)
    with cpu_threads(1, dev):
        _run(p, run, dev)


def _run(p: OptimizersParams, run: Run, dev: torch.device) -> None:
    dtype = torch.float64 if p.dtype == "float64" else torch.float32
    n1, n2 = p.hidden1, p.hidden2 or p.hidden1

    # --- data
    x, y, y_clean = dataset_generation(p.grid, p.noise_level, dtype)
    x, y, y_clean = x.to(dev), y.to(dev), y_clean.to(dev)
    n = len(x)
    run.text(f"{n} points on a {p.grid}x{p.grid} grid, noise level {p.noise_level:g}; Net3L({n1}, {n2})")

    # --- model: one initialisation, copied to every optimiser
    init_state = {k: v.clone() for k, v in Net3L(n1, n2).to(device=dev, dtype=dtype).state_dict().items()}

    # --- the loop, once per optimiser
    specs = [parse_optimizer(t) for t in p.optimizers]
    rows, walls, fits, metrics = [], {}, {}, {}
    labels = []
    for i, spec in enumerate(specs):
        label = spec.label(n)
        if label in labels:
            label = f"{label} #{i + 1}"
        labels.append(label)
        params, losses, wall, div = train_one(spec, init_state, x, y, p.epochs, seed=run.seed, fast=p.fast,
                                              run=run, label=label, n1=n1, n2=n2)
        if len(losses) == 0:  # stopped before its first epoch
            break
        with torch.no_grad():
            pred = net3l_forward(params, x)
            train_mse = float(torch.mean((pred - y) ** 2))
            test_mse = float(torch.mean((pred - y_clean) ** 2))
        key = spec.key(n)
        walls[label] = wall
        fits[label] = pred
        flat = None if div else stalled_since(losses)
        rows.append([label, len(losses), wall, float(losses[-1]), train_mse, test_mse,
                     "diverged @%d" % div if div else (f"flat @{flat}" if flat else "ok")])
        metrics.update({f"{key}_train_mse": train_mse, f"{key}_test_mse": test_mse, f"{key}_wall_s": wall})
        if flat:
            metrics[f"{key}_flat_from"] = flat
            run.text(f"{label}: the loss has not changed since epoch {flat} (the optimiser no longer moves)",
                     level="warning")
        run.summary(**metrics)
        if run.stopped_early:
            if i + 1 < len(specs):
                run.text(f"stopped: {', '.join(t for t in p.optimizers[i + 1:])} not run")
            break

    # --- results
    run.table("results", ["optimiser", "epochs", "wall s", "last batch loss", "train MSE", "test MSE", "status"],
              rows, title=f"Net3L({n1}, {n2}), {p.epochs} epochs, one shared initialisation",
              note="train MSE: on the (noisy) training targets; test MSE: on the noiseless surface")
    run.figure("wall-time", "bar", title="wall time per optimiser (s)", labels=list(walls),
               values=list(walls.values()))
    finite = [r for r in rows if math.isfinite(r[5])]
    best = min(finite, key=lambda r: r[5]) if finite else rows[0]
    grid = p.grid
    axis = torch.linspace(-3, 3, grid).tolist()
    run.figure("surface", "heatmap", title="target surface f(x, y)", z=y_clean.view(grid, grid).cpu(),
               x=axis, y=axis, zlabel="f")
    for label, pred in fits.items():
        run.figure(f"fit/{label}", "heatmap", title=f"fitted surface - {label}", z=pred.view(grid, grid).cpu(),
                   x=axis, y=axis, zlabel="prediction")
        run.figure(f"residual/{label}", "heatmap", title=f"squared residuals - {label}",
                   z=((pred - y_clean) ** 2).view(grid, grid).cpu(), x=axis, y=axis, zlabel="(pred - f)^2")
    run.summary(best_optimizer=best[0], test_mse=best[5], train_mse=best[4],
                total_wall_s=sum(walls.values()))


EXERCISE = Exercise(
    id="1.3-optimizers",
    title="Net3L on a 2-D surface: comparing optimisers",
    session=1,
    description=DESCRIPTION,
    Params=OptimizersParams,
    run=run,
    primary_metric="test_mse",
)
