"""What the machine does while a run goes: CPU, memory and GPU, recorded into
the run folder.

A :class:`SystemMonitor` is attached to every run by the runner. While the run
goes, a background thread appends a ``system`` event to ``events.jsonl``
every ``interval`` seconds (default 2 s; ``LABBENCH_SYSMON_INTERVAL``, 0 or
``off`` turns it off) with what it read:

- ``cpu_percent``  the run's CPU use since the last sample (100 = one core
                   busy, as ``top`` counts): all the threads of the run
                   process and of any worker processes it started
- ``procs``        how many such worker processes run now (when there are any)
- ``rss_mb``       its resident memory (MiB)
- on a CUDA device, from torch: ``cuda_alloc_mb`` (tensors allocated now) and
  ``cuda_reserved_mb`` (what torch's caching allocator holds);
- on a CUDA device with NVIDIA's management library (the ``nvidia-ml-py``
  package and a driver): ``gpu_util`` (% of the last sample period the GPU was
  busy, every process included), ``gpu_mem_used_mb`` / ``gpu_mem_total_mb``
  (the whole device), ``gpu_proc_mem_mb`` (this process on it, where the driver
  says), ``gpu_temp_c`` and ``gpu_power_w``. Without the library or a driver
  these are left out, silently.

After each epoch (a ``progress`` event) on CUDA, a ``system`` event with
``step`` and ``cuda_peak_mb`` gives torch's ``max_memory_allocated`` since the
previous one (at most one a second: a peak then covers the steps since the
last). The last sample is taken when the run ends, before its ``end`` event;
nothing is written after it. The run's summary gets a ``system`` entry
(:meth:`SystemMonitor.stop`): peak memory (RSS, CUDA, GPU) and mean
utilisation (CPU from the process's CPU time over the wall time; GPU as the
mean of the samples).

The thread is a daemon, reads only, and never holds the run up: a Stop, a
Ctrl-C or the end of the run stop it at once, and a sample that arrives late
is dropped.

The functions below the monitor read these records back (the lab bench's
system panel, the headless summary, ``compare``) and list the GPUs for
``labbench doctor`` and the lab bench's device picker.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

ENV_INTERVAL = "LABBENCH_SYSMON_INTERVAL"
DEFAULT_INTERVAL_S = 2.0
MIN_INTERVAL_S = 0.05
EPOCH_PEAK_MIN_S = 1.0  # per-epoch CUDA peaks: at most one event this often
MB = 2**20


def interval_from_env(environ=None) -> tuple[float | None, str]:
    """(seconds between samples or None for off, a warning or "") from
    ``LABBENCH_SYSMON_INTERVAL``; a bad value falls back to the default and says so."""
    raw = (os.environ if environ is None else environ).get(ENV_INTERVAL, "")
    text = raw.strip().lower()
    if not text:
        return DEFAULT_INTERVAL_S, ""
    if text in ("0", "off", "no", "false", "none"):
        return None, ""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < MIN_INTERVAL_S:
        return DEFAULT_INTERVAL_S, (f"{ENV_INTERVAL}={raw!r}: expected seconds between system samples "
                                    f"(at least {MIN_INTERVAL_S}), or 0/off; using {DEFAULT_INTERVAL_S:g} s")
    return value, ""


# ------------------------------------------------------------------ NVML
class Nvml:
    """NVIDIA's management library (module ``pynvml`` of ``nvidia-ml-py``),
    initialised; :meth:`open` gives None where it or a driver is missing."""

    def __init__(self, mod):
        self.mod = mod

    @classmethod
    def open(cls) -> "Nvml | None":
        return cls.try_open()[0]

    @classmethod
    def try_open(cls) -> "tuple[Nvml | None, str]":
        """(the library, "") or (None, why not)."""
        try:
            import pynvml  # nvidia-ml-py
        except Exception:
            return None, "nvidia-ml-py is not installed"
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # no driver, no GPU: no NVML figures
            return None, f"no NVIDIA driver answered ({type(exc).__name__})"
        return cls(pynvml), ""

    def close(self) -> None:
        try:
            self.mod.nvmlShutdown()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @staticmethod
    def _text(value) -> str:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    def driver(self) -> str | None:
        try:
            return self._text(self.mod.nvmlSystemGetDriverVersion())
        except Exception:
            return None

    def count(self) -> int:
        try:
            return int(self.mod.nvmlDeviceGetCount())
        except Exception:
            return 0

    def handle(self, index: int):
        return self.mod.nvmlDeviceGetHandleByIndex(int(index))

    def uuid(self, handle) -> str:
        try:
            return self._text(self.mod.nvmlDeviceGetUUID(handle))
        except Exception:
            return ""

    def handle_for(self, device) -> object | None:
        """The NVML handle of a torch CUDA device: by its UUID, else its PCI
        address, else the CUDA_VISIBLE_DEVICES mapping; None when none fits."""
        try:
            import torch

            props = torch.cuda.get_device_properties(device)
        except Exception:
            props = None
        if props is not None:
            uuid = str(getattr(props, "uuid", "") or "")
            if uuid:
                try:
                    return self.mod.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-"))
                                                              else "GPU-" + uuid)
                except Exception:
                    pass
            if getattr(props, "pci_bus_id", None) is not None:
                try:
                    bus = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
                    return self.mod.nvmlDeviceGetHandleByPciBusId(bus)
                except Exception:
                    pass
        visible = self.visible_indices()
        idx = getattr(device, "index", None) or 0
        if visible is not None and idx < len(visible):
            try:
                return self.handle(visible[idx])
            except Exception:
                return None
        return None

    def visible_indices(self, environ=None) -> list[int] | None:
        """NVML indices of torch's cuda:0, cuda:1, ... (CUDA_VISIBLE_DEVICES
        taken into account: indices or GPU UUIDs); None when it cannot tell
        (MIG instances, an unknown UUID)."""
        n = self.count()
        spec = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
        if spec is None:
            return list(range(n))
        out: list[int] = []
        uuids = None
        for tok in (t.strip() for t in spec.split(",")):
            if not tok:
                break
            if tok.isdigit() or (tok[0] in "+-" and tok[1:].isdigit()):
                i = int(tok)
                if i < 0 or i >= n:
                    break  # CUDA stops at the first invalid entry
                out.append(i)
                continue
            if not tok.startswith("GPU-"):
                return None
            if uuids is None:
                uuids = [self.uuid(self.handle(i)) for i in range(n)]
            match = [i for i, u in enumerate(uuids) if u.startswith(tok)]
            if len(match) != 1:
                return None
            out.append(match[0])
        return out

    def sample(self, handle, pid: int | None = None) -> dict:
        """What the device does now; a reading the GPU does not support is left out."""
        m, out = self.mod, {}
        try:
            out["gpu_util"] = float(m.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            pass
        try:
            mem = m.nvmlDeviceGetMemoryInfo(handle)
            out["gpu_mem_used_mb"] = round(mem.used / MB, 1)
            out["gpu_mem_total_mb"] = round(mem.total / MB, 1)
        except Exception:
            pass
        if pid is not None:
            try:
                for proc in m.nvmlDeviceGetComputeRunningProcesses(handle):
                    used = getattr(proc, "usedGpuMemory", None)
                    if proc.pid == pid and isinstance(used, int):
                        out["gpu_proc_mem_mb"] = round(used / MB, 1)
            except Exception:
                pass
        try:
            out["gpu_temp_c"] = float(m.nvmlDeviceGetTemperature(handle, m.NVML_TEMPERATURE_GPU))
        except Exception:
            pass
        try:
            out["gpu_power_w"] = round(m.nvmlDeviceGetPowerUsage(handle) / 1000.0, 1)  # milliwatts
        except Exception:
            pass
        return out

    def name(self, handle) -> str:
        try:
            return self._text(self.mod.nvmlDeviceGetName(handle))
        except Exception:
            return "NVIDIA GPU"


# --------------------------------------------------------------- process
def _rss_reader():
    """A function returning this process's resident memory in bytes (psutil;
    else /proc/self/statm on Linux; else None)."""
    try:
        import psutil

        proc = psutil.Process()
        return lambda: proc.memory_info().rss
    except Exception:
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")

        def statm():
            with open("/proc/self/statm", "rb") as fh:
                return int(fh.read().split()[1]) * page

        statm()
        return statm
    except Exception:
        return lambda: None


def _child_pids(pid: str | int = "self", depth: int = 2) -> list[int]:
    """The live child processes (and theirs, to ``depth``) from Linux's
    /proc/PID/task/*/children; [] where there is no such file."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
    if depth > 1:
        for child in list(out):
            out += _child_pids(child, depth - 1)
    return out


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") and "SC_CLK_TCK" in os.sysconf_names else 100


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of stat
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds() -> tuple[float, int]:
    """(CPU seconds used so far by this process, its finished children and
    its live ones, how many live ones): the worker processes an exercise
    starts (2.2's grid, data loaders) count as the run's. A child's time moves
    from "live" to "finished" when it is reaped, so differences stay right."""
    t = time.process_time()
    done = os.times()
    t += done.children_user + done.children_system
    kids = _child_pids()
    return t + sum(_proc_cpu_seconds(k) for k in kids), len(kids)


# --------------------------------------------------------------- monitor
class SystemMonitor:
    """Samples the machine for one run (see the module's text). Use
    :meth:`attach`; it starts with the run's ``start`` event and
    :meth:`stop` ends it and returns the summary."""

    def __init__(self, run, device=None, *, interval: float | None = DEFAULT_INTERVAL_S, nvml: Nvml | None = None,
                 gpu_handle=None, warning: str = ""):
        self.run = run
        self.device = device
        self.interval = interval
        self.cuda = getattr(device, "type", None) == "cuda"
        self.nvml = nvml
        self.gpu_handle = gpu_handle
        self.warning = warning
        self._rss = _rss_reader()
        self._pid = os.getpid()
        self._lock = threading.Lock()  # a sample and stop() never cross
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._last = (time.perf_counter(), cpu_seconds()[0])
        self._first = self._last
        self.samples = 0
        self.rss_peak = 0.0
        self.gpu_util: list[float] = []
        self.gpu_mem_peak = 0.0
        self.gpu_proc_peak = 0.0
        self.gpu_total: float | None = None
        self.cuda_peak = 0.0
        self._epoch_step = None
        self._epoch_emitted = -math.inf

    @classmethod
    def attach(cls, run, device=None) -> "SystemMonitor":
        """A monitor for ``run`` on ``device`` with the interval of
        ``LABBENCH_SYSMON_INTERVAL``, listening to the run's events (it starts
        on ``start``). Never raises."""
        interval, warning = interval_from_env()
        nvml = handle = None
        if interval is not None and getattr(device, "type", None) == "cuda":
            nvml = Nvml.open()
            try:
                handle = nvml.handle_for(device) if nvml is not None else None
            except Exception:
                handle = None
            if handle is None and nvml is not None:
                nvml.close()
                nvml = None
        mon = cls(run, device, interval=interval, nvml=nvml, gpu_handle=handle, warning=warning)
        run.listeners.append(mon.on_event)
        return mon

    # run events (the main thread) -----------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "start" and not self._started:
            if self.warning:
                self.warning, warning = "", self.warning
                self.run.text(warning, "warning")
            self.start()
        elif kind == "progress" and self.cuda and self._thread is not None and not self._closed:
            step = event.get("step")
            if step and step != self._epoch_step:
                self._epoch_step = step
                now = time.perf_counter()
                if now - self._epoch_emitted >= EPOCH_PEAK_MIN_S:
                    self._epoch_emitted = now
                    peak = self._take_cuda_peak()
                    if peak is not None:
                        self._emit({"step": step, "phase": event.get("phase"), "values": {"cuda_peak_mb": peak}})

    def _take_cuda_peak(self) -> float | None:
        """torch's peak allocation since the last call (MiB); the counter restarts."""
        try:
            import torch

            peak = torch.cuda.max_memory_allocated(self.device) / MB
            torch.cuda.reset_peak_memory_stats(self.device)
        except Exception:
            return None
        self.cuda_peak = max(self.cuda_peak, peak)
        return round(peak, 1)

    # the thread --------------------------------------------------------
    def start(self) -> None:
        self._started = True
        if self.interval is None:
            return
        self._first = self._last = (time.perf_counter(), cpu_seconds()[0])
        if self.cuda:
            self._take_cuda_peak()  # the run's own peak: not an earlier run's in this process (a sweep)
            self.cuda_peak = 0.0
        self._thread = threading.Thread(target=self._loop, name="labbench-sysmon", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        due = time.monotonic()
        while True:  # on a fixed beat: a slow reading does not push the next one later
            due += self.interval
            if self._halt.wait(max(0.0, due - time.monotonic())):
                return
            if time.monotonic() - due > self.interval / 2:  # woken late (a busy machine, a suspended
                due = time.monotonic()  # laptop): the beat starts again, so samples never bunch up
            try:
                values = self.sample()
            except Exception:  # a reading that fails is skipped, never the run
                continue
            self._emit({"values": values})

    def sample(self) -> dict:
        """One reading (see the module's text for the keys)."""
        values: dict = {}
        (cpu, kids), wall = cpu_seconds(), time.perf_counter()
        last_wall, last_cpu = self._last
        self._last = (wall, cpu)
        if wall - last_wall > 1e-3:
            values["cpu_percent"] = round(100.0 * max(0.0, cpu - last_cpu) / (wall - last_wall), 1)
        if kids:
            values["procs"] = kids  # worker processes of the run (their CPU is in cpu_percent)
        rss = self._rss()
        if rss is not None:
            values["rss_mb"] = round(rss / MB, 1)
            self.rss_peak = max(self.rss_peak, values["rss_mb"])
        if self.cuda:
            try:
                import torch

                values["cuda_alloc_mb"] = round(torch.cuda.memory_allocated(self.device) / MB, 1)
                values["cuda_reserved_mb"] = round(torch.cuda.memory_reserved(self.device) / MB, 1)
            except Exception:
                pass
        if self.nvml is not None and self.gpu_handle is not None:
            gpu = self.nvml.sample(self.gpu_handle, self._pid)
            values.update(gpu)
            if "gpu_util" in gpu:
                self.gpu_util.append(gpu["gpu_util"])
            self.gpu_mem_peak = max(self.gpu_mem_peak, gpu.get("gpu_mem_used_mb", 0.0))
            self.gpu_proc_peak = max(self.gpu_proc_peak, gpu.get("gpu_proc_mem_mb", 0.0))
            self.gpu_total = gpu.get("gpu_mem_total_mb", self.gpu_total)
        return values

    def _emit(self, payload: dict) -> None:
        with self._lock:
            if self._closed:
                return  # the run has ended: nothing more goes into its folder
            try:
                self.run.emit({"type": "system", **payload})
                if "values" in payload and "step" not in payload:
                    self.samples += 1
            except Exception:  # a closed file or a full disk: the run's own writes say so
                pass

    def stop(self, timeout: float = 1.0) -> dict:
        """End the thread, take the last sample (before the run's ``end``
        event) and return the summary; {} when the monitor is off. Never raises."""
        try:
            return self._stop(timeout)
        except Exception:
            return {}

    def _stop(self, timeout: float) -> dict:
        self._halt.set()
        if self._thread is None:
            self._closed = True
            return {}
        self._thread.join(timeout)
        values = {}
        try:
            values = self.sample()
        except Exception:
            pass
        if self.cuda:
            peak = self._take_cuda_peak()
            if peak is not None:
                values["cuda_peak_mb"] = peak
        if values:
            self._emit({"values": values, "final": True})
        with self._lock:
            self._closed = True
        if self.nvml is not None:
            self.nvml.close()
        return self.summary()

    def summary(self) -> dict:
        wall = time.perf_counter() - self._first[0]
        cpu = cpu_seconds()[0] - self._first[1]
        out: dict = {"interval_s": self.interval, "samples": self.samples}
        if wall > 0:
            out["cpu_mean_percent"] = round(100.0 * cpu / wall, 1)
        out["cpus"] = os.cpu_count()
        if self.rss_peak:
            out["rss_peak_mb"] = round(self.rss_peak, 1)
        if self.cuda:
            out["cuda_peak_mb"] = round(self.cuda_peak, 1)
        if self.gpu_util:
            out["gpu_util_mean"] = round(sum(self.gpu_util) / len(self.gpu_util), 1)
        if self.gpu_mem_peak:
            out["gpu_mem_peak_mb"] = round(self.gpu_mem_peak, 1)
        if self.gpu_proc_peak:
            out["gpu_proc_mem_peak_mb"] = round(self.gpu_proc_peak, 1)
        if self.gpu_total:
            out["gpu_mem_total_mb"] = self.gpu_total
        return out


# ------------------------------------------------------------- reading back
@dataclass
class SystemSeries:
    """The ``system`` events of a run, as series over time: feed it events
    with :meth:`add` (the lab bench does, as the run goes)."""

    t: dict[str, list[float]] = field(default_factory=dict)
    v: dict[str, list[float]] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    epoch_peaks: list[tuple[int, float]] = field(default_factory=list)  # (step, cuda_peak_mb)
    interval: float | None = None
    last_t: float = 0.0

    def add(self, ev: dict) -> bool:
        """Take one event (others are ignored); True when it was a system one."""
        if ev.get("type") != "system":
            return False
        t = ev.get("t") if isinstance(ev.get("t"), (int, float)) else self.last_t
        values = ev.get("values") or {}
        if ev.get("step") is not None:
            peak = values.get("cuda_peak_mb")
            if isinstance(peak, (int, float)):
                self.epoch_peaks.append((ev["step"], float(peak)))
            return True
        if self.t and t > self.last_t and not ev.get("final"):
            gap = t - self.last_t
            self.interval = gap if self.interval is None else min(self.interval, gap)
        self.last_t = t
        for k, val in values.items():
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                self.t.setdefault(k, []).append(t)
                self.v.setdefault(k, []).append(float(val))
                self.latest[k] = float(val)
        return True

    def __bool__(self) -> bool:
        return bool(self.v) or bool(self.epoch_peaks)

    def values(self, key: str) -> list[float]:
        return self.v.get(key, [])

    def peak(self, key: str) -> float | None:
        vals = self.v.get(key)
        return max(vals) if vals else None

    def mean(self, key: str) -> float | None:
        vals = self.v.get(key)
        return sum(vals) / len(vals) if vals else None

    @property
    def cuda_peak(self) -> float | None:
        peaks = [p for _, p in self.epoch_peaks] + self.values("cuda_peak_mb")
        return max(peaks) if peaks else None


def read_system(events) -> SystemSeries:
    series = SystemSeries()
    for ev in events:
        series.add(ev)
    return series


def fmt_mb(mb: float | None) -> str:
    """A memory size in MiB as people read it: 512 MiB, 3.1 GiB."""
    if mb is None or not isinstance(mb, (int, float)) or not math.isfinite(mb):
        return "-"
    if mb >= 1024:
        return f"{mb / 1024:.1f} GiB"
    return f"{mb:.0f} MiB"


def fmt_percent(p: float | None) -> str:
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "-"
    return f"{p:,.0f}%"


def summary_rows(system: dict | None) -> list[tuple[str, str]]:
    """The rows a run's summary table shows for ``summary["system"]``:
    peak memory and mean utilisation (nothing when there was no record)."""
    s = system if isinstance(system, dict) else {}
    mem, util = [], []
    if s.get("rss_peak_mb"):
        mem.append(f"RSS {fmt_mb(s['rss_peak_mb'])}")
    if s.get("cuda_peak_mb") is not None:
        mem.append(f"CUDA {fmt_mb(s['cuda_peak_mb'])} (torch)")
    if s.get("gpu_mem_peak_mb"):
        total = f" of {fmt_mb(s['gpu_mem_total_mb'])}" if s.get("gpu_mem_total_mb") else ""
        mem.append(f"GPU {fmt_mb(s['gpu_mem_peak_mb'])}{total} (device)")
    if s.get("cpu_mean_percent") is not None:
        cores = f" (100% = 1 of {s['cpus']} cores)" if s.get("cpus") else ""
        util.append(f"CPU {fmt_percent(s['cpu_mean_percent'])}{cores}")
    if s.get("gpu_util_mean") is not None:
        util.insert(0, f"GPU {fmt_percent(s['gpu_util_mean'])}")
    rows = []
    if mem:
        rows.append(("peak memory", ", ".join(mem)))
    if util:
        rows.append(("mean utilisation", ", ".join(util)))
    return rows


#: (column title, summary["system"] key, formatter) for tables of several runs
COLUMNS = [
    ("peak RSS", "rss_peak_mb", fmt_mb),
    ("peak CUDA", "cuda_peak_mb", fmt_mb),
    ("CPU %", "cpu_mean_percent", fmt_percent),
    ("GPU %", "gpu_util_mean", fmt_percent),
]


def system_heading(title: str, key: str) -> str:
    """A column title with its unit, for files: "peak RSS (MiB)", "GPU %"."""
    return f"{title} (MiB)" if key.endswith("_mb") else title


def columns_for(systems: list[dict | None]) -> list[tuple[str, str, object]]:
    """The :data:`COLUMNS` that at least one of the runs recorded."""
    present = [s for s in systems if isinstance(s, dict)]
    return [c for c in COLUMNS if any(s.get(c[1]) is not None for s in present)]


# ------------------------------------------------------------------ GPUs
@dataclass
class GpuInfo:
    name: str  # "cuda:0", torch's numbering
    label: str  # the GPU's model
    free_mb: float | None = None
    total_mb: float | None = None
    util: float | None = None  # % busy now (NVML only)
    source: str = "nvml"  # or "torch"

    @property
    def used_mb(self) -> float | None:
        return None if self.free_mb is None or self.total_mb is None else self.total_mb - self.free_mb


def gpu_inventory(usable: bool = False) -> tuple[list[GpuInfo], str | None]:
    """Every GPU this process may use, with its memory and load, and the
    driver version: from NVML where it is there (no CUDA context is made, so
    it is cheap to call again), else from torch (memory only; the driver as
    torch's CUDA driver API version). ``usable``: none when torch cannot use
    CUDA (a CPU-only build), as a device picker wants; ``labbench doctor``
    lists them all the same."""
    if usable:
        try:
            import torch

            if not torch.cuda.is_available():
                return [], None
        except Exception:
            return [], None
    nvml = Nvml.open()
    if nvml is not None:
        with nvml:
            visible = nvml.visible_indices()
            if visible is not None:
                out = []
                for k, i in enumerate(visible):
                    try:
                        h = nvml.handle(i)
                    except Exception:
                        continue
                    s = nvml.sample(h)
                    total, used = s.get("gpu_mem_total_mb"), s.get("gpu_mem_used_mb")
                    out.append(GpuInfo(f"cuda:{k}", nvml.name(h),
                                       None if total is None or used is None else total - used, total,
                                       s.get("gpu_util"), "nvml"))
                return out, nvml.driver()
    from .devices import cuda_devices

    gpus = [GpuInfo(d.name, d.label, d.free_mb, d.total_mb, None, "torch") for d in cuda_devices()]
    driver = None
    if gpus:
        try:
            import torch

            v = int(torch._C._cuda_getDriverVersion())
            driver = f"CUDA {v // 1000}.{v % 1000 // 10} (driver API; nvidia-ml-py gives the driver's version)"
        except Exception:
            driver = None
    return gpus, driver


def gpu_choice_label(g) -> str:
    """How the device picker lists a GPU: name, free memory, load."""
    parts = [f"{g.name} {g.label}"]
    if g.free_mb is not None:
        parts.append(f"{g.free_mb / 1024:.1f} GiB free")
    util = getattr(g, "util", None)  # a devices.DeviceInfo (torch's list) has no load
    if util is not None:
        parts.append(f"{util:.0f}% busy")
    return ", ".join(parts)


def doctor_rows(environ=None) -> list[tuple[str, str]]:
    """``labbench doctor``'s lines about GPUs: each with its memory and load,
    the driver version, and how runs record the machine."""
    from rich.markup import escape

    gpus, driver = gpu_inventory()
    rows = []
    for g in gpus:
        text = escape(g.label)
        if g.total_mb:
            text += f", {fmt_mb(g.used_mb)} of {fmt_mb(g.total_mb)} used ({fmt_mb(g.free_mb)} free)"
        if g.util is not None:
            text += f", {g.util:.0f}% busy"
        rows.append((g.name, text))
    nvml, why = Nvml.try_open()
    if nvml is not None:
        nvml.close()
    if driver:
        rows.append(("driver", f"NVIDIA {driver}" if nvml is not None else driver))
    interval, warning = interval_from_env(environ)
    how = "off" if interval is None else f"every {interval:g} s"
    how += f" ({ENV_INTERVAL}); GPU readings " + ("from NVML" if nvml is not None else f"off: {why}")
    rows.append(("system record", how + (f"\n[yellow]{escape(warning)}[/]" if warning else "")))
    return rows
