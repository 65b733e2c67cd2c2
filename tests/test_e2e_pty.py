"""The real `labbench` command in a real pseudo-terminal, read back through a
terminal emulator (pexpect drives it, pyte is the screen): what a student
sees over SSH. The screen must never show a traceback; a clean quit exits 0
and a crash does not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

DOWN, HOME, ENTER = "\x1b[B", "\x1b[H", "\r"
COLS, ROWS = 120, 40


def labbench_command() -> list[str]:
    """The installed console script beside this Python, else `python -m labbench`."""
    script = Path(sys.executable).with_name("labbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "labbench"]


class Terminal:
    """A pty running a command, with a pyte screen fed from its output."""

    def __init__(self, cwd: Path, env: dict, cols: int = COLS, rows: int = ROWS, args: tuple = ()):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        cmd = labbench_command() + list(args)
        self.child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(cwd), env=env, dimensions=(rows, cols))
        self.tracebacks: list[str] = []

    def pump(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=max(0.01, end - time.monotonic()))
            except pexpect.TIMEOUT:
                data = b""
            except pexpect.EOF:
                break
            if data:
                self.stream.feed(data)
                text = self.text()
                if "Traceback" in text or "Error:" in text:
                    self.tracebacks.append(text)
            if time.monotonic() >= end:
                break

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, what, timeout: float = 60.0) -> str:
        check = what if callable(what) else (lambda text: what in text)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.2)
            if check(self.text()):
                return self.text()
            if not self.child.isalive():
                self.pump(0.2)
                if check(self.text()):
                    return self.text()
                raise AssertionError(f"labbench ended while waiting for {what!r}:\n{self.text()}")
        raise AssertionError(f"timed out waiting for {what!r}; the screen:\n{self.text()}")

    def send(self, *keys: str, gap: float = 0.15) -> None:
        for k in keys:
            self.child.send(k)
            self.pump(gap)

    def exit_status(self, timeout: float = 30.0) -> int:
        end = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < end:
            self.pump(0.2)
        if self.child.isalive():
            raise AssertionError(f"labbench still running after {timeout} s; the screen:\n{self.text()}")
        self.child.expect(pexpect.EOF, timeout=5)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else 128 + (self.child.signalstatus or 0)


def long_preset(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "long.toml").write_text('exercise = "1.1-perceptron"\nname = "long"\n[params]\nepochs = 1000000\n'
                                      "lr = 0.001\n")


def env_for(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", LABBENCH_RUNS=str(tmp_path / "runs"),
               LABBENCH_PRESETS=str(tmp_path / "presets"), LABBENCH_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def header(text: str) -> str:
    """The exercise whose description is shown ("1.2-backprop" from its heading "1.2-backprop: ...")."""
    import re

    m = re.search(r"(\d\.\d+-[a-z0-9-]+): ", text)
    return m.group(1) if m else ""


def epoch_shown(text: str) -> int:
    """The epoch in the Live tab's status line ("epoch 12/1000000"), 0 when none."""
    import re

    m = re.search(r"epoch (\d+)/", text)
    return int(m.group(1)) if m else 0


def pick_preset(term: "Terminal", name: str) -> None:
    """Down and Enter through the open exercise's presets until ``name`` is loaded."""
    for _ in range(12):
        if f"loaded preset {name}" in term.text():
            return
        term.send(DOWN, ENTER)
        term.pump(0.6)
    raise AssertionError(f"preset {name} never loaded:\n{term.text()}")


def live_pids(runs: Path) -> list[int]:
    out = []
    for meta in runs.glob("*/meta.json"):
        pid = json.loads(meta.read_text()).get("pid")
        if pid and Path(f"/proc/{pid}").exists():
            out.append(pid)
    return out


def kill_runs(runs: Path) -> None:
    for pid in live_pids(runs):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.slow
def test_pick_three_exercises_run_stop_quit_in_a_real_terminal(tmp_path):
    long_preset(tmp_path / "presets")
    term = Terminal(tmp_path, env_for(tmp_path))
    try:
        term.wait_for("1.1-perceptron: ")
        seen = [header(term.text())]
        for _ in range(2):  # the next two exercises, with the arrows (the form follows the cursor)
            term.send(DOWN)
            term.wait_for(lambda text, before=seen[-1]: header(text) not in ("", before))
            seen.append(header(term.text()))
        term.send(DOWN, ENTER)  # a third by Enter
        term.wait_for(lambda text: header(text) not in seen)
        seen.append(header(term.text()))
        assert len(set(seen)) == 4, seen
        # back to 1.1, open its presets, pick "long" (the user's own, marked *) and run it
        term.send(HOME, DOWN, ENTER)
        term.wait_for("* long")
        pick_preset(term, "long.toml")
        term.send("r")
        term.wait_for(lambda text: epoch_shown(text) >= 3, timeout=60)
        term.send("s")
        term.wait_for("interrupted", timeout=30)
        term.pump(1.0)  # the run's process exits just after writing its summary
        term.send("q")
        assert term.exit_status() == 0
        assert not term.tracebacks, term.tracebacks[0]
        summaries = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/summary.json")]
        assert [s["status"] for s in summaries] == ["interrupted"]
        assert summaries[0]["params"]["epochs"] == 1_000_000 and summaries[0]["steps_done"] >= 3
    finally:
        if term.child.isalive():
            term.child.close(force=True)
        kill_runs(tmp_path / "runs")


def test_a_crash_exits_non_zero(tmp_path):
    term = Terminal(tmp_path, env_for(tmp_path, LABBENCH_DEBUG_CRASH="0.5"))
    try:
        status = term.exit_status(timeout=60)
        assert status != 0
        assert "deliberate crash" in term.text()
    finally:
        if term.child.isalive():
            term.child.close(force=True)


@pytest.mark.slow
def test_a_run_outlives_a_dropped_connection_and_is_found_again(tmp_path):
    long_preset(tmp_path / "presets")
    runs = tmp_path / "runs"
    term = Terminal(tmp_path, env_for(tmp_path))
    try:
        term.wait_for("1.1-perceptron: ")
        term.send(ENTER)  # 1.1 is selected at start: Enter opens its presets
        term.wait_for("* long")
        pick_preset(term, "long.toml")
        term.send("r")
        term.wait_for(lambda text: epoch_shown(text) >= 2, timeout=60)
        pids = live_pids(runs)
        assert len(pids) == 1
        # the SSH connection drops: the terminal goes away, the app gets SIGHUP
        term.child.kill(signal.SIGHUP)
        term.child.close(force=True)
        time.sleep(1.0)
        assert live_pids(runs) == pids, "the run died with the app"
        events = next(runs.glob("*/events.jsonl"))
        size = events.stat().st_size
        time.sleep(1.0)
        assert events.stat().st_size > size  # still training

        again = Terminal(tmp_path, env_for(tmp_path))
        again.wait_for("1.1-perceptron: ", timeout=60)
        again.send("3")
        again.wait_for("●", timeout=30)  # live, in the runs table; adopted: Stop reaches it
        again.send("s")
        again.wait_for("interrupted", timeout=30)
        again.pump(1.0)
        again.send("q")
        assert again.exit_status() == 0
        assert not again.tracebacks and not term.tracebacks
        summary = json.loads(next(runs.glob("*/summary.json")).read_text())
        assert summary["status"] == "interrupted"
    finally:
        kill_runs(runs)
