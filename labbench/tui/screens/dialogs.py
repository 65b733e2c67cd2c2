"""Small modal dialogs: help, yes/no, and the preset name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

KEYS = [
    ("r", "run the exercise with the form's values"),
    ("s", "stop the selected run (SIGINT; a hard kill after a grace period, or at once on a 2nd s)"),
    ("1 2 3", "Exercise / Live / Runs tabs"),
    ("l", "curves on a log scale (toggle)"),
    ("ctrl+s", "save the form as a preset (user presets folder)"),
    ("ctrl+z", "reset the form to the course defaults"),
    ("enter", "(runs table) open a run: curves, figures, images, tables"),
    ("space", "(runs table) mark a run for comparing"),
    ("c", "compare the marked runs (2 or more)"),
    ("d", "(compare) only the parameters that differ"),
    ("pgup pgdn", "(live) scroll the run's panels; arrows and home/end too"),
    ("tab", "next field; escape leaves a field / closes a screen"),
    ("ctrl+p", "command palette (every action)"),
    ("?", "this help"),
    ("q", "quit (asks first when runs are going, then stops them)"),
]

NOTES = """\
Select an exercise in the tree; its presets are listed under it (user presets \
marked *); selecting a preset loads it into the form. A bad value is flagged \
under its field and Run is refused until it is fixed.

Runs are folders under the runs folder (--runs-dir, $LABBENCH_RUNS, default \
./runs); `labbench watch FOLDER` follows a run started elsewhere."""


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
    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class NameScreen(ModalScreen[str | None]):
    """Asks for a preset name; ``check(name)`` returns an error message or ""."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, check=None, value: str = ""):
        super().__init__()
        self.title_text, self.check, self.value = title, check, value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="question")
            yield Input(value=self.value, placeholder="a name, e.g. lr-0.02", id="name-input")
            yield Static("", id="name-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _submit(self) -> None:
        name = self.query_one("#name-input", Input).value.strip()
        msg = "a name is needed" if not name else (self.check(name) if self.check else "")
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
