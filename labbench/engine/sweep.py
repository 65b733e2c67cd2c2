"""Sweeps: the cartesian product of a preset's ``[sweep]`` lists, one run each."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .events import SUMMARY, read_json, write_json_atomic
from .params import validate_params
from .presets import Preset


@dataclass
class SweepPoint:
    index: int
    values: dict
    preset: Preset

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values.items())

    @property
    def folder_name(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9.=,_-]+", "-", self.label)[:80]
        return f"{self.index:03d}_{safe}" if safe else f"{self.index:03d}"


def expand(preset: Preset) -> list[SweepPoint]:
    """All points of the grid (a preset without ``[sweep]`` is one point)."""
    keys = list(preset.sweep)
    base = preset.params.model_dump()
    points = []
    for i, combo in enumerate(itertools.product(*(preset.sweep[k] for k in keys)), start=1):
        values = dict(zip(keys, combo))
        params = validate_params(preset.exercise.Params, {**base, **values})
        points.append(SweepPoint(i, values, replace(preset, params=params, sweep={})))
    return points


def write_index(sweep_dir: Path, preset: Preset, points: list[SweepPoint], results: dict[int, dict]) -> None:
    write_json_atomic(Path(sweep_dir) / "sweep.json", {
        "exercise": preset.exercise.id,
        "name": preset.name,
        "keys": list(preset.sweep),
        "points": [
            {"index": p.index, "values": p.values, "dir": p.folder_name,
             "status": results.get(p.index, {}).get("status", "pending")}
            for p in points
        ],
    })


def load_sweep(sweep_dir: Path) -> list[tuple[dict, dict]]:
    """(point, summary) for each point of a finished or partial sweep."""
    index = read_json(Path(sweep_dir) / "sweep.json") or {"points": []}
    out = []
    for point in index["points"]:
        summary = read_json(Path(sweep_dir) / point["dir"] / SUMMARY) or {"status": point.get("status", "pending")}
        out.append((point, summary))
    return out
