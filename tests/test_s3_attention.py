"""3.4-attention: the course's shapes, NumPy equal to PyTorch on the same
weights, the course's NumPy softmax giving 1/n everywhere, and what the
scaling does to the entropy of the attention rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labbench.engine.params import ParamsInvalid, validate_params
from labbench.exercises.s3_attention import (AttentionParams, course_softmax, entropy_by_dk, make_module,
                                             numpy_attention, numpy_weights, row_entropy, softmax)

from .helpers import run_exercise


def _both(p: AttentionParams, seed: int = 0):
    module = make_module(p, seed)
    torch.manual_seed(seed + 1)
    x = torch.randn(p.batch_size, p.seq_len, p.dim_input, dtype=getattr(torch, p.torch_dtype))
    with torch.no_grad():
        t = {k: v.double().numpy() for k, v in module.steps(x).items()}
    scale = 1 / math.sqrt(p.dim_q) if p.scaling == "sqrt_dk" else 1.0
    n = numpy_attention(x.double().numpy(), *numpy_weights(module), scale=scale,
                        course_clipping=p.course_clipping)
    return n, t


def test_course_shapes():
    n, t = _both(AttentionParams())
    expected = {"X": (32, 20, 128), "Q": (32, 20, 64), "K": (32, 20, 64), "V": (32, 20, 32),
                "scores": (32, 20, 20), "attention": (32, 20, 20), "output": (32, 20, 32)}
    for key, shape in expected.items():
        assert n[key].shape == shape, key
        assert t[key].shape == shape, key


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float64", 1e-12)])
def test_numpy_equals_pytorch_on_the_same_weights(dtype, tol):
    n, t = _both(AttentionParams(torch_dtype=dtype))
    for key in ("Q", "K", "V", "scores", "attention", "output"):
        assert np.abs(n[key] - t[key]).max() < tol, key
    np.testing.assert_allclose(n["attention"].sum(-1), 1.0, atol=1e-12)


def test_course_clipping_makes_every_weight_one_over_32():
    # the notebook's NumPy part: one sequence of 32 tokens of width 256, normal random weights
    p = AttentionParams(batch_size=1, seq_len=32, dim_input=256, dim_q=256, dim_v=256, weights="randn",
                        course_clipping=True)
    n, t = _both(p)
    assert np.all(n["attention"] == 1 / 32)
    # so every output row is the mean of the value vectors ...
    np.testing.assert_allclose(n["output"][0], np.broadcast_to(n["V"][0].mean(0), (32, 256)), rtol=1e-12)
    # ... while the real softmax of these huge scores is nearly one-hot
    assert t["attention"].max(-1).mean() > 0.5


def test_course_softmax_clip_and_axis():
    z = np.array([[0.0, 1.0], [5.0, -3.0]])
    assert np.all(course_softmax(z) == 0.5)  # whatever z is
    e = np.exp(z)
    np.testing.assert_allclose(softmax(z), e / e.sum(1, keepdims=True))
    # its division without keepdims: entry (i, j) over the sum of row j (not row i)
    np.testing.assert_allclose(e / np.sum(e, axis=1), e / e.sum(1)[None, :])
    assert not np.allclose(e / np.sum(e, axis=1), softmax(z))
    # the stable softmax does not overflow where a plain exp would
    big = np.array([[1000.0, 0.0]])
    np.testing.assert_allclose(softmax(big), [[1.0, 0.0]])


def test_entropy_closed_forms_and_the_effect_of_scaling():
    assert row_entropy(np.full((3, 8), 1 / 8)) == pytest.approx([math.log(8)] * 3)
    assert row_entropy(np.array([[1.0, 0.0, 0.0]]))[0] == 0.0
    # unit-variance tokens, normal weights: unscaled scores grow with d_k and the rows collapse
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 16, 32)) / math.sqrt(32)
    curves = entropy_by_dk(X, [1, 16, 256], "randn", seed=0)
    assert curves["unscaled"][2] < 0.25 * curves["unscaled"][0]
    assert curves["scaled"][2] > 2 * curves["unscaled"][2]
    assert all(0 <= v <= math.log(16) + 1e-9 for v in curves["scaled"] + curves["unscaled"])


def test_show_sample_must_be_in_the_batch():
    with pytest.raises(ParamsInvalid) as err:
        validate_params(AttentionParams, {"batch_size": 4, "show_sample": 4})
    assert "not in a batch of 4" in str(err.value)


def test_run_reports_shapes_heat_map_and_agreement(tmp_path):
    result, events = run_exercise("3.4-attention", tmp_path, max_dk=64)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["max_abs_diff"] < 1e-6 and m["output_shape"] == [32, 20, 32] and m["attention_shape"] == [32, 20, 20]
    assert m["entropy_mean"] <= m["entropy_uniform"] == pytest.approx(math.log(20))
    table = next(e for e in events if e["type"] == "table" and e["name"] == "shapes")
    rows = {r[0]: r for r in table["rows"]}
    assert rows["Q"][2] == rows["Q"][3] == "(32, 20, 64)" and rows["Wq"][2] == "(128, 64)"
    assert rows["Wq"][3] == "(64, 128)"  # nn.Linear keeps W transposed
    heat = next(e for e in events if e["type"] == "figure" and e["name"] == "attention")
    z = np.array(heat["data"]["z"])
    assert z.shape == (20, 20) and np.allclose(z.sum(1), 1, atol=1e-6)
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "entropy")
    assert fig["data"]["x"] == [0, 1, 2, 3, 4, 5, 6]


def test_course_clipping_run_warns_and_shows_the_uniform_matrix(tmp_path):
    result, events = run_exercise("3.4-attention", tmp_path, batch_size=1, seq_len=32, dim_input=256, dim_q=256,
                                  dim_v=256, weights="randn", course_clipping=True, max_dk=8)
    m = result.summary["metrics"]
    assert m["attention_min"] == m["attention_max"] == 1 / 32
    assert m["entropy_mean"] == pytest.approx(math.log(32))
    assert m["max_abs_diff"] > 1  # NumPy's uniform average against PyTorch's real attention
    assert any(e["type"] == "text" and e.get("level") == "warning" and "clipping" in e["text"] for e in events)
    assert any(e["type"] == "figure" and e["name"] == "attention-course" for e in events)
