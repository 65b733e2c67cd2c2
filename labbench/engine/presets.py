"""Presets: TOML files that name an exercise and its parameters.

```toml
exercise = "1.1-perceptron"
name = "report: learning-rate sweep"   # optional
seed = 0                               # optional
device = "auto"                        # optional
[params]
epochs = 60
[sweep]                                # optional; each value a list
lr = [0.2, 0.02, 0.0002, 0.25, 0.3]
```

Every error names the file, the line and the key, and says what was expected.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import (
    ParamError,
    Params,
    ParamsInvalid,
    describe_fields,
    suggest,
    validate_params,
)
from .registry import Exercise, UnknownExercise, all_exercises, get_exercise

TOP_KEYS = ("exercise", "name", "seed", "device", "description", "params", "sweep")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


@dataclass
class Preset:
    exercise: Exercise
    params: Params
    name: str = ""
    seed: int = 0
    device: str = "auto"
    description: str = ""
    sweep: dict[str, list] = field(default_factory=dict)
    path: Path | None = None
    raw_params: dict = field(default_factory=dict)  # as written (before defaults)

    @property
    def slug(self) -> str:
        base = self.name or (self.path.stem if self.path else "")
        return re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-")[:40]


class _Lines:
    """Maps (table, key) to the line where the key is written in a TOML text."""

    _header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")
    _key = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]+\")\s*=")

    def __init__(self, text: str, where: str):
        self.where = where
        self.lines: dict[tuple[str, str], int] = {}
        self.tables: dict[str, int] = {}
        table = ""
        for i, line in enumerate(text.splitlines(), start=1):
            m = self._header.match(line)
            if m:
                table = m.group(1).strip().strip("\"'")
                self.tables.setdefault(table, i)
                continue
            m = self._key.match(line)
            if m:
                self.lines.setdefault((table, m.group(1).strip('"')), i)

    def at(self, table: str, key: str = "") -> str:
        line = self.lines.get((table, key)) if key else None
        if line is None:
            line = self.tables.get(table)
        return f"{self.where}:{line}" if line else self.where


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax when it parses (numbers, booleans, lists,
    quoted strings), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ParamsInvalid([ParamError(key=item, message="expected KEY=VALUE", where="--set")])
    key, value = item.split("=", 1)
    key = key.strip()
    if key.startswith("params."):
        key = key[len("params."):]
    return key, value.strip()


def read_toml(path: Path) -> tuple[dict, _Lines]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsInvalid([ParamError(key="", message="no such preset file", where=where)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsInvalid([ParamError(key="", message=f"cannot read: {exc}", where=where)]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = f":{m.group(1)}" if m else ""
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        col = f" (column {m.group(2)})" if m else ""
        raise ParamsInvalid([ParamError(key="", message=f"TOML syntax error: {msg}{col}", where=where + line)]) from None
    return data, _Lines(text, where)


def load_preset(path: str | Path, overrides: list[str] | None = None, sweep_overrides: list[str] | None = None) -> Preset:
    """Read and validate a preset file, applying ``--set`` overrides."""
    path = Path(path)
    data, lines = read_toml(path)
    return preset_from_dict(data, lines=lines, path=path, overrides=overrides, sweep_overrides=sweep_overrides)


def preset_for_exercise(ex_id: str, overrides: list[str] | None = None, sweep_overrides: list[str] | None = None) -> Preset:
    return preset_from_dict({"exercise": ex_id}, overrides=overrides, sweep_overrides=sweep_overrides)


def preset_from_dict(data: dict, lines: _Lines | None = None, path: Path | None = None,
                     overrides: list[str] | None = None, sweep_overrides: list[str] | None = None) -> Preset:
    where = str(path) if path else "preset"
    at = lines.at if lines else (lambda table, key="": where)
    errors: list[ParamError] = []

    for key in data:
        if key not in TOP_KEYS:
            errors.append(ParamError(key=key, message="unknown top-level key" + suggest(key, TOP_KEYS)
                                     + "; parameters go under [params]", where=at("", key)))
    ex_id = data.get("exercise")
    if not isinstance(ex_id, str):
        errors.append(ParamError(key="exercise", message='missing: expected exercise = "<id>" (see `labbench list`)',
                                 where=at("", "exercise")))
        raise ParamsInvalid(errors)
    try:
        exercise = get_exercise(ex_id)
    except UnknownExercise as exc:
        errors.append(ParamError(key="exercise", message=str(exc), where=at("", "exercise")))
        raise ParamsInvalid(errors) from None

    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        errors.append(ParamError(key="seed", message=f"must be a non-negative integer, got {seed!r}", where=at("", "seed")))
    device = data.get("device", "auto")
    if not isinstance(device, str) or not DEVICE_RE.match(device):
        errors.append(ParamError(key="device", message=f"must be auto, cpu, cuda or cuda:N, got {device!r}",
                                 where=at("", "device")))
    name = data.get("name", "")
    if not isinstance(name, str):
        errors.append(ParamError(key="name", message="must be a string", where=at("", "name")))
        name = ""

    params = data.get("params", {})
    if not isinstance(params, dict):
        errors.append(ParamError(key="params", message="must be a table: [params]", where=at("params")))
        params = {}
    params = dict(params)
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        errors.append(ParamError(key="sweep", message="must be a table: [sweep]", where=at("sweep")))
        sweep = {}
    sweep = dict(sweep)

    fields = exercise.Params.model_fields
    for key, value in sweep.items():
        if key not in fields:
            errors.append(ParamError(key=f"sweep.{key}", message="unknown parameter" + suggest(key, fields),
                                     where=at("sweep", key)))
        elif not isinstance(value, list) or not value:
            errors.append(ParamError(key=f"sweep.{key}", message="must be a non-empty list of values",
                                     where=at("sweep", key)))

    override_src: dict[str, str] = {}
    tagged = [(item, False) for item in overrides or []] + [(item, True) for item in sweep_overrides or []]
    for item, as_list in tagged:
        try:
            key, value = _split_override(item)
        except ParamsInvalid as exc:
            errors.extend(exc.errors)
            continue
        if key not in fields:
            errors.append(ParamError(key=key, message="unknown parameter" + suggest(key, fields), where="--set"))
            continue
        values = [parse_value(v) for v in _split_list(value)] if as_list else [parse_value(value)]
        if len(values) > 1:
            sweep[key] = values
        else:
            params[key] = values[0] if values else value
            sweep.pop(key, None)  # an explicit value wins over a sweep list
        override_src[key] = "--set"

    if errors:
        raise ParamsInvalid(errors)

    def locate(key: str) -> str:
        if key in override_src:
            return override_src[key]
        return at("params", key) if key else where

    validated = validate_params(exercise.Params, params, locate=locate)
    # Every sweep value must be valid too: check each one now, not half-way through a sweep.
    for key, values in sweep.items():
        for v in values:
            try:
                validate_params(exercise.Params, {**params, key: v})
            except ParamsInvalid as exc:
                for e in exc.errors:
                    if e.key.split(".")[0] == key:
                        errors.append(ParamError(key=f"sweep.{key}", message=f"{v!r}: {e.message}",
                                                 where=override_src.get(key) or at("sweep", key)))
    if errors:
        raise ParamsInvalid(errors)
    return Preset(exercise=exercise, params=validated, name=name, seed=seed, device=device,
                  description=str(data.get("description", "")), sweep=sweep, path=path, raw_params=params)


def _split_list(text: str) -> list[str]:
    """Split ``a,b,c`` on top-level commas (a TOML list ``[1,2]`` is one value)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = parse_value(text)
        if isinstance(inner, list):
            return [toml_literal(v) for v in inner]
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    out.append(cur)
    return [s for s in (x.strip() for x in out) if s]


def toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if value is None:
        return '""'
    return repr(value)


def render_preset(exercise: Exercise, params: Params | dict | None = None, *, name: str = "", seed: int | None = 0,
                  device: str = "auto", sweep: dict | None = None, comments: bool = True) -> str:
    """A complete preset TOML: every parameter, with its description as a comment."""
    values = params.model_dump(mode="json") if isinstance(params, Params) else (params or {})
    lines = [f'exercise = "{exercise.id}"']
    if comments:
        lines[0] += f"  # {exercise.title}"
    if name:
        lines.append(f"name = {toml_literal(name)}")
    if seed is not None:
        lines.append(f"seed = {seed}")
    lines.append(f'device = "{device}"' + ("  # auto, cpu, cuda or cuda:N" if comments else ""))
    lines.append("")
    lines.append("[params]")
    for info in describe_fields(exercise.Params):
        value = values.get(info.name, info.default)
        if value is None:
            lines.append(f"# {info.name} = (unset)" + (f"  # {info.description}" if comments else ""))
            continue
        line = f"{info.name} = {toml_literal(value)}"
        if comments:
            extra = ""
            if info.choices:
                extra = " [" + " | ".join(str(c) for c in info.choices) + "]"
            elif info.bounds:
                extra = f" ({info.bounds})"
            line += f"  # {info.description}{extra}"
        lines.append(line)
    if sweep:
        lines.append("")
        lines.append("[sweep]")
        for k, v in sweep.items():
            lines.append(f"{k} = {toml_literal(list(v))}")
    return "\n".join(lines) + "\n"


def shipped_presets_dir() -> Path:
    """The repository's ``presets/`` folder (next to the package in a checkout),
    or the copy installed inside the package."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "presets", here / "presets"):
        if cand.is_dir():
            return cand
    return here.parent / "presets"


def list_presets(folders: list[Path] | None = None, known=None) -> dict[str, list[Path]]:
    """Preset files by exercise id (default: the shipped folder), keeping
    those of the ``known`` exercise ids (default: every registered one)."""
    folders = folders if folders is not None else [shipped_presets_dir()]
    known = all_exercises() if known is None else known
    out: dict[str, list[Path]] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                continue
            ex = data.get("exercise")
            if ex in known:
                out.setdefault(ex, []).append(path)
    return out
