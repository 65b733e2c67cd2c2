"""The runs table: every run under the runs folder (sweep points too), with
the ones whose process is still going marked live; sortable and filterable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ...console import STATUS_STYLE, fmt_value
from ...runs import RunInfo
from ..names import run_name, shown_metric, started_label

LIVE = "●"
SORTS = ("started", "exercise", "status", "metric", "name")


@dataclass
class Row:
    """One run as the table shows it (what is compared to know if a redraw is needed)."""

    key: str
    info: RunInfo
    live: bool
    status: str
    name: str
    metric: tuple[str, float] | None

    def cells(self) -> tuple:
        return (self.live, self.status, self.info.exercise, self.name, self.metric, self.info.start)

    def text(self) -> str:
        m = f"{self.metric[0]}={fmt_value(self.metric[1])}" if self.metric else ""
        return " ".join([self.status, "live" if self.live else "", self.info.exercise, self.name, m,
                         self.info.path.name]).lower()


def make_row(info: RunInfo, live: bool, last: dict | None = None, exercises: dict | None = None) -> Row:
    status = info.status
    if status == "running" and not live:
        status = "lost"  # "running" in its summary, but no process writes it any more
    if status == "lost" and live:
        status = "running"
    return Row(str(info.path), info, live, status, run_name(info, exercises=exercises),
               shown_metric(info, last, exercises))


def matches(row: Row, query: str) -> bool:
    """Every word of ``query`` must match: ``status:ok``, ``ex:1.1`` (or
    ``exercise:``), ``live``, or any text of the row."""
    text = row.text()
    for word in query.lower().split():
        key, sep, val = word.partition(":")
        if sep and key in ("status", "st"):
            if not row.status.startswith(val):
                return False
        elif sep and key in ("ex", "exercise"):
            if not row.info.exercise.lower().startswith(val):
                return False
        elif word == "live":
            if not row.live:
                return False
        elif word not in text:
            return False
    return True


def sort_rows(rows: list[Row], by: str, reverse: bool) -> list[Row]:
    if by == "exercise":
        key = lambda r: (r.info.exercise, r.info.start)  # noqa: E731
    elif by == "status":
        key = lambda r: (not r.live, r.status, r.info.start)  # noqa: E731
    elif by == "metric":
        key = lambda r: (r.metric is None, r.metric[0] if r.metric else "",  # noqa: E731
                         r.metric[1] if r.metric else 0.0)
    elif by == "name":
        key = lambda r: (r.name, r.info.start)  # noqa: E731
    else:  # started: newest first by default
        return sorted(rows, key=lambda r: (r.info.start or "", r.info.id), reverse=not reverse)
    return sorted(rows, key=key, reverse=reverse)


class RunsTable(DataTable):
    BINDINGS = [
        Binding("space", "toggle_mark", "Mark"),
        Binding("e", "app.load_run_params", "To form"),
        Binding("v", "app.show_log", "Log"),
        Binding("R", "app.resume", "Resume"),
        Binding("x,delete", "app.delete_runs", "Delete"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("slash", "app.filter_runs", "Filter"),
    ]

    def __init__(self, **kw):
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.marked: list[str] = []  # run folder paths, in the order marked
        self.infos: dict[str, RunInfo] = {}
        self.rows_shown: list[Row] = []
        self.all_rows: list[Row] = []
        self.sort_by = "started"
        self.reverse = False
        self.query_text = ""
        self._signature: tuple | None = None

    def on_mount(self) -> None:
        self.add_column("", key="mark", width=1)
        self.add_column("", key="live", width=1)
        self.add_column("status", key="status")
        self.add_column("exercise", key="exercise")
        self.add_column("run", key="name")
        self.add_column("metric", key="metric")
        self.add_column("started", key="started")

    def set_rows(self, rows: list[Row]) -> None:
        """Show ``rows`` (sorted and filtered); redraws only when something changed."""
        self.all_rows = rows
        self.infos = {r.key: r.info for r in rows}
        self.marked = [k for k in self.marked if k in self.infos]
        shown = sort_rows([r for r in rows if matches(r, self.query_text)], self.sort_by, self.reverse)
        signature = (tuple((r.key, r.cells()) for r in shown), tuple(self.marked))
        if signature == self._signature:
            return
        old, self._signature = self._signature, signature
        self.rows_shown = shown
        if old is not None and [k for k, _ in old[0]] == [r.key for r in shown] and old[1] == signature[1]:
            # the same runs in the same order (a run going on): change the cells, keep scroll and cursor
            before = dict(old[0])
            for r in shown:
                if before.get(r.key) != r.cells():
                    for column, value in zip(("mark", "live", "status", "exercise", "name", "metric", "started"),
                                             self._cells(r)):
                        self.update_cell(r.key, column, value, update_width=True)
            return
        current = self.current_key()
        self.clear()
        for r in shown:
            self.add_row(*self._cells(r), key=r.key)
        if current in {r.key for r in shown}:
            self.move_cursor(row=self.get_row_index(current))

    def _cells(self, r: Row) -> tuple:
        st = Text(r.status, style=STATUS_STYLE.get(r.status, "red" if r.status == "lost" else ""))
        metric = f"{r.metric[0]}={fmt_value(r.metric[1])}" if r.metric else ""
        # Text, not str: a str cell is read as markup, and "[adam]" would vanish
        return ("●" if r.key in self.marked else " ", Text(LIVE, style="bold green") if r.live else " ", st,
                Text(r.info.exercise), Text(r.name), Text(metric), Text(started_label(r.info), style="dim"))

    def refilter(self) -> None:
        self._signature = None
        self.set_rows(self.all_rows)

    def set_query(self, text: str) -> None:
        self.query_text = text.strip()
        self.refilter()

    def current_key(self) -> str | None:
        if not self.row_count or not (0 <= self.cursor_row < self.row_count):
            return None
        return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value

    def current_path(self) -> Path | None:
        key = self.current_key()
        return Path(key) if key else None

    def current_info(self) -> RunInfo | None:
        key = self.current_key()
        return self.infos.get(key) if key else None

    def selection(self) -> list[str]:
        """The marked runs, else the one under the cursor."""
        if self.marked:
            return list(self.marked)
        key = self.current_key()
        return [key] if key else []

    def action_toggle_mark(self) -> None:
        key = self.current_key()
        if key is None:
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.update_cell(key, "mark", "●" if key in self.marked else " ")
        self._signature = (self._signature[0], tuple(self.marked)) if self._signature else None

    def action_cycle_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.reverse = False
        self.refilter()
        self.app.notify(f"runs sorted by {self.sort_by}", timeout=2)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        by = key if key in SORTS else None
        if by is None:
            return
        if by == self.sort_by:
            self.reverse = not self.reverse
        else:
            self.sort_by, self.reverse = by, False
        self.refilter()
