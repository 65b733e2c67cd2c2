"""The lab bench stays responsive while a run streams.

1. Redrawing a long curve: the downsampled draw (what the live panel does)
   against plotting every point (the naive baseline), for 10,000 and 100,000
   points, two series each.
2. A run streaming fast: a thread appends scalars + progress events to a run
   folder (about 20,000 epochs in 10 s, like 1.1-perceptron with
   epochs=20000) while the app follows it; we record how long each redraw
   tick takes and how long key presses take to be handled, early and late
   in the stream (no growing lag).

Run: .venv/bin/python benchmarks/bench_tui_redraw.py
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labbench.render.plots import draw_line, figure_text, new_figure  # noqa: E402


def timed(fn, n=5) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def redraw_bench() -> None:
    print("curve redraw (2 series, 90x13 cells)")
    for n in (10_000, 100_000):
        xs = list(range(1, n + 1))
        series = {"train": (xs, [1 / x + 0.01 * math.sin(x) for x in xs]),
                  "val": (xs, [1.1 / x + 0.01 * math.cos(x) for x in xs])}

        def ours():
            fig = new_figure()
            draw_line(fig, series, legend=[])
            figure_text(fig, 90, 13)

        def naive():
            fig = new_figure()
            for label, (x, y) in series.items():
                fig.plot(x, y, label=label, marker="braille")
            figure_text(fig, 90, 13)

        a, b = timed(ours), timed(naive, 2)
        print(f"  {n:>7,} points: downsampled {a * 1e3:6.1f} ms, every point {b * 1e3:7.1f} ms, "
              f"ratio {b / a:5.1f}x")


def stream_bench(epochs: int = 20_000, seconds: float = 10.0) -> None:
    from labbench.tui import app as app_mod
    from labbench.tui.app import LabBench

    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "runs" / "stream"
    folder.mkdir(parents=True)
    events = folder / "events.jsonl"
    events.write_text(json.dumps({"t": 0, "type": "start", "exercise": "1.1-perceptron", "params": {},
                                  "seed": 0, "device": "cpu"}) + "\n")
    stop = threading.Event()

    def writer():
        t0 = time.perf_counter()
        with events.open("a") as f:
            for e in range(1, epochs + 1):
                if stop.is_set():
                    return
                f.write(json.dumps({"t": e, "type": "scalars", "step": e, "values": {"loss/perceptron": 1 / e}})
                        + "\n" + json.dumps({"t": e, "type": "progress", "step": e, "total": epochs}) + "\n")
                if e % 200 == 0:
                    f.flush()
                    lag = t0 + seconds * e / epochs - time.perf_counter()
                    if lag > 0:
                        time.sleep(lag)
            f.write(json.dumps({"t": epochs, "type": "end", "status": "ok"}) + "\n")

    ticks: list[tuple[float, float, int]] = []  # (when, duration, points)
    orig_tick = LabBench.tick

    def tick(self):
        t = time.perf_counter()
        orig_tick(self)
        ticks.append((t, time.perf_counter() - t, self.selected.points() if self.selected else 0))

    LabBench.tick = tick
    presses: list[tuple[int, float]] = []

    async def main():
        app = LabBench(runs_dir=tmp / "runs", presets_dir=tmp / "presets", exercises={}, detect_devices=False,
                       shipped_presets=False, watch=folder)
        async with app.run_test(size=(120, 40)) as pilot:
            th = threading.Thread(target=writer, daemon=True)
            th.start()
            t_end = time.perf_counter() + seconds + 1
            while time.perf_counter() < t_end and th.is_alive():
                await pilot.pause(0.4)
                t = time.perf_counter()
                await pilot.press("l")  # log-scale toggle: redraws every chart
                await pilot.pause()
                presses.append((app.selected.points(), time.perf_counter() - t))
            stop.set()
            th.join()
            await pilot.pause(0.6)
            assert app.selected.ended, "the stream's end was not seen"

    try:
        asyncio.run(main())
    finally:
        LabBench.tick = orig_tick
    durs = [d for _, d, _ in ticks]
    half = len(presses) // 2
    early = [d for _, d in presses[:half]]
    late = [d for _, d in presses[half:]]
    rate = (ticks[-1][0] - ticks[0][0]) / max(len(ticks) - 1, 1)
    print(f"stream of {epochs:,} epochs in ~{seconds:.0f} s, redraw every {app_mod.REFRESH_S}s")
    print(f"  ticks: {len(ticks)}, one every {rate * 1e3:.0f} ms; tick time median {statistics.median(durs) * 1e3:.1f} ms, "
          f"max {max(durs) * 1e3:.1f} ms (points at the end: {ticks[-1][2]:,})")
    print(f"  key 'l' handled in: median {statistics.median(early) * 1e3:.0f} ms in the first half, "
          f"{statistics.median(late) * 1e3:.0f} ms in the second (ratio late/early "
          f"{statistics.median(late) / statistics.median(early):.2f})")


if __name__ == "__main__":
    redraw_bench()
    stream_bench()
