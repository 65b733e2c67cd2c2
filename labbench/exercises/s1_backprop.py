"""Session 1.2 - one gradient-descent step by hand, checked against autograd.

A 2-2-1 network (two sigmoid hidden units, a linear output), the MSE over a
batch of three points, every gradient by the chain rule, the update, and the
new loss.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, model_validator

from ..engine import Exercise, Params, Run

DESCRIPTION = """
Backpropagation on paper, for one full-batch gradient step:

    h1    = sigmoid(b1 + w11·x1 + w12·x2)
    h2    = sigmoid(b2 + w21·x1 + w22·x2)
    y_hat = c0 + c1·h1 + c2·h2                (linear output)
    L     = mean over the batch of (y_hat - y)²

With the course's weights and data (1, 1, -1), (0, -2, 1), (-1, 1, 1) the
forward pass gives y_hat = 0.9860, 1.9777, 1.8024 and an initial MSE of
**1.8480**. The tables show every chain-rule term, the gradients next to the
ones autograd computes, the updated weights and the new loss.

Note: the output is **linear**, so dL/dy_hat is not multiplied by a sigmoid
derivative (the student report's worked update does that, and is wrong).
The learning rate is 1 in the early course text (used by the report) and 0.2
in the later text.
"""


class BackpropParams(Params):
    x1: list[float] = Field([1.0, 0.0, -1.0], min_length=1, description="First input of each point")
    x2: list[float] = Field([1.0, -2.0, 1.0], min_length=1, description="Second input of each point")
    y: list[float] = Field([-1.0, 1.0, 1.0], min_length=1, description="Target of each point")
    hidden1: list[float] = Field([0.4, 0.2, -1.2], min_length=3, max_length=3,
                                 description="Hidden unit 1: bias, weight of x1, weight of x2")
    hidden2: list[float] = Field([0.7, -0.7, -0.7], min_length=3, max_length=3,
                                 description="Hidden unit 2: bias, weight of x1, weight of x2")
    output: list[float] = Field([0.4, -0.5, 2.3], min_length=3, max_length=3,
                                description="Output: bias, weight of h1, weight of h2")
    lr: float = Field(1.0, gt=0, description="Learning rate (1 early course text, 0.2 later text)")
    steps: int = Field(1, ge=1, le=10_000, description="Gradient steps (tables for the first; loss for all)")

    @model_validator(mode="after")
    def _same_length(self):
        if not (len(self.x1) == len(self.x2) == len(self.y)):
            raise ValueError(f"x1, x2 and y must have the same length (got {len(self.x1)}, {len(self.x2)}, "
                             f"{len(self.y)})")
        return self


PARAM_NAMES = ["b1", "w11", "w12", "b2", "w21", "w22", "c0", "c1", "c2"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def forward(theta: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> dict:
    b1, w11, w12, b2, w21, w22, c0, c1, c2 = theta
    z1 = b1 + w11 * x1 + w12 * x2
    z2 = b2 + w21 * x1 + w22 * x2
    h1, h2 = sigmoid(z1), sigmoid(z2)
    y_hat = c0 + c1 * h1 + c2 * h2
    return {"z1": z1, "z2": z2, "h1": h1, "h2": h2, "y_hat": y_hat}


def mse(y_hat: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((y_hat - y) ** 2))


def chain_rule(theta: np.ndarray, x1, x2, y) -> tuple[np.ndarray, dict]:
    """Gradient of the batch MSE by hand; also the intermediate terms."""
    f = forward(theta, x1, x2)
    n = len(y)
    c1, c2 = theta[7], theta[8]
    d_yhat = 2.0 / n * (f["y_hat"] - y)          # dL/dy_hat (linear output: no sigmoid')
    d_z1 = d_yhat * c1 * f["h1"] * (1 - f["h1"])  # dL/dz1 = dL/dy_hat * c1 * sigmoid'(z1)
    d_z2 = d_yhat * c2 * f["h2"] * (1 - f["h2"])
    grad = np.array([
        d_z1.sum(), (d_z1 * x1).sum(), (d_z1 * x2).sum(),
        d_z2.sum(), (d_z2 * x1).sum(), (d_z2 * x2).sum(),
        d_yhat.sum(), (d_yhat * f["h1"]).sum(), (d_yhat * f["h2"]).sum(),
    ])
    return grad, {**f, "d_yhat": d_yhat, "d_z1": d_z1, "d_z2": d_z2}


def autograd(theta: np.ndarray, x1, x2, y) -> np.ndarray:
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    X1, X2, Y = (torch.tensor(a, dtype=torch.float64) for a in (x1, x2, y))
    h1 = torch.sigmoid(t[0] + t[1] * X1 + t[2] * X2)
    h2 = torch.sigmoid(t[3] + t[4] * X1 + t[5] * X2)
    y_hat = t[6] + t[7] * h1 + t[8] * h2
    loss = torch.mean((y_hat - Y) ** 2)
    loss.backward()
    return t.grad.numpy().copy()


FORMULAS = {
    "b1": "Σ dL/dz1", "w11": "Σ dL/dz1·x1", "w12": "Σ dL/dz1·x2",
    "b2": "Σ dL/dz2", "w21": "Σ dL/dz2·x1", "w22": "Σ dL/dz2·x2",
    "c0": "Σ dL/dŷ", "c1": "Σ dL/dŷ·h1", "c2": "Σ dL/dŷ·h2",
}


def run(p: BackpropParams, run: Run) -> None:
    x1, x2, y = (np.asarray(v, dtype=np.float64) for v in (p.x1, p.x2, p.y))
    theta = np.array(p.hidden1 + p.hidden2 + p.output, dtype=np.float64)
    run.progress(0, p.steps, phase="step")

    # --- forward pass
    grad, terms = chain_rule(theta, x1, x2, y)
    loss0 = mse(terms["y_hat"], y)
    run.table("forward", ["point", "x1", "x2", "y", "z1", "h1", "z2", "h2", "ŷ", "ŷ - y"],
              [[i + 1, x1[i], x2[i], y[i], terms["z1"][i], terms["h1"][i], terms["z2"][i], terms["h2"][i],
                terms["y_hat"][i], terms["y_hat"][i] - y[i]] for i in range(len(y))],
              title="Forward pass")
    run.text(f"initial MSE = {loss0:.4f}")

    # --- chain rule, per point
    run.table("chain", ["point", "dL/dŷ = 2(ŷ-y)/N", "dL/dz1 = dL/dŷ·c1·h1(1-h1)", "dL/dz2 = dL/dŷ·c2·h2(1-h2)"],
              [[i + 1, terms["d_yhat"][i], terms["d_z1"][i], terms["d_z2"][i]] for i in range(len(y))],
              title="Chain rule, per point")

    # --- gradients by hand and by autograd
    auto = autograd(theta, x1, x2, y)
    diff = float(np.max(np.abs(grad - auto)))
    run.table("gradients", ["parameter", "formula", "by hand", "autograd", "|difference|"],
              [[n, FORMULAS[n], g, a, abs(g - a)] for n, g, a in zip(PARAM_NAMES, grad, auto)],
              title="Gradients of the batch MSE")

    # --- the update
    new = theta - p.lr * grad
    run.table("update", ["parameter", "old", "gradient", f"new = old - {p.lr:g}·gradient"],
              [[n, o, g, w] for n, o, g, w in zip(PARAM_NAMES, theta, grad, new)], title="Updated weights")
    f_new = forward(new, x1, x2)
    loss1 = mse(f_new["y_hat"], y)
    run.table("after", ["point", "y", "y_hat before", "y_hat after"],
              [[i + 1, y[i], terms["y_hat"][i], f_new["y_hat"][i]] for i in range(len(y))],
              title=f"After one step: MSE {loss0:.4f} -> {loss1:.4f}")
    run.scalars(0, {"mse": loss0}, check=False)
    run.scalars(1, {"mse": loss1})

    # --- further steps (optional): the loss curve of plain gradient descent (Stop ends it, the summary stays)
    theta_k, loss_k = new, loss1
    for step in run.epochs(p.steps, start=2, phase="step"):
        g, _ = chain_rule(theta_k, x1, x2, y)
        theta_k = theta_k - p.lr * g
        loss_k = mse(forward(theta_k, x1, x2)["y_hat"], y)
        run.scalars(step, {"mse": loss_k})

    run.summary(initial_mse=loss0, new_mse=loss1, final_mse=loss_k,
                max_grad_difference=diff, y_hat=terms["y_hat"].tolist())


EXERCISE = Exercise(
    id="1.2-backprop",
    title="Backpropagation: one gradient step by hand",
    session=1,
    description=DESCRIPTION,
    Params=BackpropParams,
    run=run,
    primary_metric="new_mse",
)
