"""The lab bench: pick an exercise, edit its parameters, run, watch, stop, compare.

Runs are detached subprocesses (``python -m labbench run``, or ``sweep`` /
``resume``) writing run folders; the app only reads those folders (a timer
tails ``events.jsonl`` a few times a second), so a crash or an out-of-memory in
a run cannot take the app down, a run goes on when the app is closed (or its
SSH connection drops), and a lab bench opened later follows it again.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches, QueryError
from textual.widgets import (Button, Footer, Input, Label, Markdown, Select, Static, TabbedContent, TabPane,
                             Tree)

from ..engine.events import EVENTS, SUMMARY, read_json
from ..engine.procs import GRACE_S, RunManager, RunProc, stderr_file_of
from ..engine.sysmon import gpu_choice_label
from ..engine.presets import list_presets, render_preset, shipped_presets_dir
from ..runs import RunInfo, is_live, list_runs, load_run
from .names import run_name
from .paths import default_runs_dir, user_presets_dir
from .state import RunView, SweepView
from .widgets.exercise_tree import ExerciseTree
from .widgets.field_input import FieldInput
from .widgets import live as live_widgets
from .widgets.live import LivePanel, safe_id, sweep_text
from .widgets.param_form import ParamForm
from .widgets.runs_table import RunsTable, make_row

REFRESH_S = 0.25  # live panels redraw at most this often
RUNS_EVERY = 4  # ticks between two looks at the runs folder (about once a second)
TRASH = ".trash"  # inside the runs folder: deleted runs go here
DEVICES_S = 10.0  # the device picker's free memory and load are read again this often

__all__ = ["LabBench", "run_app", "default_runs_dir", "user_presets_dir", "preset_slug"]


def preset_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "preset"


class LabBench(App):
    CSS_PATH = "app.tcss"
    TITLE = "labbench"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("r,ctrl+r", "run", "Run"),
        Binding("s", "stop", "Stop"),
        Binding("l", "toggle_log", "Log"),
        Binding("c", "compare", "Compare"),
        Binding("t", "toggle_tree", "Tree"),
        Binding("ctrl+s", "save_preset", "Save"),
        Binding("ctrl+z", "reset_form", "Defaults", show=False),
        Binding("1", "tab('tab-exercise')", "Exercise", show=False),
        Binding("2", "tab('tab-live')", "Live", show=False),
        Binding("3", "tab('tab-runs')", "Runs", show=False),
        Binding("escape", "leave_field", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, runs_dir: Path | str | None = None, *, presets_dir: Path | str | None = None,
                 exercises: dict | None = None, watch: Path | str | None = None, detect_devices: bool = True,
                 grace_s: float | None = None, shipped_presets: bool = True, python: str | None = None):
        super().__init__()
        from ..engine.registry import all_exercises

        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.presets_dir = Path(presets_dir) if presets_dir else user_presets_dir()
        self.exercises = exercises if exercises is not None else all_exercises()
        self.shipped_presets = shipped_presets
        self.watch_dir = Path(watch) if watch else None
        self.detect_devices = detect_devices
        self.manager = RunManager(self.runs_dir, grace_s=GRACE_S if grace_s is None else grace_s,
                                  view_factory=RunView, python=python)
        self.exercise = None
        self.views: dict[str, RunView] = {}  # run folder -> view (this session's, followed and reopened runs)
        self.sweeps: dict[str, SweepView] = {}  # sweep folder -> view
        self.following: SweepView | None = None  # the sweep whose running point the Live tab follows
        self.selected: RunView | None = None
        self.sweep_spec: dict | None = None  # a sweep preset loaded into the form: its [sweep] lists
        self.logy = False
        self._ticks = 0

    # ------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield ExerciseTree(self.exercises, self._presets(), id="tree")
            with TabbedContent(id="tabs", initial="tab-exercise"):
                with TabPane("Exercise", id="tab-exercise"):
                    with Horizontal(id="toolbar"):
                        yield Label("device", id="device-label")
                        yield Select([("auto", "auto"), ("cpu", "cpu")], value="auto", allow_blank=False,
                                     compact=True, id="device")
                        yield Button("Run", id="btn-run", variant="success", compact=True)
                        yield Button("Stop", id="btn-stop", variant="error", compact=True)
                        yield Button("Reset", id="btn-reset", compact=True)
                        yield Button("Save", id="btn-save", compact=True)
                    yield Static("", id="data-warning", markup=False)
                    yield Static("", id="sweep-note", markup=False)
                    with Container(id="setup"):
                        with VerticalScroll(id="desc-scroll"):
                            yield Markdown("Select an exercise in the tree on the left.", id="description")
                        with VerticalScroll(id="form-scroll"):
                            yield Vertical(id="form-box")
                with TabPane("Live", id="tab-live"):
                    yield LivePanel(id="live")
                with TabPane("Runs", id="tab-runs"):
                    yield FieldInput(placeholder="/ filter: words, status:ok, ex:1.1, live", id="runs-filter")
                    yield RunsTable(id="runs")
                    yield Static("enter open  c compare marked  s stop  (more keys below; t hides the tree)",
                                 id="runs-hint")
        yield Footer()

    def _presets(self) -> dict[str, list[tuple[Path, bool]]]:
        """Preset files by exercise, each flagged True when it is the user's own."""
        out: dict[str, list[tuple[Path, bool]]] = {}
        sources = ([(shipped_presets_dir(), False)] if self.shipped_presets else []) + [(self.presets_dir, True)]
        for folder, user in sources:
            for ex_id, paths in list_presets([folder], known=self.exercises).items():
                out.setdefault(ex_id, []).extend((p, user) for p in paths)
        return out

    def on_mount(self) -> None:
        self._ticker = self.set_interval(REFRESH_S, self.tick)
        self.reattach()
        self.refresh_runs()
        if self.detect_devices:
            self.find_devices()
            self.set_interval(DEVICES_S, self.find_devices)  # free memory and load change as runs go
        if os.environ.get("LABBENCH_DEBUG_CRASH"):
            # hidden: lets a test check that a crash ends the process with a non-zero status
            self.set_timer(float(os.environ["LABBENCH_DEBUG_CRASH"] or 1), self._debug_crash)
        if self.exercises:
            first = next(iter(self.exercises))
            self.select_exercise(first)
            self.query_one(ExerciseTree).select_exercise(first)
        if self.watch_dir is not None:
            self.open_run(self.watch_dir)

    def _debug_crash(self) -> None:
        raise RuntimeError("LABBENCH_DEBUG_CRASH: a deliberate crash of the lab bench")

    @work(thread=True, exclusive=True, group="devices")
    def find_devices(self) -> None:
        """GPU names, free memory and load (NVML, else torch: done off the UI thread)."""
        from ..engine.sysmon import gpu_inventory

        gpus = gpu_inventory(usable=True)[0]
        self.call_from_thread(self._set_devices, gpus)

    def _set_devices(self, gpus) -> None:
        self.manager.gpus = [g.name for g in gpus]
        options = [("auto", "auto"), ("cpu", "cpu")]
        options += [(gpu_choice_label(g), g.name) for g in gpus]  # "cuda:0 H100, 61.2 GiB free, 92% busy"
        sel = self.query_one("#device", Select)
        if sel.expanded or options == getattr(self, "_device_options", None):
            return  # never while the list is open under the user's hand
        self._device_options = options
        value = sel.value
        sel.set_options(options)
        sel.value = value if any(v == value for _, v in options) else "auto"

    def get_system_commands(self, screen):
        """The command palette (ctrl+p): every action of the app, and the exercises."""
        yield from super().get_system_commands(screen)
        actions = [
            ("Run", "run the form's settings (a sweep preset runs its grid)", self.action_run),
            ("Stop", "stop the selected run (a second stop kills it)", self.action_stop),
            ("Compare", "compare the runs marked in the Runs tab", self.action_compare),
            ("Save preset", "save the form as a preset", self.action_save_preset),
            ("Load run into the form", "the selected run's parameters into the form", self.action_load_run_params),
            ("Log scale", "curves on a log scale (toggle)", self.action_toggle_log),
            ("Resume", "continue the selected interrupted run", self.action_resume),
            ("Run log", "the selected run's log and stderr", self.action_show_log),
            ("Delete runs", "move the marked (or selected) runs to the trash", self.action_delete_runs),
            ("Reset form", "the course defaults", self.action_reset_form),
            ("Tree", "hide or show the exercise tree", self.action_toggle_tree),
            ("Tab: Exercise", "the description and the form", lambda: self.action_tab("tab-exercise")),
            ("Tab: Live", "the selected run, live", lambda: self.action_tab("tab-live")),
            ("Tab: Runs", "every run in the runs folder", lambda: self.action_tab("tab-runs")),
            ("Filter runs", "filter the runs table", self.action_filter_runs),
            ("Help", "keys and notes", self.action_help),
        ]
        for title, help_text, callback in actions:
            yield SystemCommand(title, help_text, callback)
        for ex in self.exercises.values():
            yield SystemCommand(f"Exercise {ex.id}", ex.title, lambda ex_id=ex.id: self.pick_exercise(ex_id))

    # ------------------------------------------------------------ exercise
    def form_id(self, ex_id: str) -> str:
        return safe_id("form-", ex_id)

    def select_exercise(self, ex_id: str) -> None:
        """Show an exercise: its description and its form. Each exercise keeps
        its own form (mounted the first time), so moving through the tree
        never mounts a widget over one that is still being removed, and edits
        are kept while browsing."""
        ex = self.exercises.get(ex_id)
        if ex is None or (self.exercise is not None and self.exercise.id == ex_id and self.form is not None):
            return
        self.exercise = ex
        if self.sweep_spec is not None and self.sweep_spec["exercise"] != ex.id:
            self.set_sweep_spec(None)
        try:
            description = ex.description.strip()
        except Exception:  # a module that cannot be loaded: the form's place says why
            description = ""
        self.query_one("#description", Markdown).update(f"## {ex.id}: {ex.title}\n\n{description}")
        warn = self.query_one("#data-warning", Static)
        missing = self.query_one(ExerciseTree).missing.get(ex.id) or []
        if missing:
            from ..data import get_dataset

            hints = "; ".join(f"{n}: {get_dataset(n).how_to_get()}" for n in missing)
            warn.update(f"Data missing - {hints}")
            warn.display = True
        else:
            warn.display = False
        box = self.query_one("#form-box")
        wanted = self.form_id(ex.id)
        for child in box.children:
            child.display = child.id == wanted
        if not box.query(f"#{wanted}"):
            try:
                form = ParamForm(ex, id=wanted)  # imports the exercise's module the first time
            except Exception as exc:  # a broken exercise module: say why, keep the lab bench going
                from ..engine.registry import ExerciseBroken

                why = str(exc) if isinstance(exc, ExerciseBroken) else f"{type(exc).__name__}: {exc}"
                box.mount(Static(f"This exercise cannot be loaded: {why}", id=wanted, classes="form-broken",
                                 markup=False))
                return
            box.mount(form)
        self.query_one("#form-scroll").scroll_home(animate=False)

    @property
    def form(self) -> ParamForm | None:
        if self.exercise is None:
            return None
        try:
            return self.query_one(f"#{self.form_id(self.exercise.id)}", ParamForm)
        except QueryError:  # not mounted, or the exercise could not be loaded (a message in its place)
            return None

    def pick_exercise(self, ex_id: str) -> None:
        self.select_exercise(ex_id)
        self.query_one(ExerciseTree).select_exercise(ex_id)
        self.action_tab("tab-exercise")

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        node = event.node.data
        if node is not None and node.kind in ("exercise", "preset"):
            self.select_exercise(node.exercise)  # browsing with the arrows shows each exercise

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        node = event.node.data
        if node is None or node.kind == "session":
            return
        if node.kind == "exercise":
            self.select_exercise(node.exercise)
            self.action_tab("tab-exercise")
        elif node.kind == "preset":
            self.load_preset_file(node.path)

    def load_preset_file(self, path: Path) -> None:
        """Fill the form from a preset file (shipped or the user's), read and
        checked as ``labbench run`` reads it; a preset with a [sweep] table
        makes Run start the sweep."""
        from ..engine.params import ParamsInvalid
        from ..engine.presets import load_preset

        try:
            preset = load_preset(path)
        except ParamsInvalid as exc:
            self.notify("\n".join(str(e) for e in exc.errors), severity="error", title="preset not loaded",
                        markup=False)
            return
        if preset.exercise.id not in self.exercises:
            self.notify(f"{path}: exercise {preset.exercise.id} is not in this lab bench", severity="error",
                        markup=False)
            return
        self.select_exercise(preset.exercise.id)
        tree = self.query_one(ExerciseTree)
        here = tree.cursor_node.data if tree.cursor_node is not None else None
        if here is None or here.exercise != preset.exercise.id:  # keep the cursor on the preset picked
            tree.select_exercise(preset.exercise.id)
        form = self.form
        if form is not None:
            form.set_values(preset.params.model_dump(mode="json"), seed=preset.seed)
        self.set_sweep_spec({"exercise": preset.exercise.id, "sweep": preset.sweep, "name": preset.name,
                             "path": Path(path)} if preset.sweep else None)
        self.notify(f"loaded preset {Path(path).name}" + (" (a sweep: r runs its grid)" if preset.sweep else ""),
                    markup=False)
        self.action_tab("tab-exercise")

    def set_sweep_spec(self, spec: dict | None) -> None:
        self.sweep_spec = spec
        note = self.query_one("#sweep-note", Static)
        note.display = spec is not None
        if spec is not None:
            n = 1
            for values in spec["sweep"].values():
                n *= len(values)
            lists = "  ".join(f"{k} = {v}" for k, v in spec["sweep"].items())
            note.update(f"sweep preset {spec['name'] or spec['path'].name}: {lists}  ({n} runs). "
                        "r runs the grid; ctrl+z (defaults) forgets the sweep.")

    # ------------------------------------------------------------- actions
    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        if tab == "tab-runs":
            self.query_one(RunsTable).focus()

    def action_toggle_tree(self) -> None:
        tree = self.query_one(ExerciseTree)
        tree.display = not tree.display
        if tree.display:
            tree.focus()
        elif tree.has_focus:
            self.query_one("#tabs").focus()

    def action_leave_field(self) -> None:
        if self.screen is not self.screen_stack[0]:
            return
        if self.focused is not None and self.focused.id == "runs-filter":
            self.query_one(RunsTable).focus()
            return
        tree = self.query_one(ExerciseTree)
        if tree.display:
            tree.focus()

    def action_filter_runs(self) -> None:
        self.action_tab("tab-runs")
        self.query_one("#runs-filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self.query_one(RunsTable).set_query(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            self.query_one(RunsTable).focus()

    def action_reset_form(self) -> None:
        if self.form is not None:
            self.form.reset()
        self.set_sweep_spec(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"btn-run": self.action_run, "btn-stop": self.action_stop, "btn-reset": self.action_reset_form,
                   "btn-save": self.action_save_preset}
        if event.button.id in actions:
            actions[event.button.id]()

    def action_run(self) -> RunProc | None:
        form = self.form
        if form is None or self.exercise is None:
            self.notify("select an exercise first", severity="warning")
            return None
        params, errors = form.validate()
        if errors:
            self.notify("\n".join(errors.values()), title="fix the form first", severity="error", markup=False)
            return None
        device = str(self.query_one("#device", Select).value)
        if self.sweep_spec is not None and self.sweep_spec["exercise"] == self.exercise.id:
            self.confirm_sweep(params, form.seed() or 0, device)
            return None
        try:
            proc = self.manager.submit(self.exercise, params, seed=form.seed() or 0, device=device)
        except OSError as exc:
            self.notify(f"cannot start the run: {exc}", severity="error", markup=False)
            return None
        self._started(proc)
        return proc

    def _started(self, proc: RunProc) -> None:
        if proc.view is not None:
            self.views[str(proc.folder)] = proc.view
        if proc.state == "queued":
            self.notify(f"{proc.folder.name}: waiting for a free {proc.device_spec} device", markup=False)
        if proc.kind == "sweep":
            sweep = self.sweeps.setdefault(str(proc.folder), SweepView(proc.folder))
            self.follow_sweep(sweep)
        else:
            self.following = None
            self.show_view(proc.view)
        self.action_tab("tab-live")
        self.query_one(LivePanel).focus_body()
        self.refresh_runs()

    def confirm_sweep(self, params, seed: int, device: str) -> None:
        """Show the grid, then start ``labbench sweep`` on it."""
        from rich.table import Table

        from ..engine.params import ParamsInvalid
        from ..engine.presets import Preset
        from ..engine.sweep import expand
        from .screens.dialogs import ConfirmScreen

        spec, ex = self.sweep_spec, self.exercise
        preset = Preset(exercise=ex, params=params, name=spec["name"], seed=seed, device=device, sweep=spec["sweep"])
        try:
            points = expand(preset)
        except ParamsInvalid as exc:
            self.notify("\n".join(str(e) for e in exc.errors), title="sweep not started", severity="error",
                        markup=False)
            return
        grid = Table(box=None, pad_edge=False, padding=(0, 1))
        grid.add_column("#", justify="right")
        for k in spec["sweep"]:
            grid.add_column(k, justify="right")
        for pt in points:
            grid.add_row(str(pt.index), *(str(v) for v in pt.values.values()))

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                proc = self.manager.submit_sweep(ex, params, spec["sweep"], name=spec["name"], seed=seed,
                                                 device=device)
            except OSError as exc:
                self.notify(f"cannot start the sweep: {exc}", severity="error", markup=False)
                return
            self._started(proc)

        self.push_screen(ConfirmScreen(f"Run the sweep {spec['name'] or ex.id}: {len(points)} runs, one after "
                                       "the other?", yes="Run the sweep", no="Cancel", body=grid), answer)

    def proc_of(self, view: RunView | None) -> RunProc | None:
        return next((p for p in self.manager.procs if view is not None and p.view is view and p.active), None)

    def _proc_for_folder(self, folder: Path | None) -> RunProc | None:
        if folder is None:
            return None
        for p in self.manager.procs:
            if p.active and (p.folder == folder or (p.kind == "sweep" and p.folder == folder.parent)):
                return p
        return None

    def action_stop(self) -> None:
        target = None
        if self.query_one("#tabs", TabbedContent).active == "tab-runs":
            target = self._proc_for_folder(self.query_one(RunsTable).current_path())
        if target is None and self.following is not None:
            target = self._proc_for_folder(self.following.folder)
        target = target or self.proc_of(self.selected)
        if target is None and self.selected is not None:
            target = self._proc_for_folder(self.selected.folder)
        if target is None or not target.active:
            active = self.manager.active
            target = active[-1] if len(active) == 1 else None
        if target is None:
            self.notify("no running run selected", severity="warning")
            return
        again = target.stop_at is not None
        self.manager.stop(target)
        self.notify(f"{'killing' if again else 'stopping'} {target.folder.name}", markup=False)

    def action_toggle_log(self) -> None:
        self.logy = not self.logy
        self.query_one(LivePanel).set_logy(self.logy)

    def action_save_preset(self) -> None:
        form = self.form
        if form is None:
            return
        params, errors = form.validate()
        if errors:
            self.notify("\n".join(errors.values()), title="fix the form first", severity="error", markup=False)
            return
        ex = self.exercise
        seed = form.seed() or 0
        sweep = self.sweep_spec["sweep"] if self.sweep_spec and self.sweep_spec["exercise"] == ex.id else None

        def check(name: str) -> str:
            path = self.presets_dir / f"{preset_slug(name)}.toml"
            return f"{path.name} exists already in the presets folder; choose another name" if path.exists() else ""

        def save(name: str | None) -> None:
            if not name:
                return
            self.presets_dir.mkdir(parents=True, exist_ok=True)
            path = self.presets_dir / f"{preset_slug(name)}.toml"
            path.write_text(render_preset(ex, params, name=name, seed=seed, sweep=sweep), encoding="utf-8")
            tree = self.query_one(ExerciseTree)
            tree.presets = self._presets()
            tree.rebuild()
            tree.select_exercise(ex.id)
            self.notify(f"saved {path}", markup=False)

        from .screens.dialogs import NameScreen

        self.push_screen(NameScreen(f"Save {ex.id} preset as", check=check), save)

    def action_help(self) -> None:
        from .screens.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    def action_compare(self) -> None:
        table = self.query_one(RunsTable)
        marked = [p for p in table.marked if Path(p).exists()]
        if len(marked) < 2:
            self.action_tab("tab-runs")
            self.notify("mark two or more runs with space in the Runs table, then press c", severity="warning")
            return
        from .screens.compare import CompareScreen

        self.push_screen(CompareScreen(marked, self.exercises))

    # ------------------------------------------------- runs table actions
    def _table_info(self) -> RunInfo | None:
        table = self.query_one(RunsTable)
        if self.query_one("#tabs", TabbedContent).active == "tab-runs":
            info = table.current_info()
            if info is not None:
                return info
        if self.selected is not None:
            return table.infos.get(str(self.selected.folder)) or load_run(self.selected.folder)
        return table.current_info()

    def name_of(self, info: RunInfo) -> str:
        return run_name(info, exercises=self.exercises)

    def action_load_run_params(self) -> None:
        """The selected run's parameters and seed back into the form ("run again with changes")."""
        info = self._table_info()
        if info is None:
            self.notify("select a run in the Runs tab first", severity="warning")
            return
        if info.exercise not in self.exercises:
            self.notify(f"{info.exercise or 'this run'}: not an exercise of this lab bench", severity="warning",
                        markup=False)
            return
        self.set_sweep_spec(None)
        self.pick_exercise(info.exercise)
        self.form.set_values(info.params, seed=info.seed if isinstance(info.seed, int) else 0)
        self.notify(f"the form holds the parameters of {self.name_of(info)}; r runs them", markup=False)

    def action_show_log(self) -> None:
        info = self._table_info()
        if info is None:
            self.notify("select a run first", severity="warning")
            return
        from .screens.dialogs import LogScreen

        self.push_screen(LogScreen(f"{info.exercise} {self.name_of(info)}  ({info.path})", run_log_text(info.path)))

    def action_resume(self) -> None:
        info = self._table_info()
        if info is None:
            self.notify("select an interrupted run in the Runs tab first", severity="warning")
            return
        if info.status not in ("interrupted", "lost") or info.sweep:
            self.notify(f"only an interrupted run can be resumed ({self.name_of(info)} is {info.status})",
                        severity="warning", markup=False)
            return
        if self._proc_for_folder(info.path) is not None:
            self.notify("that run is going already", severity="warning")
            return
        from .screens.dialogs import NameScreen

        def check(text: str) -> str:
            if not text:
                return ""
            return "" if text.isdigit() and int(text) > 0 else f"epochs: must be a whole number above 0, got {text!r}"

        def go(text: str | None) -> None:
            if text is None:
                return
            self.resume_run(info, int(text) if text else None)

        planned = info.params.get("epochs")
        self.push_screen(NameScreen(f"Resume {self.name_of(info)}: run until epoch (blank: {planned or 'as planned'})",
                                    check=check, placeholder="epochs", ok="Resume", allow_empty=True), go)

    def resume_run(self, info: RunInfo, epochs: int | None = None) -> RunProc | None:
        try:
            proc = self.manager.resume(info.path, epochs=epochs, exercise=info.exercise)
        except OSError as exc:
            self.notify(f"cannot resume: {exc}", severity="error", markup=False)
            return None
        self._started(proc)
        return proc

    def action_delete_runs(self) -> None:
        table = self.query_one(RunsTable)
        keys = table.selection()
        if not keys:
            self.notify("select or mark runs in the Runs tab first", severity="warning")
            return
        going = [k for k in keys if self._proc_for_folder(Path(k)) is not None or is_live(k)]
        if going:
            self.notify(f"{len(going)} of these runs are going: stop them first", severity="warning")
            return
        from .screens.dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                moved = [self.trash(Path(k)) for k in keys]
                table.marked = [k for k in table.marked if k not in keys]
                self.notify(f"moved {sum(1 for m in moved if m)} run(s) to {self.runs_dir / TRASH}", markup=False)
                self.refresh_runs()

        names = ", ".join(self.name_of(table.infos[k]) for k in keys[:3] if k in table.infos)
        more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
        self.push_screen(ConfirmScreen(f"Move {len(keys)} run{'s' if len(keys) > 1 else ''} ({names}{more}) to the "
                                       f"trash folder {TRASH} in the runs folder?", yes="Move to trash", no="Keep"),
                         answer)

    def trash(self, folder: Path) -> Path | None:
        """Move a run folder into the runs folder's trash (a sweep point keeps its sweep's name)."""
        folder = Path(folder)
        try:
            rel = folder.resolve().relative_to(self.runs_dir.resolve())
        except ValueError:
            rel = Path(folder.name)
        dest = self.runs_dir / TRASH / rel
        n = 1
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{rel.name}-{n}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.move(str(folder), str(dest))
        except OSError as exc:
            self.notify(f"{folder.name}: not moved ({exc})", severity="error", markup=False)
            return None
        self.views.pop(str(folder), None)
        if self.selected is not None and self.selected.folder == folder:
            self.show_view(None)
        return dest

    # ---------------------------------------------------------------- quit
    def _close(self) -> None:
        """Stop the refresh timer first: a tick during teardown would query
        widgets that are already gone."""
        self._ticker.stop()
        self.exit()

    async def action_quit(self) -> None:
        self.manager.poll()
        active = self.manager.active
        if not active:
            self._close()
            return
        if all(p.stop_at is not None for p in active):  # stopped already, still evaluating: a 2nd q kills
            for p in active:
                self.manager.stop(p)  # a second stop kills at once
            self.run_worker(self._stop_and_exit(), exclusive=True, group="quit")
            return
        from .screens.dialogs import QuitScreen

        def answer(choice: str | None) -> None:
            if choice == "stop":
                self.run_worker(self._stop_and_exit(), exclusive=True, group="quit")
            elif choice == "leave":
                for p in self.manager.active:
                    if p.state == "queued":  # never started: nothing to leave running
                        self.manager.stop(p)
                self._close()

        queued = sum(1 for p in active if p.state == "queued")
        self.push_screen(QuitScreen(len(active), queued), answer)

    async def _stop_and_exit(self) -> None:
        import asyncio

        self.manager.stop_all()
        self.notify("stopping runs: each evaluates the model it has, then ends (q again kills them now)")
        while any(p.state == "running" for p in self.manager.procs):
            self.manager.poll()  # kills those past the grace period
            await asyncio.sleep(0.1)
        self._close()

    # ---------------------------------------------------------- runs, live
    def reattach(self) -> None:
        """Find the runs that an earlier lab bench started under this runs
        folder and left running, and follow them again (Stop works on them).
        Runs started headless show as live in the runs table too."""
        found = 0
        for rec in self.manager.find_detached():
            folder = Path(rec["folder"])
            if not folder.exists():
                continue
            proc = self.manager.adopt(folder, rec["pid"], rec["started"], exercise=rec.get("exercise", ""),
                                      kind=rec.get("kind", "run"))
            if proc.kind == "sweep":
                self.sweeps.setdefault(str(folder), SweepView(folder))
            elif proc.view is not None:
                proc.view.poll()
                self.views[str(folder)] = proc.view
            found += 1
        if found:
            self.notify(f"{found} run{'s' if found > 1 else ''} still going: followed again (Runs tab, ● = live)")

    def show_view(self, view: RunView | None) -> None:
        self.selected = view
        live = self.query_one(LivePanel)
        live.show(view)
        if self.following is None:
            sweep = self._sweep_of(view)
            live.set_sweep(sweep_text(sweep, self._primary(sweep)) if sweep is not None else None)

    def _sweep_of(self, view: RunView | None) -> SweepView | None:
        if view is None or not (view.folder.parent / "sweep.json").exists():
            return None
        sweep = self.sweeps.setdefault(str(view.folder.parent), SweepView(view.folder.parent))
        sweep.poll()
        return sweep

    def _primary(self, sweep: SweepView) -> str:
        ex = self.exercises.get(sweep.index.get("exercise", ""))
        return ex.primary_metric if ex else ""

    def follow_sweep(self, sweep: SweepView) -> None:
        """The Live tab shows the sweep's table and follows its running point."""
        self.following = sweep
        sweep.poll()
        current = sweep.current()
        if current is not None:
            self._show_point(current)
        else:
            self.selected = None
            self.query_one(LivePanel).show(None)
        self.query_one(LivePanel).set_sweep(sweep_text(sweep, self._primary(sweep), current))

    def _show_point(self, folder: Path) -> None:
        key = str(folder)
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = RunView(folder)
            view.poll()
        if self.selected is not view:
            self.selected = view
            self.query_one(LivePanel).show(view)

    def open_run(self, folder: Path | str) -> RunView:
        folder = Path(folder)
        key = str(folder)
        view = self.views.get(key)
        if view is None:
            view = RunView(folder)
            view.poll()
            self.views[key] = view
        proc = self._proc_for_folder(folder)
        if proc is not None and proc.kind == "sweep":
            self.follow_sweep(self.sweeps.setdefault(str(proc.folder), SweepView(proc.folder)))
        else:
            self.following = None
            self.show_view(view)
        self.action_tab("tab-live")
        self.query_one(LivePanel).focus_body()
        return view

    def on_data_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        if event.row_key and event.row_key.value:
            self.open_run(Path(event.row_key.value))

    def refresh_runs(self) -> None:
        """Read the runs folder again: new runs (from anywhere) appear, ended ones change."""
        infos = list_runs(self.runs_dir)
        known = {str(i.path) for i in infos}
        for key in self.views:
            if key not in known and Path(key).exists():
                info = load_run(key)
                if info:
                    infos.insert(0, info)
                    known.add(key)
        for p in self.manager.procs:
            if str(p.folder) not in known and p.state == "queued" and p.kind == "run":
                infos.insert(0, RunInfo(path=p.folder, exercise=p.exercise, status="queued"))
        rows = []
        for info in infos:
            key = str(info.path)
            live = info.status == "running" and is_live(info.path)
            view = self.views.get(key)
            rows.append(make_row(info, live, view.last if view is not None and not view.ended else None,
                                 self.exercises))
        self.query_one(RunsTable).set_rows(rows)

    def tick(self) -> None:
        """Poll processes and tail the runs' events; redraw what changed."""
        try:
            self._tick()
        except NoMatches:
            if self.is_running and not self._exit_renderables and self.default_screen.is_attached:
                raise  # a widget missing while the app runs is a bug: never freeze silently
            # The app is being torn down (its widgets are gone) while the timer
            # still fires, e.g. an exit that did not come through _close().
            self._ticker.stop()

    def _tick(self) -> None:
        self._ticks += 1
        ended = self.manager.poll()
        finished_now = False
        for key, view in list(self.views.items()):
            proc = next((p for p in self.manager.procs if p.view is view and p.active), None)
            if view.ended and proc is None:
                continue  # a resumed run's view goes on being read while its process runs
            if proc is not None and proc.state == "queued":
                continue
            view.poll()
            finished_now = finished_now or view.ended
        if self.following is not None and self._ticks % 2 == 0:
            sweep = self.following
            sweep.poll()
            current = sweep.current()
            if current is not None and (self.selected is None or self.selected.folder != current):
                self._show_point(current)
            self.query_one(LivePanel).set_sweep(sweep_text(sweep, self._primary(sweep), current))
        if self.selected is not None:
            if not self.selected.ended and self.selected.quiet_s() >= live_widgets.QUIET_S:
                self.selected.dirty.add("status")  # the "no news for ..." counter
            self.query_one(LivePanel).refresh_view()
        for p in ended:
            if p.view is not None:
                p.view.poll()
            status = p.view.status if p.view is not None else ("ok" if p.returncode == 0 else "ended")
            if p.kind == "resume" and p.returncode not in (0, None) and (p.view is None or p.view.ended):
                tail = self.manager.stderr_tail(p, 300) or f"exit code {p.returncode}"
                self.notify(f"{p.folder.name}: resume failed: {tail}", severity="error", markup=False)
                continue
            sev = "information" if status == "ok" else "warning"
            self.notify(f"{p.folder.name}: {'sweep ' if p.kind == 'sweep' else ''}{status}", severity=sev,
                        markup=False)
        if ended:
            self.query_one(LivePanel).refresh_view()
        if ended or finished_now or self._ticks % RUNS_EVERY == 0 or self._started_since_refresh():
            self.refresh_runs()

    def _started_since_refresh(self) -> bool:
        states = tuple(p.state for p in self.manager.procs)
        changed = states != getattr(self, "_last_states", ())
        self._last_states = states
        return changed


def run_log_text(folder: Path):
    """A run's log for reading in the app: its text events, how it ended
    (message, traceback) and what its process wrote to stderr."""
    from rich.console import Group
    from rich.text import Text

    from ..engine.events import iter_events

    parts = []
    lines = Text()
    for ev in iter_events(folder):
        if ev.get("type") == "text":
            style = {"warning": "yellow", "error": "red"}.get(ev.get("level", ""), "")
            lines.append(f"{ev.get('t', 0):8.1f}s  {ev.get('text', '')}\n", style=style)
    parts.append(Text("log (text events)", style="bold underline"))
    parts.append(lines if lines.plain else Text("(no log lines)\n", style="dim"))
    summary = read_json(folder / SUMMARY) or {}
    if summary:
        parts.append(Text(f"status: {summary.get('status', '?')}  {summary.get('message') or ''}", style="bold"))
        if summary.get("traceback"):
            parts.append(Text(str(summary["traceback"]), style="red"))
    for err in (stderr_file_of(folder), stderr_file_of(folder).with_name(f"{folder.name}.resume.stderr"),
                stderr_file_of(folder.parent) if (folder.parent / "sweep.json").exists() else None):
        if err is None or not err.exists():
            continue
        try:
            text = err.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        parts.append(Text(f"\nstderr ({err.name})", style="bold underline"))
        parts.append(Text(text[-20_000:] if text.strip() else "(empty)", style="" if text.strip() else "dim"))
    if not (folder / EVENTS).exists() and not summary:
        parts.append(Text("this folder has no events yet", style="dim"))
    return Group(*parts)


def run_app(runs_dir: Path | str | None = None, watch: Path | str | None = None) -> int:
    """Run the lab bench; returns its exit status (non-zero after a crash)."""
    app = LabBench(runs_dir=runs_dir, watch=watch)
    app.run()
    return app.return_code or 0
