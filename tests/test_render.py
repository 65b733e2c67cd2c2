"""The terminal render layer: plots, image grids, heat maps, figures, compare."""

from __future__ import annotations

import json
import math

import numpy as np
from rich.console import Console
from rich.text import Text

from labbench.render import (
    downsample,
    render_figure,
    render_heatmap,
    render_images,
    render_line,
)
from labbench.render.compare import comparison_table, load_comparison
from labbench.render.images import UPPER, to_uint8
from labbench.runs import differing_keys, list_runs


def plain(renderable, width=100) -> str:
    c = Console(width=width, record=True, file=open("/dev/null", "w"), color_system="truecolor")
    c.print(renderable)
    return c.export_text()


def test_downsample_keeps_extremes_and_bounds_points():
    xs = list(range(10_000))
    ys = [math.sin(i / 300) for i in xs]
    ys[7777] = 5.0  # a spike must survive
    dx, dy = downsample(xs, ys, 400)
    assert len(dx) <= 400
    assert max(dy) == 5.0 and 7777 in dx
    assert min(dy) == min(ys)
    assert dx == sorted(dx)
    # non-finite values are dropped, short curves are kept whole
    assert downsample([0, 1, 2], [1.0, float("nan"), 2.0]) == ([0.0, 2.0], [1.0, 2.0])


def test_line_with_log_scale_and_marker_renders_at_size():
    xs = list(range(1, 10_001))
    text = render_line({"train": (xs, [1 / x for x in xs]), "val": (xs, [1.2 / x for x in xs])}, width=70,
                       height=14, logy=True, markers=[{"x": 5000, "label": "early stop"}], title="loss")
    assert isinstance(text, Text)
    lines = text.plain.splitlines()
    assert len(lines) == 14 and max(len(line) for line in lines) <= 70
    assert "train" in text.plain and "early stop" in text.plain


def test_images_half_blocks_grey_and_colour():
    grey = np.zeros((3, 28, 28), dtype=np.float32)
    grey[:, 10:18, 12:16] = 1.0
    t = render_images(grey, captions=["7/7", "1/7", "3/3"], highlight=[1], width=90)
    lines = t.plain.splitlines()
    assert len(lines) == 14 + 1  # 28 pixel rows in 14 half-block lines, then captions
    assert lines[0].count(UPPER) == 3 * 28
    assert "x1/7" in lines[-1]  # the wrong one is marked
    red = [s for s in t.spans if "red" in str(s.style)]
    assert red, "the highlighted caption is drawn in red"
    # narrow: the grid wraps onto more rows and images shrink to fit
    narrow = render_images(grey, width=20)
    assert max(len(line) for line in narrow.plain.splitlines()) <= 20
    colour = render_images(np.random.RandomState(0).rand(2, 3, 8, 8), width=40, colors="256")
    assert colour.plain.splitlines()[0].count(UPPER) == 16
    from rich.color import ColorType

    kinds = {s.style.color.type for s in colour.spans} | {s.style.bgcolor.type for s in colour.spans}
    assert kinds == {ColorType.EIGHT_BIT}  # 256-colour: palette numbers, no RGB
    assert to_uint8(np.full((1, 2, 2), -1.0)).max() == 0


def test_heatmap_annotated_confusion_matrix_with_labels_and_marks():
    z = [[50, 2, 0], [3, 40, 7], [0, 1, 49]]
    t = render_heatmap(z, xlabels=["a", "b", "c"], ylabels=["cat", "dog", "car"], annotate=True,
                       marks=[{"row": 0, "col": 2, "text": "A"}], width=40, height=10)
    text = t.plain
    assert "cat" in text and "49" in text and "A" in text
    big = render_heatmap(np.random.RandomState(0).rand(100, 100), width=30, height=12)
    assert len(big.plain.splitlines()) <= 12
    assert max(len(line) for line in big.plain.splitlines()) <= 30


def test_render_figure_dispatches_every_kind_and_survives_bad_data():
    figs = [
        {"kind": "line", "title": "fit", "data": {"x": [0, 1, 2], "series": {"data": [0, 1, 0]}}},
        {"kind": "scatter", "data": {"series": {"A": {"x": [0, 1], "y": [1, 0]}, "B": {"x": [2], "y": [2]}},
                                     "lines": {"grid": {"x": [0, 2], "y": [0, 2]}}}},
        {"kind": "heatmap", "data": {"z": [[1, 2], [3, 4]], "annotate": True}},
        {"kind": "bar", "data": {"labels": ["sgd", "adam"], "values": [0.3, 0.1]}},
        {"kind": "bar", "data": {"labels": ["a", "b"], "series": {"x": [1, 2], "y": [2, 1]}}},
        {"kind": "hist", "data": {"values": list(range(100)), "bins": 10, "logy": True, "marks": [{"x": 50}]}},
    ]
    for f in figs:
        t = render_figure(f, 50, 12)
        assert isinstance(t, Text) and t.plain.strip(), f["kind"]
        assert "cannot draw" not in t.plain, (f["kind"], t.plain)
    bad = render_figure({"kind": "pie", "title": "p", "data": {}}, 40, 10)
    assert "cannot draw" in bad.plain


def _fake_run(folder, lr, losses, status="ok"):
    folder.mkdir(parents=True)
    events = [{"t": 0, "type": "start", "exercise": "1.1-perceptron", "params": {"lr": lr}}]
    events += [{"t": i, "type": "scalars", "step": i + 1, "values": {"loss/train": v}} for i, v in enumerate(losses)]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "summary.json").write_text(json.dumps({
        "status": status, "exercise": "1.1-perceptron", "params": {"lr": lr, "epochs": len(losses)}, "seed": 0,
        "metrics": {"final_mse": losses[-1]}, "start": f"2024-01-01T00:00:0{len(losses)}"}))


def test_runs_listing_and_comparison(tmp_path):
    _fake_run(tmp_path / "a", 0.2, [1.0, 0.5, 0.42])
    _fake_run(tmp_path / "b", 0.02, [1.0, 0.9, 0.8, 0.7], status="interrupted")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.path.name for r in runs] == ["b", "a"]  # newest first
    assert runs[1].primary_metric() == ("final_mse", 0.42)
    assert runs[0].status == "interrupted"
    assert differing_keys([{"lr": 1, "e": 2}, {"lr": 2, "e": 2}]) == ["lr"]
    cmp = load_comparison([tmp_path / "a", tmp_path / "b"])
    assert cmp.curve_names == ["loss"] or cmp.curve_names == ["loss/train"]
    assert set(cmp.differing_params()) == {"lr", "epochs"}
    overlay = cmp.overlay(cmp.curve_names[0])
    assert [len(xs) for xs, _ in overlay.values()] == [3, 4]
    assert cmp.runs[0].color != cmp.runs[1].color
    text = plain(comparison_table(cmp, only_differing=True, curve=cmp.curve_names[0]), width=160)
    assert "0.4200" in text and "interrupted" in text and "epochs" in text


def test_heatmap_colour_modes_nan_cells_and_numeric_axes():
    from rich.color import ColorType

    z = [[0.0, 1.0, float("nan")], [2.0, 3.0, 4.0]]
    true = render_heatmap(z, width=40, height=12, colors="truecolor")
    eight = render_heatmap(z, width=40, height=12, colors="256")
    bg = lambda t: {s.style.bgcolor.type for s in t.spans if hasattr(s.style, "bgcolor") and s.style.bgcolor}
    assert bg(true) == {ColorType.TRUECOLOR} and bg(eight) == {ColorType.EIGHT_BIT}
    shades = render_heatmap(z, width=40, height=12, colors="standard")  # 16 colours: levels as shade glyphs
    assert "█" in shades.plain and "░" in shades.plain and not bg(shades)
    assert "·" in true.plain and "no data" in true.plain  # NaN is not a colour of the ramp
    # axis values (numbers or numeric strings) become ticks that do not overlap, not cut-off labels
    xs = [f"{v:.2f}" for v in np.linspace(0.02, 0.98, 24)]
    surf = render_heatmap(np.random.RandomState(1).rand(24, 24), x=xs, y=list(np.linspace(0.98, 0.02, 24)),
                          xlabel="x1", ylabel="x2", width=70, height=40)
    head = surf.plain.splitlines()[1]
    assert "0.02" in head and "0.98" not in head.split("0.02")[0] and " 0. " not in head
    # a small matrix gets bigger cells; a marked cell of an annotated map keeps its value
    small = render_heatmap([[1, 2], [3, 4]], width=60, height=20)
    assert max(len(line) for line in small.plain.splitlines()[:-1]) >= 8
    grid = render_heatmap([[0.857, 0.9]], xlabels=["(20, 20)", "(50, 50)"], ylabels=["adam/relu"], annotate=True,
                          marks=[{"row": 0, "col": 1, "text": "best"}], width=60, height=10)
    assert "best 0.9" in grid.plain and "(20, 20)" in grid.plain


def test_figure_from_artifact_file_and_legend_outside(tmp_path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "surface.json").write_text(json.dumps({"z": np.arange(1600.0).reshape(40, 40).tolist()}))
    t = render_figure({"kind": "heatmap", "title": "surface", "file": "artifacts/surface.json"}, 90, 30,
                      run_dir=tmp_path)
    assert len(t.plain.splitlines()) >= 20  # read from the file, not squashed to a strip
    line = render_figure({"kind": "line", "title": "loss", "data": {"x": [1, 2, 3], "series": {
        "train": [3, 2, 1], "val": [3, 2.5, 2]}}}, 60, 12)
    first = line.plain.splitlines()[0]
    assert first.startswith("loss") and "train" in first and "val" in first  # legend above, not on the data


def test_downsample_keeps_the_newest_point_and_image_grids_fit_a_line_budget():
    xs = list(range(10_001))
    dx, dy = downsample(xs, [float(x % 7) for x in xs], 400)
    assert dx[0] == 0 and dx[-1] == 10_000 and len(dx) <= 400
    digits = np.zeros((32, 28, 28), dtype=np.uint8)
    t = render_images(digits, captions=[f"{i}/{i}" for i in range(32)], width=93, max_lines=48, min_px=12)
    assert len(t.plain.splitlines()) <= 48 and t.plain.splitlines()[0].count(UPPER) == 6 * 14


def _surface(n=40):
    a = np.linspace(-3, 3, n)
    xx, yy = np.meshgrid(a, a)
    return a, np.sin(xx) * np.cos(yy) + yy / 3


def test_heatmap_half_blocks_two_rows_per_line_with_cell_colours():
    from rich.color import ColorType

    from labbench.render.heatmap import UPPER as HALF
    from labbench.render.heatmap import ramp

    a, z = _surface(40)
    t = render_heatmap(z, x=list(a), y=list(a), width=60, height=30, title="surface", zlabel="f")
    lines = t.plain.splitlines()
    body = [line for line in lines if HALF in line]
    assert len(body) == 20  # 40 rows, two per line
    assert all(line.count(HALF) == 40 for line in body)  # square cells: one character per column
    assert lines[0] == "surface" and lines[1].split()[0] == "-3"  # x ticks stay
    assert body[0].split()[0] == "-3" and "f: " in lines[-1]  # y labels and the legend stay
    assert max(len(line) for line in lines) <= 60
    # the character at (line 3, column 7) shows data row 6 above data row 7
    lo, hi = z.min(), z.max()
    start = t.plain.index(body[3]) + body[3].index(HALF) + 7
    span = next(s for s in t.spans if s.start == start)
    top, bottom = ramp((z[6, 7] - lo) / (hi - lo)), ramp((z[7, 7] - lo) / (hi - lo))
    assert span.style.color.get_truecolor() == top and span.style.bgcolor.get_truecolor() == bottom
    assert top != bottom
    # the one-character-per-cell picture of the same surface takes twice the lines
    full = render_heatmap(z[:, :20], x=list(a[:20]), y=list(a), width=60, height=60, annotate=False,
                          marks=[{"row": 0, "col": 0, "text": "*"}])
    assert HALF not in full.plain and len(full.plain.splitlines()) == 40 + 2
    # 256 colours: palette numbers; 16 colours: shade characters, no half blocks
    t256 = render_heatmap(z, width=60, height=30, colors="256")
    assert t256.plain.count(HALF) == 40 * 20
    styles = [s.style for s in t256.spans if t256.plain[s.start] == HALF]
    kinds = {st.color.type for st in styles if st.color} | {st.bgcolor.type for st in styles if st.bgcolor}
    assert kinds == {ColorType.EIGHT_BIT}
    std = render_heatmap(z, width=100, height=50, colors="standard")
    assert HALF not in std.plain and any(ch in std.plain for ch in "░▒▓█")


def test_heatmap_half_blocks_pool_evenly_and_keep_small_or_annotated_maps_whole():
    from labbench.render.heatmap import UPPER as HALF

    _, z = _surface(40)
    z[0:4, 0:4] = np.nan
    narrow = render_heatmap(z, width=30, height=30)  # 40 columns into 30: pooled 2x2 both ways
    body = [line for line in narrow.plain.splitlines() if HALF in line or line.startswith("·")]
    assert len(body) == 10 and max(len(line) for line in narrow.plain.splitlines()) <= 30
    assert body[0].startswith("··") and "no data" in narrow.plain
    short = render_heatmap(z, width=100, height=12)  # 40 rows into 10 lines: pooled by 2
    assert len(short.plain.splitlines()) <= 12
    # odd rows: the last line's lower half is the terminal's background
    odd = render_heatmap(_surface(15)[1][:13, :20], width=30, height=10)
    assert HALF in odd.plain and len(odd.plain.splitlines()) == 7 + 1
    # a confusion matrix (annotated) or a map with marks is still one row per line
    cm = np.arange(400).reshape(20, 20)
    assert HALF not in render_heatmap(cm, annotate=True, width=200, height=40).plain
    assert HALF not in render_heatmap(cm, marks=[{"row": 1, "col": 1, "text": "A"}], width=200, height=40).plain
    assert HALF not in render_heatmap(cm[:10], width=200, height=40).plain  # few rows: unchanged


def test_heatmap_half_blocks_give_up_row_labels_before_columns():
    from labbench.render.heatmap import UPPER as HALF
    from labbench.render.heatmap import heatmap_min_width

    a, z = _surface(40)
    ys = [round(float(v), 3) for v in a]
    t = render_heatmap(z, x=list(a), y=ys, ylabel="x2", zlabel="squared residual (pred - f)^2", width=42, height=30)
    lines = t.plain.splitlines()
    assert max(line.count(HALF) for line in lines) == 40  # every column, no pooling
    assert "x2 ↓ -3 … 3" in lines and max(len(line) for line in lines) <= 42
    assert lines[-2] == "squared residual (pred - f)^2"  # a legend too wide for one line takes two
    assert heatmap_min_width({"z": z, "x": list(a), "y": ys}, 30, "t") == 40
    assert heatmap_min_width({"z": z, "annotate": True}, 30) is None
    assert heatmap_min_width({"z": z}, 30, colors="standard") is None
