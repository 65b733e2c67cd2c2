"""The lab bench's GPU queue: one run per GPU, the others wait, and a run that
ends hands its GPU to the next one. No GPU and no real process is needed: the
manager is given fake device names and a fake process per run."""

from __future__ import annotations

import asyncio

from textual.widgets import Select

from labbench.engine.devices import DeviceInfo
from labbench.engine.procs import RunManager
from labbench.tui.state import RunView

from .test_tui import FAKE, FakeParams, fake_app


class FakePopen:
    _next_pid = 90_000

    def __init__(self):
        FakePopen._next_pid += 1
        self.pid = FakePopen._next_pid
        self.returncode = None
        self.signals: list[int] = []

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.signals.append(sig)

    def kill(self):
        self.returncode = -9

    def wait(self, timeout=None):
        return self.returncode


class FakeManager(RunManager):
    """Starts nothing: records which device each run was dispatched to."""

    def __init__(self, *a, **kw):
        kw.setdefault("view_factory", RunView)
        super().__init__(*a, **kw)
        self.started: list[tuple[str, str]] = []  # (run folder name, device) in start order

    def _start(self, p, device):
        p.popen = FakePopen()
        p.state, p.device = "running", device
        self.started.append((p.folder.name, device))


def finish(p, rc=0):
    p.popen.returncode = rc


def test_one_run_per_gpu_the_rest_queue_and_get_the_freed_gpu(tmp_path):
    m = FakeManager(tmp_path / "runs", gpus=["cuda:0", "cuda:1"])
    a = m.submit(FAKE, FakeParams(), name="a")
    b = m.submit(FAKE, FakeParams(), name="b")
    c = m.submit(FAKE, FakeParams(), name="c")
    assert (a.state, a.device) == ("running", "cuda:0")
    assert (b.state, b.device) == ("running", "cuda:1")
    assert c.state == "queued" and c.popen is None  # both GPUs busy: it waits
    cpu = m.submit(FAKE, FakeParams(), name="on-cpu", device="cpu")
    assert (cpu.state, cpu.device) == ("running", "cpu")  # the CPU never queues
    pinned = m.submit(FAKE, FakeParams(), name="pinned", device="cuda:1")
    assert pinned.state == "queued"
    assert len(m.active) == 5 and m.poll() == []  # nothing ended: nothing moves

    finish(a)
    assert m.poll() == [a] and a.state == "done"
    assert (c.state, c.device) == ("running", "cuda:0")  # the freed GPU goes to the oldest waiting run
    assert pinned.state == "queued"  # it asked for cuda:1, still busy

    m.stop(pinned)  # Stop on a queued run takes it off the queue; it never starts
    assert pinned.state == "cancelled" and pinned.view.status == "cancelled"
    finish(b)
    m.poll()
    assert pinned.popen is None and m.started[-1][0] == c.folder.name
    assert sorted(dev for _, dev in m.started) == ["cpu", "cuda:0", "cuda:0", "cuda:1"]

    d = m.submit(FAKE, FakeParams(), name="d", device="cuda")  # "cuda" means cuda:0
    assert d.state == "queued"  # c holds cuda:0
    finish(c)
    finish(cpu)
    m.poll()
    assert (d.state, d.device) == ("running", "cuda:0")


def test_without_gpus_auto_runs_at_once_on_the_cpu(tmp_path):
    m = FakeManager(tmp_path / "runs")
    runs = [m.submit(FAKE, FakeParams(), name=f"r{i}") for i in range(3)]
    assert [(r.state, r.device) for r in runs] == [("running", "cpu")] * 3


def test_device_selector_lists_detected_gpus_with_free_memory(tmp_path):
    asyncio.run(_device_selector(tmp_path))


async def _device_selector(tmp_path):
    app = fake_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app._set_devices([DeviceInfo("cuda:0", "NVIDIA H100", 81_000), DeviceInfo("cuda:1", "NVIDIA H100", 2_048)])
        await pilot.pause()
        sel = app.query_one("#device", Select)
        labels = [str(label) for label, _ in sel._options]
        assert any("cuda:1" in lab and "2.0 GiB free" in lab for lab in labels), labels
        assert app.manager.gpus == ["cuda:0", "cuda:1"] and sel.value == "auto"
