"""The lab bench: pick an exercise, edit its parameters, run, watch, stop, compare.

Runs are subprocesses (``python -m labbench run``) writing run folders; the app
only reads those folders (a timer tails ``events.jsonl`` a few times a second),
so a crash or an out-of-memory in a run cannot take the app down, and a run
started elsewhere can be watched the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Button, Footer, Markdown, Select, Static, TabbedContent, TabPane

from ..engine.procs import RunManager, RunProc
from ..engine.sysmon import gpu_choice_label
from ..engine.presets import list_presets, render_preset, shipped_presets_dir
from ..runs import list_runs, load_run
from .state import RunView
from .widgets.exercise_tree import ExerciseTree
from .widgets.live import LivePanel
from .widgets.param_form import ParamForm
from .widgets.runs_table import RunsTable

REFRESH_S = 0.25  # live panels redraw at most this often
DEVICES_S = 10.0  # the device picker's free memory and load are read again this often


def default_runs_dir() -> Path:
    return Path(os.environ.get("LABBENCH_RUNS") or "runs")


def user_presets_dir() -> Path:
    env = os.environ.get("LABBENCH_PRESETS")
    return Path(env).expanduser() if env else Path.home() / ".config" / "labbench" / "presets"


def preset_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "preset"


class LabBench(App):
    CSS_PATH = "app.tcss"
    TITLE = "labbench"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("r,ctrl+r", "run", "Run"),
        Binding("s", "stop", "Stop"),
        Binding("l", "toggle_log", "Log y"),
        Binding("c", "compare", "Compare"),
        Binding("ctrl+s", "save_preset", "Save preset"),
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
                 grace_s: float = 5.0, shipped_presets: bool = True):
        super().__init__()
        from ..engine.registry import all_exercises

        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.presets_dir = Path(presets_dir) if presets_dir else user_presets_dir()
        self.exercises = exercises if exercises is not None else all_exercises()
        self.shipped_presets = shipped_presets
        self.watch_dir = Path(watch) if watch else None
        self.detect_devices = detect_devices
        self.manager = RunManager(self.runs_dir, grace_s=grace_s, view_factory=RunView)
        self.exercise = None
        self.views: dict[str, RunView] = {}  # run folder -> view (this session's and reopened runs)
        self.selected: RunView | None = None
        self.logy = False
        atexit.register(self._kill_leftovers)

    # ------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield ExerciseTree(self.exercises, self._presets(), id="tree")
            with TabbedContent(id="tabs", initial="tab-exercise"):
                with TabPane("Exercise", id="tab-exercise"):
                    with Horizontal(id="toolbar"):
                        yield Select([("auto", "auto"), ("cpu", "cpu")], value="auto", allow_blank=False,
                                     compact=True, id="device")
                        yield Button("Run", id="btn-run", variant="success", compact=True)
                        yield Button("Stop", id="btn-stop", variant="error", compact=True)
                        yield Button("Defaults", id="btn-reset", compact=True)
                        yield Button("Save", id="btn-save", compact=True)
                    yield Static("", id="data-warning", markup=False)
                    with Container(id="setup"):
                        with VerticalScroll(id="desc-scroll"):
                            yield Markdown("Select an exercise in the tree on the left.", id="description")
                        with VerticalScroll(id="form-scroll"):
                            yield Vertical(id="form-box")
                with TabPane("Live", id="tab-live"):
                    yield LivePanel(id="live")
                with TabPane("Runs", id="tab-runs"):
                    yield Static("enter: open  space: mark  c: compare marked  s: stop", id="runs-hint")
                    yield RunsTable(id="runs")
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
        self.refresh_runs()
        if self.detect_devices:
            self.find_devices()
            self.set_interval(DEVICES_S, self.find_devices)  # free memory and load change as runs go
        if self.watch_dir is not None:
            self.open_run(self.watch_dir)
        elif self.exercises:
            first = next(iter(self.exercises))
            self.select_exercise(first)
            self.query_one(ExerciseTree).select_exercise(first)

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

    # ------------------------------------------------------------ exercise
    def select_exercise(self, ex_id: str) -> None:
        ex = self.exercises.get(ex_id)
        if ex is None:
            return
        self.exercise = ex
        self.query_one("#description", Markdown).update(f"## {ex.id}: {ex.title}\n\n{ex.description.strip()}")
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
        box.remove_children()
        box.mount(ParamForm(ex, id="form"))

    @property
    def form(self) -> ParamForm | None:
        found = self.query("#form")
        return found.first(ParamForm) if found else None

    def on_tree_node_selected(self, event: ExerciseTree.NodeSelected) -> None:
        node = event.node.data
        if node is None or node.kind == "session":
            return
        if node.kind == "exercise":
            self.select_exercise(node.exercise)
            self.action_tab("tab-exercise")
        elif node.kind == "preset":
            self.load_preset_file(node.path)

    def load_preset_file(self, path: Path) -> None:
        """Fill the form from a preset file (shipped or the user's)."""
        import tomllib

        from ..engine.params import ParamsInvalid, validate_params

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            ex = self.exercises.get(data.get("exercise"))
            if ex is None:
                raise ValueError(f"unknown exercise {data.get('exercise')!r}")
            params = validate_params(ex.Params, data.get("params") or {})
        except ParamsInvalid as exc:
            self.notify(f"{path}: {exc}", severity="error", title="preset not loaded")
            return
        except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
            self.notify(f"{path}: {exc}", severity="error", title="preset not loaded")
            return
        seed = data.get("seed", 0) if isinstance(data.get("seed", 0), int) else 0
        if self.exercise is None or self.exercise.id != ex.id:
            self.select_exercise(ex.id)
            self.call_after_refresh(self._fill_form, params, seed, path)
        else:
            self._fill_form(params, seed, path)
        self.action_tab("tab-exercise")

    def _fill_form(self, params, seed, path) -> None:
        if self.form is not None:
            self.form.set_values(params.model_dump(mode="json"), seed=seed)
            self.notify(f"loaded preset {Path(path).name}")

    # ------------------------------------------------------------- actions
    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        if tab == "tab-runs":
            self.query_one(RunsTable).focus()

    def action_leave_field(self) -> None:
        if self.screen is self.screen_stack[0]:
            self.query_one(ExerciseTree).focus()

    def action_reset_form(self) -> None:
        if self.form is not None:
            self.form.reset()

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
            self.notify("\n".join(errors.values()), title="fix the form first", severity="error")
            return None
        device = self.query_one("#device", Select).value
        try:
            proc = self.manager.submit(self.exercise, params, seed=form.seed() or 0, device=str(device))
        except OSError as exc:
            self.notify(f"cannot start the run: {exc}", severity="error")
            return None
        self.views[str(proc.folder)] = proc.view
        if proc.state == "queued":
            self.notify(f"{proc.folder.name}: waiting for a free {proc.device_spec} device")
        self.show_view(proc.view)
        self.action_tab("tab-live")
        self.query_one(LivePanel).focus_body()
        self.refresh_runs()
        return proc

    def proc_of(self, view: RunView | None) -> RunProc | None:
        return next((p for p in self.manager.procs if view is not None and p.view is view), None)

    def action_stop(self) -> None:
        target = None
        if self.query_one("#tabs", TabbedContent).active == "tab-runs":
            path = self.query_one(RunsTable).current_path()
            target = next((p for p in self.manager.procs if path and p.folder == path), None)
        target = target or self.proc_of(self.selected)
        if target is None or not target.active:
            active = self.manager.active
            target = active[-1] if len(active) == 1 else None
        if target is None:
            self.notify("no running run selected", severity="warning")
            return
        again = target.stop_at is not None
        self.manager.stop(target)
        self.notify(f"{'killing' if again else 'stopping'} {target.folder.name}")

    def action_toggle_log(self) -> None:
        self.logy = not self.logy
        self.query_one(LivePanel).set_logy(self.logy)

    def action_save_preset(self) -> None:
        form = self.form
        if form is None:
            return
        params, errors = form.validate()
        if errors:
            self.notify("\n".join(errors.values()), title="fix the form first", severity="error")
            return
        ex = self.exercise
        seed = form.seed() or 0

        def check(name: str) -> str:
            path = self.presets_dir / f"{preset_slug(name)}.toml"
            return f"{path.name} exists already in the presets folder; choose another name" if path.exists() else ""

        def save(name: str | None) -> None:
            if not name:
                return
            self.presets_dir.mkdir(parents=True, exist_ok=True)
            path = self.presets_dir / f"{preset_slug(name)}.toml"
            path.write_text(render_preset(ex, params, name=name, seed=seed), encoding="utf-8")
            tree = self.query_one(ExerciseTree)
            tree.presets = self._presets()
            tree.rebuild()
            tree.select_exercise(ex.id)
            self.notify(f"saved {path}")

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

        self.push_screen(CompareScreen(marked))

    def _close(self) -> None:
        """Stop the refresh timer first: a tick during teardown would query
        widgets that are already gone."""
        self._ticker.stop()
        self.exit()

    async def action_quit(self) -> None:
        active = self.manager.active
        if not active:
            self._close()
            return
        from .screens.dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._stop_and_exit(), exclusive=True, group="quit")

        n = len(active)
        self.push_screen(ConfirmScreen(f"{n} run{'s are' if n > 1 else ' is'} going. Stop and quit?",
                                       yes="Stop and quit", no="Keep working"), answer)

    async def _stop_and_exit(self) -> None:
        self.manager.stop_all()
        self.notify("stopping runs...")
        while any(p.state == "running" for p in self.manager.procs):
            self.manager.poll()  # kills those past the grace period
            await asyncio.sleep(0.1)
        self._close()

    def _kill_leftovers(self) -> None:
        if any(p.state == "running" for p in self.manager.procs):
            self.manager.shutdown(timeout=1.0)

    def on_unmount(self) -> None:
        self._kill_leftovers()

    # ---------------------------------------------------------- runs, live
    def show_view(self, view: RunView | None) -> None:
        self.selected = view
        self.query_one(LivePanel).show(view)

    def open_run(self, folder: Path | str) -> RunView:
        key = str(Path(folder))
        view = self.views.get(key)
        if view is None:
            view = RunView(folder)
            view.poll()
            self.views[key] = view
        self.show_view(view)
        self.action_tab("tab-live")
        self.query_one(LivePanel).focus_body()
        return view

    def on_data_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        if event.row_key and event.row_key.value:
            self.open_run(Path(event.row_key.value))

    def refresh_runs(self) -> None:
        infos = list_runs(self.runs_dir)
        known = {str(i.path) for i in infos}
        for key in self.views:
            if key not in known:
                info = load_run(key)
                if info:
                    infos.insert(0, info)
        for p in self.manager.procs:
            if str(p.folder) not in known and p.state == "queued":
                from ..runs import RunInfo

                infos.insert(0, RunInfo(path=p.folder, exercise=p.exercise, status="queued"))
        self.query_one(RunsTable).set_runs(infos)

    def tick(self) -> None:
        """Poll processes and tail the runs' events; redraw what changed."""
        try:
            self._tick()
        except NoMatches:
            # The app is being torn down (its widgets are gone) while the timer
            # still fires, e.g. an exit that did not come through _close().
            self._ticker.stop()

    def _tick(self) -> None:
        ended = self.manager.poll()
        finished_now = False
        for key, view in list(self.views.items()):
            if view.ended:
                continue
            proc = next((p for p in self.manager.procs if p.view is view), None)
            if proc is not None and proc.state == "queued":
                continue
            view.poll()
            finished_now = finished_now or view.ended
        if self.selected is not None:
            if not self.selected.ended and self.selected.quiet_s() >= 5:
                self.selected.dirty.add("status")  # the "no news for ..." counter
            self.query_one(LivePanel).refresh_view()
        if ended:
            for p in ended:
                p.view.poll()
                sev = "information" if p.view.status == "ok" else "warning"
                self.notify(f"{p.folder.name}: {p.view.status}", severity=sev)
            self.query_one(LivePanel).refresh_view()
            self.refresh_runs()
        elif finished_now or self._started_since_refresh():
            self.refresh_runs()

    def _started_since_refresh(self) -> bool:
        states = tuple(p.state for p in self.manager.procs)
        changed = states != getattr(self, "_last_states", ())
        self._last_states = states
        return changed


def run_app(runs_dir: Path | str | None = None, watch: Path | str | None = None) -> None:
    LabBench(runs_dir=runs_dir, watch=watch).run()
