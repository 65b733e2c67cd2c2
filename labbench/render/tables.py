"""Tables of a run (``run.table`` events) for the terminal, compact enough for
80 columns: no vertical rules, the title on its own line (never squeezed into
the table's width), numbers right-aligned and text left-aligned."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compact_table(title: str, columns: list, rows: list[list], note: str = ""):
    from ..console import fmt_value

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1), expand=False)
    for i, col in enumerate(columns):
        values = [r[i] for r in rows if i < len(r) and r[i] not in (None, "")]
        numeric = i > 0 and bool(values) and all(_is_number(v) for v in values)
        table.add_column(Text(str(col)), justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(fmt_value(c)) for c in row))
    parts = []
    if title:
        parts.append(Text(str(title), style="bold"))
    parts.append(table)
    if note:
        parts.append(Text(str(note), style="dim italic"))
    return Group(*parts)
