"""Exercise parameters: one pydantic model per exercise, validated in one place.

Every exercise declares a ``Params`` subclass with the course defaults, bounds
(``gt``/``ge``/``le``), ``Literal`` choices and a one-line ``description`` per
field. The same model validates presets, ``--set`` overrides and the TUI form,
so an error reads the same everywhere.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError


class Params(BaseModel):
    """Base class of every exercise's parameters (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


@dataclass
class FieldInfo:
    """What a form, a preset template or ``labbench show`` needs about one field."""

    name: str
    kind: str  # "int", "float", "bool", "str", "choice", "list"
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    bounds: str = ""
    annotation: Any = None


def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    origin = get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _kind(ann: Any) -> tuple[str, tuple[Any, ...]]:
    ann, _ = _unwrap_optional(ann)
    origin = get_origin(ann)
    if origin is Literal:
        return "choice", tuple(get_args(ann))
    if origin in (list, tuple):
        return "list", ()
    if ann is bool:
        return "bool", ()
    if ann is int:
        return "int", ()
    if ann is float:
        return "float", ()
    return "str", ()


def _bounds(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
        for attr, sym in (("min_length", "len >="), ("max_length", "len <=")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def describe_fields(model: type[BaseModel]) -> list[FieldInfo]:
    out = []
    for name, field in model.model_fields.items():
        kind, choices = _kind(field.annotation)
        default = field.get_default(call_default_factory=True)
        out.append(
            FieldInfo(
                name=name,
                kind=kind,
                default=default,
                description=field.description or "",
                choices=choices,
                bounds=_bounds(field),
                annotation=field.annotation,
            )
        )
    return out


def type_label(info: FieldInfo) -> str:
    if info.kind == "choice":
        return "choice"
    ann, optional = _unwrap_optional(info.annotation)
    label = info.kind
    if info.kind == "list":
        args = get_args(ann)
        label = f"list[{getattr(args[0], '__name__', 'any')}]" if args else "list"
    return label + (" | none" if optional else "")


def suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


@dataclass
class ParamError:
    """One problem with one key, ready to print as ``where: key: message``."""

    key: str
    message: str
    where: str = ""  # "file:line" or "--set"

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.key}: {self.message}" if self.key else f"{prefix}{self.message}"


class ParamsInvalid(Exception):
    """Bad input: one or more problems with a preset or override."""

    def __init__(self, errors: list[ParamError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _message(err: dict) -> str:
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden":
        return "unknown parameter"
    if typ == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {err.get('input')!r}"
    if typ in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sym = {"greater_than": "greater than", "greater_than_equal": "at least",
               "less_than": "less than", "less_than_equal": "at most"}[typ]
        bound = next(iter(ctx.values()), "")
        return f"must be {sym} {bound}, got {err.get('input')!r}"
    plain = {  # pydantic's wording for a value of the wrong type, said the way the rest of labbench says things
        "int_parsing": "must be an integer", "int_type": "must be an integer",
        "int_from_float": "must be an integer", "float_parsing": "must be a number",
        "float_type": "must be a number", "bool_parsing": "must be true or false", "bool_type": "must be true or false",
        "string_type": "must be text in quotes", "list_type": "must be a list, e.g. [1, 2]",
        "finite_number": "must be a finite number",
    }
    if typ in plain:
        return f"{plain[typ]}, got {err.get('input')!r}"
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if typ.endswith("_type") or typ.endswith("_parsing"):
        msg = f"{msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
    return msg[0].lower() + msg[1:] if msg else msg


def validate_params(model: type[Params], values: dict, locate=None) -> Params:
    """Build ``model`` from ``values``; raise :class:`ParamsInvalid` naming each key.

    ``locate(key) -> str`` gives the "file:line" of a key for the message.
    """
    try:
        return model(**values)
    except ValidationError as exc:
        errors = []
        known = list(model.model_fields)
        for err in exc.errors():
            loc = err.get("loc") or ()
            key = ".".join(str(p) for p in loc)
            top = str(loc[0]) if loc else ""
            message = _message(err)
            if err.get("type") == "extra_forbidden":
                message += suggest(top, known)
            where = locate(top) if (locate and top) else (locate("") if locate else "")
            errors.append(ParamError(key=key, message=message, where=where))
        raise ParamsInvalid(errors) from None


def params_to_dict(params: BaseModel) -> dict:
    return params.model_dump(mode="json")
