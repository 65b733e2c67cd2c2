"""`labbench watch RUN_FOLDER`: the lab bench following a run started elsewhere."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer


def _is_run_folder(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "events.jsonl").exists() or (folder / "summary.json").exists())


def wait_for_run(folder: Path, timeout_s: float, say=print, poll_s: float = 0.2) -> bool:
    """Wait until ``folder`` is a run folder (its run has written its first
    event), saying so once; False when ``timeout_s`` passes first."""
    if _is_run_folder(folder):
        return True
    say(f"waiting for {folder} to start (up to {timeout_s:g} s; Ctrl-C gives up)...")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        if _is_run_folder(folder):
            return True
    return False


def register(app: typer.Typer) -> None:
    @app.command()
    def watch(
        run_folder: Path = typer.Argument(..., help="A run folder (with events.jsonl), e.g. one a headless "
                                                    "`labbench run` is writing"),
        runs_dir: Optional[Path] = typer.Option(None, "--runs-dir",
                                                help="The runs folder for the runs table (default $LABBENCH_RUNS "
                                                     "or ./runs)."),
        wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for a run that has not started yet."),
    ):
        """Open the lab bench on a run folder and follow it live (waiting for it to start)."""
        from rich.console import Console

        err = Console(stderr=True, soft_wrap=True)
        try:
            ready = wait_for_run(run_folder, wait, say=lambda msg: err.print(msg, highlight=False))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        if not ready:
            what = "no such folder" if not run_folder.exists() else "no events.jsonl or summary.json in it"
            err.print(f"[bold red]error:[/] {run_folder}: not a run folder after {wait:g} s ({what})",
                      highlight=False)
            raise typer.Exit(2)
        from .app import run_app

        code = run_app(runs_dir=runs_dir, watch=run_folder)
        if code:
            raise typer.Exit(code)
