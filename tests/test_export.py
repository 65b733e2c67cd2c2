"""`labbench export` and `labbench compare`: files a report can use."""

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from labbench import export as ex
from labbench.cli import app

runner = CliRunner()


def test_svg_line_chart_is_valid_and_has_one_polyline_per_series():
    svg = ex.svg_lines({"a": ([1, 2, 3], [1.0, 0.5, 0.25]), "b <&>": ([1, 2, 3], [2.0, float("nan"), 1.0])},
                       title="loss", logy=True, markers=[{"x": 2, "label": "stop"}])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points").split()) == 3
    assert len(lines[1].get("points").split()) == 2  # the NaN point is left out
    assert "b &lt;&amp;&gt;" in svg


def test_png_grid_has_the_right_size_and_frames_errors(tmp_path):
    imgs = np.zeros((5, 4, 6), np.uint8)
    ex.png_images(imgs, tmp_path / "g.png", ncols=3, scale=1, pad=1, highlight=[4])
    im = np.asarray(Image.open(tmp_path / "g.png"))
    assert im.shape == (2 * 6, 3 * 8, 3)
    assert tuple(im[6, 8]) == (220, 40, 40)  # frame of image 4 (row 1, col 1)
    assert tuple(im[0, 0]) == (255, 255, 255)


def test_latex_and_markdown_tables_escape():
    tex = ex.table_latex(["a_b", "v"], [["x & y", 0.5]])
    assert r"a\_b" in tex and r"x \& y" in tex and r"\begin{tabular}{lr}" in tex
    md = ex.table_markdown(["k", "v"], [["a|b", 1]])
    assert "a\\|b" in md


def test_export_of_a_run_writes_curves_figures_and_tables(tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(app, ["run", "1.1-perceptron", "--set", "epochs=12", "--out", str(run), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    dest = tmp_path / "rep" / "run"
    rows = list(csv.reader((dest / "curves.csv").open()))
    assert rows[0] == ["step", "loss/perceptron"] and len(rows) == 13
    ET.parse(dest / "curve-loss.svg")
    ET.parse(dest / "figure-fit.svg")
    assert json.loads((dest / "figure-fit.json").read_text())["kind"] == "line"
    assert "least-squares MSE" in (dest / "table-result.md").read_text()
    assert r"\begin{table}" in (dest / "summary.tex").read_text()


def test_export_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["export", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a run folder" in res.output


def test_compare_and_export_of_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", "1.1-perceptron", "--set", "lr=0.2,0.02", "--set", "epochs=8",
                              "--out", str(sweep), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["compare", str(sweep), "--width", "100"])
    assert res.exit_code == 0, res.output
    assert "001_lr=0.2" in res.output and "002_lr=0.02" in res.output
    assert "loss/perceptron" in res.output
    res = runner.invoke(app, ["compare", str(sweep), "--curve", "nope"])
    assert res.exit_code == 2 and "no run has it" in res.output
    res = runner.invoke(app, ["export", str(sweep), "--out", str(tmp_path / "rep"), "--tables", "md,csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader((tmp_path / "rep" / "compare.csv").open()))
    assert rows[0][:3] == ["run", "status", "lr"]
    assert [r[2] for r in rows[1:]] == ["0.2", "0.02"]
    root = ET.parse(tmp_path / "rep" / "compare-loss-perceptron.svg").getroot()
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_a_line_figure_whose_series_have_their_own_x_is_exported(tmp_path):
    from labbench.engine.run import Run
    from labbench.report import export_run

    run = Run(tmp_path / "run")
    run.figure("phases", "line", series={"first": {"x": [1, 2, 3], "y": [3.0, 2.0, 1.0]},
                                         "second": {"x": [4, 5], "y": [0.5, 0.4]}},
               markers=[{"x": 3.5, "label": "second"}])
    run.close()
    export_run(tmp_path / "run", tmp_path / "rep", ["md"])
    root = ET.parse(tmp_path / "rep" / "figure-phases.svg").getroot()
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert [len(line.get("points").split()) for line in lines] == [3, 2]
