"""What the lab bench calls a run and which number it shows for it.

A run is named by what makes it different: its preset's name, or the
parameters that differ from the exercise's defaults (``lr=0.02 epochs=500``),
never only a timestamp. The runs table and the compare view use the same name.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..engine.events import SUMMARY, read_json
from ..runs import RunInfo

DEFAULTS = "defaults"


def _exercise(ex_id: str, exercises: dict | None = None):
    """The exercise (from ``exercises``, default the registry), or None."""
    try:
        if exercises is None:
            from ..engine.registry import all_exercises

            exercises = all_exercises()
        return exercises.get(ex_id)
    except Exception:  # pragma: no cover - a broken exercise module must not hide runs
        return None


def changed_params(info: RunInfo, exercises: dict | None = None) -> dict:
    """The run's parameters that differ from its exercise's defaults (all of
    them when the exercise is unknown or cannot be loaded)."""
    ex = _exercise(info.exercise, exercises)
    if ex is None:
        return dict(info.params)
    try:
        defaults = ex.default_params().model_dump(mode="json")
    except Exception:  # a module that cannot be loaded
        return dict(info.params)
    return {k: v for k, v in info.params.items() if k not in defaults or defaults[k] != v}


def short_value(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return format(v, "g")
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(short_value(x) for x in v) + "]"
    return str(v)


def params_phrase(params: dict, max_len: int = 60) -> str:
    """``lr=0.02 epochs=500``: short enough for a table cell."""
    text = " ".join(f"{k}={short_value(v)}" for k, v in params.items())
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def sweep_point_values(info: RunInfo) -> str:
    """``lr=0.2,epochs=60`` from a sweep point's folder name ``003_lr=0.2,epochs=60``."""
    _, _, rest = info.path.name.partition("_")
    return rest.replace(",", " ")


def run_name(info: RunInfo, max_len: int = 60, exercises: dict | None = None) -> str:
    """The name the lab bench shows for a run (see the module's docstring)."""
    if info.sweep:
        values = sweep_point_values(info)
        # what differs first (a narrow table shows it), the sweep's name after
        text = f"{values} ({info.name})" if info.name and values else (values or info.name or info.sweep)
        return _cut(text, max_len)
    if info.name:
        return _cut(info.name, max_len)
    changed = changed_params(info, exercises)
    return params_phrase(changed, max_len) if changed else DEFAULTS


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def unique_names(infos: list[RunInfo], max_len: int = 60, exercises: dict | None = None) -> list[str]:
    """Names for runs shown together; equal names get " #2", " #3" ..."""
    names = [run_name(i, max_len, exercises) for i in infos]
    out = []
    for i, n in enumerate(names):
        out.append(n if names.count(n) == 1 else f"{n} #{names[:i + 1].count(n)}")
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def shown_metric(info: RunInfo, last: dict | None = None, exercises: dict | None = None) -> tuple[str, float] | None:
    """(name, value) that the runs table shows for a run: the exercise's
    primary metric when the run reported it; else the last value of its loss
    (from the live view's ``last`` or summary.json's ``last_scalars``), so
    that a run stopped early shows where it got to, not a reference number
    it logged at the start."""
    ex = _exercise(info.exercise, exercises)
    try:
        primary = ex.primary_metric if ex else ""
    except Exception:  # a module that cannot be loaded
        primary = ""
    if primary and _number(info.metrics.get(primary)):
        return primary, info.metrics[primary]
    if last is None:
        last = (read_json(Path(info.path) / SUMMARY) or {}).get("last_scalars") or {}
    numbers = {k: v for k, v in last.items() if _number(v) and math.isfinite(v)}
    if numbers:
        key = next((k for k in numbers if "loss" in k.lower()), next(iter(numbers)))
        return f"{key} (last)", numbers[key]
    if info.status == "ok" and not primary:
        return next(((k, v) for k, v in info.metrics.items() if _number(v)), None)
    return None


def started_label(info: RunInfo) -> str:
    """"05-01 10:00" from the run's ISO start time."""
    s = info.start or ""
    return f"{s[5:10]} {s[11:16]}" if len(s) >= 16 else s
