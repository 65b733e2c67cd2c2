"""Where the lab bench keeps runs and the user's presets (no Textual import:
the command line uses these too)."""

from __future__ import annotations

import os
from pathlib import Path


def default_runs_dir() -> Path:
    return Path(os.environ.get("LABBENCH_RUNS") or "runs")


def user_presets_dir() -> Path:
    env = os.environ.get("LABBENCH_PRESETS")
    return Path(env).expanduser() if env else Path.home() / ".config" / "labbench" / "presets"
