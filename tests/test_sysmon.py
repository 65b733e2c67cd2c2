"""The system recorder (labbench/engine/sysmon.py): samples on the CPU, the
NVML path with a fake management library, the summary, compare, export and
doctor. No timing is asserted beyond "never earlier than asked"."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import torch
from pydantic import Field
from typer.testing import CliRunner

from labbench.engine import Exercise, Params
from labbench.engine import sysmon
from labbench.engine.events import iter_events
from labbench.engine.presets import Preset
from labbench.engine.run import Run
from labbench.engine.runner import execute
from labbench.engine.sysmon import (ENV_INTERVAL, GpuInfo, Nvml, SystemMonitor, fmt_mb, gpu_choice_label,
                                    interval_from_env, read_system, summary_rows)

MB = 2**20


# ------------------------------------------------------------------ helpers
class BusyParams(Params):
    seconds: float = Field(0.6, gt=0, description="How long to keep the CPU busy")
    epochs: int = Field(3, ge=1, description="Epochs")


def busy_run(p: BusyParams, run) -> None:
    """Keeps one core busy for ``seconds``, in ``epochs`` parts."""
    for epoch in run.epochs(p.epochs):
        end = time.perf_counter() + p.seconds / p.epochs
        x = 0
        while time.perf_counter() < end:
            x += 1
        run.scalars(epoch, loss=1.0 / epoch)
    run.summary(done=1)


BUSY = Exercise(id="9.9-busy", title="busy", session=9, description="", Params=BusyParams, run=busy_run)


def busy_preset(**params) -> Preset:
    return Preset(exercise=BUSY, params=BusyParams(**params), seed=0, device="cpu")


def system_events(folder: Path) -> list[dict]:
    return [e for e in iter_events(folder) if e["type"] == "system"]


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def fake_nvml(utils=(90, 94), used=3 * 1024 * MB, total=80 * 1024 * MB, pid: int | None = None,
              uuids=("GPU-aaaa-1111", "GPU-bbbb-2222"), fail_init: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's ``pynvml``: two GPUs, fixed readings
    (utilisation cycling through ``utils``), this process using 1.5 GiB."""
    m = types.ModuleType("pynvml")
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = {"init": 0, "shutdown": 0, "util": 0}

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError

    def init():
        if fail_init:
            raise NVMLError("Driver Not Loaded")
        m.calls["init"] += 1

    def shutdown():
        m.calls["shutdown"] += 1

    def handle(i):
        if not 0 <= i < len(uuids):
            raise NVMLError("Invalid Argument")
        return ("handle", i)

    def by_uuid(u):
        if u not in uuids:
            raise NVMLError("Not Found")
        return ("handle", uuids.index(u))

    def util(h):
        m.calls["util"] += 1
        return types.SimpleNamespace(gpu=utils[(m.calls["util"] - 1) % len(utils)], memory=40)

    m.nvmlInit = init
    m.nvmlShutdown = shutdown
    m.nvmlDeviceGetCount = lambda: len(uuids)
    m.nvmlDeviceGetHandleByIndex = handle
    m.nvmlDeviceGetHandleByUUID = by_uuid
    m.nvmlDeviceGetUUID = lambda h: uuids[h[1]]
    m.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3" if h[1] == 0 else "NVIDIA A100-SXM4-40GB"
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=used, total=total, free=total - used)
    m.nvmlDeviceGetUtilizationRates = util
    m.nvmlDeviceGetTemperature = lambda h, sensor: 61
    m.nvmlDeviceGetPowerUsage = lambda h: 312_500  # milliwatts
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=12345, usedGpuMemory=512 * MB),
        types.SimpleNamespace(pid=os.getpid() if pid is None else pid, usedGpuMemory=1536 * MB)]
    m.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    return m


@pytest.fixture
def no_cuda_devices(monkeypatch):
    """torch on this machine has no CUDA device: the torch fallback finds none."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ------------------------------------------------------------------ setting
@pytest.mark.parametrize("raw, interval, warns", [
    ("", 2.0, False), ("0", None, False), ("off", None, False), ("0.5", 0.5, False), (" 3 ", 3.0, False),
    ("abc", 2.0, True), ("0.001", 2.0, True), ("-1", 2.0, True), ("nan", 2.0, True)])
def test_the_interval_setting(raw, interval, warns):
    got, warning = interval_from_env({ENV_INTERVAL: raw})
    assert got == interval
    if warns:
        assert ENV_INTERVAL in warning and repr(raw) in warning and "using 2 s" in warning
    else:
        assert warning == ""


# --------------------------------------------------------------- the CPU
def test_recorder_samples_on_the_beat_and_stops_with_the_run(tmp_path):
    run = Run(tmp_path)
    mon = SystemMonitor(run, torch.device("cpu"), interval=0.1)
    run.listeners.append(mon.on_event)
    run.emit({"type": "start"})
    c0, w0 = time.process_time(), time.perf_counter()
    burn(0.8)
    mine = 100 * (time.process_time() - c0) / (time.perf_counter() - w0)
    summary = mon.stop()
    run.emit({"type": "end", "status": "ok"})
    assert mon._thread.daemon and not mon._thread.is_alive()  # never keeps the process alive
    time.sleep(0.35)  # three more beats: nothing may come
    run.close()
    events = list(iter_events(tmp_path))
    assert events[-1]["type"] == "end"
    samples = [e for e in events if e["type"] == "system"]
    periodic = [e for e in samples if not e.get("final")]
    assert samples[-1].get("final") and len(periodic) >= 2
    t0 = events[0]["t"]
    for k, ev in enumerate(periodic, start=1):  # the k-th sample never comes before k intervals
        assert ev["t"] - t0 >= k * 0.1 - 0.01, (k, ev["t"] - t0)
    gaps = [b["t"] - a["t"] for a, b in zip(periodic, periodic[1:])]
    assert min(gaps) >= 0.05 - 0.01, gaps  # late ones restart the beat: never two in a bunch
    for ev in samples:
        assert 10 < ev["values"]["rss_mb"] < 1e6  # a Python process with torch: tens of MiB at least
        if not ev.get("final"):  # (the last one has no CPU figure when it comes right after a beat)
            assert 0 <= ev["values"]["cpu_percent"] <= 100 * os.cpu_count() + 5
        assert not any(k.startswith(("gpu_", "cuda_")) for k in ev["values"])  # a CPU run
    assert summary["samples"] == len(samples)
    assert summary["rss_peak_mb"] == max(e["values"]["rss_mb"] for e in samples)
    # the mean CPU is the process's CPU time over the same wall time (one core busy)
    assert summary["cpu_mean_percent"] == pytest.approx(mine, abs=15)
    assert summary["interval_s"] == 0.1 and summary["cpus"] == os.cpu_count()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")
def test_worker_processes_count_as_the_runs_cpu(tmp_path):
    import subprocess

    base, kids = sysmon.cpu_seconds()
    assert kids == 0
    run = Run(tmp_path)
    mon = SystemMonitor(run, torch.device("cpu"), interval=0.1)
    run.listeners.append(mon.on_event)
    run.emit({"type": "start"})
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.4: pass"])
    assert inside_wait(lambda: sysmon._proc_cpu_seconds(child.pid) > 0.1, 30)
    live, kids = sysmon.cpu_seconds()
    assert kids == 1 and live - base >= 0.1  # a live child's time is the run's
    assert inside_wait(lambda: any(e["type"] == "system" and e["values"].get("procs") == 1
                                   for e in iter_events(tmp_path)), 10)
    child.wait()
    after, kids = sysmon.cpu_seconds()
    assert kids == 0 and after - base >= 0.4  # reaped: its whole 0.4 s stays counted
    summary = mon.stop()
    run.close()
    # the run's own thread slept: the CPU it shows is the child's
    assert summary["cpu_mean_percent"] * (time.perf_counter() - mon._first[0]) / 100 >= 0.38


def test_a_late_sample_is_dropped_and_never_holds_the_stop(tmp_path):
    run = Run(tmp_path)
    mon = SystemMonitor(run, torch.device("cpu"), interval=0.05)
    real_sample, inside, release = mon.sample, threading.Event(), threading.Event()

    def slow_sample():
        if threading.current_thread().name == "labbench-sysmon":
            inside.set()
            release.wait(5)  # a driver call that hangs
        return real_sample()

    mon.sample = slow_sample
    run.listeners.append(mon.on_event)
    run.emit({"type": "start"})
    assert inside.wait(5)
    t = time.perf_counter()
    mon.stop(timeout=0.2)
    assert time.perf_counter() - t < 2.0  # the stop went on without the hung thread
    run.emit({"type": "end", "status": "ok"})
    release.set()  # the hung reading comes back now, after the end
    mon._thread.join(5)
    run.close()
    events = list(iter_events(tmp_path))
    assert events[-1]["type"] == "end"
    assert [e.get("final") for e in events if e["type"] == "system"] == [True]


def test_a_run_records_its_system_series_and_summary(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "0.1")

    def used():
        t = os.times()
        return time.process_time() + t.children_user + t.children_system

    c0 = used()
    res = execute(busy_preset(seconds=0.6), tmp_path / "run")
    mine = used() - c0
    assert res.status == "ok"
    events = list(iter_events(tmp_path / "run"))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("system") >= 2
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)  # whole lines, in time order
    s = res.summary["system"]
    assert s["samples"] == kinds.count("system") and s["interval_s"] == 0.1
    assert s["rss_peak_mb"] > 10 and s["cpu_mean_percent"] <= 100 * os.cpu_count() + 5
    # its CPU seconds are the busy loop's: most of what execute() used, never more
    recorded = s["cpu_mean_percent"] / 100 * res.summary["wall_time_s"]
    assert 0.5 * mine <= recorded <= mine + 0.05, (recorded, mine)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["system"] == s
    # the headless summary table prints them
    from rich.console import Console

    from labbench.console import summary_table

    con = Console(width=120, record=True)
    con.print(summary_table(res.summary))
    text = con.export_text()
    assert "peak memory" in text and f"RSS {fmt_mb(s['rss_peak_mb'])}" in text
    assert "mean utilisation" in text and f"CPU {s['cpu_mean_percent']:.0f}%" in text


def test_off_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "off")
    res = execute(busy_preset(seconds=0.2), tmp_path / "run")
    assert res.status == "ok" and res.summary["system"] == {}
    assert system_events(tmp_path / "run") == []
    assert threading.active_count() == 1 or all(t.name != "labbench-sysmon" for t in threading.enumerate())


def test_a_bad_setting_is_said_in_the_run_log_and_the_default_used(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "fast")
    res = execute(busy_preset(seconds=0.1, epochs=1), tmp_path / "run")
    assert res.status == "ok" and res.summary["system"]["interval_s"] == 2.0
    warnings = [e["text"] for e in iter_events(tmp_path / "run") if e["type"] == "text" and e["level"] == "warning"]
    assert any("LABBENCH_SYSMON_INTERVAL='fast'" in w for w in warnings)


def test_a_stopped_run_ends_its_record_too(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_INTERVAL, "0.05")

    class StopAfterEpoch1:
        requested = False

        def __call__(self):
            return self.requested

        def listen(self, ev):
            if ev["type"] == "progress" and ev.get("step") == 1:
                self.requested = True

    stop = StopAfterEpoch1()
    res = execute(busy_preset(seconds=0.9, epochs=3), tmp_path / "run", listeners=[stop.listen], stop=stop)
    assert res.status == "interrupted"
    events = list(iter_events(tmp_path / "run"))
    assert events[-1]["type"] == "end" and events[-2]["type"] == "system" and events[-2]["final"]
    assert not any(t.name == "labbench-sysmon" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------ NVML
def test_the_nvml_path_with_a_fake_library(tmp_path, monkeypatch):
    fake = fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(sysmon, "EPOCH_PEAK_MIN_S", 0.0)
    allocated = {"now": 700 * MB, "peak": 900 * MB}
    resets = []
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: allocated["now"])
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 1024 * MB)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: allocated["peak"])
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: resets.append(d))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: (_ for _ in ()).throw(RuntimeError("no")))
    monkeypatch.setenv(ENV_INTERVAL, "0.05")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    run = Run(tmp_path)
    mon = SystemMonitor.attach(run, torch.device("cuda:0"))
    assert mon.nvml is not None and mon.gpu_handle == ("handle", 0)
    run.emit({"type": "start"})
    assert inside_wait(lambda: mon.samples >= 2)
    run.progress(0, 2, check=False)  # step 0: no epoch yet
    run.progress(1, 2, check=False)
    allocated["peak"] = 2048 * MB
    run.progress(2, 2, check=False)
    summary = mon.stop()
    run.emit({"type": "end", "status": "ok"})
    run.close()
    events = system_events(tmp_path)
    periodic = [e for e in events if "step" not in e]
    v = periodic[0]["values"]
    assert v["gpu_mem_used_mb"] == 3072.0 and v["gpu_mem_total_mb"] == 81920.0
    assert v["gpu_proc_mem_mb"] == 1536.0  # this process's own, not the other one's 512
    assert v["gpu_temp_c"] == 61.0 and v["gpu_power_w"] == 312.5  # 312,500 mW
    assert v["gpu_util"] in (90.0, 94.0) and v["cuda_alloc_mb"] == 700.0 and v["cuda_reserved_mb"] == 1024.0
    assert [(e["step"], e["values"]["cuda_peak_mb"]) for e in events if "step" in e] == [(1, 900.0), (2, 2048.0)]
    # the torch peak restarts at the run's start and after each epoch read
    assert len(resets) >= 3
    utils = [e["values"]["gpu_util"] for e in periodic]
    assert summary["gpu_util_mean"] == pytest.approx(sum(utils) / len(utils), abs=0.05)
    assert summary["gpu_mem_peak_mb"] == 3072.0 and summary["gpu_mem_total_mb"] == 81920.0
    assert summary["gpu_proc_mem_peak_mb"] == 1536.0 and summary["cuda_peak_mb"] == 2048.0
    assert fake.calls["init"] == fake.calls["shutdown"] == 1  # NVML is closed with the run
    rows = dict(summary_rows(summary))
    assert "CUDA 2.0 GiB (torch)" in rows["peak memory"] and "GPU 3.0 GiB of 80.0 GiB" in rows["peak memory"]
    assert rows["mean utilisation"].startswith(f"GPU {summary['gpu_util_mean']:.0f}%")
    series = read_system(iter_events(tmp_path))
    assert series.cuda_peak == 2048.0 and series.latest["gpu_mem_total_mb"] == 81920.0


def inside_wait(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_nvml_maps_torch_devices_through_cuda_visible_devices(monkeypatch):
    fake = fake_nvml()
    nv = Nvml(fake)
    assert nv.visible_indices({}) == [0, 1]
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "1"}) == [1]
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "1,0"}) == [1, 0]
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}) == [1]  # a UUID prefix
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "0,7,1"}) == [0]  # CUDA stops at the first bad one
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "MIG-1234"}) is None
    assert nv.visible_indices({"CUDA_VISIBLE_DEVICES": "GPU-"}) is None  # matches two: cannot tell
    # a torch device is found by its UUID first
    props = types.SimpleNamespace(uuid="bbbb-2222", pci_bus_id=None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    assert nv.handle_for(torch.device("cuda:0")) == ("handle", 1)


def test_no_library_or_no_driver_is_silent(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert Nvml.try_open() == (None, "nvidia-ml-py is not installed")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(fail_init=True))
    nv, why = Nvml.try_open()
    assert nv is None and why.startswith("no NVIDIA driver answered")
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 0)
    run = Run(tmp_path)
    mon = SystemMonitor.attach(run, torch.device("cuda:0"))
    assert mon.nvml is None
    run.emit({"type": "start"})
    mon.stop()
    run.close()
    values = system_events(tmp_path)[-1]["values"]
    assert "rss_mb" in values and not any(k.startswith("gpu_") for k in values)


# -------------------------------------------------------- doctor, picker
def wide_cli(monkeypatch):
    """The CLI printing at 200 columns, so a table row is one line."""
    from rich.console import Console

    from labbench import cli

    monkeypatch.setattr(cli, "out", Console(width=200))
    return cli.app


def test_doctor_lists_each_gpu_with_memory_and_driver(monkeypatch):
    app = wide_cli(monkeypatch)

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(utils=(92,)))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(ENV_INTERVAL, raising=False)
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    gpu0 = next(line for line in lines if "cuda:0" in line)
    assert "NVIDIA H100 80GB HBM3" in gpu0 and "3.0 GiB of 80.0 GiB used (77.0 GiB free)" in gpu0
    assert "92% busy" in gpu0
    assert any("cuda:1" in line and "NVIDIA A100-SXM4-40GB" in line for line in lines)
    assert any("driver" in line and "NVIDIA 550.54.15" in line for line in lines)
    assert any("every 2 s" in line and "GPU readings from NVML" in line for line in lines)


def test_doctor_without_nvml_says_why(monkeypatch, no_cuda_devices):
    app = wide_cli(monkeypatch)

    monkeypatch.setitem(sys.modules, "pynvml", None)
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output
    assert "nvidia-ml-py is not installed" in res.output and "cuda:0" not in res.output


def test_gpu_inventory_maps_nvml_to_torch_numbering(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(utils=(7,)))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpus, driver = sysmon.gpu_inventory()
    assert [(g.name, g.label) for g in gpus] == [("cuda:0", "NVIDIA A100-SXM4-40GB")]  # NVML's 1 is torch's 0
    assert gpus[0].free_mb == 77 * 1024 and gpus[0].util == 7.0 and driver == "550.54.15"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sysmon.gpu_inventory(usable=True) == ([], None)  # a CPU-only torch cannot use them


def test_device_picker_label():
    g = GpuInfo("cuda:1", "NVIDIA H100 80GB HBM3", free_mb=61.2 * 1024, total_mb=80 * 1024, util=92.4)
    assert gpu_choice_label(g) == "cuda:1 NVIDIA H100 80GB HBM3, 61.2 GiB free, 92% busy"
    assert gpu_choice_label(GpuInfo("cuda:0", "GPU", 1024.0, 2048.0, None, "torch")) == "cuda:0 GPU, 1.0 GiB free"


# ------------------------------------------------------- compare, export
def test_summary_rows_and_formats():
    assert fmt_mb(512) == "512 MiB" and fmt_mb(3174.4) == "3.1 GiB" and fmt_mb(None) == "-"
    assert summary_rows({}) == [] and summary_rows(None) == []
    rows = summary_rows({"rss_peak_mb": 1228.8, "cpu_mean_percent": 148.6, "cpus": 16})
    assert rows == [("peak memory", "RSS 1.2 GiB"), ("mean utilisation", "CPU 149% (100% = 1 of 16 cores)")]


def test_compare_and_export_carry_peak_memory_and_utilisation(tmp_path, monkeypatch):
    from rich.console import Console

    from labbench.render.compare import comparison_table, comparison_table_by_param, load_comparison
    from labbench.report import export_run

    monkeypatch.setenv(ENV_INTERVAL, "0.1")
    for name, secs in (("a", 0.3), ("b", 0.4)):
        assert execute(busy_preset(seconds=secs), tmp_path / name).status == "ok"
    cmp = load_comparison([tmp_path / "a", tmp_path / "b"])
    systems = [r.info.system for r in cmp.runs]
    assert all(s["rss_peak_mb"] > 10 for s in systems)
    for table in (comparison_table(cmp), comparison_table_by_param(cmp)):
        con = Console(width=200, record=True)
        con.print(table)
        text = con.export_text()
        assert "peak RSS" in text and "CPU %" in text and "GPU %" not in text  # only what was recorded
        for s in systems:
            assert fmt_mb(s["rss_peak_mb"]) in text and f"{s['cpu_mean_percent']:,.0f}%" in text
    written = export_run(tmp_path / "a", tmp_path / "out", ["csv"])
    summary_csv = (tmp_path / "out" / "summary.csv").read_text()
    assert f"peak RSS (MiB),{systems[0]['rss_peak_mb']}" in summary_csv
    system_csv = (tmp_path / "out" / "system.csv").read_text().splitlines()
    assert tmp_path / "out" / "system.csv" in written
    assert system_csv[0].startswith("t,") and "rss_mb" in system_csv[0]
    assert len(system_csv) - 1 == systems[0]["samples"]
