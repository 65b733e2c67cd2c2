"""The parameter form, generated from an exercise's Params model.

Numbers and lists are inputs (TOML syntax, like ``--set``), choices are
selects, booleans are switches; each field shows its description, and a bad
value is flagged under the field with the same message the CLI prints.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static, Switch

from ...engine.params import ParamsInvalid, describe_fields, validate_params
from ...engine.presets import parse_value
from .field_input import FieldInput

SEED = "__seed"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) if not isinstance(v, str) else f'"{v}"' for v in value) + "]"
    return str(value)


class ParamForm(VerticalScroll):
    """Emits :class:`ParamForm.Changed` after every edit (valid or not)."""

    class Changed(Message):
        def __init__(self, form: "ParamForm", valid: bool):
            super().__init__()
            self.form = form
            self.valid = valid

    def __init__(self, exercise=None, **kw):
        super().__init__(**kw)
        self.exercise = exercise
        self.fields = describe_fields(exercise.Params) if exercise else []
        self.errors: dict[str, str] = {}
        self._loading = False
        self._composed = False
        self._pending: tuple[dict, int | None] | None = None

    def compose(self) -> ComposeResult:
        yield from self._field_row(SEED, "seed", "int", 0, "Random seed (same seed + preset = same metrics on the CPU)",
                                   (), ">= 0", optional=False)
        for f in self.fields:
            optional = f.default is None or "none" in str(f.annotation).lower()
            yield from self._field_row(f.name, f.name, f.kind, f.default, f.description, f.choices, f.bounds, optional)

    def _field_row(self, key, label, kind, default, description, choices, bounds, optional) -> ComposeResult:
        wid = f"p-{key}"
        if kind == "bool":
            widget = Switch(value=bool(default), id=wid)
        elif kind == "choice":
            widget = Select([(str(c), c) for c in choices], value=default if default is not None else Select.NULL,
                            allow_blank=optional, prompt="(unset)", compact=True, id=wid)
        else:
            widget = FieldInput(value=_text(default), placeholder="(unset)" if optional else "", compact=True, id=wid)
        hint = description + (f"  [{bounds}]" if bounds else "")
        with Vertical(classes="field", id=f"row-{key}"):
            with Horizontal(classes="field-line"):
                yield Label(label, classes="field-name")
                yield widget
            yield Static(hint, classes="field-help", markup=False)
            yield Static("", classes="field-error", id=f"err-{key}", markup=False)

    # --------------------------------------------------------------- values
    def raw_values(self) -> dict:
        """The form as a dict for the Params model (unset optional fields left out)."""
        out = {}
        for f in self.fields:
            w = self.query_one(f"#p-{f.name}")
            if isinstance(w, Switch):
                out[f.name] = w.value
            elif isinstance(w, Select):
                out[f.name] = None if w.value is Select.NULL else w.value
            else:
                text = w.value.strip()
                if text == "":
                    out[f.name] = None
                elif f.kind == "str":
                    out[f.name] = text
                else:
                    out[f.name] = parse_value(text)
        return {k: v for k, v in out.items() if v is not None or self._default(k) is None}

    def _default(self, name):
        return next((f.default for f in self.fields if f.name == name), None)

    def seed(self) -> int | None:
        text = self.query_one(f"#p-{SEED}", Input).value.strip() or "0"
        try:
            v = int(text)
        except ValueError:
            return None
        return v if v >= 0 else None

    def validate(self):
        """(params or None, {key: message}); also shows the messages."""
        errors: dict[str, str] = {}
        params = None
        try:
            params = validate_params(self.exercise.Params, self.raw_values())
        except ParamsInvalid as exc:
            for e in exc.errors:
                top = e.key.split(".")[0]
                errors.setdefault(top, str(e))
        if self.seed() is None:
            errors[SEED] = f"seed: must be a non-negative integer, got {self.query_one(f'#p-{SEED}', Input).value!r}"
        self.errors = errors
        for key in [SEED] + [f.name for f in self.fields]:
            err = self.query_one(f"#err-{key}", Static)
            err.update(errors.get(key, ""))
            err.display = key in errors
            self.query_one(f"#row-{key}").set_class(key in errors, "-invalid")
        return (params if not errors else None), errors

    def set_values(self, values: dict, seed: int | None = None) -> None:
        if not self._composed:  # a form just mounted: fill it once its fields exist
            self._pending = (values, seed)
            return
        self._loading = True
        try:
            for f in self.fields:
                v = values.get(f.name, f.default)
                w = self.query_one(f"#p-{f.name}")
                if isinstance(w, Switch):
                    w.value = bool(v)
                elif isinstance(w, Select):
                    w.value = Select.NULL if v is None else v
                else:
                    w.value = _text(v)
            if seed is not None:
                self.query_one(f"#p-{SEED}", Input).value = str(seed)
        finally:
            self._loading = False
        self.call_after_refresh(self._changed)

    def reset(self) -> None:
        self.set_values({f.name: f.default for f in self.fields}, seed=0)

    # --------------------------------------------------------------- events
    def _changed(self) -> None:
        if not self.is_attached:
            return
        _, errors = self.validate()
        self.post_message(self.Changed(self, not errors))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._changed()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self._changed()

    def on_mount(self) -> None:
        for err in self.query(".field-error"):
            err.display = False
        self._composed = True
        if self._pending is not None:
            values, seed = self._pending
            self._pending = None
            self.set_values(values, seed)
