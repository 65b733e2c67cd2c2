"""2.1-climate-forecast: lag matrix alignment, no test data in the scaler, gap
handling, the climate files (csv, zip, ERA-Interim), and on the real Rio series a
random forest with lag 29 beating the value of 12 months earlier."""

import zipfile

import numpy as np
import pytest

from labbench.data import DataCorrupt, DataMissing
from labbench.data.climate import fill_gaps, import_climate, load_city_series
from labbench.engine.events import load_artifact
from labbench.exercises.s2_climate import chronological_split, make_lagged

from .helpers import run_exercise
from .stopping import run_stopped

HEADER = "dt,AverageTemperature,AverageTemperatureUncertainty,City,Country,Latitude,Longitude\n"


def test_lag_matrix_is_aligned():
    values = np.arange(100, 110, dtype=float)
    X, y = make_lagged(values, 3)
    assert X.shape == (7, 3) and y.shape == (7,)
    for i in range(7):  # row i holds t-3, t-2, t-1 for the target at t = i + 3
        assert list(X[i]) == [values[i], values[i + 1], values[i + 2]]
        assert y[i] == values[i + 3]


def test_no_test_information_reaches_the_scaler():
    rng = np.random.default_rng(0)
    values = rng.normal(10, 3, 200)
    lag = 5
    scaler, (X_tr, y_tr), (X_te, y_te), n_train = chronological_split(values, lag, 0.25)
    assert n_train + len(y_te) == 200 - lag
    assert scaler.n_fit == lag + n_train
    assert scaler.mean == pytest.approx(values[:lag + n_train].mean())
    # changing every test target changes nothing the training side sees
    spoiled = values.copy()
    spoiled[lag + n_train:] += 1000.0
    scaler2, (X_tr2, y_tr2), _, _ = chronological_split(spoiled, lag, 0.25)
    assert scaler2.mean == scaler.mean and scaler2.std == scaler.std
    np.testing.assert_array_equal(X_tr, X_tr2)
    np.testing.assert_array_equal(y_tr, y_tr2)
    # the split is chronological: test windows come after every training target
    np.testing.assert_allclose(scaler.inverse(y_te), values[lag + n_train:])


def test_gap_handling_says_what_it_did():
    months = np.arange(np.datetime64("2000-01"), np.datetime64("2003-01"), dtype="datetime64[M]")
    values = np.arange(36, dtype=float)
    values[:2] = np.nan  # leading: dropped
    values[10:12] = np.nan  # short: interpolated
    values[20:26] = np.nan  # long (6 > 3): start after it
    values[30] = np.nan  # short: interpolated
    keep = np.ones(36, bool)
    keep[33] = False  # a month absent from the file
    m, v, notes = fill_gaps(months[keep], values[keep], max_gap=3)
    assert m[0] == np.datetime64("2002-03") and len(m) == 10
    assert np.isfinite(v).all()
    assert v[30 - 26] == pytest.approx(30.0) and v[33 - 26] == pytest.approx(33.0)
    text = " ".join(notes)
    assert "2 leading missing months dropped" in text
    assert "gap of 6 months" in text
    assert "1 months absent" in text
    assert "2 missing months in 2 short gaps" in text


def _write_city_csv(path, city="Testville", country="Nowhere", n=48, bad_line=None):
    lines = [HEADER]
    for k in range(n):
        y, mth = 1990 + k // 12, k % 12 + 1
        temp = "" if k == 5 else f"{10 + 8 * np.sin(2 * np.pi * k / 12):.3f}"
        lines.append(f"{y}-{mth:02d}-01,{temp},0.5,{city},{country},1.00N,2.00E\n")
        lines.append(f"{y}-{mth:02d}-01,1.0,0.5,Otherplace,{country},1.00N,2.00E\n")
    if bad_line is not None:  # becomes line number bad_line of the file
        lines.insert(bad_line - 1, f"1995-01-01,abc,0.5,{city},{country},1.00N,2.00E\n")
    path.write_text("".join(lines))


def test_import_csv_and_zip_then_load(tmp_path):
    src = tmp_path / "GlobalLandTemperaturesByMajorCity.csv"
    _write_city_csv(src)
    root = tmp_path / "data"
    dest = import_climate(src, root=root)
    assert dest == root / "climate" / "GlobalLandTemperaturesByMajorCity.csv"
    s = load_city_series("Testville", root=root)
    assert len(s) == 48 and np.isfinite(s.values).all()
    assert any("1 missing months" in n for n in s.notes)
    # zipped, as Kaggle ships it: read from the zip member directly
    zroot = tmp_path / "zdata"
    (zroot / "climate").mkdir(parents=True)
    with zipfile.ZipFile(zroot / "climate" / "GlobalLandTemperaturesByMajorCity.zip", "w") as zf:
        zf.write(src, "GlobalLandTemperaturesByMajorCity.csv")
    sz = load_city_series("Testville", root=zroot)
    np.testing.assert_array_equal(sz.values, s.values)
    with pytest.raises(DataMissing, match="did you mean Testville"):
        load_city_series("Testvile", root=zroot)


def test_bad_files_are_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "temps.csv"
    bad.write_text("date,temp\n2000-01-01,3\n")
    with pytest.raises(DataCorrupt, match="temps.csv:1: not a Berkeley Earth"):
        import_climate(bad, root=tmp_path / "data")
    root = tmp_path / "data2"
    (root / "climate").mkdir(parents=True)
    _write_city_csv(root / "climate" / "GlobalLandTemperaturesByMajorCity.csv", bad_line=7)
    with pytest.raises(DataCorrupt, match=r"GlobalLandTemperaturesByMajorCity.csv:7: temperature 'abc'"):
        load_city_series("Testville", root=root)


def test_real_files_zip_and_era_interim(shared_data, tmp_path):
    # the Kaggle zip in ../shared/data, read member-wise, equals the Rio extract
    root = tmp_path / "zip-only"
    (root / "climate").mkdir(parents=True)
    (root / "climate" / "GlobalLandTemperaturesByMajorCity.zip").symlink_to(
        shared_data / "climate" / "GlobalLandTemperaturesByMajorCity.zip")
    from_zip = load_city_series("Rio De Janeiro", root=root)
    extract = load_city_series("Rio De Janeiro", root=shared_data)
    assert "RioDeJaneiro" in extract.source and ".zip" in from_zip.source
    np.testing.assert_array_equal(from_zip.values, extract.values)
    assert extract.months[0] == np.datetime64("1851-01")  # after the 1844-1850 gap
    # Brussels: not a major city; the ERA-Interim daily series gives monthly means
    with pytest.raises(DataMissing, match="era-interim"):
        load_city_series("Brussels", source="berkeley", root=shared_data)
    bru = load_city_series("Brussels", source="era-interim", root=shared_data)
    assert len(bru) == 466
    month = bru.months.astype(int) % 12
    assert bru.values[month == 0].mean() == pytest.approx(4.2, abs=0.3)  # PROVENANCE: Jan 4.2
    assert bru.values[month == 6].mean() == pytest.approx(20.9, abs=0.3)  # Jul 20.9


def test_rio_random_forest_lag29_beats_seasonal_naive(shared_data, tmp_path):
    result, events = run_exercise("2.1-climate-forecast", tmp_path, city="Rio De Janeiro", model="random-forest",
                                  lag_sweep=False, lag=29, n_estimators=30, max_depth=10)
    assert result.status == "ok", result.summary.get("message")
    m = result.summary["metrics"]
    assert m["best_lag"] == 29
    assert m["test_mse"] < m["test_mse_seasonal_naive"]
    assert m["test_mse"] < 1.5  # report: 1.158 (100 trees, depth 10)
    texts = " ".join(e["text"] for e in events if e["type"] == "text")
    assert "84 months" in texts  # the 1844-1850 gap is reported
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "test-forecast")
    data = fig.get("data") or load_artifact(result.dir, fig["file"])
    assert set(data["series"]) == {"truth", "one-step", "recursive"}


def test_lag_sweep_marks_the_best_lag(shared_data, tmp_path):
    result, events = run_exercise("2.1-climate-forecast", tmp_path, city="Brussels", source="era-interim",
                                  model="svr", C=0.4, epsilon=0.2, lag_min=10, lag_max=14)
    assert result.status == "ok", result.summary.get("message")
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "lag-sweep")
    errs = fig["data"]["series"]["validation MSE"]
    best = fig["data"]["x"][int(np.argmin(errs))]
    assert fig["data"]["markers"][0]["x"] == best == result.summary["metrics"]["best_lag"]
    assert result.summary["metrics"]["test_mse"] < result.summary["metrics"]["test_mse_seasonal_naive"]


def test_stop_during_the_lag_sweep_forecasts_with_the_best_lag_so_far(shared_data, tmp_path):
    when = lambda e: e["type"] == "scalars" and "mse/validation" in e["values"] and e["step"] >= 4  # noqa: E731
    result, events = run_stopped("2.1-climate-forecast", tmp_path, when, city="Brussels", source="era-interim",
                                 model="svr", lag_min=1, lag_max=30)
    assert result.status == "interrupted"
    m = result.summary["metrics"]
    assert 1 <= m["best_lag"] <= 4 and m["test_mse"] > 0
    assert any("stopped during the lag sweep" in e.get("text", "") for e in events)
    fig = next(e for e in events if e["type"] == "figure" and e["name"] == "lag-sweep")
    assert fig["data"]["x"] == [1, 2, 3, 4]


def test_stop_during_the_network_still_forecasts(shared_data, tmp_path):
    when = lambda e: e["type"] == "scalars" and "loss/train (scaled)" in e["values"] and e["step"] >= 5  # noqa: E731
    result, events = run_stopped("2.1-climate-forecast", tmp_path, when, city="Rio De Janeiro", model="torch-mlp",
                                 lag_sweep=False, lag=12, epochs=200)
    assert result.status == "interrupted"
    m = result.summary["metrics"]
    assert m["test_mse"] > 0 and "test_mse_seasonal_naive" in m
    losses = [e for e in events if e["type"] == "scalars" and "loss/train (scaled)" in e["values"]]
    assert len(losses) == 5
