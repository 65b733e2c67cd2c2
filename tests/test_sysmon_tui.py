"""The lab bench's system panel (labbench/tui/widgets/system.py) and device
picker, from deterministic fake run folders and a fake GPU list."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
from textual.widgets import Select

from labbench.engine.sysmon import GpuInfo, read_system
from labbench.tui.state import RunView
from labbench.tui.widgets.system import SystemPanel, readings, sparkline

from .test_tui import fake_app, write_fake_run

SIZES = [(80, 24), (120, 40)]


def system_samples(n: int = 40, gpu: bool = True) -> list[dict]:
    """A run's samples every 2 s: the CPU busy 150-200% of a core, memory
    growing to 1.5 GiB; on the GPU 20% then ~92% busy, 3.1 of 80 GiB."""
    out = []
    for i in range(n):
        v = {"cpu_percent": round(175 + 25 * math.sin(i / 3), 1), "rss_mb": round(1000 + 12.8 * i, 1)}
        if gpu:
            v.update(gpu_util=20.0 if i < 5 else 92.0 + (i % 3), gpu_mem_used_mb=float(min(3174, 600 + 100 * i)),
                     gpu_mem_total_mb=81559.0, gpu_temp_c=61.0, gpu_power_w=312.0,
                     cuda_alloc_mb=float(min(2900, 100 * i)), cuda_reserved_mb=3000.0)
        out.append({"t": 2.0 * (i + 1), "type": "system", "values": v})
        if gpu and i % 10 == 9:
            out.append({"t": 2.0 * (i + 1), "type": "system", "step": i // 10 + 1, "phase": "epoch",
                        "values": {"cuda_peak_mb": 2969.6}})
    return out


def write_system_run(folder: Path, gpu: bool = True) -> Path:
    write_fake_run(folder, done=8, status="running")
    with open(folder / "events.jsonl", "a") as fh:
        for ev in system_samples(gpu=gpu):
            fh.write(json.dumps(ev) + "\n")
    return folder


# ------------------------------------------------------------------ pieces
def test_sparkline_levels():
    assert sparkline([0, 50, 100], 3, 100) == "▁▅█"
    assert sparkline([1, 2, 3, 4], 2) == "▆█"  # the last values, scaled to the largest shown
    assert sparkline([], 5) == "" and sparkline([5], 0) == ""


def test_readings_of_a_gpu_run():
    rows = {r[0]: r for r in readings(read_system(system_samples()))}
    assert list(rows) == ["CPU", "RAM", "GPU", "VRAM"]
    assert rows["GPU"][3] == "92%" and rows["GPU"][4] == "avg 84% 61°C 312 W"  # (5*20 + 35*93) / 40 = 83.9
    assert rows["VRAM"][3] == "3.1/80 GiB" and rows["VRAM"][4] == "run peak 2.9 GiB"
    assert rows["RAM"][3] == "1.5 GiB" and rows["CPU"][2] == pytest.approx(200.0, abs=0.5)  # top >= 100%
    cpu_rows = [r[0] for r in readings(read_system(system_samples(gpu=False)))]
    assert cpu_rows == ["CPU", "RAM"]


def test_the_run_view_keeps_the_series_and_system_events_are_not_news(tmp_path):
    folder = write_system_run(tmp_path / "run")
    view = RunView(folder)
    view.poll()
    assert len(view.system.values("cpu_percent")) == 40 and view.system.interval == 2.0
    assert view.system.cuda_peak == 2969.6 and "system" in view.dirty
    view.seen_at = 0.0
    view.apply({"t": 90.0, "type": "system", "values": {"cpu_percent": 5.0}})
    assert view.seen_at == 0.0 and view.t == 90.0  # the clock goes on; "no news for ..." still counts


def test_the_panel_is_hidden_without_samples_and_follows_the_run(tmp_path):
    asyncio.run(_panel_follows(tmp_path))


async def _panel_follows(tmp_path):
    folder = write_fake_run(tmp_path / "runs" / "20240501-100000_1.9-fake", done=8, status="running")
    app = fake_app(tmp_path, watch=folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        panel = app.query_one(SystemPanel)
        assert not panel.display  # a run without samples (or an older run folder): no empty box
        with open(folder / "events.jsonl", "a") as fh:
            for ev in system_samples(3, gpu=False):
                fh.write(json.dumps(ev) + "\n")
        await pilot.pause(0.6)
        assert panel.display and panel.size.height == 1  # CPU and RAM share a line at this width
        assert "CPU" in str(panel.render()) and "RAM" in str(panel.render())


# ----------------------------------------------------------------- snapshots
@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_live_system_panel(snap_compare, tmp_path, size):
    folder = write_system_run(tmp_path / "runs" / "20240501-100000_1.9-fake")
    assert snap_compare(fake_app(tmp_path, watch=folder), terminal_size=size,
                        run_before=lambda pilot: pilot.pause(0.5))


# ----------------------------------------------------------- device picker
def test_device_picker_lists_free_memory_and_load(tmp_path):
    asyncio.run(_picker(tmp_path))


async def _picker(tmp_path):
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app._set_devices([GpuInfo("cuda:0", "NVIDIA H100 80GB HBM3", 61.2 * 1024, 80 * 1024, 92.0),
                          GpuInfo("cuda:1", "NVIDIA H100 80GB HBM3", 79.5 * 1024, 80 * 1024, 0.0)])
        sel = app.query_one("#device", Select)
        labels = [str(prompt) for prompt, _ in sel._options]
        assert "cuda:0 NVIDIA H100 80GB HBM3, 61.2 GiB free, 92% busy" in labels
        assert "cuda:1 NVIDIA H100 80GB HBM3, 79.5 GiB free, 0% busy" in labels
        assert app.manager.gpus == ["cuda:0", "cuda:1"]
        sel.value = "cuda:1"
        app._set_devices([GpuInfo("cuda:0", "NVIDIA H100 80GB HBM3", 20.0 * 1024, 80 * 1024, 99.0),
                          GpuInfo("cuda:1", "NVIDIA H100 80GB HBM3", 70.0 * 1024, 80 * 1024, 50.0)])
        assert sel.value == "cuda:1"  # a refresh keeps the choice
        assert "cuda:0 NVIDIA H100 80GB HBM3, 20.0 GiB free, 99% busy" in [str(p) for p, _ in sel._options]
