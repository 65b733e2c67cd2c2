"""Run an exercise in-process and press Stop (the first Ctrl-C) once a
chosen event has been seen, e.g. after epoch k."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from labbench.engine.events import iter_events
from labbench.engine.presets import preset_for_exercise
from labbench.engine.runner import execute

from .helpers import _toml


class StopWhen:
    """The runner's stop flag, set by a listener when ``when(event)`` is true."""

    def __init__(self, when: Callable[[dict], bool]):
        self.when = when
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def listen(self, event: dict) -> None:
        if not self.requested and self.when(event):
            self.requested = True


def after_step(key: str, step: int) -> Callable[[dict], bool]:
    """Stop once the scalar ``key`` has been reported for ``step``."""
    return lambda e: e["type"] == "scalars" and key in e["values"] and (e.get("step") or 0) >= step


def run_stopped(ex_id: str, tmp_path: Path, when: Callable[[dict], bool], seed: int = 0, **params):
    """Run ``ex_id`` on the CPU with ``params`` and Stop when ``when`` holds; (result, events)."""
    preset = preset_for_exercise(ex_id, overrides=[f"{k}={_toml(v)}" for k, v in params.items()])
    preset.seed, preset.device = seed, "cpu"
    stop = StopWhen(when)
    folder = tmp_path / f"{ex_id}-stopped"
    result = execute(preset, folder, listeners=[stop.listen], stop=stop)
    return result, list(iter_events(folder))
