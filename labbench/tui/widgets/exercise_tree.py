"""The exercise tree: sessions, their exercises, and presets under each exercise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.widgets import Tree

from ...engine.registry import SESSIONS


SESSION_LABEL_W = 25


@dataclass
class Node:
    kind: str  # "session", "exercise", "preset"
    exercise: str = ""
    path: Path | None = None
    user: bool = False


def data_missing(ex) -> list[str]:
    """Names of the data sets the exercise's defaults read that are not in the data folder."""
    needed = ex.data_needed()
    if not needed:
        return []
    from ...data import dataset_status

    return [n for n in needed if not dataset_status(n)]


class ExerciseTree(Tree[Node]):
    def __init__(self, exercises: dict, presets: dict[str, list[tuple[Path, bool]]], **kw):
        super().__init__("Exercises", **kw)
        self.exercises = exercises
        self.presets = presets
        self.show_root = False
        self.guide_depth = 2
        self.missing: dict[str, list[str]] = {}

    def on_mount(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        for session, title in SESSIONS.items():
            items = [e for e in self.exercises.values() if e.session == session]
            if not items:
                continue
            label = Text(f"{session} {title}", style="bold")
            label.truncate(SESSION_LABEL_W, overflow="ellipsis")  # the tree is narrow; no sideways scrolling
            snode = self.root.add(label, data=Node("session"), expand=True)
            for ex in items:
                self.add_exercise(snode, ex)
        self.root.expand()

    def add_exercise(self, parent, ex) -> None:
        try:
            missing = data_missing(ex)
        except Exception:  # a module that cannot be loaded: selecting it says why
            missing = []
        self.missing[ex.id] = missing
        label = Text(ex.id)
        if getattr(ex, "broken", False):
            label = Text("x ", style="bold red") + Text(ex.id, style="red")
        elif missing:
            label = Text("! ", style="bold yellow") + Text(ex.id, style="yellow")
        presets = self.presets.get(ex.id, [])
        if presets:
            enode = parent.add(label, data=Node("exercise", ex.id), expand=False)
            for path, user in presets:
                enode.add_leaf(Text(("* " if user else "") + path.stem, style="cyan" if user else "dim"),
                               data=Node("preset", ex.id, path, user))
        else:
            parent.add_leaf(label, data=Node("exercise", ex.id))

    def find_exercise(self, ex_id: str):
        def walk(node):
            if node.data is not None and node.data.kind == "exercise" and node.data.exercise == ex_id:
                return node
            for child in node.children:
                found = walk(child)
                if found is not None:
                    return found
            return None

        return walk(self.root)

    def select_exercise(self, ex_id: str) -> None:
        node = self.find_exercise(ex_id)
        if node is not None:
            if node.parent is not None:
                node.parent.expand()
            self.move_cursor(node)
