"""Terminal pictures shared by the TUI and the headless console: half-block
image grids, heat maps and plotext-based line/scatter/bar/hist figures. Every
function returns a rich renderable (usually ``rich.text.Text``)."""

from .figures import KINDS, draw_figure, figure_data, render_figure
from .heatmap import render_heatmap
from .images import render_images
from .plots import PALETTE, downsample, render_bar, render_hist, render_line, render_scatter



def colour_mode(color_system: str | None) -> str:
    """The colour mode pictures are drawn in, from a rich/Textual console's
    ``color_system``: "truecolor", "256" (tmux/screen/SSH sessions that announce
    256 colours) or "standard" (16 colours or none: heat maps use shades)."""
    if color_system in ("truecolor", "256"):
        return color_system
    return "standard"


__all__ = ["colour_mode", "KINDS", "PALETTE", "draw_figure", "figure_data", "render_figure", "render_heatmap", "render_images",
           "downsample", "render_bar", "render_hist", "render_line", "render_scatter"]
