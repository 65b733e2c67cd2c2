"""Session 3.3 - convolution as a matrix product (the course text before the CNN notebook ``cnn.ipynb``).

The course asks for the matrix of a 1-D convolution: x = [2, 5, 4, 1, 3, 7],
k = [1, 0, 1], no padding, stride 1, so y = A x with the 4 x 6 Toeplitz matrix
A, y = [6, 6, 7, 8]; then whether A^T y gives x back. The later text does the
same in 2-D: X 4 x 4, K = [[1, 0], [0, 1]], stride 2, y = [[3, 4], [6, 11]],
with the doubly blocked Toeplitz matrix.

Deep-learning libraries compute cross-correlation (the kernel is not
flipped), and so does this exercise: y[i] = sum_j k[j] x[i*stride + j - padding].
Every number is exact (float64 on small integers) and checked against
``torch.nn.functional.conv1d`` / ``conv2d``; A^T y is checked against
``conv_transpose1d`` / ``conv_transpose2d``, which is what it is.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator

from ..engine import Exercise, Params, Run

DESCRIPTION = """
A convolution is linear, so it is a **matrix product**: y = A x. For the 1-D
example of the course, x = [2, 5, 4, 1, 3, 7] and k = [1, 0, 1] (no padding,
stride 1), A is the 4 x 6 **Toeplitz** matrix whose rows are k shifted one
place at a time, and

    y = A x = [6, 6, 7, 8]

(2 + 4, 5 + 1, 4 + 3, 1 + 7). A stride s keeps every s-th row; zero padding p
adds p zeros on each side (their columns drop out, as they multiply zeros).

In 2-D the image is read row by row into a vector and the matrix is **doubly
blocked**: a grid of blocks, each block the 1-D Toeplitz matrix of one kernel
row, placed where that kernel row meets that image row. For X =
[[2,5,4,1],[3,1,2,0],[4,5,7,1],[1,2,3,4]], K = [[1,0],[0,1]] and stride 2
the output is [[3, 4], [6, 11]] (course) and the matrix is 4 x 16.

Is A^T y the input again? For the 1-D example A^T y = [6, 6, 13, 14, 7, 8],
not x: A^T is the transpose, not an inverse (it is the *transposed
convolution*, the operation behind backpropagation through a convolution and
learned upsampling).

Everything is editable: x, k, stride and padding (1-D), X, K, stride and
padding (2-D). Each result is checked against torch's `conv1d` / `conv2d`
(which compute cross-correlation: the kernel is not flipped) and A^T y
against `conv_transpose1d` / `conv_transpose2d`.

Questions: why is A mostly zeros, and why is that the reason convolutions are
cheap? What does a stride do to the matrix? Why can A^T y not recover x, and
what does the pseudo-inverse give instead?
"""


class ToeplitzParams(Params):
    x: list[float] = Field([2, 5, 4, 1, 3, 7], min_length=1, max_length=64, description="1-D input x (course)")
    k: list[float] = Field([1, 0, 1], min_length=1, max_length=64, description="1-D kernel k (course)")
    stride: int = Field(1, ge=1, le=64, description="1-D stride (course: 1)")
    padding: int = Field(0, ge=0, le=64, description="1-D zero padding on each side (course: 0)")
    X: list[list[float]] = Field([[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4]], min_length=1,
                                 max_length=16, description="2-D input X, rows of equal length (course)")
    K: list[list[float]] = Field([[1, 0], [0, 1]], min_length=1, max_length=16,
                                 description="2-D kernel K, rows of equal length (course)")
    stride_2d: int = Field(2, ge=1, le=16, description="2-D stride (course: 2)")
    padding_2d: int = Field(0, ge=0, le=16, description="2-D zero padding on each side (course: 0)")

    @field_validator("X", "K")
    @classmethod
    def _rectangular(cls, v, info: ValidationInfo):
        for i, row in enumerate(v):
            if not row:
                raise ValueError(f"row {i + 1} is empty")
            if len(row) != len(v[0]):
                raise ValueError(f"row {i + 1} has {len(row)} entr{'y' if len(row) == 1 else 'ies'} and row 1 has "
                                 f"{len(v[0])}: every row needs "
                                 "the same length")
            if len(row) > 16:
                raise ValueError(f"rows of at most 16 entries, row {i + 1} has {len(row)}")
        return v

    @field_validator("padding")
    @classmethod
    def _kernel_fits(cls, v, info: ValidationInfo):
        x, k = (info.data or {}).get("x"), (info.data or {}).get("k")
        if x is not None and k is not None and len(k) > len(x) + 2 * v:
            raise ValueError(f"the kernel k has {len(k)} entries but x with padding {v} has only {len(x) + 2 * v}: "
                             "no output "
                             f"(pad by at least {(len(k) - len(x) + 1) // 2} or shorten k)")
        return v

    @field_validator("padding_2d")
    @classmethod
    def _kernel_fits_2d(cls, v, info: ValidationInfo):
        X, K = (info.data or {}).get("X"), (info.data or {}).get("K")
        if X is not None and K is not None:
            for axis, nx, nk in (("rows", len(X), len(K)), ("columns", len(X[0]), len(K[0]))):
                if nk > nx + 2 * v:
                    raise ValueError(f"the kernel K has {nk} {axis} but X with padding {v} has only {nx + 2 * v}: "
                                     "no output")
        return v


# ----------------------------------------------------------------- the matrices
def out_size(n: int, m: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - m) // stride + 1


def toeplitz_1d(k, n: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The (L x n) matrix A with A @ x = the cross-correlation of x with k:
    row i holds k at columns i*stride - padding ... (columns that fall in the
    padding are dropped, they multiply zeros)."""
    k = np.asarray(k, dtype=np.float64)
    m = len(k)
    L = out_size(n, m, stride, padding)
    A = np.zeros((max(L, 0), n))
    for i in range(L):
        for j in range(m):
            col = i * stride + j - padding
            if 0 <= col < n:
                A[i, col] = k[j]
    return A


def doubly_blocked(K, H: int, W: int, stride: int = 1, padding: int = 0) -> tuple[np.ndarray, list[list[int | None]]]:
    """The (Ho*Wo x H*W) doubly blocked Toeplitz matrix of a 2-D
    cross-correlation (images read row by row), built block by block: block
    (i, r) - output row i, input row r - is the 1-D Toeplitz matrix of kernel
    row r - i*stride + padding where that is a row of K, else zero. Returns
    the matrix and the kernel row of each block (None for a zero block)."""
    K = np.asarray(K, dtype=np.float64)
    kh, kw = K.shape
    Ho, Wo = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    A = np.zeros((Ho * Wo, H * W))
    which: list[list[int | None]] = [[None] * H for _ in range(Ho)]
    for i in range(Ho):
        for r in range(H):
            j = r - i * stride + padding
            if 0 <= j < kh:
                A[i * Wo:(i + 1) * Wo, r * W:(r + 1) * W] = toeplitz_1d(K[j], W, stride, padding)
                which[i][r] = j
    return A, which


def torch_conv1d(x, k, stride: int, padding: int) -> np.ndarray:
    t = torch.tensor(x, dtype=torch.float64)[None, None]
    return F.conv1d(t, torch.tensor(k, dtype=torch.float64)[None, None], stride=stride, padding=padding)[0, 0].numpy()


def torch_conv2d(X, K, stride: int, padding: int) -> np.ndarray:
    t = torch.tensor(X, dtype=torch.float64)[None, None]
    return F.conv2d(t, torch.tensor(K, dtype=torch.float64)[None, None], stride=stride, padding=padding)[0, 0].numpy()


def torch_transpose1d(y, k, n: int, stride: int, padding: int) -> np.ndarray:
    """conv_transpose1d of y back to length n (output_padding makes up what the stride dropped)."""
    extra = (n + 2 * padding - len(k)) % stride
    t = torch.tensor(y, dtype=torch.float64)[None, None]
    return F.conv_transpose1d(t, torch.tensor(k, dtype=torch.float64)[None, None], stride=stride, padding=padding,
                              output_padding=extra)[0, 0].numpy()


def torch_transpose2d(Y, K, H: int, W: int, stride: int, padding: int) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    extra = ((H + 2 * padding - K.shape[0]) % stride, (W + 2 * padding - K.shape[1]) % stride)
    t = torch.tensor(np.asarray(Y), dtype=torch.float64)[None, None]
    return F.conv_transpose2d(t, torch.tensor(K)[None, None], stride=stride, padding=padding,
                              output_padding=extra)[0, 0].numpy()


def why_not_x(A: np.ndarray, x: np.ndarray, aty: np.ndarray) -> str:
    """One sentence on why A^T y is (or here happens to be) x."""
    n = A.shape[1]
    rank = int(np.linalg.matrix_rank(A)) if A.size else 0
    if np.allclose(aty, x):
        return ("Here A^T y equals x only because A^T A = I for this kernel (A is orthogonal); in general A^T is the "
                "transpose of A, not its inverse.")
    lost = (f", and no matrix could undo this A anyway: it maps {n} numbers to {A.shape[0]} (rank {rank}), so "
            f"{n - rank} dimension{'s' if n - rank != 1 else ''} of x never reach y") if rank < n else ""
    return ("A^T y is not x because A^T is the transpose of A, not its inverse - it sends each output back to the "
            "inputs that made it, weighted by the kernel, and adds up where windows overlap (a transposed "
            f"convolution){lost}.")


def _num(v: float):
    """An exact value as an int when it is one (for tables)."""
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 1e15 else round(v, 10)


def _nums(a) -> list:
    return [_num(v) for v in np.asarray(a).ravel()]


def _cell(name: str, i: int, j: int, size: int) -> str:
    """x23 for row 2, column 3 (x10,3 once an index has two digits)."""
    return f"{name}{i + 1}{j + 1}" if size <= 9 else f"{name}{i + 1},{j + 1}"


def _row(a) -> str:
    return "  ".join(str(v) for v in _nums(a))


def run(p: ToeplitzParams, run: Run) -> None:
    run.progress(0, 2, phase="part")
    # --- 1-D
    x, k = np.asarray(p.x, dtype=np.float64), np.asarray(p.k, dtype=np.float64)
    n = len(x)
    A = toeplitz_1d(k, n, p.stride, p.padding)
    y = A @ x
    y_torch = torch_conv1d(x, k, p.stride, p.padding)
    aty = A.T @ y
    aty_torch = torch_transpose1d(y, k, n, p.stride, p.padding)
    pinv = np.linalg.pinv(A) @ y
    L = len(y)
    run.text(f"1-D: x has {n} entries, k {len(k)}, stride {p.stride}, padding {p.padding}: "
             f"y has ({n} + 2x{p.padding} - {len(k)}) // {p.stride} + 1 = {L}; A is {L} x {n}")
    xl, yl = [f"x{j + 1}" for j in range(n)], [f"y{i + 1}" for i in range(L)]
    run.figure("A-1d", "heatmap", title=f"1-D Toeplitz matrix A ({L} x {n}): y = A x", z=A.tolist(), xlabels=xl,
               ylabels=yl, annotate=True, zlabel="entry")
    run.table("y-1d", ["", *yl], [["A x", *_nums(y)], ["torch conv1d", *_nums(y_torch)]],
              title="y = A x against torch's conv1d (cross-correlation)")
    run.table("transpose-1d", ["", *xl], [["x", *_nums(x)], ["A^T y", *_nums(aty)],
                                          ["torch", *_nums(aty_torch)],
                                          ["A^+ y", *[v if isinstance(v, int) else f"{v:.3g}" for v in _nums(pinv)]]],
              title="A^T y next to x (torch: conv_transpose1d of y; A^+ y: the pseudo-inverse, the smallest x "
                    "that gives this y)", note=why_not_x(A, x, aty))
    run.progress(1, 2, phase="part", check=False)

    # --- 2-D
    X, K = np.asarray(p.X, dtype=np.float64), np.asarray(p.K, dtype=np.float64)
    H, W = X.shape
    B, which = doubly_blocked(K, H, W, p.stride_2d, p.padding_2d)
    Ho, Wo = out_size(H, K.shape[0], p.stride_2d, p.padding_2d), out_size(W, K.shape[1], p.stride_2d, p.padding_2d)
    Y = (B @ X.ravel()).reshape(Ho, Wo)
    Y_torch = torch_conv2d(X, K, p.stride_2d, p.padding_2d)
    bty = (B.T @ Y.ravel()).reshape(H, W)
    bty_torch = torch_transpose2d(Y, K, H, W, p.stride_2d, p.padding_2d)
    run.text(f"2-D: X is {H} x {W}, K {K.shape[0]} x {K.shape[1]}, stride {p.stride_2d}, padding {p.padding_2d}: "
             f"Y is {Ho} x {Wo}; the doubly blocked matrix is {Ho * Wo} x {H * W} ({Ho} x {H} blocks of "
             f"{Wo} x {W}); X is read row by row")
    run.figure("X", "heatmap", title=f"X ({H} x {W})", z=X.tolist(), annotate=True,
               xlabels=[str(j + 1) for j in range(W)], ylabels=[str(i + 1) for i in range(H)])
    run.figure("K", "heatmap", title=f"K ({K.shape[0]} x {K.shape[1]})", z=K.tolist(), annotate=True,
               xlabels=[str(j + 1) for j in range(K.shape[1])], ylabels=[str(i + 1) for i in range(K.shape[0])])
    cols = [_cell("x", r, c, max(H, W)) for r in range(H) for c in range(W)]
    rows = [_cell("y", i, j, max(Ho, Wo)) for i in range(Ho) for j in range(Wo)]
    run.figure("A-2d", "heatmap", title=f"doubly blocked matrix ({Ho * Wo} x {H * W}): vec(Y) = A vec(X)",
               z=B.tolist(), xlabels=cols, ylabels=rows, annotate=B.shape[1] <= 32, zlabel="entry")
    run.table("blocks-2d", ["output row", *[f"X row {r + 1}" for r in range(H)]],
              [[f"Y row {i + 1}", *[f"T{j + 1}" if j is not None else "0" for j in which[i]]] for i in range(Ho)],
              title="the blocks: which kernel row's 1-D Toeplitz matrix sits where",
              note=f"Tj is the {Wo} x {W} Toeplitz matrix of row j of K (stride {p.stride_2d}, padding "
                   f"{p.padding_2d}); 0 a block of zeros")
    run.figure("Y", "heatmap", title=f"Y = A vec(X), as {Ho} x {Wo} (torch conv2d: the same)", z=Y.tolist(),
               annotate=True, xlabels=[str(j + 1) for j in range(Wo)], ylabels=[str(i + 1) for i in range(Ho)])
    run.table("y-2d", ["row", "A vec(X)", "torch conv2d"],
              [[i + 1, _row(Y[i]), _row(Y_torch[i])] for i in range(Ho)], title="Y against torch's conv2d, row by row")
    run.figure("AtY", "heatmap", title=f"A^T vec(Y) as {H} x {W}, next to X", z=bty.tolist(), annotate=True,
               xlabels=[str(j + 1) for j in range(W)], ylabels=[str(i + 1) for i in range(H)])
    run.table("transpose-2d", ["row", "X", "A^T vec(Y)", "conv_transpose2d(Y)"],
              [[r + 1, _row(X[r]), _row(bty[r]), _row(bty_torch[r])] for r in range(H)],
              title="A^T vec(Y) next to X, row by row", note=why_not_x(B, X.ravel(), bty.ravel()))
    run.progress(2, 2, phase="part", check=False)

    diff_1d = float(np.max(np.abs(y - y_torch))) if L else 0.0
    diff_2d = float(np.max(np.abs(Y - Y_torch))) if Y.size else 0.0
    diff_t = max(float(np.max(np.abs(aty - aty_torch), initial=0.0)), float(np.max(np.abs(bty - bty_torch),
                                                                                    initial=0.0)))
    run.summary(max_diff_torch=max(diff_1d, diff_2d), y=_nums(y), Y=[_nums(r) for r in Y], AtY=_nums(aty),
                A_shape=[L, n], A2_shape=[Ho * Wo, H * W], transpose_diff=diff_t,
                recovers_x=bool(np.allclose(aty, x)))


EXERCISE = Exercise(
    id="3.3-toeplitz",
    title="Convolution as a matrix product (Toeplitz, doubly blocked)",
    session=3,
    description=DESCRIPTION,
    Params=ToeplitzParams,
    run=run,
    primary_metric="max_diff_torch",
)
