"""The exercise registry: tolerant and lazy.

An exercise is one module under ``labbench/exercises`` that defines a
module-level ``EXERCISE = Exercise(...)`` (or ``EXERCISES = [Exercise(...), ...]``).
Adding an exercise means adding one module; the registry finds it by scanning
the package.

Listing never imports an exercise module (they import torch, which takes a
second or more): the id, title, session, data, primary metric and description
are read from each module's source (its ``Exercise(...)`` call, with names
that refer to module-level string constants such as ``DESCRIPTION``). A module
is imported the first time something needs its ``Params`` or ``run``. A module
that cannot be read or imported is *broken*: it is listed with its error and
never stops the others from being listed or run.

- :func:`list_exercise_stubs`: every exercise, broken ones included (no import);
- :func:`all_exercises`: ``{id: stub}`` of the ones not known to be broken; a
  stub answers every attribute of :class:`Exercise`, importing on first need;
- :func:`get_exercise`: the loaded :class:`Exercise`, or :class:`UnknownExercise`
  / :class:`ExerciseBroken` (a subclass) with the reason;
- ``stub.load()``: the loaded :class:`Exercise`, or :class:`ExerciseBroken`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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


class ExerciseBroken(UnknownExercise):
    """An exercise whose module cannot be read or imported. A subclass of
    :class:`UnknownExercise`, so every caller that reports an unknown exercise
    cleanly reports a broken one the same way (with the reason)."""

    def __init__(self, ex_id: str, module: str, reason: str):
        self.ex_id, self.module, self.reason, self.hint = ex_id, module, reason, ""
        KeyError.__init__(self, ex_id)

    def __str__(self) -> str:
        return f'exercise "{self.ex_id}" cannot be loaded: {self.reason}'


# --------------------------------------------------------------- static reading
#: the metadata read from the source; anything else needs the module
STATIC_FIELDS = ("id", "title", "session", "description", "data", "primary_metric")
_REQUIRED = ("id", "title", "session")
_POSITIONAL = [f.name for f in dataclasses.fields(Exercise)]


class _NotStatic(Exception):
    pass


def _static_value(node: ast.AST, consts: dict[str, ast.AST], depth: int = 0):
    """A literal (or a name bound to one at module level, or a sum of strings)."""
    if depth > 10:
        raise _NotStatic
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in consts:
        return _static_value(consts[node.id], consts, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_static_value(e, consts, depth + 1) for e in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _static_value(node.left, consts, depth + 1), _static_value(node.right, consts, depth + 1)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
    raise _NotStatic


def _exercise_calls(tree: ast.Module) -> tuple[list[ast.Call], dict[str, ast.AST]]:
    consts: dict[str, ast.AST] = {}
    calls: list[ast.Call] = []
    for stmt in tree.body:
        target, value = None, None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target.id, stmt.value
        if target is None:
            continue
        consts[target] = value

        def is_call(v):
            return isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "Exercise"

        if target == "EXERCISE" and is_call(value):
            calls = [value]
        elif target == "EXERCISES" and isinstance(value, (ast.List, ast.Tuple)) and all(map(is_call, value.elts)):
            calls = list(value.elts)
    return calls, consts


def read_static(path: Path) -> list[dict[str, Any]] | None:
    """The static metadata of each ``Exercise(...)`` in a module's source, or
    None when it cannot be read without importing (raises SyntaxError/OSError)."""
    source = Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    calls, consts = _exercise_calls(tree)
    if not calls:
        return None
    out = []
    for call in calls:
        args: dict[str, ast.AST] = {}
        for i, a in enumerate(call.args):
            if i < len(_POSITIONAL):
                args[_POSITIONAL[i]] = a
        for kw in call.keywords:
            if kw.arg:
                args[kw.arg] = kw.value
        meta: dict[str, Any] = {}
        for name in STATIC_FIELDS:
            if name not in args:
                continue
            try:
                meta[name] = _static_value(args[name], consts)
            except _NotStatic:
                meta.setdefault("_dynamic", []).append(name)
        if not all(k in meta for k in _REQUIRED):
            return None
        if "needs" in args:
            meta["_has_needs"] = True
        out.append(meta)
    return out


# --------------------------------------------------------------------- stubs
def _short(module: str) -> str:
    """A module's file as the user knows it: labbench.exercises.s9_x -> labbench/exercises/s9_x.py."""
    return module.replace(".", "/") + ".py"


def _import_error(module: str, path: Path | None, exc: BaseException) -> str:
    """"labbench/exercises/s9_x.py:12: ModuleNotFoundError: No module named 'foo'"."""
    where = _short(module)
    line = None
    if isinstance(exc, SyntaxError) and exc.lineno:
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if path is not None and Path(frame.filename).resolve() == Path(path).resolve():
                line = frame.lineno
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SyntaxError):
        msg = exc.msg
    return f"{where}{f':{line}' if line else ''}: {type(exc).__name__}: {msg}"


class ExerciseStub:
    """An exercise as listing sees it (id, title, session, data, ...), read
    without importing its module. Any other attribute (``Params``, ``run``,
    ``needs``, ``default_params``) imports it on first use: :meth:`load`."""

    def __init__(self, module: str, path: Path | None, meta: dict[str, Any] | None = None,
                 error: str | None = None, exercise: Exercise | None = None):
        self.__dict__.update(_module=module, _path=path, _meta=dict(meta or {}), _error=error,
                             _exercise=exercise)

    # what is always known
    @property
    def id(self) -> str:
        return self._meta.get("id") or self._module.rsplit(".", 1)[-1]

    @property
    def module(self) -> str:
        return self._module

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def broken(self) -> bool:
        """True when the module is known to be unusable (see :attr:`error`)."""
        return self._error is not None

    @property
    def error(self) -> str | None:
        """Why the module cannot be used (file:line: error), or None."""
        return self._error

    @property
    def loaded(self) -> bool:
        return self._exercise is not None

    def load(self) -> Exercise:
        """The module's :class:`Exercise`, importing it the first time;
        :class:`ExerciseBroken` with the reason when that fails."""
        if self._exercise is not None:
            return self._exercise
        if self._error is not None:
            raise ExerciseBroken(self.id, self._module, self._error)
        try:
            mod = importlib.import_module(self._module)
        except Exception as exc:  # any failure of the module's own code: it is broken, the others are not
            sys.modules.pop(self._module, None)
            self._fail(_import_error(self._module, self._path, exc))
        items = getattr(mod, "EXERCISES", None) or [getattr(mod, "EXERCISE", None)]
        found = [e for e in items if isinstance(e, Exercise) and e.id == self.id]
        if not found:
            self._fail(f"{_short(self._module)}: defines no Exercise with id "
                       f'"{self.id}" (expected EXERCISE = Exercise(id="{self.id}", ...))')
        ex = found[0]
        ex.module = mod.__name__
        self.__dict__["_exercise"] = ex
        return ex

    def _fail(self, reason: str):
        self.__dict__["_error"] = reason
        raise ExerciseBroken(self.id, self._module, reason)

    def data_needed(self, params: Params | None = None) -> list[str]:
        """The data sets a run reads; without ``params`` and before the module is
        imported, the declared ``data`` list (the most a run may read)."""
        if params is None and self._exercise is None:
            return list(self.data)
        return self.load().data_needed(params)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        meta = self.__dict__["_meta"]
        if name in meta and not name.startswith("_"):
            return meta[name]
        if (name in ("data", "primary_metric") and self.__dict__["_exercise"] is None
                and name not in meta.get("_dynamic", ()) and not self.__dict__["_error"]):
            return [] if name == "data" else ""  # not in the Exercise(...) call: the default, no import needed
        return getattr(self.load(), name)

    def __repr__(self) -> str:
        state = "broken" if self.broken else ("loaded" if self.loaded else "not loaded")
        return f"<exercise {self.id} ({self._module}, {state})>"


# ----------------------------------------------------------------- discovery
_STUBS: list[ExerciseStub] | None = None


def discover(folder: Path, package: str) -> list[ExerciseStub]:
    """Stubs for the modules in ``folder`` (the package ``package``): read
    statically where possible, imported where not; broken ones included."""
    stubs: list[ExerciseStub] = []
    for path in sorted(Path(folder).glob("*.py")):
        name = path.stem
        if name.startswith("_"):
            continue
        module = f"{package}.{name}"
        try:
            metas = read_static(path)
        except (SyntaxError, ValueError) as exc:
            stubs.append(ExerciseStub(module, path, error=_import_error(module, path, exc)))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            stubs.append(ExerciseStub(module, path, error=f"{_short(module)}: cannot be read: {exc}"))
            continue
        if metas is not None:
            stubs += [ExerciseStub(module, path, meta) for meta in metas]
            continue
        # the Exercise(...) call is not plain literals: import the module to learn what it defines
        try:
            mod = importlib.import_module(module)
        except Exception as exc:
            sys.modules.pop(module, None)
            stubs.append(ExerciseStub(module, path, error=_import_error(module, path, exc)))
            continue
        items = [e for e in (getattr(mod, "EXERCISES", None) or [getattr(mod, "EXERCISE", None)])
                 if isinstance(e, Exercise)]
        for ex in items:
            ex.module = module
            meta = {k: getattr(ex, k) for k in STATIC_FIELDS}
            stubs.append(ExerciseStub(module, path, meta, exercise=ex))
    seen: dict[str, ExerciseStub] = {}
    for stub in stubs:
        if stub.broken:
            continue
        if stub.id in seen:
            stub.__dict__["_error"] = (f'exercise id "{stub.id}" is defined twice: in {seen[stub.id].module} '
                                       f"and in {stub.module}")
        else:
            seen[stub.id] = stub
    return sorted(stubs, key=lambda s: (s.broken, _session_of(s), _sort_key(s.id)))


def _session_of(stub: ExerciseStub) -> int:
    s = stub._meta.get("session")
    return s if isinstance(s, int) else 99


def _sort_key(ex_id: str):
    head = ex_id.split("-", 1)[0]
    try:
        return tuple(int(p) for p in head.split(".")), ex_id
    except ValueError:
        return (99,), ex_id


def list_exercise_stubs() -> list[ExerciseStub]:
    """Every exercise module's stub, broken ones last; imports none of them."""
    global _STUBS
    if _STUBS is None:
        from .. import exercises

        _STUBS = discover(Path(exercises.__path__[0]), exercises.__name__)
    return list(_STUBS)


def broken_exercises() -> list[ExerciseStub]:
    """The stubs known to be broken (read or import errors seen so far)."""
    return [s for s in list_exercise_stubs() if s.broken]


def all_exercises() -> dict[str, ExerciseStub]:
    """``{id: stub}`` in course order, without the ones known to be broken.
    A stub behaves as the :class:`Exercise` (its module is imported when
    ``Params``/``run`` are first needed)."""
    return {s.id: s for s in list_exercise_stubs() if not s.broken}


def get_exercise(ex_id: str) -> Exercise:
    """The loaded exercise ``ex_id``; :class:`UnknownExercise`, or
    :class:`ExerciseBroken` naming the file, line and error."""
    stubs = {s.id: s for s in list_exercise_stubs()}
    if ex_id not in stubs:
        raise UnknownExercise(ex_id, [s.id for s in stubs.values() if not s.broken])
    return stubs[ex_id].load()


def reset() -> None:
    """Forget what was discovered (tests; a module edited while running)."""
    global _STUBS
    _STUBS = None
