"""3.3-toeplitz: the course's exact values, and the matrices against torch's
convolutions for random shapes, strides and paddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labbench.engine.params import ParamsInvalid
from labbench.engine.presets import preset_for_exercise
from labbench.exercises.s3_toeplitz import doubly_blocked, toeplitz_1d, why_not_x

from .helpers import run_exercise


def test_the_course_1d_example_exactly():
    x = np.array([2, 5, 4, 1, 3, 7.0])
    A = toeplitz_1d([1, 0, 1], 6)
    assert A.tolist() == [[1, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0], [0, 0, 1, 0, 1, 0], [0, 0, 0, 1, 0, 1]]
    assert (A @ x).tolist() == [6, 6, 7, 8]  # 2+4, 5+1, 4+3, 1+7
    assert (A.T @ (A @ x)).tolist() == [6, 6, 13, 14, 7, 8]
    assert "rank 4" in why_not_x(A, x, A.T @ A @ x) and "2 dimensions of x never reach y" in why_not_x(
        A, x, A.T @ A @ x)


def test_the_course_2d_example_exactly():
    X = np.array([[2, 5, 4, 1], [3, 1, 2, 0], [4, 5, 7, 1], [1, 2, 3, 4.0]])
    B, which = doubly_blocked([[1, 0], [0, 1]], 4, 4, stride=2)
    assert B.shape == (4, 16)
    assert (B @ X.ravel()).reshape(2, 2).tolist() == [[3, 4], [6, 11]]  # 2+1, 4+0, 4+2, 7+4
    assert which == [[0, 1, None, None], [None, None, 0, 1]]  # block (i, r) holds K row r - 2i
    # each non-zero block is the 1-D Toeplitz matrix of its kernel row
    assert B[0:2, 0:4].tolist() == toeplitz_1d([1, 0], 4, 2).tolist() == [[1, 0, 0, 0], [0, 0, 1, 0]]
    assert B[0:2, 4:8].tolist() == toeplitz_1d([0, 1], 4, 2).tolist()
    assert not B[0:2, 8:].any() and not B[2:4, :8].any()


def test_random_shapes_strides_and_paddings_equal_torch():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, m = int(rng.integers(1, 13)), int(rng.integers(1, 6))
        s, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        if m > n + 2 * p:
            continue
        x, k = rng.integers(-5, 6, n).astype(float), rng.integers(-3, 4, m).astype(float)
        A = toeplitz_1d(k, n, s, p)
        want = F.conv1d(torch.tensor(x)[None, None], torch.tensor(k)[None, None], stride=s, padding=p)[0, 0]
        assert np.array_equal(A @ x, want.numpy()), (n, m, s, p)  # exact: small integers in float64
        y = A @ x
        back = F.conv_transpose1d(torch.tensor(y)[None, None], torch.tensor(k)[None, None], stride=s, padding=p,
                                  output_padding=(n + 2 * p - m) % s)[0, 0]
        assert np.array_equal(A.T @ y, back.numpy()), (n, m, s, p)
    for _ in range(60):
        H, W, kh, kw = (int(v) for v in rng.integers(1, 8, 4))
        s, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        if kh > H + 2 * p or kw > W + 2 * p:
            continue
        X, K = rng.integers(-5, 6, (H, W)).astype(float), rng.integers(-3, 4, (kh, kw)).astype(float)
        B, _ = doubly_blocked(K, H, W, s, p)
        want = F.conv2d(torch.tensor(X)[None, None], torch.tensor(K)[None, None], stride=s, padding=p)[0, 0]
        assert B.shape == (want.numel(), H * W)
        assert np.array_equal((B @ X.ravel()).reshape(want.shape), want.numpy()), (H, W, kh, kw, s, p)


def test_the_exercise_reports_the_exact_values(tmp_path):
    result, events = run_exercise("3.3-toeplitz", tmp_path)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["y"] == [6, 6, 7, 8] and m["Y"] == [[3, 4], [6, 11]] and m["AtY"] == [6, 6, 13, 14, 7, 8]
    assert m["max_diff_torch"] == 0 and m["transpose_diff"] == 0 and m["recovers_x"] is False
    figures = {e["name"]: e for e in events if e["type"] == "figure"}
    assert figures["A-1d"]["data"]["z"][0] == [1, 0, 1, 0, 0, 0] and figures["A-1d"]["data"]["annotate"]
    assert len(figures["A-2d"]["data"]["z"]) == 4 and len(figures["A-2d"]["data"]["z"][0]) == 16
    tables = {e["name"]: e for e in events if e["type"] == "table"}
    rows = {r[0]: r[1:] for r in tables["transpose-1d"]["rows"]}
    assert rows["x"] == [2, 5, 4, 1, 3, 7] and rows["A^T y"] == rows["torch"] == [6, 6, 13, 14, 7, 8]
    # the pseudo-inverse gives the smallest x with this y: A A^+ y = y
    A = np.array(figures["A-1d"]["data"]["z"])
    assert np.allclose(A @ np.array([float(v) for v in rows["A^+ y"]]), [6, 6, 7, 8], atol=5e-3)
    blocks = next(e for e in events if e["type"] == "table" and e["name"] == "blocks-2d")["rows"]
    assert blocks == [["Y row 1", "T1", "T2", "0", "0"], ["Y row 2", "0", "0", "T1", "T2"]]
    assert "transpose of A, not its inverse" in tables["transpose-1d"]["note"]


def test_an_orthogonal_kernel_recovers_x(tmp_path):
    result, events = run_exercise("3.3-toeplitz", tmp_path, k=[-1.0])
    m = result.summary["metrics"]
    assert m["recovers_x"] is True and m["AtY"] == [2, 5, 4, 1, 3, 7] and m["y"] == [-2, -5, -4, -1, -3, -7]


@pytest.mark.parametrize("sets,message", [
    (["k=[1, 2, 3, 4, 5, 6, 7]"], "padding: the kernel k has 7 entries but x with padding 0 has only 6"),
    (["X=[[1, 2], [3]]"], "X: row 2 has 1 entry and row 1 has 2: every row needs the same length"),
    (["K=[[1, 2, 3, 4, 5]]", "padding_2d=0"], "padding_2d: the kernel K has 5 columns but X with padding 0 has only 4"),
])
def test_shapes_that_give_no_output_are_refused_by_key(sets, message):
    with pytest.raises(ParamsInvalid) as err:
        preset_for_exercise("3.3-toeplitz", overrides=sets)
    assert message in str(err.value)
