"""The exercise registry.

An exercise is one module under ``labbench/exercises`` that defines a
module-level ``EXERCISE = Exercise(...)``. Adding an exercise means adding one
module; the registry finds it by scanning the package.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from .params import Params, suggest

SESSIONS = {
    1: "Supervised learning and optimisation",
    2: "Classical models, classification, self-organising maps",
    3: "Representation learning and deep architectures",
    4: "Generative models",
}


@dataclass
class Exercise:
    id: str
    title: str
    session: int
    description: str
    Params: type[Params]
    run: Callable  # run(params, run) -> None
    data: list[str] = field(default_factory=list)  # names in labbench.data it may use
    needs: Callable | None = None  # needs(params) -> the names a run with these params uses (default: data)
    primary_metric: str = ""  # the metric the runs table and sweeps lead with
    module: str = ""

    def default_params(self) -> Params:
        return self.Params()

    def data_needed(self, params: Params | None = None) -> list[str]:
        """The data sets a run with ``params`` (default: the defaults) reads."""
        if self.needs is None:
            return list(self.data)
        return list(self.needs(params if params is not None else self.default_params()))


class UnknownExercise(KeyError):
    def __init__(self, ex_id: str, known):
        self.ex_id = ex_id
        self.hint = suggest(ex_id, known)
        super().__init__(ex_id)

    def __str__(self) -> str:
        return f'unknown exercise "{self.ex_id}"{self.hint}; `labbench list` shows them all'


_REGISTRY: dict[str, Exercise] | None = None


def _discover() -> dict[str, Exercise]:
    from .. import exercises

    found: dict[str, Exercise] = {}
    for info in sorted(pkgutil.iter_modules(exercises.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{exercises.__name__}.{info.name}")
        items = getattr(mod, "EXERCISES", None) or [getattr(mod, "EXERCISE", None)]
        for ex in items:
            if ex is None:
                continue
            if ex.id in found:
                raise RuntimeError(f"exercise id {ex.id} defined twice ({found[ex.id].module}, {mod.__name__})")
            ex.module = mod.__name__
            found[ex.id] = ex
    return dict(sorted(found.items(), key=lambda kv: (kv[1].session, _sort_key(kv[0]))))


def _sort_key(ex_id: str):
    head = ex_id.split("-", 1)[0]
    try:
        return tuple(int(p) for p in head.split(".")), ex_id
    except ValueError:
        return (99,), ex_id


def all_exercises() -> dict[str, Exercise]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _discover()
    return _REGISTRY


def get_exercise(ex_id: str) -> Exercise:
    reg = all_exercises()
    if ex_id not in reg:
        raise UnknownExercise(ex_id, reg)
    return reg[ex_id]
