"""Session 3.4 - self-attention by hand, NumPy and PyTorch side by side.

Course notebook: session3/attention.ipynb, "Self-attention Mechanism":
"Self-attention with NumPy" (X 32 x 256, random Wq, Wk, Wv, a hand-written
softmax) and "Self-attention with PyTorch" (a ``SelfAttention`` module with
bias-free linear maps, x of shape 32 x 20 x 128, dim_q 64, dim_v 32).

Here both run on the same input and the same weights, every intermediate is
compared, and the course's NumPy softmax is available as an option to show
why it gives a uniform attention matrix.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator

from ..engine import Exercise, Params, Run

DESCRIPTION = """
**Self-attention** written twice on the **same input and weights**: with
NumPy matrix products, and as the course's PyTorch `SelfAttention` module
(three bias-free `nn.Linear` maps, `torch.bmm`, `torch.softmax`):

    Q = X Wq    K = X Wk    V = X Wv
    A = softmax(Q K^T / sqrt(d_k))      softmax over the keys: each row sums to 1
    output = A V

With the course's PyTorch sizes (a batch of 32 sequences of 20 tokens of
width 128, d_q = d_k = 64, d_v = 32) X is 32 x 20 x 128, Q and K are
32 x 20 x 64, V is 32 x 20 x 32, the scores and the attention 32 x 20 x 20 and
the output 32 x 20 x 32. A table lists every step with its NumPy and PyTorch
shape and the largest difference between the two; a heat map shows the
attention of one sequence (rows: queries, columns: keys).

**The course's NumPy softmax** is

    z = np.clip(z, 100, -100)
    res = np.exp(z) / np.sum(np.exp(z), axis=1)

The clip bounds are reversed (lower bound 100, upper bound -100). NumPy then
returns the upper bound everywhere: every score becomes -100, every
exponential is the same, and every attention weight is 1/n - the matrix is
uniform whatever X and the weights are, so the output is the mean of the
value vectors. (A second slip hides behind the first: the sum over `axis=1`
without `keepdims` divides entry (i, j) by the sum of row j, not row i; with
equal rows it makes no difference.) Here the softmax subtracts each row's
maximum before `exp`, which is exact and cannot overflow; set
`course_clipping = true` to run the course's version and see the uniform
matrix (the NumPy/PyTorch check then fails, as it should). The shipped
preset `3.4-attention-course-numpy` uses the notebook's NumPy sizes (one
sequence of 32 tokens of width 256, normal random weights).

**Why scale by 1/sqrt(d_k)**: when the entries of q and k have unit variance,
q . k is a sum of d_k terms with variance d_k. Without the scaling, longer
keys give larger scores, the softmax saturates towards one key per query
(row entropy towards 0) and its gradients vanish; with it, the spread of the
scores does not depend on d_k. The figure shows the mean entropy of the
attention rows against d_k, scaled and unscaled, below the ceiling ln n of a
uniform row. With the notebook's normal random weights the scores are large
either way, so even scaled attention is nearly one-hot.

Questions: which shapes must agree for Q K^T and for A V, and which may
differ (d_v against d_k)? Why does the course's NumPy output look like the
same row repeated? What happens to the attention entropy when you set
`scaling = "none"` and raise `dim_q`?
"""


class AttentionParams(Params):
    batch_size: int = Field(32, ge=1, le=1024, description="Sequences in the batch (course PyTorch part: 32)")
    seq_len: int = Field(20, ge=1, le=512, description="Tokens per sequence n (course: 20; NumPy part: 32)")
    dim_input: int = Field(128, ge=1, le=4096, description="Width of each token (course: 128; NumPy part: 256)")
    dim_q: int = Field(64, ge=1, le=4096, description="Width of the queries and keys d_q = d_k (course: 64)")
    dim_v: int = Field(32, ge=1, le=4096, description="Width of the values and of the output d_v (course: 32)")
    weights: Literal["linear", "randn"] = Field(
        "linear", description="Weight init: linear = nn.Linear's uniform(+-1/sqrt(dim_input)) (the PyTorch part); "
                              "randn = standard normal (the NumPy part)")
    scaling: Literal["sqrt_dk", "none"] = Field("sqrt_dk", description="Scores divided by sqrt(d_k), or not scaled")
    course_clipping: bool = Field(False, description="NumPy softmax as the course wrote it (reversed clip bounds: "
                                                     "every weight 1/n)")
    torch_dtype: Literal["float32", "float64"] = Field(
        "float32", description="Precision of the PyTorch module (NumPy computes in float64)")
    show_sample: int = Field(0, ge=0, description="Which sequence of the batch the heat map shows")
    max_dk: int = Field(1024, ge=2, le=8192, description="Largest d_k of the entropy figure (powers of two)")

    @field_validator("show_sample")
    @classmethod
    def _sample_in_batch(cls, v, info: ValidationInfo):
        b = (info.data or {}).get("batch_size")
        if isinstance(b, int) and v >= b:
            raise ValueError(f"sequence {v} is not in a batch of {b} (use 0 to {b - 1})")
        return v


# ----------------------------------------------------------------- NumPy part
def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the keys): subtract each row's maximum,
    exponentiate, divide by the row sum. Exact, and exp never overflows."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def course_softmax(z: np.ndarray) -> np.ndarray:
    """The course notebook's softmax, unchanged, on one (n, n) score matrix."""
    z = np.clip(z, 100, -100)  # clip in case softmax explodes  (bounds reversed: every value becomes -100)
    tmp = np.exp(z)
    res = np.exp(z) / np.sum(tmp, axis=1)  # (n,) broadcast along the rows: column j / sum of row j
    return res


def numpy_attention(X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray, *, scale: float = 1.0,
                    course_clipping: bool = False) -> dict[str, np.ndarray]:
    """Every step of self-attention for X of shape (batch, n, d) with
    weights (d, d_q), (d, d_k), (d, d_v): Q, K, V, scores, attention, output."""
    Q = X @ Wq                                   # (batch, n, d_q)
    K = X @ Wk                                   # (batch, n, d_k)
    V = X @ Wv                                   # (batch, n, d_v)
    scores = Q @ K.transpose(0, 2, 1) * scale    # (batch, n, n)
    if course_clipping:
        A = np.stack([course_softmax(s) for s in scores])  # the course's function takes one matrix
    else:
        A = softmax(scores)                      # (batch, n, n), rows sum to 1
    out = A @ V                                  # (batch, n, d_v)
    return {"X": X, "Q": Q, "K": K, "V": V, "scores": scores, "attention": A, "output": out}


# --------------------------------------------------------------- PyTorch part
class SelfAttention(torch.nn.Module):
    """The course's module: bias-free linear maps to Q, K, V, scores scaled by
    ``1/sqrt(dim_k)`` (or not), softmax over the keys, weighted sum of V."""

    def __init__(self, dim_input: int, dim_q: int, dim_v: int, scaled: bool = True):
        super().__init__()
        self.dim_input, self.dim_q, self.dim_k, self.dim_v = dim_input, dim_q, dim_q, dim_v
        self.linear_q = torch.nn.Linear(dim_input, dim_q, bias=False)
        self.linear_k = torch.nn.Linear(dim_input, dim_q, bias=False)
        self.linear_v = torch.nn.Linear(dim_input, dim_v, bias=False)
        self._norm_fact = 1 / math.sqrt(self.dim_k) if scaled else 1.0

    def steps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        q = self.linear_q(x)                                      # (batch, seq_len, dim_q)
        k = self.linear_k(x)                                      # (batch, seq_len, dim_k)
        v = self.linear_v(x)                                      # (batch, seq_len, dim_v)
        dist = torch.bmm(q, k.transpose(1, 2)) * self._norm_fact  # (batch, seq_len, seq_len)
        attn = torch.softmax(dist, dim=-1)
        out = torch.bmm(attn, v)                                  # (batch, seq_len, dim_v)
        return {"X": x, "Q": q, "K": k, "V": v, "scores": dist, "attention": attn, "output": out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.steps(x)["output"]


def make_module(p: AttentionParams, seed: int) -> SelfAttention:
    torch.manual_seed(seed)
    module = SelfAttention(p.dim_input, p.dim_q, p.dim_v, scaled=p.scaling == "sqrt_dk")
    if p.weights == "randn":
        with torch.no_grad():
            for lin in (module.linear_q, module.linear_k, module.linear_v):
                lin.weight.normal_()
    return module.to(getattr(torch, p.torch_dtype))


def numpy_weights(module: SelfAttention) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The module's weights as NumPy matrices for ``X @ W`` (nn.Linear stores W^T)."""
    return tuple(lin.weight.detach().double().numpy().T.copy()
                 for lin in (module.linear_q, module.linear_k, module.linear_v))


# ------------------------------------------------------------------ entropy
def row_entropy(A: np.ndarray) -> np.ndarray:
    """Entropy (nats) of every attention row; 0 log 0 counts as 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(A > 0, A * np.log(A), 0.0)
    return -terms.sum(axis=-1)


def entropy_by_dk(X: np.ndarray, dims: list[int], weights: str, seed: int) -> dict[str, list[float]]:
    """Mean row entropy of softmax(Q K^T * s) for each d_k, with s = 1/sqrt(d_k)
    and s = 1, on X with fresh random Wq, Wk drawn like the exercise's."""
    rng = np.random.default_rng(seed)
    d = X.shape[-1]
    out = {"scaled": [], "unscaled": []}
    for dk in dims:
        if weights == "randn":
            Wq, Wk = rng.standard_normal((d, dk)), rng.standard_normal((d, dk))
        else:
            bound = 1 / math.sqrt(d)
            Wq, Wk = rng.uniform(-bound, bound, (d, dk)), rng.uniform(-bound, bound, (d, dk))
        S = (X @ Wq) @ (X @ Wk).transpose(0, 2, 1)
        out["scaled"].append(float(row_entropy(softmax(S / math.sqrt(dk))).mean()))
        out["unscaled"].append(float(row_entropy(softmax(S)).mean()))
    return out


def run(p: AttentionParams, run: Run) -> None:
    # --- data: one batch of random token sequences, as in the notebook
    module = make_module(p, run.seed)
    torch.manual_seed(run.seed + 1)
    x = torch.randn(p.batch_size, p.seq_len, p.dim_input, dtype=getattr(torch, p.torch_dtype))
    scale = 1 / math.sqrt(p.dim_q) if p.scaling == "sqrt_dk" else 1.0

    # --- the two implementations on the same X and weights
    with torch.no_grad():
        t = {k: v.double().numpy() for k, v in module.steps(x).items()}
    Wq, Wk, Wv = numpy_weights(module)
    n = numpy_attention(x.double().numpy(), Wq, Wk, Wv, scale=scale, course_clipping=p.course_clipping)

    # --- every shape along the way, and how far NumPy and PyTorch are apart
    formulas = {"X": "input", "Q": "X Wq", "K": "X Wk", "V": "X Wv",
                "scores": "Q K^T / sqrt(d_k)" if p.scaling == "sqrt_dk" else "Q K^T (not scaled)",
                "attention": "softmax(scores) over the keys" + (" (course clipping)" if p.course_clipping else ""),
                "output": "attention V"}
    diffs = {k: float(np.abs(n[k] - t[k]).max()) for k in formulas}
    rows = [[name, f"linear_{name[1]}.weight^T", str(W.shape), str(tuple(lin.weight.shape)), "-"]
            for name, W, lin in (("Wq", Wq, module.linear_q), ("Wk", Wk, module.linear_k), ("Wv", Wv, module.linear_v))]
    rows += [[k, f, str(n[k].shape), str(t[k].shape), f"{diffs[k]:.2e}"] for k, f in formulas.items()]
    run.table("shapes", ["step", "formula", "NumPy", "PyTorch", "max |NumPy - PyTorch|"], rows,
              title="every step: shapes and the largest difference",
              note="nn.Linear stores W transposed (out x in) and computes x W^T; NumPy multiplies X @ W")
    agree = diffs["output"] <= (1e-4 if p.torch_dtype == "float32" else 1e-10) * max(1.0, float(np.abs(t["output"]).max()))
    run.text(f"NumPy and PyTorch outputs: max abs difference {diffs['output']:.3g} "
             + ("(they agree up to rounding)" if agree else
                "(they DIFFER: the course's clipping made NumPy's attention uniform)" if p.course_clipping else
                "(they differ)"), "info" if agree else "warning")

    # --- the attention matrix of one sequence
    i = p.show_sample
    keys = [str(j) for j in range(p.seq_len)]
    run.figure("attention", "heatmap", title=f"attention of sequence {i} (PyTorch): query rows, key columns",
               z=t["attention"][i], xlabel="key j", ylabel="query i", zlabel="weight",
               xlabels=keys if p.seq_len <= 32 else None, ylabels=keys if p.seq_len <= 32 else None)
    if p.course_clipping:
        run.figure("attention-course", "heatmap", title=f"attention of sequence {i} (NumPy, course softmax)",
                   z=n["attention"][i], xlabel="key j", ylabel="query i", zlabel="weight",
                   xlabels=keys if p.seq_len <= 32 else None, ylabels=keys if p.seq_len <= 32 else None)

    # --- what the scaling does to the attention rows
    ent = row_entropy(n["attention"])
    ceiling = math.log(p.seq_len)
    dims = [2 ** e for e in range(0, int(math.log2(p.max_dk)) + 1)]
    curves = entropy_by_dk(n["X"], dims, p.weights, run.seed + 2)
    run.figure("entropy", "line", title=f"mean attention-row entropy against d_k (ln n = {ceiling:.2f} is uniform)",
               x=[math.log2(d) for d in dims], xlabel="log2 d_k", ylabel="entropy (nats)",
               series={"scaled 1/sqrt(d_k)": curves["scaled"], "not scaled": curves["unscaled"],
                       "uniform ln n": [ceiling] * len(dims)})
    A = n["attention"]
    run.table("attention-rows", ["quantity", "value"], [
        ["mean row entropy (nats)", float(ent.mean())],
        ["ln n (a uniform row)", ceiling],
        ["mean largest weight in a row", float(A.max(axis=-1).mean())],
        ["smallest / largest weight", f"{float(A.min()):.4g} / {float(A.max()):.4g}"],
        ["row sums (min / max)", f"{float(A.sum(-1).min()):.6f} / {float(A.sum(-1).max()):.6f}"],
    ], title="the NumPy attention rows")

    run.summary(max_abs_diff=diffs["output"], max_abs_diff_attention=diffs["attention"],
                entropy_mean=float(ent.mean()), entropy_uniform=ceiling,
                attention_min=float(A.min()), attention_max=float(A.max()),
                output_shape=list(t["output"].shape), attention_shape=list(t["attention"].shape))


EXERCISE = Exercise(
    id="3.4-attention",
    title="Self-attention by hand: NumPy and PyTorch",
    session=3,
    description=DESCRIPTION,
    Params=AttentionParams,
    run=run,
    data=[],
    primary_metric="max_abs_diff",
)
