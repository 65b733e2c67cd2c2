"""Small modal dialogs: help, yes/no, and the preset name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..widgets.field_input import FieldInput

KEYS = [
    ("r", "run the form's values (a sweep preset: its grid, shown first)"),
    ("s", "stop the selected run: it evaluates what it has, then ends (a 2nd s kills it at once)"),
    ("1 2 3", "Exercise / Live / Runs tabs"),
    ("t", "hide / show the exercise tree"),
    ("l", "curves on a log scale (toggle)"),
    ("ctrl+s", "save the form as a preset (user presets folder)"),
    ("ctrl+z", "reset the form to the course defaults (and forget a loaded sweep)"),
    ("enter", "(runs) open a run: curves, figures, images, tables"),
    ("space", "(runs) mark a run for comparing or deleting"),
    ("e", "(runs) the run's parameters into the form: run again with changes"),
    ("v", "(runs) the run's log, how it ended, its stderr"),
    ("R", "(runs) resume an interrupted run (labbench resume)"),
    ("x", "(runs) move the marked or selected runs to the trash (asks first)"),
    ("o, /", "(runs) sort (or click a column head); filter: words, status:ok, ex:1.1, live"),
    ("c", "compare the marked runs (2 or more)"),
    ("d f l", "(compare) only what differs; x = fraction of training; log scale"),
    ("pgup pgdn", "(live) scroll the run's panels; arrows and home/end too"),
    ("tab", "next field; escape leaves a field / closes a screen"),
    ("ctrl+p", "command palette: every action, and the exercises by name"),
    ("?", "this help"),
    ("q", "quit; with runs going: stop them, or leave them running"),
]

NOTES = """\
Select an exercise in the tree; its presets are listed under it (user presets \
marked *); selecting a preset loads it into the form. A bad value is flagged \
under its field and Run is refused until it is fixed.

Runs are folders under the runs folder (--runs-dir, $LABBENCH_RUNS, default \
./runs). They run detached: they go on when the lab bench quits or the SSH \
connection drops, and the lab bench opened again follows them (● = live in the \
Runs tab). `labbench watch FOLDER` follows a run started elsewhere."""


def help_renderable():
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False, padding=(0, 1), expand=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    for key, what in KEYS:
        table.add_row(key, what)
    return Group(Text("labbench - keys", style="bold underline"), table, Text(NOTES, style="dim"))


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_renderable(), id="help-text")

    def action_dismiss(self) -> None:
        self.dismiss()


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question, optionally with a picture under it (a sweep's grid)."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No", body=None):
        super().__init__()
        self.question, self.yes, self.no, self.body = question, yes, no, body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question", markup=False)
            if self.body is not None:
                with VerticalScroll(id="dialog-body"):
                    yield Static(self.body)
            with Horizontal(id="dialog-buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class QuitScreen(ModalScreen[str | None]):
    """Quitting while runs go: stop them, leave them running, or stay."""

    BINDINGS = [Binding("escape,n", "answer('')", "Keep working"), Binding("y,s", "answer('stop')", "Stop them"),
                Binding("l", "answer('leave')", "Leave running")]

    def __init__(self, n: int, queued: int = 0):
        super().__init__()
        self.n, self.queued = n, queued

    def compose(self) -> ComposeResult:
        runs = f"{self.n} run{'s are' if self.n > 1 else ' is'} going"
        extra = f" ({self.queued} waiting for a GPU: those never start)" if self.queued else ""
        with Vertical(id="dialog"):
            yield Static(f"{runs}{extra}. Stop them, or leave them running? "
                         "Runs left running go on without the lab bench; open it again to follow them.",
                         id="question", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Stop them (s)", variant="error", id="stop")
                yield Button("Leave running (l)", variant="warning", id="leave")
                yield Button("Keep working (n)", variant="primary", id="stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"stop": "stop", "leave": "leave"}.get(event.button.id, ""))

    def action_answer(self, value: str) -> None:
        self.dismiss(value)


class LogScreen(ModalScreen):
    """A run's log: its text events, how it ended, and its process's stderr."""

    BINDINGS = [Binding("escape,q,v", "dismiss", "Close")]

    def __init__(self, title: str, body):
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(id="log-box"):
            yield Label(self.title_text, id="log-title")
            with VerticalScroll(id="log-scroll"):
                yield Static(self.body, id="log-text")

    def on_mount(self) -> None:
        self.query_one("#log-scroll").scroll_end(animate=False)

    def action_dismiss(self) -> None:
        self.dismiss()


class NameScreen(ModalScreen[str | None]):
    """Asks for a name (or another short value); ``check(text)`` returns an
    error message or ""."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, check=None, value: str = "", placeholder: str = "a name, e.g. lr-0.02",
                 ok: str = "Save", allow_empty: bool = False):
        super().__init__()
        self.title_text, self.check, self.value = title, check, value
        self.placeholder, self.ok, self.allow_empty = placeholder, ok, allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="question", markup=False)
            yield FieldInput(value=self.value, placeholder=self.placeholder, id="name-input")
            yield Static("", id="name-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(self.ok, variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _submit(self) -> None:
        name = self.query_one("#name-input", Input).value.strip()
        if not name and not self.allow_empty:
            msg = "a name is needed"
        else:
            msg = self.check(name) if self.check else ""
        if msg:
            self.query_one("#name-error", Static).update(msg)
            return
        self.dismiss(name)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
