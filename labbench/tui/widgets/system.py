"""The Live tab's system panel: what the machine does for the selected run.

One line per reading, each a sparkline of the recent samples with the value
now and a short summary: CPU (100% = one core), the process's resident
memory (RAM), and on a GPU its load (with temperature and power) and its
memory (the device's used / total, and torch's peak for the run). Two
readings share a line when the panel is wide enough. Hidden until the run has
written a ``system`` event (see ``labbench/engine/sysmon.py``)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ...engine.sysmon import SystemSeries, fmt_mb, fmt_percent

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int, top: float | None = None) -> str:
    """The last ``width`` values as bar characters, from 0 (▁) to ``top``
    (█; default the largest value shown)."""
    vals = values[-width:] if width > 0 else []
    if not vals:
        return ""
    hi = top if top and top > 0 else max(max(vals), 1e-9)
    out = []
    for v in vals:
        frac = min(max(v / hi, 0.0), 1.0)
        out.append(BARS[min(len(BARS) - 1, int(frac * (len(BARS) - 1) + 0.5))])
    return "".join(out)


def _gib_pair(used: float | None, total: float | None) -> str:
    if used is None:
        return "-"
    if total and total >= 1024:
        return f"{used / 1024:.1f}/{total / 1024:.0f} GiB"
    return fmt_mb(used) + (f"/{fmt_mb(total)}" if total else "")


def readings(s: SystemSeries) -> list[tuple[str, list[float], float | None, str, str, str]]:
    """(label, values, sparkline top, value now, summary, style) per reading the run has."""
    out = []
    cpu = s.values("cpu_percent")
    if cpu:
        out.append(("CPU", cpu, max(100.0, max(cpu)), fmt_percent(cpu[-1]), f"avg {fmt_percent(s.mean('cpu_percent'))}",
                    "green"))
    rss = s.values("rss_mb")
    if rss:
        out.append(("RAM", rss, None, fmt_mb(rss[-1]), f"peak {fmt_mb(s.peak('rss_mb'))}", "cyan"))
    util = s.values("gpu_util")
    if util:
        extra = [f"avg {fmt_percent(s.mean('gpu_util'))}"]
        if "gpu_temp_c" in s.latest:
            extra.append(f"{s.latest['gpu_temp_c']:.0f}°C")
        if "gpu_power_w" in s.latest:
            extra.append(f"{s.latest['gpu_power_w']:.0f} W")
        out.append(("GPU", util, 100.0, fmt_percent(util[-1]), " ".join(extra), "magenta"))
    used = s.values("gpu_mem_used_mb")
    peak = s.cuda_peak
    torch_peak = f"run peak {fmt_mb(peak)}" if peak is not None else ""
    if used:
        total = s.latest.get("gpu_mem_total_mb")
        out.append(("VRAM", used, total, _gib_pair(used[-1], total), torch_peak, "yellow"))
    elif s.values("cuda_alloc_mb"):  # CUDA without NVML: torch's own figures
        alloc = s.values("cuda_alloc_mb")
        reserved = s.latest.get("cuda_reserved_mb")
        extra = " ".join(x for x in (f"held {fmt_mb(reserved)}" if reserved is not None else "", torch_peak) if x)
        out.append(("CUDA", alloc, None, fmt_mb(alloc[-1]), extra, "yellow"))
    return out


class SystemPanel(Widget):
    """Sparklines of the selected run's ``system`` samples (see the module's text)."""

    DEFAULT_CSS = """
    SystemPanel { height: auto; padding: 0 1; display: none; }
    """
    LABEL_W = 5
    MIN_SPARK = 8
    TWO_COLUMNS_AT = 84  # a line holds two readings from this width on
    GAP = 3

    def __init__(self, **kw):
        super().__init__(**kw)
        self.series: SystemSeries | None = None

    def show_series(self, series: SystemSeries | None) -> None:
        """Show ``series`` (the RunView's own, read as it grows); None or an
        empty one hides the panel."""
        self.series = series
        self.display = bool(series)
        self.refresh(layout=True)

    def columns(self, width: int) -> int:
        return 2 if width >= self.TWO_COLUMNS_AT else 1

    def lines(self, width: int) -> list[Text]:
        rows = readings(self.series) if self.series else []
        if not rows:
            return []
        ncol = self.columns(width)
        cell_w = (width - self.GAP * (ncol - 1)) // ncol
        # the sparklines line up: every value starts in the same column; the
        # summaries go first when the panel is too narrow for them
        summary = max(len(self._tail(r, True)) for r in rows) <= cell_w - self.LABEL_W - self.MIN_SPARK
        cells = []
        for k, r in enumerate(rows):
            tail_w = max(len(self._tail(x, summary)) for x in rows[k % ncol::ncol])  # this column's longest
            cells.append(self._cell(r, max(self.MIN_SPARK, cell_w - self.LABEL_W - tail_w), tail_w, summary))
        out = []
        for i in range(0, len(cells), ncol):
            line = Text(no_wrap=True, overflow="crop")
            for j, cell in enumerate(cells[i:i + ncol]):
                if j:
                    line.append(" " * self.GAP)
                line.append_text(cell)
            line.rstrip()
            out.append(line)
        return out

    @staticmethod
    def _tail(row, summary: bool) -> str:
        _, _, _, now, text, _ = row
        return f" {now}" + (f" {text}" if summary and text else "")

    def _cell(self, row, spark_w: int, tail_w: int, summary: bool) -> Text:
        label, values, top, now, text, style = row
        cell = Text(f"{label:<{self.LABEL_W}}", style="bold")
        cell.append(sparkline(values, spark_w, top).rjust(spark_w, " "), style=style)
        cell.append(f" {now}", style="bold")
        if summary and text:
            cell.append(f" {text}", style="dim")
        cell.append(" " * (self.LABEL_W + spark_w + tail_w - cell.cell_len))
        return cell

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.lines(width)))

    def render(self):
        lines = self.lines(self.size.width)
        return Text("\n").join(lines) if lines else Text("")
