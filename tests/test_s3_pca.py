"""3.1-pca: the hand-written PCA agrees with scikit-learn; RMSE(q) falls to 0 at q = d."""

import re

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


MATRIX = [[2.0, 0.0, 1.0], [4.0, 1.0, 3.0], [1.0, 3.0, 2.0], [5.0, 2.0, 6.0], [3.0, 4.0, 3.0]]


def _expected(X):
    X = np.asarray(X)
    n, d = X.shape
    mean = X.mean(0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]  # divisor n - 1
    w, V = np.linalg.eigh(np.cov(X, rowvar=False))
    top = V[:, np.argsort(w)[::-1][:2]]
    Xc = X - mean
    mse_q2 = float(np.mean((Xc - Xc @ top @ top.T) ** 2))
    return mean, eig, mse_q2, n, d


def test_inline_matrix_runs_the_course_unit_check(tmp_path):
    result, events = run_exercise("3.1-pca", tmp_path, dataset="matrix", matrix=MATRIX)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    mean, eig, mse_q2, n, d = _expected(MATRIX)
    assert m["matrix_mean"] == pytest.approx(mean.tolist())
    assert m["matrix_eigenvalues"] == pytest.approx(eig.tolist())
    assert m["matrix_q"] == 2 and m["matrix_mse_q"] == pytest.approx(mse_q2)
    # the MSE is the dropped eigenvalue scaled by (n - 1) / (n d)
    assert mse_q2 == pytest.approx(eig[2] * (n - 1) / (n * d))
    tables = {e["name"]: e for e in events if e["type"] == "table"}
    eigen = tables["check-matrix-eigen"]
    assert [r[1] for r in eigen["rows"]] == pytest.approx(eig.tolist())
    assert [r[2] for r in eigen["rows"]] == pytest.approx((eig * (n - 1) / n).tolist())  # divisor n
    rec = tables["check-matrix-reconstruction"]["rows"]
    assert [r[0] for r in rec] == [0, 1, 2, 3] and rec[2][-1] == "<- q"
    assert all(r[1] == pytest.approx(r[3]) for r in rec)
    assert rec[3][1] == pytest.approx(0.0, abs=1e-12)


def test_csv_file_with_a_header_gives_the_same_check(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("a,b,c\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in MATRIX) + "\n")
    result, _ = run_exercise("3.1-pca", tmp_path, dataset="csv", csv=str(path), q=1)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    _, eig, _, n, d = _expected(MATRIX)
    assert m["csv_eigenvalues"] == pytest.approx(eig.tolist())
    assert m["csv_mse_q"] == pytest.approx(eig[1:].sum() * (n - 1) / (n * d))


@pytest.mark.parametrize("content,msg", [
    ("1,2\n3,x\n", r"bad\.csv:2: column 2: 'x' is not a number"),
    ("1,2\n3,4,5\n", r"bad\.csv:2: expected 2 values, found 3"),
    ("1,2\n", r"bad\.csv: 1 data row\(s\); at least 2"),
])
def test_bad_csv_says_file_line_and_column(tmp_path, content, msg):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result, _ = run_exercise("3.1-pca", tmp_path, dataset="csv", csv=str(path))
    assert result.status == "failed" and result.exit_code == 2
    assert re.search(msg, result.summary["message"])


def test_missing_csv_and_ragged_matrix_are_clear_errors(tmp_path):
    from labbench.engine.params import ParamsInvalid, validate_params
    from labbench.exercises.s3_pca import PCAParams

    result, _ = run_exercise("3.1-pca", tmp_path, dataset="csv", csv=str(tmp_path / "nope.csv"))
    assert result.status == "failed" and "nope.csv: no such file" in result.summary["message"]
    with pytest.raises(ParamsInvalid, match="row 2 has 1 values, expected 2"):
        validate_params(PCAParams, {"dataset": "matrix", "matrix": [[1, 2], [3]]})
    with pytest.raises(ParamsInvalid, match='dataset "csv" needs a file'):
        validate_params(PCAParams, {"dataset": "csv"})
