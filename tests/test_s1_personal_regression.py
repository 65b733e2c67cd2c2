"""1.4-personal-regression: digits from a student number, the T_new
reference numbers on the real course file, and early stopping."""

from __future__ import annotations


import numpy as np
import pytest

from labbench.engine.params import ParamsInvalid, validate_params
from labbench.exercises import s1_personal_regression as ex

from .helpers import run_exercise
from .stopping import after_step, run_stopped

from .helpers import SHARED_DATA as SHARED


@pytest.fixture
def course_data(monkeypatch):
    if not (SHARED / "course" / "data.csv").exists():
        pytest.skip(f"course data.csv not found at {SHARED / 'course'}")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED))


def test_student_number_gives_its_five_largest_digits():
    assert ex.digits_from_student_number("r0975169") == [9, 9, 7, 6, 5]
    p = ex.PersonalRegressionParams(student_number="r0975169")
    assert ex.chosen_digits(p) == [9, 9, 7, 6, 5]
    assert ex.chosen_digits(ex.PersonalRegressionParams(digits="9,9,7,6,5")) == [9, 9, 7, 6, 5]
    assert ex.chosen_digits(ex.PersonalRegressionParams(digits=[5, 6, 9, 7, 9])) == [9, 9, 7, 6, 5]


@pytest.mark.parametrize("values, msg", [
    ({"student_number": "r12"}, "at least 5"),
    ({"digits": "9,9,x,6,5"}, "five digits"),
    ({"digits": [9, 9, 7]}, "five digits"),
    ({"digits": [0, 0, 0, 0, 0]}, "not all be zero"),
    ({"student_number": "r0975169", "digits": "1,2,3,4,5"}, "give one of the two"),
])
def test_bad_digits_say_what_is_expected(values, msg):
    with pytest.raises(ParamsInvalid, match=msg):
        validate_params(ex.PersonalRegressionParams, values)


def test_t_new_reference_numbers(course_data):
    from labbench.data import course

    data = course.load()
    assert data.shape == (13_600, 7)
    t = ex.make_target(data, ex.digits_from_student_number("r0975169"))
    assert t.min() == pytest.approx(1.876, abs=5e-4)
    assert t.max() == pytest.approx(4.520, abs=5e-4)
    assert t.mean() == pytest.approx(2.996, abs=5e-4)


def test_course_model_learns_the_surface(course_data, tmp_path):
    result, events = run_exercise("1.4-personal-regression", tmp_path, student_number="r0975169", epochs=50)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["digits"] == "99765"
    # the variance of T_new is about 0.14; after 50 epochs the net is near 0.008
    assert m["test_mse"] < 0.02
    assert m["test_half_mse"] == pytest.approx(m["test_mse"] / 2)
    heatmaps = {e["name"] for e in events if e["type"] == "figure" and e["kind"] == "heatmap"}
    assert {"train-surface", "test-surface", "prediction", "test-error"} <= heatmaps


def test_early_stopping_marks_the_epoch_and_restores_the_best(course_data, tmp_path):
    result, events = run_exercise("1.4-personal-regression", tmp_path, digits="9,9,7,6,5", model="report",
                                  patience=3, epochs=200)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    stop = m["stopped_epoch"]
    assert stop == m["epochs_run"] < 200 and m["best_epoch"] == stop - 3
    loss = next(e for e in events if e["type"] == "figure" and e["name"] == "loss")
    marks = {mk["label"]: mk["x"] for mk in loss["data"]["markers"]}
    assert marks["early stop"] == stop and marks["best (restored)"] == m["best_epoch"]
    val = loss["data"]["series"]["validation"]
    # the restored weights are those of the best validation epoch
    assert m["val_mse"] == pytest.approx(min(val), rel=1e-4)
    assert int(np.argmin(val)) + 1 == m["best_epoch"]


def test_stop_after_epoch_3_restores_the_best_and_still_tests(course_data, tmp_path):
    result, events = run_stopped("1.4-personal-regression", tmp_path, after_step("loss/val", 3), model="report")
    assert result.status == "interrupted"
    m = result.summary["metrics"]
    assert m["epochs_run"] == 3 and 1 <= m["best_epoch"] <= 3
    assert 0 < m["test_mse"] < 1.0 and m["test_half_mse"] == pytest.approx(m["test_mse"] / 2)
    names = {e["name"] for e in events if e["type"] in ("figure", "table")}
    assert {"loss", "prediction", "test-error", "errors"} <= names


def test_report_model_defaults_are_the_sweeps_closest_setting():
    assert ex.MODELS["report"]["lr"] == 0.003 and ex.MODELS["report"]["batch_size"] == 64
