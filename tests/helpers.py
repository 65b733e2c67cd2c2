"""Small helpers for tests: run an exercise in-process into a temporary folder."""

from __future__ import annotations

from pathlib import Path

#: real data for tests: ../shared/data beside the repository (CI has it there too)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

from labbench.engine.events import iter_events
from labbench.engine.presets import preset_for_exercise
from labbench.engine.runner import execute


def run_exercise(ex_id: str, tmp_path: Path, seed: int = 0, **params):
    """Run ``ex_id`` with ``params`` (as --set overrides) on the CPU; return
    (result, events)."""
    overrides = [f"{k}={_toml(v)}" for k, v in params.items()]
    preset = preset_for_exercise(ex_id, overrides=overrides)
    preset.seed = seed
    preset.device = "cpu"
    folder = tmp_path / f"{ex_id}-{len(list(tmp_path.iterdir())) if tmp_path.exists() else 0}"
    result = execute(preset, folder)
    return result, list(iter_events(folder))


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)
