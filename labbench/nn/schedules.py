"""Learning-rate schedules chosen by a parameter.

``make_schedule(p.lr_schedule, opt, epochs=p.epochs, steps_per_epoch=len(batches), ...)``
gives a :class:`Schedule` with the same two calls for every kind, so the loop
does not change with the parameter::

    for epoch in run.epochs(p.epochs):
        for idx in run.batches(batches):
            ...
            sched.after_batch()
        sched.after_epoch()
        run.scalars(epoch, ..., lr=sched.lr)   # the LR as a curve

Kinds (``SCHEDULES``):

- ``none``        a constant LR;
- ``step``        times ``gamma`` every ``step_size`` epochs;
- ``exponential`` times ``gamma`` every epoch;
- ``cosine``      half a cosine from the LR to ``min_lr`` over the run, per batch;
- ``onecycle``    warm up to ``max_lr`` over the first ``pct_start`` of the
                  batches, then anneal (cosine) to ``max_lr / (div_factor *
                  final_div_factor)``, per batch (PyTorch's OneCycleLR).
"""

from __future__ import annotations

from typing import Any

import torch

SCHEDULES = ("none", "step", "exponential", "cosine", "onecycle")
#: kinds whose shape depends on the run's length (a finished run cannot be extended with them)
LENGTH_BOUND = ("cosine", "onecycle")


class ScheduleMismatch(ValueError):
    pass


class Schedule:
    """One of :data:`SCHEDULES` around a torch scheduler (or none)."""

    def __init__(self, kind: str, optimizer: torch.optim.Optimizer, scheduler=None, per_batch: bool = False,
                 total: int = 0):
        self.kind = kind
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.per_batch = per_batch
        self.total = total  # epochs the shape was made for

    @property
    def lr(self) -> float:
        """The LR of the first parameter group, as the next step will use it."""
        return float(self.optimizer.param_groups[0]["lr"])

    def after_batch(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()

    # checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "total": self.total,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ScheduleMismatch(f"the checkpoint's LR schedule is {state.get('kind')!r}, this run's is {self.kind!r}")
        if self.kind in LENGTH_BOUND and state.get("total") != self.total:
            raise ScheduleMismatch(
                f"the {self.kind} LR schedule was shaped for {state.get('total')} epochs; it cannot be stretched to "
                f"{self.total} (resume with the original number of epochs, or use step/exponential/none)")
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])


def make_schedule(kind: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int = 1,
                  step_size: int = 30, gamma: float = 0.1, min_lr: float = 0.0, max_lr: float | None = None,
                  pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4,
                  cycle_momentum: bool = False) -> Schedule:
    """A :class:`Schedule` of ``kind`` for a run of ``epochs`` epochs of
    ``steps_per_epoch`` batches. ``max_lr`` (one-cycle) defaults to the
    optimiser's LR; ``cycle_momentum`` (one-cycle) moves SGD's momentum
    against the LR, between 0.85 and 0.95."""
    kind = (kind or "none").lower()
    S = torch.optim.lr_scheduler
    epochs, steps_per_epoch = int(epochs), max(1, int(steps_per_epoch))
    if kind == "none":
        return Schedule(kind, optimizer, None, total=epochs)
    if kind == "step":
        return Schedule(kind, optimizer, S.StepLR(optimizer, step_size=int(step_size), gamma=gamma), total=epochs)
    if kind == "exponential":
        return Schedule(kind, optimizer, S.ExponentialLR(optimizer, gamma=gamma), total=epochs)
    if kind == "cosine":
        sched = S.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=min_lr)
        return Schedule(kind, optimizer, sched, per_batch=True, total=epochs)
    if kind == "onecycle":
        peak = float(max_lr if max_lr is not None else optimizer.param_groups[0]["lr"])
        sched = S.OneCycleLR(optimizer, max_lr=peak, total_steps=epochs * steps_per_epoch, pct_start=pct_start,
                             div_factor=div_factor, final_div_factor=final_div_factor, anneal_strategy="cos",
                             cycle_momentum=cycle_momentum)
        return Schedule(kind, optimizer, sched, per_batch=True, total=epochs)
    raise ValueError(f'lr_schedule: must be one of {", ".join(SCHEDULES)}, got {kind!r}')
