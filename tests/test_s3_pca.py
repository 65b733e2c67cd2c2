"""3.1-pca: the hand-written PCA agrees with scikit-learn; RMSE(q) falls to 0 at q = d."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from labbench.exercises.s3_pca import HandPCA, align_signs, gaussian_data, hand_rmse_curve, iris_data

from .helpers import run_exercise


@pytest.mark.parametrize("which", ["gaussian", "iris"])
def test_hand_pca_agrees_with_sklearn(which):
    X = gaussian_data(500, 50, seed=0) if which == "gaussian" else iris_data(False)[0]
    hand = HandPCA().fit(X)
    sk = PCA().fit(X)
    np.testing.assert_allclose(hand.explained_variance_, sk.explained_variance_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(hand.explained_variance_ratio_, sk.explained_variance_ratio_, rtol=1e-8)
    # components agree up to sign (each row may be flipped)
    np.testing.assert_allclose(align_signs(sk.components_, hand.components_), sk.components_, atol=1e-6)
    # and the projections agree up to the same signs
    signs = np.sign(np.sum(sk.components_ * hand.components_, axis=1))
    np.testing.assert_allclose(hand.project(X, 2) * signs[:2], sk.transform(X)[:, :2], atol=1e-6)


@pytest.mark.parametrize("which", ["gaussian", "iris"])
def test_rmse_zero_at_full_rank_and_never_increases(which):
    X = gaussian_data(500, 50, seed=0) if which == "gaussian" else iris_data(False)[0]
    curve = hand_rmse_curve(X, HandPCA().fit(X))
    assert len(curve) == X.shape[1] + 1
    assert curve[-1] == pytest.approx(0.0, abs=1e-10)
    assert all(b <= a + 1e-12 for a, b in zip(curve, curve[1:]))
    if which == "gaussian":
        assert curve[0] == pytest.approx(1.0, abs=0.05)  # about 1, falling almost linearly
        mid = curve[25]
        assert 0.55 < mid < 0.85
    else:
        drops = -np.diff(curve)
        assert drops[0] > drops[1] > drops[2]  # concave: the first component removes the most


def test_exercise_reports_both_curves(tmp_path):
    result, events = run_exercise("3.1-pca", tmp_path)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["iris_rmse_qd"] == pytest.approx(0.0, abs=1e-10)
    assert m["gaussian_rmse_qd"] == pytest.approx(0.0, abs=1e-10)
    assert m["iris_pc1_ratio"] == pytest.approx(0.9246, abs=1e-3)
    assert m["iris_max_diff_components"] < 1e-6
    names = {e["name"] for e in events if e["type"] == "figure"}
    assert {"rmse-gaussian", "rmse-iris", "iris-pcs-hand", "iris-pcs-sklearn"} <= names
