"""The ``labbench`` command line.

Bare ``labbench`` opens the lab bench (the Textual app); the subcommands run the
same engine headless.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from . import __version__

app = typer.Typer(
    help="labbench - a terminal lab bench for the neural-networks course.\n\n"
    "Run `labbench` alone to open the lab bench, or use a command below.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
presets_app = typer.Typer(help="Create, check and list presets (TOML files of settings).", no_args_is_help=True)
app.add_typer(presets_app, name="presets")

out = Console()
err = Console(stderr=True, soft_wrap=True)


class BadInput(Exception):
    """Bad input from the user: printed without a traceback, exit code 2."""


def fail(message: str, code: int = 2):
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _bad_input(exc: Exception):
    from .engine.params import ParamsInvalid

    if isinstance(exc, ParamsInvalid):
        for e in exc.errors:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    fail(str(exc))


def _data_status(names: list[str]) -> str:
    if not names:
        return "-"
    try:
        from .data import dataset_status
    except ImportError:  # pragma: no cover
        return ", ".join(names)
    parts = []
    for n in names:
        present = dataset_status(n)
        mark = "[green]present[/]" if present else "[yellow]missing[/]"
        parts.append(f"{n} ({mark})")
    return ", ".join(parts)


def print_exercise_list(check: bool = False) -> None:
    from rich.markup import escape

    from .engine.registry import SESSIONS, ExerciseBroken, list_exercise_stubs

    stubs = list_exercise_stubs()
    if check:  # import every module now: import errors show up here instead of at run time
        for stub in stubs:
            try:
                stub.load()
            except ExerciseBroken:
                pass
        stubs = list_exercise_stubs()
    healthy = [s for s in stubs if not s.broken]
    for session, title in SESSIONS.items():
        items = [e for e in healthy if e.session == session]
        if not items:
            continue
        table = Table(title=f"Session {session} - {title}", title_justify="left", title_style="bold")
        table.add_column("id", style="cyan", no_wrap=True)
        table.add_column("title")
        table.add_column("data")
        for ex in items:
            table.add_row(ex.id, ex.title, _data_status(ex.data))
        out.print(table)
    broken = [s for s in stubs if s.broken]
    if broken:
        out.print("[bold red]Broken exercise modules[/] (the others work as usual):")
        for s in broken:
            out.print(f"  [red]{escape(s.id)}[/]  {escape(s.error or '')}", highlight=False, soft_wrap=True)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", envvar="LABBENCH_RUNS",
                                            help="Runs folder of the lab bench (default ./runs)."),
):
    if version:
        out.print(f"labbench {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        try:
            from .tui.app import run_app
        except ImportError:
            print_exercise_list()
            out.print("\nRun one with [bold]labbench run EXERCISE_ID[/] or [bold]labbench run PRESET.toml[/]; "
                      "[bold]labbench show EXERCISE_ID[/] explains it.")
            return
        code = run_app(runs_dir=runs_dir)
        if code:
            raise typer.Exit(code)  # a crash of the lab bench is not a clean quit


@app.command("list")
def list_cmd(check: bool = typer.Option(False, "--check", help="Import every exercise module to find the broken ones "
                                                              "(slower: loads torch).")):
    """List the exercises by course session, with the data each needs."""
    print_exercise_list(check=check)


@app.command()
def show(exercise_id: str = typer.Argument(..., help="An exercise id, e.g. 1.1-perceptron")):
    """Explain an exercise and list its parameters."""
    from .engine.params import describe_fields, type_label
    from .engine.presets import toml_literal, list_presets
    from .engine.registry import UnknownExercise, get_exercise

    try:
        ex = get_exercise(exercise_id)
    except UnknownExercise as exc:
        fail(str(exc))
    out.print(f"[bold cyan]{ex.id}[/]  [bold]{ex.title}[/]  (session {ex.session})\n")
    out.print(Markdown(ex.description.strip()))
    # One block per parameter: reads at 80 columns, where a five-column table wraps into a tower.
    from rich.text import Text

    out.print(Text("Parameters", style="bold underline"))
    for f in describe_fields(ex.Params):
        limits = " | ".join(toml_literal(c) if isinstance(c, bool) else str(c) for c in f.choices) if f.choices \
            else f.bounds
        line = Text()
        line.append(f.name, style="bold cyan")
        line.append(f"  {type_label(f)} = ", style="dim")
        line.append("unset" if f.default is None else toml_literal(f.default))
        if limits:
            line.append(f"   [{limits}]", style="yellow")
        out.print(line)
        if f.description:
            out.print(Text("    " + f.description), highlight=False)
    if ex.data:
        out.print(f"Data: {_data_status(ex.data)}")
    shipped = list_presets().get(ex.id, [])
    if shipped:
        out.print("Presets: " + ", ".join(_short_path(p) for p in shipped), highlight=False)


def _short_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@presets_app.command("new")
def presets_new(
    exercise_id: str = typer.Argument(..., help="An exercise id"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of printing."),
):
    """Print a complete preset with every parameter at its default."""
    from .engine.presets import render_preset
    from .engine.registry import UnknownExercise, get_exercise

    try:
        ex = get_exercise(exercise_id)
    except UnknownExercise as exc:
        fail(str(exc))
    text = render_preset(ex, ex.default_params(), name="")
    if output:
        if output.exists():
            fail(f"{output}: exists already; choose another file name")
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@presets_app.command("validate")
def presets_validate(files: List[Path] = typer.Argument(..., help="Preset files to check")):
    """Check presets; exit 0 when all are valid, 2 otherwise."""
    from .engine.params import ParamsInvalid
    from .engine.presets import load_preset

    bad = 0
    for f in files:
        try:
            p = load_preset(f)
        except ParamsInvalid as exc:
            bad += 1
            for e in exc.errors:
                err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            continue
        n = 1
        for v in p.sweep.values():
            n *= len(v)
        extra = f", sweep of {n} runs" if p.sweep else ""
        out.print(f"[green]ok[/] {f} ({p.exercise.id}{extra})", highlight=False)
    raise typer.Exit(2 if bad else 0)


@presets_app.command("list")
def presets_list():
    """List the shipped presets and your own ($LABBENCH_PRESETS, where the lab bench saves them) by exercise."""
    from .engine.presets import list_presets, shipped_presets_dir
    from .tui.paths import user_presets_dir

    shipped = list_presets([shipped_presets_dir()])
    user_dir = user_presets_dir()
    mine = list_presets([user_dir])
    for ex_id in [e for e in shipped] + [e for e in mine if e not in shipped]:
        out.print(f"[cyan]{ex_id}[/]")
        for p in shipped.get(ex_id, []):
            out.print(f"  {_short_path(p)}", highlight=False, soft_wrap=True)
        for p in mine.get(ex_id, []):
            out.print(f"  {_short_path(p)}  [dim](yours)[/]", highlight=False, soft_wrap=True)
    if not mine:
        out.print(f"[dim]no presets of your own in {user_dir} (the lab bench's ctrl+s saves there; "
                  "$LABBENCH_PRESETS moves it)[/]", highlight=False, soft_wrap=True)


def _load_target(target: str, overrides, sweep_overrides=None, seed=None, device=None):
    from .engine.params import ParamsInvalid
    from .engine.presets import load_preset, preset_for_exercise

    try:
        if target.endswith(".toml") or Path(target).is_file():
            preset = load_preset(target, overrides=overrides, sweep_overrides=sweep_overrides)
        else:
            preset = preset_for_exercise(target, overrides=overrides, sweep_overrides=sweep_overrides)
    except ParamsInvalid as exc:
        _bad_input(exc)
    if seed is not None:
        if seed < 0:
            fail(f"--seed: must be a non-negative integer, got {seed}")
        preset.seed = seed
    if device is not None:
        from .engine.presets import DEVICE_RE

        if not DEVICE_RE.match(device):
            fail(f"--device: must be auto, cpu, cuda or cuda:N, got {device!r}")
        preset.device = device
    return preset


def _check_data(presets) -> None:
    """Missing data is bad input: say so (folder, files, command) before any
    run folder is made. Small public files are fetched here on first use."""
    from .data import DataError, require

    names: list[str] = []
    for p in presets:
        names += [n for n in p.exercise.data_needed(p.params) if n not in names]
    for name in names:
        try:
            require(name)
        except DataError as exc:
            fail(str(exc))


def _resolve_device(spec: str):
    from .engine.devices import DeviceUnavailable, resolve_device

    try:
        return resolve_device(spec)
    except DeviceUnavailable as exc:
        fail(str(exc))


SET_HELP = "Override a parameter: KEY=VALUE (TOML syntax: 0.1, true, \"adam\", [1, 2]). Repeatable."


@app.command()
def run(
    target: str = typer.Argument(..., help="A preset file (.toml) or an exercise id"),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the preset's, else 0)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="The run folder (created; must be new or empty)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where new run folders go by default."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables; only the final status."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures",
                                  help="Draw the final curves, figures and image grids in the terminal."),
):
    """Run an exercise headless and write a run folder.

    Exit codes: 0 ok, 1 failed, 2 bad input, 3 diverged, 130 interrupted.
    """
    from .console import ConsoleProgress, print_pictures, summary_table
    from .engine.runner import OutDirNotEmpty, default_run_dir, execute, prepare_out_dir

    preset = _load_target(target, set_, seed=seed, device=device)
    if preset.sweep:
        err.print("[yellow]note:[/] this preset has a \\[sweep] table; running it as a sweep "
                  "(`labbench sweep` does the same)")
        _sweep(preset, out_dir, runs_dir, quiet)
        return
    dev = _resolve_device(preset.device)
    _check_data([preset])
    try:
        folder = prepare_out_dir(out_dir) if out_dir else default_run_dir(preset, runs_dir)
    except OutDirNotEmpty as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot create the run folder: {exc}")
    with ConsoleProgress(quiet=quiet, label=preset.exercise.id) as progress:
        result = execute(preset, folder, listeners=[progress], device=dev)
    if result.summary.get("error_kind") == "data":
        err.print(f"[bold red]error:[/] {result.summary.get('message')}", highlight=False, soft_wrap=True)
        err.print(f"(the run folder {folder} records the failure)", highlight=False)
    elif quiet:
        out.print(f"{result.status} {folder}", highlight=False)
    else:
        if pictures and result.status != "failed":
            print_pictures(out, folder)
        out.print(summary_table(result.summary, folder))
    if result.status == "failed" and result.summary.get("traceback") and not quiet:
        err.print("[dim]the full traceback is in summary.json[/]")
    raise typer.Exit(result.exit_code)


@app.command()
def sweep(
    target: str = typer.Argument(..., help="A preset file (.toml) with a \\[sweep] table, or an exercise id"),
    set_: List[str] = typer.Option([], "--set", "-s", help="KEY=V1,V2,... sweeps KEY over the values; "
                                   "KEY=V fixes it. Repeatable."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed for every point."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="The sweep folder (created; must be new or empty)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where new sweep folders go by default."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final table."),
):
    """Run the grid of a preset's \\[sweep] lists (and --set lists), one run each."""
    preset = _load_target(target, [], sweep_overrides=set_, seed=seed, device=device)
    _sweep(preset, out_dir, runs_dir, quiet)


def sweep_metric_columns(metrics: list[dict], primary: str = "") -> list[str]:
    """The numeric metrics of a sweep's runs, primary first, then in the order
    the exercise reports them: a metric some runs lack (a reference figure
    given for some settings only) goes after the metric it follows in the runs
    that have it, not to the end."""
    keys: list[str] = [primary] if primary else []
    for values in metrics:
        numeric = [k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i, k in enumerate(numeric):
            if k in keys:
                continue
            before = next((numeric[j] for j in range(i - 1, -1, -1) if numeric[j] in keys), None)
            keys.insert(keys.index(before) + 1 if before is not None else len(keys), k)
    return keys


def _sweep(preset, out_dir, runs_dir, quiet):
    from .console import STATUS_STYLE, ConsoleProgress, fmt_value
    from .engine.runner import OutDirNotEmpty, StopSignal, default_run_dir, execute, prepare_out_dir
    from .engine.sweep import expand, write_index

    points = expand(preset)
    dev = _resolve_device(preset.device)
    _check_data([pt.preset for pt in points])
    try:
        folder = prepare_out_dir(out_dir) if out_dir else default_run_dir(preset, runs_dir, prefix="sweep-")
    except OutDirNotEmpty as exc:
        fail(str(exc))
    results: dict[int, dict] = {}
    write_index(folder, preset, points, results)
    interrupted = False
    with StopSignal() as stop:
        for point in points:
            if stop.requested:
                interrupted = True
                break
            label = f"[{point.index}/{len(points)}] {point.label or preset.exercise.id}"
            with ConsoleProgress(quiet=quiet, label=label) as progress:
                res = execute(point.preset, folder / point.folder_name, listeners=[progress], stop=stop, device=dev)
            results[point.index] = res.summary
            write_index(folder, preset, points, results)
            if not quiet:
                style = STATUS_STYLE.get(res.status, "")
                out.print(f"  -> [{style}]{res.status}[/] {res.summary.get('message') or ''}", highlight=False)
            if res.status == "interrupted":
                interrupted = True
                break

    primary = preset.exercise.primary_metric
    metric_keys = sweep_metric_columns([s.get("metrics") or {} for s in results.values()], primary)
    if len(results) > 1:  # a metric equal at every point says nothing about the sweep
        metric_keys = [k for k in metric_keys if k == primary or len(
            {repr((s.get("metrics") or {}).get(k)) for s in results.values()}) > 1]
    room = max(1, (out.width - 14 - 10 * len(preset.sweep)) // 11)  # keep the table inside the terminal
    metric_keys = metric_keys[:min(6, room)]
    table = Table(title=f"sweep {preset.exercise.id}: {len(results)}/{len(points)} runs", title_justify="left")
    table.add_column("#")
    for k in preset.sweep:
        table.add_column(k, overflow="fold")  # a narrow terminal folds a long name, never cuts it
    table.add_column("status")
    for k in metric_keys:
        table.add_column(k, justify="right", overflow="fold")
    table.add_column("wall s", justify="right")
    for point in points:
        s = results.get(point.index)
        if s is None:
            table.add_row(str(point.index), *(str(v) for v in point.values.values()), "[dim]not run[/]")
            continue
        st = s.get("status", "?")
        status = f"[{STATUS_STYLE.get(st, '')}]{st}[/]"
        if st == "diverged" and s.get("diverged_step") is not None:
            status += f" @{s['diverged_step']}"
        metrics = s.get("metrics") or {}
        table.add_row(str(point.index), *(str(v) for v in point.values.values()), status,
                      *(fmt_value(metrics.get(k, "")) for k in metric_keys), f"{s.get('wall_time_s', 0):.2f}")
    out.print(table)
    out.print(f"sweep folder: {folder}", highlight=False)
    if interrupted:
        raise typer.Exit(130)
    bad = [s for s in results.values() if s.get("status") not in ("ok", "diverged")]
    raise typer.Exit(1 if bad else 0)


@app.command()
def doctor():
    """Check the set-up: versions, devices and the data folder."""
    import platform

    import torch

    import os

    from .data import data_root
    from .engine.sysmon import doctor_rows

    table = Table(title="labbench doctor", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("found")
    table.add_row("labbench", __version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", f"{torch.__version__} (CUDA {torch.version.cuda or 'none'})")
    table.add_row("cpu", f"{platform.processor() or platform.machine() or 'CPU'}, {os.cpu_count()} cores")
    for key, text in doctor_rows():  # each GPU with its memory and load, the driver, system sampling
        table.add_row(key, text)
    if not torch.cuda.is_available():
        table.add_row("cuda", "[yellow]not available[/]: runs go on the CPU")
    root = data_root()
    table.add_row("data folder", f"{root} ({'exists' if root.is_dir() else 'not created yet'})")
    out.print(table)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="The folder of a stopped, interrupted or finished run"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Train to N epochs in all (extends a finished run)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (default: the run's)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables; only the final status."),
    pictures: bool = typer.Option(True, "--pictures/--no-pictures",
                                  help="Draw the final curves, figures and image grids in the terminal."),
):
    """Continue a run from its last checkpoint, in the same folder.

    The events are appended, the curves go on where they stopped and
    meta.json records the resumption. Exit codes as for `run`.
    """
    from rich.markup import escape

    from .console import ConsoleProgress, print_pictures, summary_table
    from .engine.params import ParamsInvalid
    from .engine.runner import ResumeError, prepare_resume, resume as resume_run

    try:
        prepared = prepare_resume(run_dir, epochs=epochs)
    except ResumeError as exc:
        fail(escape(str(exc)))
    except ParamsInvalid as exc:
        _bad_input(exc)
    if device is not None:
        from .engine.presets import DEVICE_RE

        if not DEVICE_RE.match(device):
            fail(f"--device: must be auto, cpu, cuda or cuda:N, got {escape(device)!r}")
    preset = prepared[0]
    dev = _resolve_device(device or preset.device)
    _check_data([preset])
    with ConsoleProgress(quiet=quiet, label=preset.exercise.id) as progress:
        try:
            result = resume_run(run_dir, epochs=epochs, listeners=[progress], device=dev, prepared=prepared)
        except ResumeError as exc:
            fail(escape(str(exc)))
    if quiet:
        out.print(f"{result.status} {run_dir}", highlight=False)
    else:
        if pictures and result.status != "failed":
            print_pictures(out, run_dir)
        out.print(summary_table(result.summary, run_dir))
    raise typer.Exit(result.exit_code)


def _register_optional():
    """Subcommands that live beside their own code (data, tui, compare/export)."""
    from importlib import import_module
    from importlib.util import find_spec

    for module, attr in (("labbench.data.cli", "register"), ("labbench.report", "register"),
                         ("labbench.tui.cli", "register")):
        try:
            spec = find_spec(module)
        except ModuleNotFoundError:  # its parent package is not there
            spec = None
        if spec is not None:
            getattr(import_module(module), attr)(app)


_register_optional()


def main():
    app()


if __name__ == "__main__":
    main()
