"""`labbench watch RUN_FOLDER`: the lab bench following a run started elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def watch(
        run_folder: Path = typer.Argument(..., help="A run folder (with events.jsonl), e.g. one a headless "
                                                    "`labbench run` is writing"),
        runs_dir: Optional[Path] = typer.Option(None, "--runs-dir",
                                                help="The runs folder for the runs table (default $LABBENCH_RUNS "
                                                     "or ./runs)."),
    ):
        """Open the lab bench on a run folder and follow it live."""
        from rich.console import Console

        if not run_folder.is_dir() or not ((run_folder / "events.jsonl").exists()
                                           or (run_folder / "summary.json").exists()):
            Console(stderr=True).print(f"[bold red]error:[/] {run_folder}: not a run folder "
                                       "(no events.jsonl or summary.json in it)", highlight=False)
            raise typer.Exit(2)
        from .app import run_app

        run_app(runs_dir=runs_dir, watch=run_folder)
