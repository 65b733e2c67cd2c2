"""run.epochs(): the epoch loop ends early on the first Stop, without raising,
so an exercise still evaluates the model it has."""

from __future__ import annotations

import pytest

from labbench.engine.run import Interrupted, Run


def test_epochs_yield_all_and_report_progress():
    events = []
    run = Run(None, listeners=[events.append])
    assert list(run.epochs(3)) == [1, 2, 3]
    steps = [e["step"] for e in events if e["type"] == "progress"]
    assert steps == [0, 1, 2, 3] and run.step == 3 and run.total == 3 and not run.stopped_early


def test_epochs_end_early_on_stop_and_code_after_the_loop_runs():
    flag = {"stop": False}
    run = Run(None, stop_flag=lambda: flag["stop"])
    seen = []
    for epoch in run.epochs(10):
        seen.append(epoch)
        if epoch == 4:
            flag["stop"] = True
    assert seen == [1, 2, 3, 4] and run.stopped_early and run.step == 4
    with pytest.raises(Interrupted):  # the hard check still raises where an exercise asks for it
        run.check_stop()


def test_epochs_start_later_when_resumed():
    run = Run(None)
    run.start_epoch = 4
    assert list(run.epochs(6)) == [4, 5, 6]
