"""Shared fixtures. Real data lives in ../shared/data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """No test writes into the user's real data, presets or runs folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("LABBENCH_PRESETS", str(home / "presets"))
    monkeypatch.setenv("LABBENCH_OFFLINE", "1")  # no test reaches the network
    if "LABBENCH_DATA" not in os.environ:
        monkeypatch.setenv("LABBENCH_DATA", str(home / "data"))
    yield


@pytest.fixture
def shared_data(monkeypatch) -> Path:
    """Point the data registry at ../shared/data, or skip with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data beside the repository)")
    monkeypatch.setenv("LABBENCH_DATA", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_run_left_behind(request):
    """Runs started from the lab bench outlive it by design; a test that
    fails half-way must not leave one training on: kill what a test's runs
    folders still record as running."""
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is None:
        return
    import signal

    from labbench.engine.procs import RECORD, same_process

    for rec in tmp.glob(f"**/.labbench-tui/*{RECORD}"):
        try:
            import json

            data = json.loads(rec.read_text())
            if same_process(data.get("pid"), data.get("started")):
                os.killpg(data["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
