"""Terminal pictures shared by the TUI and the headless console: half-block
image grids, heat maps and plotext-based line/scatter/bar/hist figures. Every
function returns a rich renderable (usually ``rich.text.Text``)."""

from .figures import KINDS, draw_figure, figure_data, render_figure
from .heatmap import render_heatmap
from .images import render_images
from .plots import PALETTE, downsample, render_bar, render_hist, render_line, render_scatter

__all__ = ["KINDS", "PALETTE", "draw_figure", "figure_data", "render_figure", "render_heatmap", "render_images",
           "downsample", "render_bar", "render_hist", "render_line", "render_scatter"]
