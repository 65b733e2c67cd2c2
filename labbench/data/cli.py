"""``labbench data``: list, fetch and import data sets."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from . import REGISTRY, DataError, _load_sources, data_root

data_app = typer.Typer(help="List, fetch and import the data sets the exercises use.", no_args_is_help=True)
import_app = typer.Typer(help="Import a file you already have into the data folder.", no_args_is_help=True)
data_app.add_typer(import_app, name="import")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2):
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@data_app.command("list")
def list_cmd():
    """Each data set: where it is looked for, present or not, size, how to get it."""
    _load_sources()
    root = data_root()
    out.print(f"data folder: {root}  [dim](set LABBENCH_DATA to use another)[/]", highlight=False)
    # One block per data set: a six-column table becomes a tower of wrapped words at 80 columns.
    for name in sorted(REGISTRY):
        ds = REGISTRY[name]
        if ds.builtin:
            where, status, size = "(scikit-learn)", "[green]present[/]", ""
        else:
            paths = ds.paths(root)
            dirs = sorted({str(Path(f).parent) for f in ds.files})
            where = ", ".join(d + "/" for d in dirs)
            present = ds.present(root)
            n_have = sum(p.exists() for p in paths)
            status = ("[green]present[/]" if n_have == len(paths) else "[green]partial[/]") if present \
                else ("[yellow]incomplete[/]" if n_have else "[yellow]missing[/]")
            if present and ds.any_of and n_have < len(paths):
                status = f"[green]present[/] ({n_have}/{len(paths)} files)"
            size = f", {_human(_size(paths))}" if n_have else ""
        out.print(f"[bold cyan]{name}[/]  {status}{size}  {escape(ds.title)}", highlight=False)
        out.print(f"    looked for: {escape(where)}", highlight=False)
        if not ds.builtin:
            out.print(f"    to get it: {escape(ds.how_to_get())}", highlight=False)


@data_app.command("fetch")
def fetch_cmd(name: str = typer.Argument(..., help="A data set name from `labbench data list`"),
              force: bool = typer.Option(False, "--force", help="Download even when the files are present.")):
    """Download a data set into the data folder (with a progress bar and checksum)."""
    from . import get_dataset

    try:
        ds = get_dataset(name)
    except DataError as exc:
        _fail(str(exc))
    if ds.builtin:
        out.print(f"{name} ships with scikit-learn; nothing to fetch.")
        return
    if ds.fetch is None:
        _fail(f"{name} cannot be downloaded by labbench; {ds.how_to_get()}")
    root = data_root()
    if ds.present(root) and not force:
        out.print(f"{name} is already in {root} (use --force to download again).", highlight=False)
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        ds.fetch(root, None)
    except DataError as exc:
        _fail(f"{exc}\n  (offline? put the files into {root} by hand: see `labbench data list`)")
    except OSError as exc:
        _fail(f"cannot write to the data folder {root}: {exc}")
    out.print(f"[green]fetched[/] {name} into {root}", highlight=False)


@import_app.command("climate")
def import_climate_cmd(file: Path = typer.Argument(..., help="A Berkeley Earth / Kaggle city-temperature CSV, "
                                                               "or the zip it came in")):
    """Import a city-temperature CSV (or its zip) for the climate exercise."""
    try:
        from .climate import import_climate
    except ImportError:
        _fail("importing climate data is not available in this version of labbench "
              "(labbench.data.climate.import_climate is missing)")
    if not file.exists():
        _fail(f"{file}: no such file")
    try:
        result = import_climate(file)
    except DataError as exc:
        _fail(str(exc))
    except (OSError, ValueError) as exc:
        _fail(f"{file}: {exc}")
    out.print(f"[green]imported[/] {file}" + (f" -> {result}" if result else ""), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
