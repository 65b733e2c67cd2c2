"""The runs table: this session's runs and the earlier ones under the runs folder."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ...console import STATUS_STYLE, fmt_value
from ...runs import RunInfo, run_label


def params_text(params: dict, n: int = 3, max_len: int = 48) -> str:
    items = list(params.items())
    s = ", ".join(f"{k}={fmt_value(v)}" for k, v in items[:n])
    s += ", ..." if len(items) > n else ""
    return s if len(s) <= max_len else s[: max_len - 1] + "…"


class RunsTable(DataTable):
    BINDINGS = [Binding("space", "toggle_mark", "Mark", show=True)]

    def __init__(self, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.marked: list[str] = []  # run folder paths, in the order marked
        self.infos: dict[str, RunInfo] = {}

    def on_mount(self) -> None:
        self.add_column("", key="mark", width=1)
        self.add_column("status", key="status")
        self.add_column("exercise", key="exercise")
        self.add_column("metric", key="metric")
        self.add_column("run", key="run")
        self.add_column("changed params", key="params")

    def set_runs(self, infos: list[RunInfo]) -> None:
        keep = self.cursor_row
        current = None
        if self.row_count and 0 <= keep < self.row_count:
            current = self.coordinate_to_cell_key((keep, 0)).row_key.value
        self.clear()
        self.infos = {}
        for info in infos:
            key = str(info.path)
            self.infos[key] = info
            st = Text(info.status, style=STATUS_STYLE.get(info.status, "red" if info.status == "lost" else ""))
            pm = info.primary_metric()
            metric = f"{pm[0]}={fmt_value(pm[1])}" if pm else ""
            # Text, not str: a str cell is read as markup, and "[adam]" would vanish
            self.add_row("●" if key in self.marked else " ", st, Text(info.exercise), Text(metric),
                         Text(run_label(info)), Text(params_text(info.key_params()), style="dim"), key=key)
        if current in self.infos:
            self.move_cursor(row=self.get_row_index(current))

    def current_path(self) -> Path | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        return Path(key) if key else None

    def action_toggle_mark(self) -> None:
        path = self.current_path()
        if path is None:
            return
        key = str(path)
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.update_cell(key, "mark", "●" if key in self.marked else " ")
